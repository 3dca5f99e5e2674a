package loadgen_test

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/hubkit/hubkit/internal/brokertest"
	"github.com/hubkit/hubkit/internal/loadgen"
	"github.com/hubkit/hubkit/internal/testutil"
	"github.com/hubkit/hubkit/pkg/fakehub"
	"github.com/hubkit/hubkit/pkg/fakehub/fakehubtest"
	"github.com/hubkit/hubkit/pkg/iothub"
	"github.com/hubkit/hubkit/pkg/sas"
)

const testTimeout = 30 * time.Second

// hubWithDevices starts a fakehub with devices load-0 .. load-(n-1) and
// returns it with policy credentials for them (the built-in "device"
// policy).
func hubWithDevices(t *testing.T, n int) (*fakehubtest.Hub, func(int) (loadgen.Credential, error)) {
	t.Helper()
	hub := fakehubtest.Start(t, fakehub.Options{})
	for i := range n {
		if _, err := hub.AddDevice(fmt.Sprintf("load-%d", i)); err != nil {
			t.Fatal(err)
		}
	}
	pol, ok := hub.Registry().Policy("device")
	if !ok {
		t.Fatal("no built-in device policy")
	}
	key, err := sas.DecodeKey(pol.PrimaryKey)
	if err != nil {
		t.Fatal(err)
	}
	ids, err := loadgen.IDPattern("load-%d")
	if err != nil {
		t.Fatal(err)
	}
	return hub, loadgen.PolicyCredentials(hub.HostName(), "device", key, ids, time.Now().Add(time.Hour))
}

// eventually polls cond until it holds, failing the test after testTimeout
// (longer than testutil.Eventually's: a fleet drains slowly on a loaded machine).
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	if !testutil.Poll(testTimeout, cond) {
		t.Fatalf("timed out after %v waiting for %s", testTimeout, what)
	}
}

func baseConfig(hub *fakehubtest.Hub, creds func(int) (loadgen.Credential, error)) loadgen.Config {
	return loadgen.Config{
		Addr: hub.Addr(), TLS: loadgen.CachedVerification(hub.ClientTLS()), HostName: hub.HostName(),
		Credential: creds, ConnectTimeout: 10 * time.Second, Drain: 5 * time.Second,
	}
}

// A run against fakehub: every device connects, floods QoS 1 telemetry that
// the hub captures, echoes a C2D message, answers a direct method and
// patches its twin; the report counts all of it and no error.
func TestRunAgainstFakehub(t *testing.T) {
	const n = 12
	hub, creds := hubWithDevices(t, n)
	cfg := baseConfig(hub, creds)
	cfg.Count, cfg.Concurrency = n, 4
	cfg.Telemetry, cfg.Window, cfg.PayloadSize = loadgen.TelemetryFlood, 2, 100
	cfg.C2D, cfg.Methods, cfg.TwinInterval = true, true, 20*time.Millisecond
	cfg.Duration = testTimeout // cut short below, once the cloud side has had its answers
	var phases []string
	cfg.ProgressInterval = 10 * time.Millisecond
	cfg.Progress = func(p loadgen.Progress) {
		if len(phases) == 0 || phases[len(phases)-1] != p.Phase {
			phases = append(phases, p.Phase)
		}
	}

	tele := hub.Telemetry()
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	runCtx, stop := context.WithCancel(ctx)
	defer stop()
	done := make(chan *loadgen.Report, 1)
	go func() {
		rep, err := loadgen.Run(runCtx, cfg)
		if err != nil {
			t.Error(err)
		}
		done <- rep
	}()

	// The cloud side, once load-3 is connected and sending.
	var echo iothub.Event
	for {
		m, err := tele.Next(ctx)
		if err != nil {
			t.Fatalf("waiting for telemetry: %v", err)
		}
		if m.DeviceID == "load-3" {
			if m.SystemProperties[iothub.PropContentType] != "application/json" || len(m.Payload) != 100 {
				t.Errorf("load telemetry: properties %v, %d-byte payload; want $.ct application/json, 100 bytes", m.SystemProperties, len(m.Payload))
			}
			break
		}
	}
	mid, err := hub.SendC2D(ctx, "load-3", iothub.C2DMessage{MessageID: "c2d-1", Payload: []byte(`{"ping":1}`)})
	if err != nil {
		t.Fatal(err)
	}
	for echo.Properties == nil || echo.SystemProperties[iothub.PropCorrelationID] != mid {
		if echo, err = tele.Next(ctx); err != nil {
			t.Fatalf("waiting for the C2D echo: %v", err)
		}
	}
	if string(echo.Payload) != `{"ping":1}` || echo.DeviceID != "load-3" {
		t.Errorf("C2D echo = %s from %s, want {\"ping\":1} from load-3", echo.Payload, echo.DeviceID)
	}
	res, err := hub.InvokeMethod(ctx, "load-5", "reboot", []byte(`{"delay":1}`), 10*time.Second)
	if err != nil || res.Status != 200 || string(res.Payload) != `{"delay":1}` {
		t.Errorf("InvokeMethod = %+v, %v; want status 200 echoing the payload", res, err)
	}
	eventually(t, "load-7's reported properties to hold its patch", func() bool {
		tw, err := hub.Twin(iothub.Identity{DeviceID: "load-7"})
		return err == nil && strings.Contains(string(tw.Properties.Reported), `"load":{"seq":`)
	})
	stop()

	rep := <-done
	if rep == nil {
		t.FailNow()
	}
	if rep.Connected != n || rep.Failed != 0 || len(rep.Errors) != 0 {
		t.Errorf("connected %d, failed %d, errors %v; want %d, 0, none", rep.Connected, rep.Failed, rep.Errors, n)
	}
	if rep.Sent == 0 || rep.Acked != rep.Sent || rep.Puback.Count == 0 || rep.MsgsPerSec <= 0 {
		t.Errorf("sent %d, acked %d, %d PUBACK samples, %.0f msgs/s; want every message acknowledged", rep.Sent, rep.Acked, rep.Puback.Count, rep.MsgsPerSec)
	}
	if rep.C2DReceived != 1 || rep.MethodsAnswered != 1 || rep.Twin.Count == 0 {
		t.Errorf("C2D %d, methods %d, twin answers %d; want 1, 1, some", rep.C2DReceived, rep.MethodsAnswered, rep.Twin.Count)
	}
	if rep.Connack.Count != n || rep.Connack.P50 <= 0 || rep.Connack.P50 > rep.Connack.Max {
		t.Errorf("CONNACK latency %+v, want %d samples, 0 < p50 <= max", rep.Connack, n)
	}
	if !strings.HasPrefix(rep.TLS, "TLS 1.2, ") { // the classic host names offer TLS 1.2 at most (docs/iothub-behavior.md §1.26)
		t.Errorf("TLS = %q, want TLS 1.2 (the classic endpoint) and its key exchange", rep.TLS)
	}
	// The ticker may miss a short phase, never reorder them; the last report is the drain's.
	rank := map[string]int{"ramp": 1, "steady": 2, "drain": 3}
	for i, p := range phases {
		if rank[p] == 0 || i > 0 && rank[p] < rank[phases[i-1]] || i == len(phases)-1 && p != "drain" {
			t.Errorf("progress phases %q, want ramp, steady, drain in that order, ending with drain", phases)
			break
		}
	}
	eventually(t, "every device to have disconnected", func() bool { return len(hub.Sessions()) == 0 })
	b, err := json.Marshal(rep)
	if err != nil {
		t.Fatal(err)
	}
	var back loadgen.Report
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatal(err)
	}
	if back.MsgsPerSec != rep.MsgsPerSec || back.Puback.Count != rep.Puback.Count || back.Steady.Round(time.Millisecond) != rep.Steady.Round(time.Millisecond) {
		t.Errorf("JSON round trip lost figures: %s", b)
	}
}

// Refusals are counted by CONNACK code, and a refused device does not count
// as connected.
func TestRefusedConnectsAreCountedByKind(t *testing.T) {
	hub, _ := hubWithDevices(t, 3)
	ids, _ := loadgen.IDPattern("load-%d")
	cfg := baseConfig(hub, loadgen.PolicyCredentials(hub.HostName(), "device", make([]byte, 32), ids, time.Now().Add(time.Hour)))
	cfg.Count = 3
	rep, err := loadgen.Run(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	if rep.Connected != 0 || rep.Failed != 3 || rep.Errors["connack-5"] != 3 {
		t.Errorf("connected %d, failed %d, errors %v; want 0, 3, connack-5: 3", rep.Connected, rep.Failed, rep.Errors)
	}
}

// Interval telemetry against a bare allow-all broker, without passwords: the
// shard's devices send one message per interval each.
func TestIntervalTelemetryAgainstBareBroker(t *testing.T) {
	b := brokertest.Start(t, brokertest.Options{})
	ids, _ := loadgen.IDPattern("dev%03d")
	start, count := loadgen.Shard{Index: 1, Count: 3}.Range(0, 30)
	cfg := loadgen.Config{Addr: b.Addr, HostName: "localhost", First: start, Count: count, Credential: loadgen.AnonymousCredentials(ids),
		Telemetry: loadgen.TelemetryInterval, Interval: 20 * time.Millisecond, Duration: 300 * time.Millisecond}
	rep, err := loadgen.Run(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	if rep.Connected != 10 || len(rep.Errors) != 0 || rep.First != 10 {
		t.Fatalf("connected %d from %d, errors %v; want 10 from 10, none", rep.Connected, rep.First, rep.Errors)
	}
	// 10 devices × 300 ms / 20 ms = 150 messages, give or take the phase edges.
	if rep.Sent < 50 || rep.Sent > 200 || rep.Acked != rep.Sent {
		t.Errorf("sent %d, acked %d; want about 150, all acknowledged", rep.Sent, rep.Acked)
	}
}

func TestIDPattern(t *testing.T) {
	ids, err := loadgen.IDPattern("sensor-%05d")
	if err != nil {
		t.Fatal(err)
	}
	if got := ids(42).DeviceID; got != "sensor-00042" {
		t.Errorf(`IDPattern("sensor-%%05d")(42) = %q, want sensor-00042`, got)
	}
	for _, bad := range []string{"load", "load-%s", "a%d-%d", "bad/%d"} {
		if _, err := loadgen.IDPattern(bad); err == nil {
			t.Errorf("IDPattern(%q) = nil error, want a refusal", bad)
		}
	}
}
