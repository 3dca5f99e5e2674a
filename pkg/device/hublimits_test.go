package device_test

// The device client against fakehub's limits and faults (issue 12): for each one, what the
// device sees and that it recovers. Time is the hub's movable clock over a frozen
// testutil.Clock: nothing waits on real time except the reconnect back-off (100 ms here).

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hubkit/hubkit/internal/testutil"
	"github.com/hubkit/hubkit/pkg/device"
	"github.com/hubkit/hubkit/pkg/fakehub"
	"github.com/hubkit/hubkit/pkg/fakehub/fakehubtest"
	"github.com/hubkit/hubkit/pkg/iothub"
	"github.com/hubkit/hubkit/pkg/sas"
)

// drill is a hub on a frozen clock and one connected device that follows the hub's clock.
type drill struct {
	hub *fakehubtest.Hub
	c   *device.Client
	cs  string
	ctx context.Context

	mu      sync.Mutex
	changes []error // OnConnectionChange: nil for up, the cause (or errDown) for down
}

var errDown = errors.New("down")

func newDrill(t *testing.T, opts fakehub.Options, devOpts ...device.Option) *drill {
	t.Helper()
	base := testutil.NewClock(time.Date(2030, 1, 1, 12, 0, 0, 0, time.UTC))
	if opts.Now == nil {
		opts.Now = base.Now
	}
	hub, cs := hubDevice(t, opts)
	d := &drill{hub: hub, cs: cs}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	t.Cleanup(cancel)
	d.ctx = ctx
	d.c = d.client(t, cs, devOpts...)
	if err := d.c.Connect(ctx); err != nil {
		t.Fatalf("Connect: %v", err)
	}
	return d
}

// client returns a device client following the hub's clock, reconnecting every 100 ms.
func (d *drill) client(t *testing.T, cs string, opts ...device.Option) *device.Client {
	t.Helper()
	opts = append([]device.Option{device.WithNow(d.hub.Clock().Now), device.WithMaxReconnectInterval(100 * time.Millisecond),
		device.WithOnConnectionChange(func(up bool, err error) {
			d.mu.Lock()
			defer d.mu.Unlock()
			if up {
				d.changes = append(d.changes, nil)
			} else if err != nil {
				d.changes = append(d.changes, err)
			} else {
				d.changes = append(d.changes, errDown)
			}
		})}, opts...)
	return hubClient(t, d.hub, cs, opts...)
}

// downThenUp reports whether, after the first n changes, the device went down and came back.
func (d *drill) downThenUp(n int) bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	down := false
	for _, e := range d.changes[min(n, len(d.changes)):] {
		if e != nil {
			down = true
		} else if down {
			return true
		}
	}
	return false
}

func (d *drill) mark() int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return len(d.changes)
}

// rejection waits for the record with reason and returns it.
func (d *drill) rejection(t *testing.T, reason sas.Reason) iothub.Rejection {
	t.Helper()
	r, err := d.hub.WaitRejection(d.ctx, func(r iothub.Rejection) bool { return r.Reason == reason })
	if err != nil {
		t.Fatalf("no %s record: %v; records %+v", reason, err, d.hub.Rejections())
	}
	return r
}

func (d *drill) send(t *testing.T, payload string) {
	t.Helper()
	if err := d.c.SendEvent(d.ctx, device.Event{Payload: []byte(payload)}); err != nil {
		t.Fatalf("SendEvent(%q): %v", payload, err)
	}
}

// result is a SendEvent running in the background.
type result struct {
	done chan struct{}
	err  error
}

// sendAsync sends in the background.
func (d *drill) sendAsync(payload string) *result {
	r := &result{done: make(chan struct{})}
	go func() { r.err = d.c.SendEvent(d.ctx, device.Event{Payload: []byte(payload)}); close(r.done) }()
	return r
}

// wait returns the send's error (or the test's deadline).
func (r *result) wait() error {
	<-r.done
	return r.err
}

func pending(r *result) bool {
	select {
	case <-r.done:
		return false
	default:
		return true
	}
}

// advanceUntil moves the hub's clock by step until cond holds (bounded).
func (d *drill) advanceUntil(t *testing.T, what string, step time.Duration, cond func() bool) {
	t.Helper()
	testutil.Eventually(t, what, func() bool {
		if cond() {
			return true
		}
		d.hub.Clock().Advance(step)
		return cond()
	})
}

func TestTokenExpirySequence(t *testing.T) {
	// docs/iothub-behavior.md §2.5: 401003, then 404104, then the SDK reconnects with a new token.
	d := newDrill(t, fakehub.Options{}, device.WithConfig(func(c *device.Config) { c.RenewAfter = -1 }))
	first := d.hub.Sessions()[0].TokenExpiry
	m := d.mark()
	d.hub.Clock().Advance(66 * time.Minute) // 1 h token + 5 min grace, passed
	r := d.rejection(t, sas.ReasonExpired)
	if r.ErrorCode != iothub.CodeIotHubUnauthorized {
		t.Errorf("expiry recorded with %v, want 401003", r.ErrorCode)
	}
	testutil.Eventually(t, "the device back with a fresh token", func() bool {
		s := d.hub.Sessions()
		return d.downThenUp(m) && len(s) == 1 && s[0].TokenExpiry.After(first)
	})
	d.send(t, "after expiry")
}

func TestRenewalFollowsTheClock(t *testing.T) {
	// The device renews at 85 % of its 1 h token by its clock: moving the clock 55 min makes
	// it reconnect with a fresh token before the hub has to cut it.
	d := newDrill(t, fakehub.Options{})
	first := d.hub.Sessions()[0].TokenExpiry
	d.hub.Clock().Advance(55 * time.Minute)
	testutil.Eventually(t, "a renewed connection, seen by the device", func() bool {
		s := d.hub.Sessions()
		d.mu.Lock()
		n := len(d.changes)
		d.mu.Unlock()
		return len(s) == 1 && s[0].TokenExpiry.After(first) && n >= 3
	})
	for _, r := range d.hub.Rejections() {
		if r.Reason == sas.ReasonExpired {
			t.Errorf("the hub had to cut the device: %+v", r)
		}
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if len(d.changes) < 3 || !errors.Is(d.changes[1], device.ErrTokenRenewal) {
		t.Errorf("connection changes %v, want up, down (%v), up", d.changes, device.ErrTokenRenewal)
	}
}

func TestD2CTrafficShaping(t *testing.T) {
	// docs/iothub-behavior.md §6.2: the burst is accepted, the next message waits its turn
	// (its PUBACK is late), and once the backlog is full the connection closes with 429002.
	d := newDrill(t, fakehub.Options{Limits: fakehub.Limits{D2C: fakehub.Throttle{PerSecond: 1, Burst: 1, Backlog: 1}}})
	stream := d.hub.Telemetry()
	d.send(t, "burst") // the burst: PUBACKed at once
	queued := d.sendAsync("queued")
	testutil.Eventually(t, "the second message queued by the throttle", func() bool { return pending(queued) && d.hub.Connected(d.c.Identity()) })
	m := d.mark()
	third := d.sendAsync("refused")
	r := d.rejection(t, fakehub.ReasonThrottled)
	if r.ErrorCode != iothub.CodeThrottleBacklogLimitExceeded {
		t.Errorf("throttle recorded with %v, want 429002", r.ErrorCode)
	}
	// The client resends what was not acknowledged; the hub serves it at the limit rate.
	d.advanceUntil(t, "both sends acknowledged after the reconnect", time.Second, func() bool { return !pending(queued) && !pending(third) })
	for _, r := range []*result{queued, third} {
		if err := r.wait(); err != nil {
			t.Errorf("SendEvent: %v", err)
		}
	}
	testutil.Eventually(t, "the close and a reconnect", func() bool { return d.downThenUp(m) })
	got := map[string]bool{}
	all := stream.All()
	for _, e := range all {
		got[string(e.Payload)] = true
	}
	if !got["burst"] || !got["queued"] || !got["refused"] {
		t.Errorf("captured %v, want burst, queued and refused", got)
	}
	// Only the messages the hub accepted count against the quota (§14.9): not the one the
	// throttle refused, nor a queued one whose connection ended before its turn.
	if _, used := d.hub.QuotaUsed(); used != int64(len(all)) {
		t.Errorf("quota used %d for %d captured messages", used, len(all))
	}
}

func TestDailyQuotaUntilMidnightUTC(t *testing.T) {
	// 403002 until 00:00 UTC (docs/iothub-behavior.md §6.2): the connection is cut at each
	// message; after midnight the resent message goes through.
	base := testutil.NewClock(time.Date(2030, 1, 1, 23, 58, 0, 0, time.UTC))
	d := newDrill(t, fakehub.Options{Now: base.Now, Limits: fakehub.Limits{DailyMessages: 1}})
	d.send(t, "the day's one message")
	m := d.mark()
	after := d.sendAsync("over the quota")
	r := d.rejection(t, fakehub.ReasonQuotaExceeded)
	if r.ErrorCode != iothub.CodeIotHubQuotaExceeded {
		t.Errorf("quota recorded with %v, want 403002", r.ErrorCode)
	}
	if !pending(after) {
		t.Fatalf("the message over the quota was acknowledged: %v", after.wait())
	}
	d.hub.Clock().Advance(3 * time.Minute) // past 00:00 UTC
	if err := after.wait(); err != nil {
		t.Fatalf("SendEvent after midnight: %v", err)
	}
	if day, used := d.hub.QuotaUsed(); day != "2030-01-02" || used != 1 {
		t.Errorf("QuotaUsed = %s %d, want 2030-01-02 1", day, used)
	}
	testutil.Eventually(t, "the cut and a reconnect", func() bool { return d.downThenUp(m) })
}

func TestLimitsAtRunTime(t *testing.T) {
	// Server.SetLimits (PUT /hubkit/limits) while the device is connected
	// (docs/iothub-behavior.md §14.8): a new throttle applies to the next message, and
	// removing it lets the resent message through at once, with the clock standing still.
	d := newDrill(t, fakehub.Options{})
	for i := range 3 {
		d.send(t, fmt.Sprint("unlimited ", i))
	}
	if err := d.hub.SetLimits(fakehub.Limits{D2C: fakehub.Throttle{PerSecond: 0.01, Burst: 1, Backlog: -1}}); err != nil {
		t.Fatal(err)
	}
	d.send(t, "the new burst of one")
	m := d.mark()
	refused := d.sendAsync("over the new limit")
	if r := d.rejection(t, fakehub.ReasonThrottled); r.ErrorCode != iothub.CodeThrottleBacklogLimitExceeded {
		t.Errorf("recorded %v, want 429002", r.ErrorCode)
	}
	if !pending(refused) {
		t.Fatalf("the message over the new limit was acknowledged: %v", refused.wait())
	}
	if err := d.hub.SetLimits(fakehub.Limits{}); err != nil {
		t.Fatal(err)
	}
	if err := refused.wait(); err != nil {
		t.Fatalf("SendEvent after the limit was removed: %v", err)
	}
	testutil.Eventually(t, "the close and a reconnect", func() bool { return d.downThenUp(m) })
	if err := d.hub.SetLimits(fakehub.Limits{D2C: fakehub.Throttle{PerSecond: -1}}); err == nil || !errors.Is(err, iothub.ErrInvalidArgument) {
		t.Errorf("SetLimits with a negative rate = %v, want ErrInvalidArgument", err)
	}
}

func TestConnectionThrottle(t *testing.T) {
	// New connections above the rate: CONNACK 3 (MQTT 3.1.1 has no better code,
	// docs/iothub-behavior.md §11.1); a later attempt gets in.
	d := newDrill(t, fakehub.Options{Limits: fakehub.Limits{Connections: fakehub.Throttle{PerSecond: 1, Burst: 1, Backlog: -1}}})
	key := []byte("fedcba9876543210fedcba9876543210")
	if _, err := d.hub.AddDevice("dev2", key); err != nil {
		t.Fatal(err)
	}
	c2 := d.client(t, "HostName="+d.hub.HostName()+";DeviceId=dev2;SharedAccessKey="+base64.StdEncoding.EncodeToString(key))
	err := c2.Connect(d.ctx)
	var ce *device.ConnectError
	if !errors.As(err, &ce) || ce.Code != 3 || !errors.Is(err, device.ErrServerUnavailable) {
		t.Fatalf("second Connect = %v, want CONNACK 3", err)
	}
	if r := d.rejection(t, fakehub.ReasonThrottled); r.ErrorCode != iothub.CodeThrottleBacklogLimitExceeded {
		t.Errorf("recorded %v, want 429002", r.ErrorCode)
	}
	d.hub.Clock().Advance(time.Second)
	if err := c2.Connect(d.ctx); err != nil {
		t.Fatalf("Connect a second later: %v", err)
	}
}

func TestTwinThrottle(t *testing.T) {
	// Twin operations over the limit are answered on $iothub/twin/res/429 (§6.2).
	d := newDrill(t, fakehub.Options{Limits: fakehub.Limits{TwinReads: fakehub.Throttle{PerSecond: 1, Burst: 1, Backlog: -1}}})
	if _, err := d.c.GetTwin(d.ctx); err != nil {
		t.Fatalf("GetTwin: %v", err)
	}
	_, err := d.c.GetTwin(d.ctx)
	var se *device.StatusError
	if !errors.As(err, &se) || se.Status != 429 {
		t.Fatalf("second GetTwin = %v, want status 429", err)
	}
	d.hub.Clock().Advance(time.Second)
	if _, err := d.c.GetTwin(d.ctx); err != nil {
		t.Fatalf("GetTwin a second later: %v", err)
	}
}

func TestServiceThrottleRetryAfter(t *testing.T) {
	// The service side gets 429 with Retry-After; here through the Go API's *iothub.Error.
	d := newDrill(t, fakehub.Options{Limits: fakehub.Limits{C2D: fakehub.Throttle{PerSecond: 0.5, Burst: 1, Backlog: -1}}})
	if _, err := d.hub.SendC2D(d.ctx, "dev1", iothub.C2DMessage{Payload: []byte("1")}); err != nil {
		t.Fatal(err)
	}
	_, err := d.hub.SendC2D(d.ctx, "dev1", iothub.C2DMessage{Payload: []byte("2")})
	var e *iothub.Error
	if !errors.As(err, &e) || !errors.Is(err, iothub.ErrThrottleBacklog) || e.RetryAfter != 2*time.Second {
		t.Fatalf("second SendC2D = %v (retry after %v), want 429002 retry after 2s", err, e)
	}
	d.hub.Clock().Advance(e.RetryAfter)
	if _, err := d.hub.SendC2D(d.ctx, "dev1", iothub.C2DMessage{Payload: []byte("3")}); err != nil {
		t.Fatalf("SendC2D after Retry-After: %v", err)
	}
}

func TestServiceFaults(t *testing.T) {
	for _, abort := range []bool{false, true} {
		t.Run(map[bool]string{false: "drop-clean", true: "drop-reset"}[abort], func(t *testing.T) {
			d := newDrill(t, fakehub.Options{})
			m := d.mark()
			if err := d.hub.Drop(d.c.Identity(), fakehub.DropOptions{Reason: "drill", Abort: abort}); err != nil {
				t.Fatal(err)
			}
			r := d.rejection(t, fakehub.ReasonFaultDrop)
			if r.ErrorCode != iothub.CodeConnectionForcefullyClosedOnFaultInjection {
				t.Errorf("drop recorded with %v, want 400029", r.ErrorCode)
			}
			testutil.Eventually(t, "the device back", func() bool { return d.downThenUp(m) })
			d.send(t, "after the drop")
		})
	}
	t.Run("refuse-connections", func(t *testing.T) {
		d := newDrill(t, fakehub.Options{})
		d.hub.RefuseConnections(iothub.Identity{}, 30*time.Second)
		m := d.mark()
		if n := d.hub.DropAll(fakehub.DropOptions{}); n != 1 {
			t.Fatalf("DropAll closed %d", n)
		}
		if r := d.rejection(t, fakehub.ReasonFaultRefused); r.ErrorCode != iothub.CodeConnectionRejectedOnFaultInjection {
			t.Errorf("refusal recorded with %v, want 400030", r.ErrorCode)
		}
		if d.downThenUp(m) {
			t.Fatal("the device got in while connections were refused")
		}
		d.hub.Clock().Advance(31 * time.Second)
		testutil.Eventually(t, "the device back after the refusal", func() bool { return d.downThenUp(m) })
	})
	t.Run("delay-pubacks", func(t *testing.T) {
		d := newDrill(t, fakehub.Options{})
		d.hub.DelayPubacks(d.c.Identity(), 10*time.Second)
		stream := d.hub.Telemetry()
		res := d.sendAsync("late")
		testutil.Eventually(t, "the message captured, its PUBACK held", func() bool { return len(stream.All()) == 1 && pending(res) })
		d.hub.Clock().Advance(10 * time.Second)
		if err := res.wait(); err != nil {
			t.Fatalf("SendEvent: %v", err)
		}
	})
	t.Run("drop-pubacks", func(t *testing.T) {
		d := newDrill(t, fakehub.Options{})
		d.hub.DropPubacks(d.c.Identity(), true)
		stream := d.hub.Telemetry()
		res := d.sendAsync("never acked")
		testutil.Eventually(t, "the message captured without PUBACK", func() bool { return len(stream.All()) == 1 && pending(res) })
		// Recovery is the device's job: resend on the next connection.
		d.hub.DropPubacks(d.c.Identity(), false)
		if err := d.hub.Drop(d.c.Identity(), fakehub.DropOptions{}); err != nil {
			t.Fatal(err)
		}
		if err := res.wait(); err != nil {
			t.Fatalf("SendEvent: %v", err)
		}
		if n := len(stream.All()); n != 2 {
			t.Errorf("captured %d messages, want the original and the resend", n)
		}
	})
	t.Run("silence-twin", func(t *testing.T) {
		d := newDrill(t, fakehub.Options{})
		d.hub.SilenceTwin(d.c.Identity(), true)
		ctx, cancel := context.WithTimeout(d.ctx, 300*time.Millisecond)
		defer cancel()
		if _, err := d.c.GetTwin(ctx); !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("GetTwin while silenced = %v, want the caller's deadline", err)
		}
		d.rejection(t, fakehub.ReasonFaultTwin)
		d.hub.SilenceTwin(d.c.Identity(), false)
		if _, err := d.c.GetTwin(d.ctx); err != nil {
			t.Fatalf("GetTwin after: %v", err)
		}
	})
	for _, keep := range []bool{true, false} {
		t.Run(map[bool]string{true: "restart-keep-state", false: "restart-fresh"}[keep], func(t *testing.T) {
			d := newDrill(t, fakehub.Options{})
			if _, err := d.c.UpdateReported(d.ctx, map[string]any{"fw": "1"}); err != nil {
				t.Fatal(err)
			}
			m := d.mark()
			d.hub.Restart(keep)
			testutil.Eventually(t, "the device back after the restart", func() bool { return d.downThenUp(m) })
			tw, err := d.c.GetTwin(d.ctx)
			if err != nil {
				t.Fatal(err)
			}
			if want := map[bool]int64{true: 2, false: 1}[keep]; tw.ReportedVersion != want {
				t.Errorf("reported $version after restart = %d, want %d", tw.ReportedVersion, want)
			}
		})
	}
}

func TestFaultInjectionProperties(t *testing.T) {
	// The SDKs' AzIoTHub_FaultOperation* properties (docs/iothub-behavior.md §14.1).
	fault := func(typ, reason string, delay, dur string) device.Event {
		p := iothub.Properties{{Key: fakehub.PropFaultOperationType, Value: typ}, {Key: fakehub.PropFaultCloseReason, Value: reason},
			{Key: fakehub.PropFaultDelayInSecs, Value: delay}}
		if dur != "" {
			p = append(p, iothub.Property{Key: fakehub.PropFaultDurationInSecs, Value: dur})
		}
		return device.Event{Payload: []byte("fault"), Properties: p}
	}
	for _, typ := range []string{fakehub.FaultKillTcp, fakehub.FaultShutDownMqtt, fakehub.FaultKillAmqpConnection} {
		t.Run(typ, func(t *testing.T) {
			d := newDrill(t, fakehub.Options{})
			m := d.mark()
			// No PUBACK for the fault message: send it with a short time-out, as the SDKs' suites do.
			ctx, cancel := context.WithTimeout(d.ctx, 200*time.Millisecond)
			defer cancel()
			if err := d.c.SendEvent(ctx, fault(typ, "boom", "1", "")); err == nil {
				t.Fatal("the fault message was acknowledged")
			}
			d.hub.Clock().Advance(time.Second) // DelayInSecs
			if r := d.rejection(t, fakehub.ReasonFaultInjection); r.ErrorCode != iothub.CodeConnectionForcefullyClosedOnFaultInjection {
				t.Errorf("recorded %+v, want 400029", r)
			}
			testutil.Eventually(t, "the device back", func() bool { return d.downThenUp(m) })
			d.send(t, "after the fault")
		})
	}
	for typ, code := range map[string]iothub.ErrorCode{fakehub.FaultInvokeThrottling: iothub.CodeThrottlingException,
		fakehub.FaultInvokeMaxMessageQuota: iothub.CodeIotHubQuotaExceeded, fakehub.FaultInvokeAuthError: iothub.CodeIotHubUnauthorized} {
		t.Run(typ, func(t *testing.T) {
			d := newDrill(t, fakehub.Options{})
			d.send(t, "fault") // acknowledged: the window opens
			if err := d.c.SendEvent(d.ctx, fault(typ, " exceed ", "0", "5")); err != nil {
				t.Fatalf("the fault message: %v", err)
			}
			m := d.mark()
			res := d.sendAsync("in the window")
			testutil.Eventually(t, "the message refused with "+code.String(), func() bool {
				for _, r := range d.hub.Rejections() {
					if r.Reason == fakehub.ReasonFaultInjection && r.ErrorCode == code && !r.Warning {
						return true
					}
				}
				return false
			})
			d.hub.Clock().Advance(5 * time.Second) // DurationInSecs
			if err := res.wait(); err != nil {
				t.Fatalf("SendEvent after the window: %v", err)
			}
			// The reconnect's OnConnectionChange may run just after the resent message's PUBACK.
			testutil.Eventually(t, "the close and a reconnect", func() bool { return d.downThenUp(m) })
		})
	}
}

func TestKeyRotation(t *testing.T) {
	newKey := base64.StdEncoding.EncodeToString([]byte("rotated-key-0123456789abcdef0123"))
	t.Run("azure-stays-until-expiry", func(t *testing.T) {
		d := newDrill(t, fakehub.Options{})
		if _, err := d.hub.Registry().SetKeys(d.c.Identity(), iothub.SymmetricKey{PrimaryKey: newKey, SecondaryKey: newKey}); err != nil {
			t.Fatal(err)
		}
		d.send(t, "still connected") // the live connection is not re-checked
		if !d.hub.Connected(d.c.Identity()) {
			t.Fatal("the device was dropped")
		}
		// Its next connection, with the old key, is refused: the device needs its new key.
		m := d.mark()
		d.hub.Clock().Advance(66 * time.Minute)
		d.rejection(t, sas.ReasonSignatureMismatch)
		if d.downThenUp(m) {
			t.Fatal("the old key still connects")
		}
	})
	t.Run("edgehub-drops-at-once", func(t *testing.T) {
		d := newDrill(t, fakehub.Options{Profile: fakehub.ProfileEdgeHub})
		if _, err := d.hub.Registry().SetKeys(d.c.Identity(), iothub.SymmetricKey{PrimaryKey: newKey, SecondaryKey: newKey}); err != nil {
			t.Fatal(err)
		}
		if r := d.rejection(t, fakehub.ReasonKeyRotated); r.ErrorCode != iothub.CodeIotHubUnauthorized {
			t.Errorf("recorded %v, want 401003", r.ErrorCode)
		}
		// A well-behaved client picks up its new connection string and gets in.
		_ = d.c.Close(d.ctx)
		c := d.client(t, "HostName="+d.hub.HostName()+";DeviceId=dev1;SharedAccessKey="+newKey)
		if err := c.Connect(d.ctx); err != nil {
			t.Fatalf("Connect with the new key: %v", err)
		}
	})
}

func TestDailyQuotaMetersTwinsAndMethods(t *testing.T) {
	// What counts against the daily quota (docs/iothub-behavior.md §14.9, from IoT Hub's
	// billing page): twin reads and updates from the device and the back end, desired-property
	// notifications, and direct methods (request and response, or one message for "not online"),
	// each in meter chunks; registry operations are free. A 512-byte meter (the free tier's)
	// makes the chunks visible with small payloads.
	base := testutil.NewClock(time.Date(2030, 1, 1, 23, 30, 0, 0, time.UTC))
	hub, cs := hubDevice(t, fakehub.Options{Now: base.Now, Limits: fakehub.Limits{MeterSize: 512}})
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	c := hubClient(t, hub, cs, device.WithNow(hub.Clock().Now))
	desired := make(chan int64, 4)
	c.OnDesired(func(_ context.Context, _ json.RawMessage, v int64) { desired <- v })
	c.OnMethod("echo", func(_ context.Context, _ []byte) (int, any, error) {
		return 200, []byte(`"` + strings.Repeat("r", 998) + `"`), nil // 1000 bytes: 2 chunks
	})
	if err := c.Connect(ctx); err != nil { // subscribes, then reads the twin (1 chunk)
		t.Fatal(err)
	}
	used := func() int64 { _, u := hub.QuotaUsed(); return u }
	step := func(what string, want int64, do func()) {
		t.Helper()
		before := used()
		do()
		if got := used() - before; got != want {
			t.Errorf("%s counted %d meter units, want %d", what, got, want)
		}
	}
	id := c.Identity()
	blob := strings.Repeat("b", 1200) // {"blob":"…"}: 1211 bytes, 3 chunks
	step("adding a device (registry)", 0, func() {
		if _, err := hub.AddDevice("dev2", hubKey); err != nil {
			t.Fatal(err)
		}
	})
	step("a 1211-byte desired patch and its notification", 3+3, func() {
		if _, err := hub.UpdateDesired(ctx, id, []byte(`{"blob":"`+blob+`"}`)); err != nil {
			t.Fatal(err)
		}
		select {
		case <-desired:
		case <-ctx.Done():
			t.Fatal("no desired-properties notification")
		}
	})
	step("the device's twin GET (the 1211-byte desired inside, under 1536 bytes)", 3, func() {
		if _, err := c.GetTwin(ctx); err != nil {
			t.Fatal(err)
		}
	})
	step("the device's 600-byte reported patch", 2, func() {
		if _, err := c.UpdateReported(ctx, json.RawMessage(`{"r":"`+strings.Repeat("x", 592)+`"}`)); err != nil {
			t.Fatal(err)
		}
	})
	// The service's twin read counts the twin it serves: both properties (over 1811 bytes)
	// plus the registry's fields and metadata.
	before := used()
	tw, err := hub.Twin(id)
	if err != nil {
		t.Fatal(err)
	}
	twinJSON, _ := json.Marshal(tw)
	if got, want := used()-before, int64((len(twinJSON)+511)/512); got != want || want < 4 {
		t.Errorf("the service's twin read of %d bytes counted %d meter units, want %d (at least 4)", len(twinJSON), got, want)
	}
	step("a 600-byte method request with a 1000-byte response", 2+2, func() {
		if _, err := hub.InvokeMethod(ctx, "dev1", "echo", []byte(`"`+strings.Repeat("q", 598)+`"`), 5*time.Second); err != nil {
			t.Fatal(err)
		}
	})
	step("a method to a disconnected device", 1+1, func() {
		if _, err := hub.InvokeMethod(ctx, "dev2", "echo", nil, 5*time.Second); !errors.Is(err, iothub.ErrDeviceNotOnline) {
			t.Fatalf("InvokeMethod(dev2) = %v, want 404103", err)
		}
	})

	// At the quota: the device's twin requests are answered 403 and recorded as 403002, the
	// connection stays; the service gets 403002; after 00:00 UTC they work again.
	if err := hub.SetLimits(fakehub.Limits{MeterSize: 512, DailyMessages: used()}); err != nil {
		t.Fatal(err)
	}
	_, err = c.GetTwin(ctx)
	var se *device.StatusError
	if !errors.As(err, &se) || se.Status != 403 {
		t.Fatalf("GetTwin at the quota = %v, want status 403", err)
	}
	if _, err := c.UpdateReported(ctx, map[string]int{"n": 1}); !errors.As(err, &se) || se.Status != 403 {
		t.Fatalf("UpdateReported at the quota = %v, want status 403", err)
	}
	if _, err := hub.Twin(id); !errors.Is(err, iothub.ErrQuotaExceeded) {
		t.Errorf("service twin read at the quota = %v, want 403002", err)
	}
	if _, err := hub.InvokeMethod(ctx, "dev1", "echo", nil, 5*time.Second); !errors.Is(err, iothub.ErrQuotaExceeded) {
		t.Errorf("method at the quota = %v, want 403002", err)
	}
	var quota []iothub.Rejection
	for _, r := range hub.Rejections() {
		if r.Reason == fakehub.ReasonQuotaExceeded {
			quota = append(quota, r)
		}
	}
	if len(quota) != 2 || quota[0].ErrorCode != iothub.CodeIotHubQuotaExceeded || !quota[0].Warning {
		t.Errorf("quota records %+v, want two 403002 warnings (GET and PATCH)", quota)
	}
	if !c.IsConnected() || len(hub.Sessions()) != 1 {
		t.Errorf("the device was disconnected by a twin request at the quota")
	}
	hub.Clock().Advance(31 * time.Minute) // past 00:00 UTC, within the device's token
	if _, err := c.GetTwin(ctx); err != nil {
		t.Errorf("GetTwin after midnight: %v", err)
	}
}
