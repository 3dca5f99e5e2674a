package device_test

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/hubkit/hubkit/internal/testutil"
	"github.com/hubkit/hubkit/pkg/device"
	"github.com/hubkit/hubkit/pkg/fakehub"
	"github.com/hubkit/hubkit/pkg/fakehub/fakehubtest"
	"github.com/hubkit/hubkit/pkg/iothub"
)

// roundTrip connects c, sends one event and checks the hub captured it from id.
func roundTrip(t *testing.T, hub *fakehubtest.Hub, c *device.Client, id iothub.Identity) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	if err := c.Connect(ctx); err != nil {
		t.Fatalf("Connect: %v (hub: %+v)", err, hub.Rejections())
	}
	st := hub.Telemetry()
	if err := c.SendEvent(ctx, device.Event{Payload: []byte(`{"t":1}`)}); err != nil {
		t.Fatalf("SendEvent: %v", err)
	}
	m, err := st.Next(ctx)
	if err != nil || m.Identity() != id || string(m.Payload) != `{"t":1}` {
		t.Fatalf("captured %+v, %v", m, err)
	}
	if _, err := c.GetTwin(ctx); err != nil {
		t.Errorf("twin GET: %v", err)
	}
}

// TestWebSocketTransport: the same client over wss://.../$iothub/websocket.
func TestWebSocketTransport(t *testing.T) {
	t.Parallel()
	hub, cs := hubDevice(t, fakehub.Options{})
	c := hubClient(t, hub, cs, device.WithEndpoint(hub.WebSocketAddr()), device.WithTransport(device.TransportWebSocket))
	roundTrip(t, hub, c, iothub.Identity{DeviceID: "dev1"})
}

// TestX509Transports: a CA-signed and a self-signed device, over TCP and WebSockets, with
// the certificate given in Go or read from PEM files.
func TestX509Transports(t *testing.T) {
	t.Parallel()
	hub := fakehubtest.Start(t, fakehub.Options{})
	ca := hub.AddCADevice(iothub.Identity{DeviceID: "x-ca"})
	self := hub.AddSelfSignedDevice(iothub.Identity{DeviceID: "x-self"})
	fromFiles, err := device.LoadCertificate(self.CertFile, self.KeyFile)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name, id string
		cert     device.Option
	}{
		{"ca-tcp", "x-ca", device.WithX509(ca.TLS)},
		{"self-files-tcp", "x-self", device.WithX509(fromFiles)},
		{"ca-ws", "x-ca", device.WithX509(ca.TLS)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			addr, tr := hub.Addr(), device.TransportMQTT
			if strings.HasSuffix(tc.name, "-ws") {
				addr, tr = hub.WebSocketAddr(), device.TransportWebSocket
			}
			cs := "HostName=" + hub.HostName() + ";DeviceId=" + tc.id + ";x509=true"
			c := hubClient(t, hub, cs, tc.cert, device.WithEndpoint(addr), device.WithTransport(tr))
			roundTrip(t, hub, c, iothub.Identity{DeviceID: tc.id})
			c.Close(context.Background())
		})
	}
	// The wrong certificate is refused: CONNACK 5, and the hub says why.
	c := hubClient(t, hub, "HostName="+hub.HostName()+";DeviceId=x-self;x509=true", device.WithX509(ca.TLS))
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	err = c.Connect(ctx)
	if !errors.Is(err, device.ErrNotAuthorized) {
		t.Fatalf("Connect with another device's certificate = %v, want ErrNotAuthorized", err)
	}
	r, err := hub.WaitRejection(ctx, func(r iothub.Rejection) bool { return r.DeviceID == "x-self" })
	if err != nil || r.Reason != fakehub.ReasonX509UnknownThumbprint {
		t.Errorf("rejection %+v, %v", r, err)
	}
}

// TestWebSocketThroughProxy: MQTT over WebSockets through an HTTP CONNECT proxy, the way a
// device behind a corporate firewall reaches the hub (docs/iothub-behavior.md §1.27).
func TestWebSocketThroughProxy(t *testing.T) {
	t.Parallel()
	hub, cs := hubDevice(t, fakehub.Options{})
	p := testutil.StartConnectProxy(t, nil)
	pu, _ := url.Parse(p.URL)
	c := hubClient(t, hub, cs, device.WithEndpoint(hub.WebSocketAddr()), device.WithTransport(device.TransportWebSocket), device.WithProxy(http.ProxyURL(pu)))
	roundTrip(t, hub, c, iothub.Identity{DeviceID: "dev1"})
	if got := p.Targets(); len(got) == 0 || got[0] != hub.WebSocketAddr() {
		t.Errorf("proxy tunnelled %v, want %s", got, hub.WebSocketAddr())
	}
}

func TestTransportConfigErrors(t *testing.T) {
	hub := fakehubtest.Start(t, fakehub.Options{})
	cert := hub.SelfSignedCertificate("e")
	for _, tc := range []struct {
		name string
		cfg  device.Config
		want string
	}{
		{"x509-without-cert", device.Config{HostName: "h", DeviceID: "d", X509: true}, "x509=true but no certificate"},
		{"cert-and-key", device.Config{HostName: "h", DeviceID: "d", SharedAccessKey: "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=", Certificate: &cert.TLS}, "both a certificate and a SAS credential"},
		{"bad-transport", device.Config{HostName: "h", DeviceID: "d", Certificate: &cert.TLS, Transport: "amqp"}, `transport "amqp": want mqtt`},
	} {
		_, err := device.New(tc.cfg)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: New = %v, want an error containing %q", tc.name, err, tc.want)
		}
	}
	if _, err := device.LoadCertificate(cert.CertFile, cert.CertFile); err == nil || !strings.Contains(err.Error(), cert.CertFile) {
		t.Errorf("LoadCertificate(cert as key) = %v, want an error naming the file", err)
	}
	if tr, err := device.ParseTransport("WebSockets"); err != nil || tr != device.TransportWebSocket {
		t.Errorf("ParseTransport = %q, %v", tr, err)
	}
}
