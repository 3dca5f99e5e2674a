package nodetest_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/hubkit/hubkit/internal/nodetest"
	"github.com/hubkit/hubkit/internal/testutil"
	"github.com/hubkit/hubkit/pkg/fakehub"
	"github.com/hubkit/hubkit/pkg/fakehub/fakehubtest"
	"github.com/hubkit/hubkit/pkg/iothub"
	"github.com/hubkit/hubkit/pkg/sas"
)

// The official Node device SDK (azure-iot-device + azure-iot-device-mqtt) against fakehub's
// fault injection and limits (docs/iothub-behavior.md §14.1, §14.2), in the style of the SDK's
// own end-to-end suites (e2etests/test/d2c_disconnect.js, throttle_disconnect.js): a telemetry
// message with the AzIoTHub_Fault* properties asks for the fault, the connection ends, and
// the SDK reconnects and keeps sending (testdata/node/fault.js).

// faultDevice starts fault.js for a new device id on hub; retry "none" sets the SDK's
// NoRetry policy, "" keeps its default.
func faultDevice(t *testing.T, ctx context.Context, hub *fakehubtest.Hub, id, retry string) *nodetest.Process {
	t.Helper()
	if _, err := hub.Registry().Add(iothub.Device{DeviceID: id, Authentication: iothub.SASAuth(key1, "")}); err != nil {
		t.Fatal(err)
	}
	p := nodetest.Start(t, "fault.js", nodeEnv(hub, map[string]string{
		"HUBKIT_DEVICE_CS": deviceCS(hub, iothub.Identity{DeviceID: id}, key1), "HUBKIT_RETRY": retry}))
	p.Next(ctx, "ready")
	return p
}

func send(p *nodetest.Process, id string, props map[string]string) {
	p.Send(map[string]any{"cmd": "send", "id": id, "body": "message " + id, "properties": props})
}

// nextSent waits for the SDK's callback for message id: nil for success, else the
// send-failed event's fields.
func nextSent(t *testing.T, ctx context.Context, p *nodetest.Process, id string) map[string]any {
	t.Helper()
	for {
		select {
		case <-ctx.Done():
			t.Fatalf("no send callback for %s: %v\nevents: %v", id, ctx.Err(), p.Events())
		default:
		}
		ev := p.NextOf(ctx, "sent", "send-failed")
		if ev.Fields["id"] != id {
			continue
		}
		if ev.Name == "sent" {
			return nil
		}
		return ev.Fields
	}
}

// captured returns the message IDs the hub captured from deviceID, in order.
func captured(hub *fakehubtest.Hub, deviceID string) []string {
	var ids []string
	for _, m := range hub.TelemetrySince(1).ForDevice(deviceID, "").All() {
		ids = append(ids, m.SystemProperties[iothub.PropMessageID])
	}
	return ids
}

// waitFor polls cond for up to 30 s (a Node process on a loaded machine is slow to act).
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	if !testutil.Poll(30*time.Second, cond) {
		t.Fatalf("timed out after 30s waiting for %s", what)
	}
}

// records returns the hub's records for deviceID with reason.
func records(hub *fakehubtest.Hub, deviceID string, reason sas.Reason) []iothub.Rejection {
	var out []iothub.Rejection
	for _, r := range hub.Rejections() {
		if r.DeviceID == deviceID && r.Reason == reason {
			out = append(out, r)
		}
	}
	return out
}

// TestNodeFaultKill: d2c_disconnect.js's first case, on MQTT. With the SDK's NoRetry policy
// (as the suite sets it), a message asking for KillTcp or ShutDownMqtt gets no PUBACK; after
// DelayInSecs the hub ends the connection (a TCP reset, or a clean close), the SDK reports
// the send as failed and a disconnect; the next sends reconnect and arrive.
func TestNodeFaultKill(t *testing.T) {
	nodetest.Install(t)
	for _, tc := range []struct {
		fault, closeReason string
		reset              bool // the SDK sees the TCP reset
	}{
		{fakehub.FaultKillTcp, " severs the TCP connection ", true},
		{fakehub.FaultShutDownMqtt, " cleanly shutdowns MQTT connection ", false},
	} {
		t.Run(strings.ToLower(tc.fault), func(t *testing.T) {
			hub := fakehubtest.Start(t, fakehub.Options{})
			ctx, cancel := context.WithTimeout(context.Background(), flowTimeout)
			defer cancel()
			dev := "node-" + strings.ToLower(tc.fault)
			p := faultDevice(t, ctx, hub, dev, "none")
			send(p, "m1", nil)
			if f := nextSent(t, ctx, p, "m1"); f != nil {
				t.Fatalf("m1: %v", f)
			}
			send(p, "fault", map[string]string{fakehub.PropFaultOperationType: tc.fault,
				fakehub.PropFaultCloseReason: tc.closeReason, fakehub.PropFaultDelayInSecs: "1"})
			failed := nextSent(t, ctx, p, "fault")
			if failed == nil {
				t.Fatal("the fault message was acknowledged; want no PUBACK (the hub ends the connection first)")
			}
			if got := strings.Contains(failed["message"].(string), "ECONNRESET"); got != tc.reset {
				t.Errorf("the SDK saw %v; want a TCP reset: %v", failed, tc.reset)
			}
			p.Next(ctx, "disconnect")
			send(p, "m2", nil)
			send(p, "m3", nil)
			for _, id := range []string{"m2", "m3"} {
				if f := nextSent(t, ctx, p, id); f != nil {
					t.Fatalf("%s after the fault: %v", id, f)
				}
			}
			p.Close(ctx)
			if got := strings.Join(captured(hub, dev), " "); got != "m1 m2 m3" {
				t.Errorf("the hub captured %q, want m1 m2 m3 (the fault message is not telemetry)", got)
			}
			rs := records(hub, dev, fakehub.ReasonFaultInjection)
			if len(rs) != 1 || rs[0].ErrorCode != iothub.CodeConnectionForcefullyClosedOnFaultInjection || !strings.Contains(rs[0].Detail, tc.fault) {
				t.Errorf("fault records %+v, want one %s with 400029", rs, tc.fault)
			}
		})
	}
}

// TestNodeFaultWindow: throttle_disconnect.js's case, on MQTT, with the SDK's default retry
// policy. InvokeThrottling or InvokeMaxMessageQuota is acknowledged and opens a window of
// DurationInSecs; a message sent in it closes the connection (MQTT 3.1.1 has no negative
// PUBACK) with 429001 or 403002 recorded, and the SDK retries it on new connections; once
// the hub's clock passes the window the retry is accepted: the message arrives once and
// the application's send succeeds. (The window is 30 s rather than the suite's 5 s, so that
// a slow machine cannot let it pass on the real clock before m2 is sent.)
func TestNodeFaultWindow(t *testing.T) {
	nodetest.Install(t)
	for _, tc := range []struct {
		fault string
		code  iothub.ErrorCode
	}{
		{fakehub.FaultInvokeThrottling, iothub.CodeThrottlingException},
		{fakehub.FaultInvokeMaxMessageQuota, iothub.CodeIotHubQuotaExceeded},
	} {
		t.Run(strings.ToLower(tc.fault), func(t *testing.T) {
			hub := fakehubtest.Start(t, fakehub.Options{})
			ctx, cancel := context.WithTimeout(context.Background(), flowTimeout)
			defer cancel()
			dev := "node-" + strings.ToLower(tc.fault)
			p := faultDevice(t, ctx, hub, dev, "")
			send(p, "m1", nil)
			if f := nextSent(t, ctx, p, "m1"); f != nil {
				t.Fatalf("m1: %v", f)
			}
			send(p, "fault", map[string]string{fakehub.PropFaultOperationType: tc.fault,
				fakehub.PropFaultCloseReason: " throttle connection ", fakehub.PropFaultDurationInSecs: "30", fakehub.PropFaultDelayInSecs: "0"})
			if f := nextSent(t, ctx, p, "fault"); f != nil {
				t.Fatalf("the %s message: %v; want it acknowledged", tc.fault, f)
			}
			send(p, "m2", nil)
			waitFor(t, "the hub refusing m2 in the window", func() bool {
				for _, r := range records(hub, dev, fakehub.ReasonFaultInjection) {
					if r.ErrorCode == tc.code && !r.Warning {
						return true
					}
				}
				return false
			})
			hub.Clock().Advance(31 * time.Second) // past DurationInSecs, by the hub's clock
			if f := nextSent(t, ctx, p, "m2"); f != nil {
				t.Fatalf("m2 after the window: %v; want the SDK's retry accepted", f)
			}
			p.Close(ctx)
			if got := strings.Join(captured(hub, dev), " "); got != "m1 fault m2" {
				t.Errorf("the hub captured %q, want m1 fault m2 (m2 once)", got)
			}
		})
	}
}

// TestNodeLimits: the same recovery against the hub's own limits (§14.2): a D2C throttle
// whose backlog is full (429002) until the bucket refills, and the daily quota (403002)
// until 00:00 UTC, both reached by moving the hub's clock. The hub's clock starts an hour
// before the last UTC midnight (in the past, so the SDK's tokens, minted on the real
// clock, stay valid after the move).
func TestNodeLimits(t *testing.T) {
	nodetest.Install(t)
	for _, tc := range []struct {
		name   string
		limits fakehub.Limits
		reason sas.Reason
		code   iothub.ErrorCode
		move   time.Duration
	}{
		{"d2c-throttle", fakehub.Limits{D2C: fakehub.Throttle{PerSecond: 0.01, Burst: 1, Backlog: -1}}, fakehub.ReasonThrottled, iothub.CodeThrottleBacklogLimitExceeded, 2 * time.Minute},
		{"daily-quota", fakehub.Limits{DailyMessages: 1}, fakehub.ReasonQuotaExceeded, iothub.CodeIotHubQuotaExceeded, 61 * time.Minute},
	} {
		t.Run(tc.name, func(t *testing.T) {
			hub := fakehubtest.Start(t, fakehub.Options{Limits: tc.limits})
			midnight := time.Now().UTC().Truncate(24 * time.Hour)
			hub.Clock().Set(midnight.Add(-time.Hour))
			ctx, cancel := context.WithTimeout(context.Background(), flowTimeout)
			defer cancel()
			dev := "node-" + tc.name
			p := faultDevice(t, ctx, hub, dev, "")
			send(p, "m1", nil)
			if f := nextSent(t, ctx, p, "m1"); f != nil {
				t.Fatalf("m1: %v", f)
			}
			send(p, "m2", nil)
			waitFor(t, "the hub refusing m2", func() bool { return len(records(hub, dev, tc.reason)) > 0 })
			if r := records(hub, dev, tc.reason)[0]; r.ErrorCode != tc.code {
				t.Errorf("record %+v, want %s", r, tc.code)
			}
			hub.Clock().Advance(tc.move)
			if f := nextSent(t, ctx, p, "m2"); f != nil {
				t.Fatalf("m2 after the clock moved %s: %v; want the SDK's retry accepted", tc.move, f)
			}
			p.Close(ctx)
			if got := strings.Join(captured(hub, dev), " "); got != "m1 m2" {
				t.Errorf("the hub captured %q, want m1 m2", got)
			}
			for _, r := range records(hub, dev, sas.ReasonExpired) {
				t.Errorf("the clock move expired the SDK's token: %+v", r)
			}
		})
	}
}
