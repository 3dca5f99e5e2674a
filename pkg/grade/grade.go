package grade

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"time"

	"github.com/hubkit/hubkit/pkg/iothub"
)

// Hub is what the grader needs from the hub the device is connected to. fakehub's Server
// provides it (fakehub.Server.GradeHub). Its clock is the hub's movable clock; the grader
// keeps real time with Options.Now.
type Hub interface {
	// ObservePackets calls fn for every packet between the hub (and its DPS) and a device
	// until stop is called; fn must return quickly.
	ObservePackets(fn func(iothub.Packet)) (stop func())
	// Connected reports whether id has a live connection; Subscriptions returns the filters
	// it holds with their granted QoS (false when it is not connected).
	Connected(id iothub.Identity) bool
	Subscriptions(id iothub.Identity) (map[string]byte, bool)
	// ConnectedFrom lists the identities with a live connection from remote IP ip, compared
	// as HostKey compares them (every loopback address is one host) (a
	// refused TLS handshake names no identity: the TLS cases attribute it by IP only when
	// no other identity is connected from there).
	ConnectedFrom(ip string) []iothub.Identity

	// Now reads the hub's clock; ClockOffset is how far it is moved from real time.
	Now() time.Time
	ClockOffset() time.Duration
	// SetClock moves the hub's clock so that it reads t now; SetClockOffset so that it is
	// offset from real time by d.
	SetClock(t time.Time)
	SetClockOffset(d time.Duration)
	// TokenGrace is the hub's clock-skew allowance and expiry grace.
	TokenGrace() time.Duration

	// Drop closes id's live connection, recording reason and code.
	Drop(id iothub.Identity, reason string, code iothub.ErrorCode) error
	// RefuseConnections refuses id's CONNECTs with CONNACK 3 for d (0: no longer).
	RefuseConnections(id iothub.Identity, d time.Duration)
	// Restart restarts the hub in place: every connection closed, stored sessions forgotten.
	Restart(keepState bool)
	// PresentTLSDrill makes the hub present the chain of a TLS drill ("root-change": the
	// chain after a root migration; "wrong-san": a certificate that does not name the hub)
	// to new TLS handshakes until restore is called; open connections are untouched. The
	// packet observers then see each handshake's end (iothub.PacketHandshake).
	PresentTLSDrill(name string) (restore func(), err error)
	// Throttle refuses id's telemetry as throttled (429001, the connection closed) for d.
	Throttle(id iothub.Identity, d time.Duration) error
	// SetDailyQuota sets the hub's daily message quota to n meter units (other limits
	// unchanged) and returns the function that restores the limits it replaced.
	SetDailyQuota(n int64) (restore func())

	// SendC2D enqueues a cloud-to-device message and returns its ID; WaitC2D waits until it
	// is completed, rejected or expired (or ctx ends).
	SendC2D(ctx context.Context, id iothub.Identity, m iothub.C2DMessage) (string, error)
	WaitC2D(ctx context.Context, messageID string) (iothub.C2DStatus, error)
	// InvokeMethod calls a direct method and waits up to timeout for the answer.
	InvokeMethod(ctx context.Context, id iothub.Identity, name string, payload []byte, timeout time.Duration) (iothub.MethodResult, error)
	// UpdateDesired patches the twin's desired properties.
	UpdateDesired(ctx context.Context, id iothub.Identity, patch []byte) error

	// Lacks returns why the hub cannot provide capability (a Cap* constant), or "".
	Lacks(capability string) string
}

// Capabilities a case may need (Hub.Lacks).
const (
	CapTLSDrills = "tls-drills" // present a migrated root CA, a wrong SAN (PresentTLSDrill), and report handshakes
	CapDPS       = "dps"        // a Device Provisioning Service next to the hub
)

// KeptReports is how many grade reports a hub keeps (fakehub: its REST API and its
// dashboard list them; the oldest goes when another grade starts).
const KeptReports = 20

// Options configure Run.
type Options struct {
	// Identity is the device or module to grade. Required.
	Identity iothub.Identity
	// Cases selects cases by ID or ID prefix; none: every case.
	Cases []string
	// Method is a direct method the device answers (device/methods/answers-in-time);
	// MethodPayload its JSON payload (default {}).
	Method        string
	MethodPayload []byte
	// DeviceClock is iothub.GradeClockHub (default: the device reads the hub's clock) or
	// iothub.GradeClockOwn (its own real clock).
	DeviceClock string
	// WaitConnect bounds the wait for the device's first connection (default 2 min).
	WaitConnect time.Duration
	// RegistrationID is the device's DPS registration ID (default: Identity.DeviceID).
	RegistrationID string
	// Timing bounds the grader's waits; zero fields take the defaults (DefaultTiming).
	Timing Timing
	// Now is the real clock (default time.Now): report times and the device's waits are
	// measured with it.
	Now func() time.Time
	// Progress, if set, is called with a copy of the report whenever it changes.
	Progress func(iothub.GradeReport)
	// ID names the report (default: "grade-" and the start time).
	ID string
	// Logger receives what the grader does (nil: discarded).
	Logger *slog.Logger
}

// Timing bounds what the grader waits for, in real time. The defaults suit real devices;
// tests of the grader shrink them.
type Timing struct {
	Settle    time.Duration // device silence that ends a (re)connection's start-up (default 1 s)
	SettleMax time.Duration // the longest start-up wait (default 10 s)
	Answer    time.Duration // an answer due at once: a C2D PUBACK, a method response, a renewal at each clock step (default 10 s)
	Reconnect time.Duration // a reconnect after a drop, a restart, or a fault's end (default 60 s)
	Telemetry time.Duration // the wait for the device's telemetry (default 30 s)
	// A reconnect back-off episode (connections refused with CONNACK 3) lasts at least
	// BackoffMin and at most BackoffMax, ending after BackoffMin once BackoffAttempts
	// attempts were refused (defaults 8 s, 30 s, 3).
	BackoffMin      time.Duration
	BackoffMax      time.Duration
	BackoffAttempts int
	TightLoop       time.Duration // a median wait below this is a tight loop (default 100 ms)
	JitterFloor     time.Duration // shorter waits are not compared for jitter (default 50 ms)
	JitterMin       time.Duration // a smaller difference between two waits is noise (default 20 ms; and 4 %)
	Throttle        time.Duration // how long telemetry is throttled (default 15 s)
	QuotaHold       time.Duration // how long the exhausted quota is held before the clock crosses midnight (default 5 s)
	// RealTimeBudget is the longest token lifetime waited for in real time when the
	// device keeps its own clock (default 2 min).
	RealTimeBudget time.Duration
}

// DefaultTiming is the Timing Run uses for zero fields.
var DefaultTiming = Timing{
	Settle: time.Second, SettleMax: 10 * time.Second, Answer: 10 * time.Second, Reconnect: time.Minute,
	Telemetry: 30 * time.Second, BackoffMin: 8 * time.Second, BackoffMax: 30 * time.Second, BackoffAttempts: 3,
	TightLoop: 100 * time.Millisecond, JitterFloor: 50 * time.Millisecond, JitterMin: 20 * time.Millisecond,
	Throttle: 15 * time.Second, QuotaHold: 5 * time.Second, RealTimeBudget: 2 * time.Minute,
}

func (t Timing) withDefaults() Timing {
	d := DefaultTiming
	pick := func(v *time.Duration, def time.Duration) {
		if *v <= 0 {
			*v = def
		}
	}
	pick(&t.Settle, d.Settle)
	pick(&t.SettleMax, d.SettleMax)
	pick(&t.Answer, d.Answer)
	pick(&t.Reconnect, d.Reconnect)
	pick(&t.Telemetry, d.Telemetry)
	pick(&t.BackoffMin, d.BackoffMin)
	pick(&t.BackoffMax, d.BackoffMax)
	pick(&t.TightLoop, d.TightLoop)
	pick(&t.JitterFloor, d.JitterFloor)
	pick(&t.JitterMin, d.JitterMin)
	pick(&t.Throttle, d.Throttle)
	pick(&t.QuotaHold, d.QuotaHold)
	pick(&t.RealTimeBudget, d.RealTimeBudget)
	if t.BackoffAttempts <= 0 {
		t.BackoffAttempts = d.BackoffAttempts
	}
	t.BackoffMax = max(t.BackoffMax, t.BackoffMin)
	return t
}

// ErrNotConnected means the device did not connect within Options.WaitConnect.
var ErrNotConnected = errors.New("grade: the device did not connect")

// Select returns the cases opts.Cases names (all when none), in catalogue order, or an
// error naming an entry that matches no case.
func Select(names []string) ([]Case, error) {
	all := Cases()
	if len(names) == 0 {
		return all, nil
	}
	keep := map[string]bool{}
	for _, n := range names {
		n = strings.TrimSpace(n)
		if n == "" {
			continue
		}
		prefix := strings.TrimSuffix(n, "/") + "/"
		found := false
		for _, c := range all {
			if c.ID == n || strings.HasPrefix(c.ID, prefix) {
				keep[c.ID], found = true, true
			}
		}
		if !found {
			return nil, fmt.Errorf("unknown case %q: want a case ID or a prefix such as device/twin (fakehub grade --list lists them)", n)
		}
	}
	var out []Case
	for _, c := range all {
		if keep[c.ID] {
			out = append(out, c)
		}
	}
	return out, nil
}

// Run grades opts.Identity on hub: it waits for the device to connect, watches it start up
// on a fresh connection (closing a connection that was already open when the grade
// began), runs the active cases in order, restoring the hub after each (clock, faults,
// limits), and judges the passive cases from everything it saw. ctx ending stops the
// grade: the report's State is then iothub.GradeCanceled and the cases not reached are
// not exercised. The error is for bad options; a device that never connects gives a
// report whose cases are all not exercised and ErrNotConnected.
func Run(ctx context.Context, hub Hub, opts Options) (iothub.GradeReport, error) {
	if err := opts.Identity.Validate(); err != nil {
		return iothub.GradeReport{}, fmt.Errorf("grade: identity: %w", err)
	}
	switch opts.DeviceClock {
	case "":
		opts.DeviceClock = iothub.GradeClockHub
	case iothub.GradeClockHub, iothub.GradeClockOwn:
	default:
		return iothub.GradeReport{}, fmt.Errorf("grade: device clock %q: want %q (it reads the hub's clock) or %q (its own)", opts.DeviceClock, iothub.GradeClockHub, iothub.GradeClockOwn)
	}
	cases, err := Select(opts.Cases)
	if err != nil {
		return iothub.GradeReport{}, fmt.Errorf("grade: %w", err)
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.WaitConnect <= 0 {
		opts.WaitConnect = 2 * time.Minute
	}
	if opts.RegistrationID == "" {
		opts.RegistrationID = opts.Identity.DeviceID
	}
	if len(opts.MethodPayload) == 0 {
		opts.MethodPayload = []byte("{}")
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	opts.Timing = opts.Timing.withDefaults()
	g := newGrader(hub, opts, cases)
	defer g.close()
	return g.run(ctx)
}

// grader is one grade in progress.
type grader struct {
	hub   Hub
	opts  Options
	t     Timing
	id    iothub.Identity
	cases []Case
	rec   *recorder
	log   *slog.Logger
	start time.Time // real
	rep   iothub.GradeReport
	index map[string]int // case ID -> index in rep.Cases

	offset0 time.Duration // the hub clock's offset when the grade began (restored after each case)
	last    string        // the last disruptive case, for "not connected" reasons
	c2dSeq  int
}

func newGrader(hub Hub, opts Options, cases []Case) *grader {
	g := &grader{hub: hub, opts: opts, t: opts.Timing, id: opts.Identity, cases: cases, log: opts.Logger,
		start: opts.Now(), index: map[string]int{}, offset0: hub.ClockOffset()}
	g.rec = newRecorder(opts.Identity, opts.RegistrationID, opts.Now)
	g.rec.stop = hub.ObservePackets(g.rec.observe)
	id := opts.ID
	if id == "" {
		id = "grade-" + g.start.UTC().Format("20060102T150405.000Z")
	}
	g.rep = iothub.GradeReport{ID: id, DeviceID: g.id.DeviceID, ModuleID: g.id.ModuleID, DeviceClock: opts.DeviceClock,
		State: iothub.GradeRunning, Started: g.start.UTC()}
	for i, c := range cases {
		g.index[c.ID] = i
		g.rep.Cases = append(g.rep.Cases, iothub.GradeResult{GradeCase: c.info()})
	}
	g.rep.Summarize()
	return g
}

func (g *grader) close() { g.rec.stop() }

func (g *grader) run(ctx context.Context) (iothub.GradeReport, error) {
	g.progress("", "waiting for "+g.id.String()+" to connect")
	var runErr error
	if err := g.freshConnection(ctx); err != nil {
		runErr = err
		why := "the device did not connect within " + g.opts.WaitConnect.String()
		if ctx.Err() != nil {
			why = "the grade was stopped before the device connected"
		}
		for _, c := range g.cases {
			g.finish(c, result{verdict: iothub.GradeNotExercised, reason: why})
		}
	} else {
		for _, c := range g.cases {
			if c.passive || ctx.Err() != nil {
				continue
			}
			g.runCase(ctx, c)
		}
		g.settle(ctx) // the last active case may have left the device starting up
		for _, c := range g.cases {
			if c.passive && ctx.Err() == nil {
				g.runCase(ctx, c)
			}
		}
	}
	for _, c := range g.cases {
		if g.rep.Cases[g.index[c.ID]].Verdict == "" {
			g.finish(c, result{verdict: iothub.GradeNotExercised, reason: "the grade was stopped before this case ran"})
		}
	}
	g.rep.State, g.rep.Current, g.rep.Note = iothub.GradeDone, "", ""
	if ctx.Err() != nil {
		g.rep.State = iothub.GradeCanceled
	}
	g.rep.Finished = g.opts.Now().UTC()
	g.rep.Seconds = g.rep.Finished.Sub(g.rep.Started).Seconds()
	g.rep.Summarize()
	g.emitProgress()
	return g.copyReport(), runErr
}

// freshConnection waits for the device to connect and watches one connection from its
// start: one that was open before the grade began, or that opened in the instant between
// the recorder starting and the first look (so its CONNACK was never seen), is closed once.
func (g *grader) freshConnection(ctx context.Context) error {
	if !g.hub.Connected(g.id) {
		// Wait for a CONNACK the recorder sees; on every tick, look whether the hub holds
		// a connection the recorder never saw start. Two looks in a row, so a CONNACK
		// being written as the session opens is not taken for one.
		unseen := 0
		g.rec.waitTick(ctx, g.opts.WaitConnect, 20*time.Millisecond, func(ev []obs) bool {
			if slices.ContainsFunc(ev, isConnackOK) {
				unseen = 0
				return true
			}
			if g.hub.Connected(g.id) {
				unseen++
			} else {
				unseen = 0
			}
			return unseen >= 2
		})
		switch {
		case unseen >= 2:
			// fall through to closing it once, below
		case slices.ContainsFunc(g.rec.events(0), isConnackOK):
			g.settle(ctx)
			return nil
		default:
			return ErrNotConnected
		}
	}
	g.log.Info("the device was connected before the grade: closing its connection once to watch it start up", "identity", g.id.String())
	g.rep.Log = append(g.rep.Log, g.now("the device was connected before the grade began: the grader closed that connection once to watch a whole start-up"))
	mark := g.rec.mark()
	_ = g.hub.Drop(g.id, "the grader watches the device start up on a fresh connection", iothub.CodeConnectionForcefullyClosedOnFaultInjection)
	if _, ok := g.rec.waitFor(ctx, mark, g.opts.WaitConnect, isConnackOK); !ok {
		return ErrNotConnected
	}
	g.settle(ctx)
	return nil
}

// settle waits until the device has been silent for Timing.Settle (at most SettleMax).
func (g *grader) settle(ctx context.Context) {
	deadline := g.opts.Now().Add(g.t.SettleMax)
	for ctx.Err() == nil {
		quiet := g.opts.Now().Sub(g.rec.lastFromDevice())
		if quiet >= g.t.Settle || !g.opts.Now().Before(deadline) {
			return
		}
		sleep(ctx, min(g.t.Settle-quiet, deadline.Sub(g.opts.Now()))+time.Millisecond)
	}
}

// ready makes sure the device is connected (waiting up to Timing.Reconnect) and settled
// before an active case; it returns why not, or "".
func (g *grader) ready(ctx context.Context) string {
	if !g.hub.Connected(g.id) {
		deadline := g.opts.Now().Add(g.t.Reconnect)
		for !g.hub.Connected(g.id) && ctx.Err() == nil && g.opts.Now().Before(deadline) {
			sleep(ctx, 20*time.Millisecond)
		}
		if !g.hub.Connected(g.id) {
			if g.last != "" {
				return fmt.Sprintf("the device was not connected: it did not come back within %s after %s", g.t.Reconnect, g.last)
			}
			return fmt.Sprintf("the device was not connected (waited %s)", g.t.Reconnect)
		}
	}
	g.settle(ctx)
	return ""
}

// runCase runs one case and records its verdict.
func (g *grader) runCase(ctx context.Context, c Case) {
	g.progress(c.ID, c.Title)
	started := g.opts.Now()
	i := g.index[c.ID]
	g.rep.Cases[i].Started = started.UTC()
	var res result
	switch {
	case c.needs != "" && g.hub.Lacks(c.needs) != "":
		res = result{verdict: iothub.GradeNotExercised, reason: g.hub.Lacks(c.needs)}
	default:
		if !c.passive {
			if why := g.ready(ctx); why != "" {
				res = result{verdict: iothub.GradeNotExercised, reason: why}
				break
			}
		}
		res = c.run(ctx, g)
		g.restore()
	}
	if ctx.Err() != nil && res.verdict != iothub.GradeFail {
		res = result{verdict: iothub.GradeNotExercised, reason: "the grade was stopped while this case ran", evidence: res.evidence}
	}
	if c.disrupts {
		g.last = c.ID
	}
	g.rep.Cases[i].Seconds = g.opts.Now().Sub(started).Seconds()
	g.finish(c, res)
}

// restore undoes what an active case changed on the hub: the clock's offset, refused
// connections, a throttling window.
func (g *grader) restore() {
	if g.hub.ClockOffset() != g.offset0 {
		g.hub.SetClockOffset(g.offset0)
	}
	g.hub.RefuseConnections(g.id, 0)
	_ = g.hub.Throttle(g.id, 0)
}

func (g *grader) finish(c Case, r result) {
	i := g.index[c.ID]
	res := &g.rep.Cases[i]
	if r.verdict == "" {
		r.verdict = iothub.GradeNotExercised
	}
	res.Verdict, res.Reason, res.Evidence = r.verdict, r.reason, r.evidence
	g.log.Info("case graded", "case", c.ID, "verdict", string(r.verdict), "reason", r.reason)
	g.rep.Summarize()
	g.emitProgress()
}

func (g *grader) progress(current, note string) {
	g.rep.Current, g.rep.Note = current, note
	g.emitProgress()
}

func (g *grader) emitProgress() {
	g.rep.Seconds = g.opts.Now().Sub(g.start).Seconds()
	if g.opts.Progress != nil {
		g.opts.Progress(g.copyReport())
	}
}

func (g *grader) copyReport() iothub.GradeReport {
	r := g.rep
	r.Cases = slices.Clone(g.rep.Cases)
	r.Log = slices.Clone(g.rep.Log)
	for i := range r.Cases {
		r.Cases[i].Evidence = slices.Clone(r.Cases[i].Evidence)
	}
	return r
}

// result is a case's verdict.
type result struct {
	verdict  iothub.GradeVerdict
	reason   string
	evidence []iothub.GradeEvidence
}

// ev turns an observation into evidence.
func (g *grader) ev(o obs, text string) iothub.GradeEvidence {
	return iothub.GradeEvidence{Time: o.Time, Elapsed: round3(o.real.Sub(g.start).Seconds()), Text: text}
}

// now is evidence of what the grader did or saw now.
func (g *grader) now(text string) iothub.GradeEvidence {
	return iothub.GradeEvidence{Time: g.hub.Now().UTC(), Elapsed: round3(g.opts.Now().Sub(g.start).Seconds()), Text: text}
}

func round3(f float64) float64 { return float64(int64(f*1000+0.5)) / 1000 }

// sleep waits d or until ctx ends.
func sleep(ctx context.Context, d time.Duration) {
	if d <= 0 {
		return
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
	case <-ctx.Done():
	}
}
