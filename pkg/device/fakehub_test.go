package device_test

// End-to-end tests against the real fake hub (pkg/fakehub), device side: authentication,
// telemetry capture, expiry. The scripted peer in peer_test.go covers the cloud side.

import (
	"context"
	"encoding/base64"
	"errors"
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
	rej, err := hub.WaitRejection(ctx, func(fakehub.Rejection) bool { return true })
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
