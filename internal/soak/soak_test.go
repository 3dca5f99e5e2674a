package soak

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"math/rand/v2"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/hubkit/hubkit/internal/testutil"
	"github.com/hubkit/hubkit/pkg/device"
	"github.com/hubkit/hubkit/pkg/fakehub"
	"github.com/hubkit/hubkit/pkg/fakehub/fakehubtest"
	"github.com/hubkit/hubkit/pkg/iothub"
)

var (
	soakFor     = flag.Duration("soak", 0, "run TestSoak for this long (0: skip it)")
	soakDevices = flag.Int("soak-devices", 40, "devices in the soak")
)

// tally counts one kind of message.
type tally struct {
	sent, received, failed atomic.Int64 // failed: refused to the sender, with a reason (reasons)
	mu                     sync.Mutex
	reasons                map[string]int
}

func (t *tally) fail(reason string) {
	t.failed.Add(1)
	t.mu.Lock()
	if t.reasons == nil {
		t.reasons = map[string]int{}
	}
	t.reasons[reason]++
	t.mu.Unlock()
}

func (t *tally) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return fmt.Sprintf("sent %d, received %d, refused to the sender %d %v", t.sent.Load(), t.received.Load(), t.failed.Load(), t.reasons)
}

// reason is a short, stable name for an error.
func reason(err error) string {
	var e *iothub.Error
	if errors.As(err, &e) {
		return e.Code.Name()
	}
	switch {
	case errors.Is(err, context.DeadlineExceeded):
		return "timeout"
	case errors.Is(err, device.ErrNotConnected):
		return "device-not-connected"
	case errors.Is(err, device.ErrConnectionLost):
		return "connection-lost"
	}
	s := err.Error()
	if len(s) > 40 {
		s = s[:40]
	}
	return s
}

func vmHWM() string {
	b, _ := os.ReadFile("/proc/self/status")
	for _, l := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(l, "VmHWM:") {
			return strings.TrimSpace(strings.TrimPrefix(l, "VmHWM:"))
		}
	}
	return "?"
}

func fds() int {
	ents, _ := os.ReadDir("/proc/self/fd")
	return len(ents)
}

func TestSoak(t *testing.T) {
	if *soakFor <= 0 {
		t.Skip("make soak (or -soak DURATION) runs the soak")
	}
	baseFDs := fds()
	leaks := goleak.IgnoreCurrent()
	h := fakehubtest.Start(t, fakehub.Options{TelemetryBuffer: 1 << 20, TelemetryBufferBytes: 1 << 30, TokenExpiryGrace: -1})
	n := *soakDevices
	ids := make([]string, n)
	clients := make([]*device.Client, n)

	var telemetry, c2d, methods, desired tally
	c2dSeen := sync.Map{} // message ID -> struct{}: what devices received (at-least-once: duplicates allowed)
	var c2dDup, reconnects atomic.Int64
	lastDesired := make([]atomic.Int64, n)

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	for i := range n {
		ids[i] = fmt.Sprintf("soak-%03d", i)
		key := make([]byte, 32)
		key[0], key[1] = byte(i), 0x5a
		if _, err := h.AddDevice(ids[i], key); err != nil {
			t.Fatal(err)
		}
		cs := "HostName=localhost;DeviceId=" + ids[i] + ";SharedAccessKey=" + base64.StdEncoding.EncodeToString(key)
		c, err := device.FromConnectionString(cs, device.WithEndpoint(h.Addr()), device.WithRootCAs(h.CAPool),
			device.WithTokenTTL(40*time.Second), device.WithMaxReconnectInterval(2*time.Second),
			device.WithOnConnectionChange(func(connected bool, _ error) {
				if connected {
					reconnects.Add(1)
				}
			}))
		if err != nil {
			t.Fatal(err)
		}
		i := i
		c.OnC2D(func(_ context.Context, m device.C2DMessage) {
			if _, dup := c2dSeen.LoadOrStore(m.MessageID, struct{}{}); dup {
				c2dDup.Add(1)
			}
		})
		c.OnDesired(func(_ context.Context, _ json.RawMessage, v int64) { lastDesired[i].Store(v); desired.received.Add(1) })
		c.OnMethod("echo", func(_ context.Context, p []byte) (int, any, error) {
			return 200, map[string]string{"echo": string(p)}, nil
		})
		cctx, ccancel := context.WithTimeout(ctx, 30*time.Second)
		if err := c.Connect(cctx); err != nil {
			ccancel()
			t.Fatalf("connect %s: %v", ids[i], err)
		}
		ccancel()
		clients[i] = c
	}

	// The cloud reads every captured telemetry message as it arrives.
	var captured sync.Map
	var readers sync.WaitGroup
	readers.Add(1)
	go func() {
		defer readers.Done()
		st := h.Telemetry()
		for {
			m, err := st.Next(ctx)
			if err != nil {
				return
			}
			if _, dup := captured.LoadOrStore(m.SystemProperties["$.mid"], struct{}{}); !dup {
				telemetry.received.Add(1)
			}
		}
	}()

	deadline := time.Now().Add(*soakFor)
	var wg sync.WaitGroup
	loop := func(every time.Duration, f func(r *rand.Rand)) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 7))
			for time.Now().Before(deadline) {
				f(r)
				time.Sleep(every)
			}
		}()
	}
	// Devices: telemetry (QoS 1, unique $.mid) and reported properties.
	acked := sync.Map{}
	for i, c := range clients {
		seq := 0
		loop(100*time.Millisecond, func(r *rand.Rand) {
			seq++
			mid := ids[i] + "-" + strconv.Itoa(seq)
			telemetry.sent.Add(1)
			sctx, scancel := context.WithTimeout(ctx, 20*time.Second)
			err := c.SendEvent(sctx, device.Event{MessageID: mid, Payload: []byte(`{"seq":` + strconv.Itoa(seq) + `}`)})
			scancel()
			if err != nil {
				telemetry.fail(reason(err))
				return
			}
			acked.Store(mid, struct{}{})
			if seq%20 == 0 {
				uctx, ucancel := context.WithTimeout(ctx, 10*time.Second)
				_, _ = c.UpdateReported(uctx, map[string]int{"seq": seq})
				ucancel()
			}
		})
	}
	// The cloud: C2D, desired properties, direct methods to random devices.
	var accepted sync.Map // C2D message ID -> device
	loop(20*time.Millisecond, func(r *rand.Rand) {
		d := ids[r.IntN(n)]
		c2d.sent.Add(1)
		id, err := h.SendC2D(ctx, d, iothub.C2DMessage{Payload: []byte("c2d")})
		if err != nil {
			c2d.fail(reason(err))
			return
		}
		accepted.Store(id, d)
	})
	loop(50*time.Millisecond, func(r *rand.Rand) {
		desired.sent.Add(1)
		if _, err := h.UpdateDesired(ctx, iothub.Identity{DeviceID: ids[r.IntN(n)]}, []byte(`{"v":`+strconv.Itoa(r.IntN(1000))+`}`)); err != nil {
			desired.fail(reason(err))
		}
	})
	loop(30*time.Millisecond, func(r *rand.Rand) {
		methods.sent.Add(1)
		res, err := h.InvokeMethod(ctx, ids[r.IntN(n)], "echo", []byte(`"x"`), 10*time.Second)
		switch {
		case err != nil:
			methods.fail(reason(err))
		case res.Status != 200:
			methods.fail("status " + strconv.Itoa(res.Status))
		default:
			methods.received.Add(1)
		}
	})
	// Reconnect storms: every device dropped at once (disabled, then enabled), every tenth of the run.
	storms := 0
	loop(max(*soakFor/10, 10*time.Second), func(r *rand.Rand) {
		if storms++; storms == 1 {
			return
		}
		for _, d := range ids {
			_ = h.Registry().SetStatus(d, iothub.StatusDisabled)
		}
		time.Sleep(300 * time.Millisecond)
		for _, d := range ids {
			_ = h.Registry().SetStatus(d, iothub.StatusEnabled)
		}
	})
	// Progress every minute.
	wg.Add(1)
	go func() {
		defer wg.Done()
		for time.Now().Before(deadline) {
			time.Sleep(min(time.Minute, time.Until(deadline)+time.Millisecond))
			t.Logf("%s: telemetry %s; c2d %s; peak RSS %s", time.Now().Format(time.TimeOnly), &telemetry, &c2d, vmHWM())
		}
	}()
	wg.Wait()

	// Quiesce: every device connected again, every accepted C2D message final.
	testutil.Poll(60*time.Second, func() bool {
		for _, c := range clients {
			if !c.IsConnected() {
				return false
			}
		}
		return true
	})
	// C2D: a message is delivered when its device's handler got it. The
	// hub keeps the state of the last 1000 finished messages only, so the
	// device's receipt is the record; a message not received must still be
	// pending (waited for) or end in a state that says why.
	var lostC2D []string
	states := map[string]int{}
	settled := func(id string) bool {
		if _, seen := c2dSeen.Load(id); seen {
			return true
		}
		st, ok := h.C2DState(id)
		return !ok || st.State.Finished()
	}
	testutil.Poll(90*time.Second, func() bool {
		all := true
		accepted.Range(func(k, _ any) bool { all = settled(k.(string)); return all })
		return all
	})
	accepted.Range(func(k, _ any) bool {
		id := k.(string)
		if _, seen := c2dSeen.Load(id); seen {
			c2d.received.Add(1)
			states["received"]++
			return true
		}
		st, ok := h.C2DState(id)
		why := string(st.State)
		if !ok {
			why = "finished, not received"
		}
		states[why]++
		lostC2D = append(lostC2D, id+": "+why)
		return true
	})
	// Telemetry: every acknowledged message was captured.
	testutil.Poll(30*time.Second, func() bool {
		all := true
		acked.Range(func(k, _ any) bool { _, all = captured.Load(k); return all })
		return all
	})
	var lostTelemetry []string
	ackedN := 0
	acked.Range(func(k, _ any) bool {
		ackedN++
		if _, ok := captured.Load(k); !ok {
			lostTelemetry = append(lostTelemetry, k.(string))
		}
		return true
	})
	// Desired: each device ends with the hub's latest desired version.
	stale := 0
	for i, c := range clients {
		tw, err := c.GetTwin(ctx)
		if err != nil || tw.DesiredVersion < lastDesired[i].Load() {
			stale++
		}
	}
	for _, c := range clients {
		cctx, ccancel := context.WithTimeout(context.Background(), 10*time.Second)
		_ = c.Close(cctx)
		ccancel()
	}
	cancel()
	readers.Wait()

	t.Logf("ran %s with %d devices, %d connections (reconnect storms, token renewals every ~34 s)", *soakFor, n, reconnects.Load())
	t.Logf("telemetry (QoS 1): %s; acknowledged %d, captured %d, lost %d", &telemetry, ackedN, telemetry.received.Load(), len(lostTelemetry))
	t.Logf("C2D (QoS 1): %s; accepted %d: %v; duplicates handed to devices %d, lost %d", &c2d, c2d.sent.Load()-c2d.failed.Load(), states, c2dDup.Load(), len(lostC2D))
	t.Logf("desired updates (QoS 0): %s; not notified because the device was reconnecting (QoS 0 is not replayed; devices read the twin again) %d; devices stale at the end %d",
		&desired, desired.sent.Load()-desired.failed.Load()-desired.received.Load(), stale)
	t.Logf("direct methods: %s", &methods)
	t.Logf("peak RSS %s, rejections recorded %d", vmHWM(), len(h.Rejections()))
	if len(lostTelemetry) > 0 {
		t.Errorf("%d acknowledged telemetry messages were not captured, e.g. %v", len(lostTelemetry), lostTelemetry[:min(5, len(lostTelemetry))])
	}
	if len(lostC2D) > 0 {
		t.Errorf("%d accepted C2D messages were not delivered, e.g. %v", len(lostC2D), lostC2D[:min(5, len(lostC2D))])
	}
	if stale > 0 {
		t.Errorf("%d devices did not end with the latest desired properties", stale)
	}
	_ = h.Close()
	goleak.VerifyNone(t, leaks)
	if !testutil.Poll(10*time.Second, func() bool { return fds() <= baseFDs }) {
		t.Errorf("file descriptors: %d at the end, %d at the start", fds(), baseFDs)
	}
}
