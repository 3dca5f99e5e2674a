package fakehub_test

import (
	"crypto/tls"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
	"github.com/gorilla/websocket"

	"github.com/hubkit/hubkit/pkg/fakehub"
	"github.com/hubkit/hubkit/pkg/fakehub/fakehubtest"
	"github.com/hubkit/hubkit/pkg/iothub"
	"github.com/hubkit/hubkit/pkg/sas"
)

// overWS points a paho client at the hub's WebSocket endpoint.
func overWS(h *fakehubtest.Hub) func(*paho.ClientOptions) {
	return func(o *paho.ClientOptions) {
		o.Servers = nil
		o.AddBroker(h.WebSocketURL())
	}
}

// TestWebSocketDevice: a device reaches the same hub over wss://.../$iothub/websocket with
// sub-protocol mqtt: same authentication, telemetry and C2D as over TCP.
func TestWebSocketDevice(t *testing.T) {
	t.Parallel()
	h := startHub(t, fakehub.Options{})
	if !strings.HasSuffix(h.WebSocketURL(), "/$iothub/websocket") || !strings.HasPrefix(h.WebSocketURL(), "wss://127.0.0.1:") {
		t.Fatalf("WebSocketURL() = %q", h.WebSocketURL())
	}
	st := h.TelemetrySince(0)
	d := connectDevice(t, h, dev1, keyDev1A, true, overWS(h))
	d.subscribe(t, "devices/dev1/messages/devicebound/#", 1)
	d.publish(t, "devices/dev1/messages/events/a=b", `{"t":1}`)
	if m := nextMessage(t, st); m.DeviceID != "dev1" || m.Properties["a"] != "b" {
		t.Errorf("telemetry over WebSockets = %+v", m)
	}
	id := sendC2D(t, h, dev1, iothub.C2DMessage{Payload: []byte("hi")})
	if msg := d.next(t); string(msg.Payload()) != "hi" {
		t.Errorf("C2D over WebSockets = %q", msg.Payload())
	}
	waitState(t, h, id, iothub.C2DCompleted)
	// A wrong key is refused with CONNACK 5 and a reason, as over TCP.
	since := len(h.Rejections())
	if _, err := pahoConnect(t, h, dev2, userName("localhost", dev2), deviceToken("localhost", dev2, keyWrong), overWS(h)); err == nil {
		t.Fatal("wrong key accepted over WebSockets")
	}
	waitRejection(t, h, since, "signature-mismatch")
}

// TestWebSocketX509: a certificate device over WebSockets.
func TestWebSocketX509(t *testing.T) {
	t.Parallel()
	h := fakehubtest.Start(t, fakehub.Options{})
	cert := h.AddCADevice(iothub.Identity{DeviceID: "ws-x509"})
	_, err := pahoConnect(t, h, iothub.Identity{DeviceID: "ws-x509"}, userName("localhost", iothub.Identity{DeviceID: "ws-x509"}), "", overWS(h), func(o *paho.ClientOptions) {
		cfg := h.ClientTLS()
		cfg.Certificates = []tls.Certificate{cert.TLS}
		o.SetTLSConfig(cfg)
	})
	if err != nil {
		t.Fatalf("X.509 over WebSockets: %v (%+v)", err, h.Rejections())
	}
}

// TestWebSocketRefusals: anything but GET /$iothub/websocket with sub-protocol mqtt gets
// HTTP 400 and a rejection with the reason; "MQTT" (the C SDK's spelling) is accepted.
func TestWebSocketRefusals(t *testing.T) {
	t.Parallel()
	h := fakehubtest.Start(t, fakehub.Options{})
	base := "wss://" + h.WebSocketAddr()
	dial := func(path string, protos []string) (*http.Response, error) {
		d := websocket.Dialer{TLSClientConfig: h.ClientTLS(), Subprotocols: protos, HandshakeTimeout: 5 * time.Second}
		c, resp, err := d.Dial(base+path, nil)
		if c != nil {
			t.Cleanup(func() { c.Close() })
		}
		return resp, err
	}
	for _, tc := range []struct {
		name, path string
		protos     []string
		reason     string
	}{
		{"wrong-path", "/mqtt", []string{"mqtt"}, "websocket-path"},
		{"root-path", "/", []string{"mqtt"}, "websocket-path"},
		{"no-subprotocol", "/$iothub/websocket", nil, "websocket-subprotocol"},
		{"other-subprotocol", "/$iothub/websocket", []string{"amqp"}, "websocket-subprotocol"},
	} {
		since := len(h.Rejections())
		resp, err := dial(tc.path, tc.protos)
		if err == nil || resp == nil || resp.StatusCode != http.StatusBadRequest {
			t.Errorf("%s: err %v, response %v, want 400", tc.name, err, resp)
			continue
		}
		if r := waitRejection(t, h, since, sas.Reason(tc.reason)); r.RemoteAddr == "" || r.Detail == "" {
			t.Errorf("%s: rejection %+v", tc.name, r)
		}
	}
	// Upper-case sub-protocol and the no-client-cert query are accepted; the answer names
	// the client's own spelling.
	resp, err := dial("/$iothub/websocket?iothub-no-client-cert=true", []string{"MQTT"})
	if err != nil || resp.StatusCode != http.StatusSwitchingProtocols || resp.Header.Get("Sec-Websocket-Protocol") != "MQTT" {
		t.Errorf("sub-protocol MQTT: %v, %v", err, resp)
	}
	// A plain HTTPS GET (no upgrade) is not a WebSocket.
	since := len(h.Rejections())
	cl := &http.Client{Transport: &http.Transport{TLSClientConfig: h.ClientTLS()}, Timeout: 5 * time.Second}
	r, err := cl.Get("https" + base[len("wss"):] + "/$iothub/websocket")
	if err == nil {
		body, _ := io.ReadAll(r.Body)
		r.Body.Close()
		if r.StatusCode != http.StatusBadRequest || !strings.Contains(string(body), "WebSocket upgrade") {
			t.Errorf("plain GET = %d %q", r.StatusCode, body)
		}
	} else {
		t.Errorf("plain GET: %v", err)
	}
	waitRejection(t, h, since, fakehub.ReasonWebSocketNoUpgrade)
}

// TestWebSocketConnectTimeout: the CONNECT time-out applies after the WebSocket upgrade.
func TestWebSocketConnectTimeout(t *testing.T) {
	t.Parallel()
	h := fakehubtest.Start(t, fakehub.Options{ConnectTimeout: 300 * time.Millisecond})
	since := len(h.Rejections())
	d := websocket.Dialer{TLSClientConfig: h.ClientTLS(), Subprotocols: []string{"mqtt"}}
	c, _, err := d.Dial(h.WebSocketURL(), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	waitRejection(t, h, since, fakehub.ReasonConnectTimeout)
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, _, err := c.ReadMessage(); err == nil {
		t.Error("the hub sent a message on a connection that never sent CONNECT")
	}
}
