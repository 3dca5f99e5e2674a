package conformance

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"
)

// Clock is an optional Target capability: the hub's notion of now, used for
// token expiries. Without it the suite uses time.Now.
type Clock interface {
	Now() time.Time
}

// MaxConcurrentCases is how many cases Run runs at once. Cases mostly wait
// on the network and on hub timers (keep-alive, method time-outs), so Run
// runs them concurrently itself rather than through t.Parallel, whose limit
// (-parallel, GOMAXPROCS by default) would serialise the waiting on a small
// machine.
const MaxConcurrentCases = 16

// Run runs every case against target, each as a subtest named by its ID
// (t.Run("connect/sas/expired", ...)), so one case runs with
//
//	go test -run 'TestConformance/connect/sas/expired'
//
// Up to MaxConcurrentCases cases run at once. Each gets a fresh device from
// target.NewDevice and a deadline; when the deadline passes the case fails
// and its connections are closed, so a hung hub cannot hang the suite. Cases
// needing a capability the target lacks are skipped with the reason.
func Run(t *testing.T, target Target) {
	t.Helper()
	sem := make(chan struct{}, MaxConcurrentCases)
	var wg sync.WaitGroup
	for _, c := range Cases() {
		wg.Add(1)
		go func() {
			defer wg.Done()
			sem <- struct{}{}
			defer func() { <-sem }()
			t.Run(c.ID, func(t *testing.T) { c.Run(t, target) })
		}()
	}
	wg.Wait()
}

// Run runs the one case c in t (without a subtest of its own), for callers
// that select cases themselves:
//
//	for _, c := range conformance.Cases() {
//		if strings.HasPrefix(c.ID, "connect/") {
//			t.Run(c.ID, func(t *testing.T) { c.Run(t, target) })
//		}
//	}
func (c Case) Run(t *testing.T, target Target) {
	t.Helper()
	if why := c.missing(target); why != "" {
		t.Skipf("%s: skipped: %s", c.ID, why)
	}
	ctx, cancel := context.WithTimeout(context.Background(), c.timeout())
	e := &env{t: t, c: c, ctx: ctx, target: target, ep: target.Endpoint()}
	stop := context.AfterFunc(ctx, func() {
		e.mu.Lock()
		if !e.done && errors.Is(ctx.Err(), context.DeadlineExceeded) {
			t.Errorf("%s: no result within %v: the hub did not answer in time; closing the case's connections", c.ID, c.timeout())
		}
		e.mu.Unlock()
		e.closeAll()
	})
	defer func() {
		e.mu.Lock()
		e.done = true
		e.mu.Unlock()
		stop()
		cancel()
		e.closeAll()
	}()
	e.dev = target.NewDevice(t)
	c.run(e)
}

// env is the environment of one running case: the target, the case's fresh
// device, a context that ends at the case's deadline, and helpers that
// report failures as "<case ID>: <what> = <got>, want <want>".
type env struct {
	t      *testing.T
	c      Case
	ctx    context.Context
	target Target
	ep     Endpoint
	dev    DeviceIdentity

	mu      sync.Mutex
	done    bool
	closers []func()
}

// Errorf reports a failure prefixed with the case ID.
func (e *env) Errorf(format string, args ...any) {
	e.t.Helper()
	e.t.Errorf("%s: %s", e.c.ID, fmt.Sprintf(format, args...))
}

// Fatalf reports a failure prefixed with the case ID and stops the case.
func (e *env) Fatalf(format string, args ...any) {
	e.t.Helper()
	e.t.Fatalf("%s: %s", e.c.ID, fmt.Sprintf(format, args...))
}

// Skipf skips the case with a reason prefixed with the case ID.
func (e *env) Skipf(format string, args ...any) {
	e.t.Helper()
	e.t.Skipf("%s: skipped: %s", e.c.ID, fmt.Sprintf(format, args...))
}

// Logf logs with the case ID.
func (e *env) Logf(format string, args ...any) {
	e.t.Helper()
	e.t.Logf("%s: %s", e.c.ID, fmt.Sprintf(format, args...))
}

// onClose registers f to run when the case ends or times out.
func (e *env) onClose(f func()) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.closers = append(e.closers, f)
}

func (e *env) closeAll() {
	e.mu.Lock()
	fs := e.closers
	e.closers = nil
	e.mu.Unlock()
	for i := len(fs) - 1; i >= 0; i-- {
		fs[i]()
	}
}

func (e *env) now() time.Time {
	if c, ok := e.target.(Clock); ok {
		return c.Now()
	}
	return time.Now()
}

// waitCtx returns a context ending after d or at the case's deadline.
func (e *env) waitCtx(d time.Duration) (context.Context, context.CancelFunc) {
	return context.WithTimeout(e.ctx, d)
}
