package device_test

// End-to-end tests against the real fake hub (pkg/fakehub), device side: authentication,
// telemetry capture, expiry. The scripted peer in peer_test.go covers the cloud side.

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hubkit/hubkit/pkg/device"
	"github.com/hubkit/hubkit/pkg/fakehub"
	"github.com/hubkit/hubkit/pkg/fakehub/fakehubtest"
	"github.com/hubkit/hubkit/pkg/iothub"
	"github.com/hubkit/hubkit/pkg/sas"
)

var hubKey = []byte("0123456789abcdef0123456789abcdef")

func hubDevice(t *testing.T, opts fakehub.Options) (*fakehubtest.Hub, string) {
	t.Helper()
	hub := fakehubtest.Start(t, opts)
	if _, err := hub.AddDevice("dev1", hubKey); err != nil {
		t.Fatal(err)
	}
	cs := "HostName=" + hub.HostName() + ";DeviceId=dev1;SharedAccessKey=" + base64.StdEncoding.EncodeToString(hubKey)
	return hub, cs
}

func hubClient(t *testing.T, hub *fakehubtest.Hub, cs string, opts ...device.Option) *device.Client {
	t.Helper()
	opts = append([]device.Option{device.WithEndpoint(hub.Addr()), device.WithRootCAs(hub.CAPool)}, opts...)
	c, err := device.FromConnectionString(cs, opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close(context.Background()) })
	return c
}

func TestFakehubTelemetry(t *testing.T) {
	hub, cs := hubDevice(t, fakehub.Options{})
	c := hubClient(t, hub, cs)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := c.Connect(ctx); err != nil {
		t.Fatalf("Connect: %v", err)
	}
	stream := hub.Telemetry() // positioned after what was captured so far
	err := c.SendEvent(ctx, device.Event{
		Payload: []byte(`{"t":21.5}`), MessageID: "m-1", ContentType: "application/json", ContentEncoding: "utf-8",
		Properties: iothub.Properties{{Key: "zone", Value: "b 2"}},
	})
	if err != nil {
		t.Fatalf("SendEvent: %v", err)
	}
	m, err := stream.Next(ctx)
	if err != nil {
		t.Fatalf("Telemetry().Next: %v", err)
	}
	if m.DeviceID != "dev1" || string(m.Payload) != `{"t":21.5}` {
		t.Errorf("hub got %s %q", m.DeviceID, m.Payload)
	}
	if m.SystemProperties[iothub.PropMessageID] != "m-1" || m.SystemProperties[iothub.PropContentType] != "application/json" {
		t.Errorf("system properties = %v", m.SystemProperties)
	}
	if m.Properties["zone"] != "b 2" {
		t.Errorf("application properties = %v, want zone=b 2", m.Properties)
	}
}

func TestFakehubRefusesWrongKey(t *testing.T) {
	hub, _ := hubDevice(t, fakehub.Options{})
	wrong := "HostName=" + hub.HostName() + ";DeviceId=dev1;SharedAccessKey=" + base64.StdEncoding.EncodeToString(make([]byte, 32))
	c := hubClient(t, hub, wrong)
	err := c.Connect(context.Background())
	if !errors.Is(err, device.ErrNotAuthorized) {
		t.Fatalf("Connect with a wrong key = %v, want ErrNotAuthorized", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	rej, err := hub.WaitRejection(ctx, func(iothub.Rejection) bool { return true })
	if err != nil || rej.Reason != sas.ReasonSignatureMismatch {
		t.Errorf("hub rejection = %+v, %v; want %s", rej, err, sas.ReasonSignatureMismatch)
	}
}

// The hub drops the connection when the token expires; the client reconnects on its own with
// a fresh token (CredentialsProvider), without proactive renewal.
func TestFakehubReconnectsAfterExpiry(t *testing.T) {
	var mu sync.Mutex
	now := time.Now()
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	hub, cs := hubDevice(t, fakehub.Options{Now: clock, TokenExpiryGrace: -1})
	var ups sync.WaitGroup
	ups.Add(2)
	var once [2]sync.Once
	n := 0
	c := hubClient(t, hub, cs, device.WithNow(clock), device.WithConfig(func(cfg *device.Config) {
		cfg.RenewAfter = -1
		cfg.OnConnectionChange = func(up bool, err error) {
			if up && n < 2 {
				once[n].Do(ups.Done)
				n++
			}
		}
	}))
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := c.Connect(ctx); err != nil {
		t.Fatal(err)
	}
	first := hub.Sessions()[0].TokenExpiry

	mu.Lock()
	now = now.Add(2 * time.Hour)
	mu.Unlock()
	hub.CheckTokens() // the first token is now an hour past its expiry
	ups.Wait()

	if err := c.SendEvent(ctx, device.Event{Payload: []byte("after expiry")}); err != nil {
		t.Fatalf("SendEvent after the reconnect: %v", err)
	}
	s := hub.Sessions()
	if len(s) != 1 || !s[0].TokenExpiry.After(first) {
		t.Errorf("sessions after expiry = %+v, want one with a token newer than %s", s, first)
	}
	var expired bool
	for _, r := range hub.Rejections() {
		expired = expired || r.Reason == sas.ReasonExpired
	}
	if !expired {
		t.Errorf("hub rejections = %+v, want the expiry recorded", hub.Rejections())
	}
}

func TestFakehubC2DCompletedAfterHandler(t *testing.T) {
	hub, cs := hubDevice(t, fakehub.Options{})
	c := hubClient(t, hub, cs)
	got := make(chan device.C2DMessage, 1)
	release := make(chan struct{})
	c.OnC2D(func(_ context.Context, m device.C2DMessage) { got <- m; <-release })
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := c.Connect(ctx); err != nil {
		t.Fatal(err)
	}
	id, err := hub.SendC2D(ctx, "dev1", iothub.C2DMessage{
		MessageID: "c2d-1", Payload: []byte("hello"), Ack: "full",
		Properties: iothub.Properties{{Key: "color", Value: "red"}},
	})
	if err != nil {
		t.Fatal(err)
	}
	m := <-got
	if m.MessageID != "c2d-1" || string(m.Payload) != "hello" || m.Application["color"] != "red" || m.Ack != "full" {
		t.Errorf("device got %+v", m)
	}
	if rec, _ := hub.C2DState(id); rec.State != iothub.C2DDelivered {
		t.Errorf("state while the handler runs = %s, want delivered", rec.State)
	}
	close(release)
	if _, err := hub.WaitC2DState(ctx, id, func(s iothub.C2DState) bool { return s == iothub.C2DCompleted }); err != nil {
		t.Fatalf("C2D not completed after the handler returned: %v", err)
	}
}

// A persistent session gets the messages queued while it was offline right after CONNACK.
func TestFakehubC2DQueuedWhileOffline(t *testing.T) {
	hub, cs := hubDevice(t, fakehub.Options{})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	first := hubClient(t, hub, cs)
	first.OnC2D(func(context.Context, device.C2DMessage) {})
	if err := first.Connect(ctx); err != nil {
		t.Fatal(err)
	}
	if err := first.Close(ctx); err != nil {
		t.Fatal(err)
	}
	id, err := hub.SendC2D(ctx, "dev1", iothub.C2DMessage{Payload: []byte("while you were away")})
	if err != nil {
		t.Fatal(err)
	}
	got := make(chan string, 1)
	second := hubClient(t, hub, cs)
	second.OnC2D(func(_ context.Context, m device.C2DMessage) { got <- string(m.Payload) })
	if err := second.Connect(ctx); err != nil {
		t.Fatal(err)
	}
	select {
	case p := <-got:
		if p != "while you were away" {
			t.Errorf("payload %q", p)
		}
	case <-ctx.Done():
		t.Fatal("queued C2D not delivered after reconnecting")
	}
	if _, err := hub.WaitC2DState(ctx, id, func(s iothub.C2DState) bool { return s == iothub.C2DCompleted }); err != nil {
		t.Fatal(err)
	}
}

func TestFakehubTwin(t *testing.T) {
	hub, cs := hubDevice(t, fakehub.Options{})
	c := hubClient(t, hub, cs)
	type change struct {
		patch   string
		version int64
	}
	changes := make(chan change, 4)
	c.OnDesired(func(_ context.Context, patch json.RawMessage, v int64) { changes <- change{string(patch), v} })
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := c.Connect(ctx); err != nil {
		t.Fatal(err)
	}
	v, err := c.UpdateReported(ctx, map[string]any{"firmware": "1.0"})
	if err != nil || v != 2 {
		t.Fatalf("UpdateReported = %d, %v; want 2", v, err)
	}
	_, err = c.UpdateReported(ctx, json.RawMessage(`{"bad key":1}`))
	var se *device.StatusError
	if !errors.As(err, &se) || se.Status != 400 {
		t.Errorf("UpdateReported with a space in a key = %v, want status 400", err)
	}
	id := iothub.Identity{DeviceID: "dev1"}
	if _, err := hub.UpdateDesired(ctx, id, []byte(`{"fan":"on"}`)); err != nil {
		t.Fatal(err)
	}
	select {
	case ch := <-changes:
		if ch.version != 2 || !strings.Contains(ch.patch, `"fan":"on"`) {
			t.Errorf("desired change = %+v", ch)
		}
	case <-ctx.Done():
		t.Fatal("no desired notification")
	}
	tw, err := c.GetTwin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if tw.DesiredVersion != 2 || tw.ReportedVersion != 2 || !strings.Contains(string(tw.Reported), `"firmware":"1.0"`) {
		t.Errorf("GetTwin = %+v", tw)
	}
}

func TestFakehubMethods(t *testing.T) {
	hub, cs := hubDevice(t, fakehub.Options{})
	c := hubClient(t, hub, cs)
	c.OnMethod("reboot", func(_ context.Context, payload []byte) (int, any, error) {
		return 200, map[string]json.RawMessage{"got": payload}, nil
	})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := c.Connect(ctx); err != nil {
		t.Fatal(err)
	}
	res, err := hub.InvokeMethod(ctx, "dev1", "reboot", []byte(`{"delay":1}`), 5*time.Second)
	if err != nil || res.Status != 200 || string(res.Payload) != `{"got":{"delay":1}}` {
		t.Errorf("InvokeMethod(reboot) = %+v, %v", res, err)
	}
	res, err = hub.InvokeMethod(ctx, "dev1", "nope", nil, 5*time.Second)
	if err != nil || res.Status != 404 {
		t.Errorf("InvokeMethod(nope) = %+v, %v; want status 404", res, err)
	}
}

// Two clients with the same device ID: the hub closes the older connection each time the other
// connects (docs/iothub-behavior.md §1.19). Each client must say so and wait before it
// reconnects, so they do not take over from each other in a tight loop.
func TestFakehubReplacedBacksOff(t *testing.T) {
	hub, cs := hubDevice(t, fakehub.Options{})
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	causes := make(chan error, 16)
	onChange := device.WithOnConnectionChange(func(up bool, err error) {
		if !up && err != nil {
			select {
			case causes <- err:
			default:
			}
		}
	})
	a, b := hubClient(t, hub, cs, onChange), hubClient(t, hub, cs, onChange)
	if err := a.Connect(ctx); err != nil {
		t.Fatal(err)
	}
	if err := b.Connect(ctx); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-causes:
		if !errors.Is(err, device.ErrReplaced) || !strings.Contains(err.Error(), "replaced by another connection with the same identity") {
			t.Errorf("cause of the first loss = %v, want ErrReplaced", err)
		}
	case <-ctx.Done():
		t.Fatal("no client lost its connection")
	}
	// Three takeovers: between two of them the client replaced last waited at least 1 s.
	n := 0
	if _, err := hub.WaitRejection(ctx, func(r iothub.Rejection) bool {
		if r.Reason == fakehub.ReasonReplaced {
			n++
		}
		return n == 3
	}); err != nil {
		t.Fatalf("waiting for 3 takeovers: %v", err)
	}
	var times []time.Time
	for _, r := range hub.Rejections() {
		if r.Reason == fakehub.ReasonReplaced {
			times = append(times, r.Time)
		}
	}
	for i := 1; i < len(times) && i < 3; i++ {
		if gap := times[i].Sub(times[i-1]); gap < 900*time.Millisecond {
			t.Errorf("takeover %d came %v after takeover %d, want at least 1 s (a reconnect loop); takeovers at %v", i+1, gap, i, times)
		}
	}
}

// TestFakehubCloseRightAfterConnectReportsTheConnect: OnConnectionChange sees every connect,
// even when Close follows Connect at once (devicesim listen --count 1 with a message already
// queued closes within milliseconds, and its "connected as" line went missing).
func TestFakehubCloseRightAfterConnectReportsTheConnect(t *testing.T) {
	hub, cs := hubDevice(t, fakehub.Options{})
	for i := range 20 {
		var mu sync.Mutex
		var got []bool
		c := hubClient(t, hub, cs, device.WithOnConnectionChange(func(up bool, err error) {
			mu.Lock()
			defer mu.Unlock()
			got = append(got, up)
		}))
		if err := c.Connect(context.Background()); err != nil {
			t.Fatal(err)
		}
		if err := c.Close(context.Background()); err != nil {
			t.Fatal(err)
		}
		mu.Lock()
		if len(got) != 2 || !got[0] || got[1] {
			t.Fatalf("connection %d: OnConnectionChange saw %v, want [true false]", i, got)
		}
		mu.Unlock()
	}
}
