package fakehub_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/hubkit/hubkit/internal/mqttraw"
	"github.com/hubkit/hubkit/pkg/fakehub"
	"github.com/hubkit/hubkit/pkg/sas"
)

// What is not MQTT over TLS gets a rejection naming what the client was trying to do,
// instead of a silent close.
func TestFirstContactNamed(t *testing.T) {
	h := startHub(t, fakehub.Options{})
	connect, err := mqttraw.ConnectPacket{ClientID: "dev1", CleanSession: true, KeepAlive: 60}.Encode()
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name   string
		tls    bool
		send   string
		reason sas.Reason
		detail string
		hint   string
	}{
		{"websocket-upgrade", true, "GET /$iothub/websocket?iothub-no-client-cert=true HTTP/1.1\r\nHost: localhost\r\n" +
			"Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n" +
			"Sec-WebSocket-Protocol: mqtt\r\nSec-WebSocket-Version: 13\r\n\r\n",
			fakehub.ReasonWebSocket, "a WebSocket upgrade (GET /$iothub/websocket?iothub-no-client-cert=true, sub-protocol mqtt) on the MQTT port: the client wants MQTT over WebSocket",
			"pick the MQTT transport, not MQTT over WebSocket"},
		{"https-request", true, "POST /devices/dev1/messages/events?api-version=2021-04-12 HTTP/1.1\r\nHost: localhost\r\nContent-Length: 0\r\n\r\n",
			fakehub.ReasonHTTPRequest, "an HTTP request (POST /devices/dev1/messages/events?api-version=2021-04-12) on the MQTT port",
			"fakehub has no device HTTPS API"},
		{"plain-mqtt-on-tls-port", false, string(connect),
			fakehub.ReasonNotTLS, "a plain MQTT CONNECT (no TLS) on the TLS port", "turn TLS on in the client"},
		{"plain-http-on-tls-port", false, "GET / HTTP/1.1\r\nHost: localhost\r\n\r\n",
			fakehub.ReasonNotTLS, "a plain HTTP request (no TLS) on the MQTT-over-TLS port", "--http"},
		{"pingreq-first", true, "\xc0\x00",
			fakehub.ReasonFirstPacketNotConnect, "the first packet is PINGREQ (first byte 0xc0), not a CONNECT", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := len(h.Rejections())
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			tlsConf := h.ClientTLS()
			if !tc.tls {
				tlsConf = nil
			}
			c, err := mqttraw.Dial(ctx, h.Addr(), tlsConf)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			if err := c.WriteRaw([]byte(tc.send)); err != nil {
				t.Fatal(err)
			}
			r := waitRejection(t, h, before, tc.reason)
			if !strings.Contains(r.Detail, tc.detail) {
				t.Errorf("detail %q, want it to contain %q", r.Detail, tc.detail)
			}
			if tc.hint != "" && !strings.Contains(strings.Join(r.Hints, "|"), tc.hint) {
				t.Errorf("hints %q, want one containing %q", r.Hints, tc.hint)
			}
			if _, err := c.ReadPacket(5 * time.Second); err == nil || err == mqttraw.ErrTimeout {
				t.Errorf("after %s: read %v, want the connection closed", tc.name, err)
			}
		})
	}
	t.Run("connect-records-nothing", func(t *testing.T) {
		before := len(h.Rejections())
		rawSession(t, h, goodConnect(dev1, keyDev1A))
		if got := h.Rejections()[before:]; len(got) != 0 {
			t.Errorf("a good CONNECT left rejections %+v", got)
		}
	})
}

// A DPS client pointed at the hub is told it is talking to a hub, not "host-mismatch".
func TestDPSConnectAtHub(t *testing.T) {
	h := startHub(t, fakehub.Options{})
	p := goodConnect(dev1, keyDev1A)
	p.UserName = mqttraw.String("0ne00000A0A/registrations/dev1/api-version=2019-03-31&ClientVersion=azure-iot-provisioning-devicesdk%2F1.0")
	p.Password = mqttraw.String(token("0ne00000A0A/registrations/dev1", "registration", keyDev1A, time.Now().Add(time.Hour)))
	ack, c := rawConnect(t, h, p)
	if ack.ReturnCode != 5 {
		t.Errorf("CONNACK %d, want 5", ack.ReturnCode)
	}
	expectClosedSilently(t, c)
	r := waitRejection(t, h, 0, fakehub.ReasonDPSConnect)
	if !strings.Contains(r.Detail, "a Device Provisioning Service CONNECT (ID scope 0ne00000A0A, registration dev1) at an IoT hub") ||
		len(r.Hints) < 2 || !strings.Contains(r.Hints[0], "user name localhost/dev1/?api-version=") || !strings.Contains(r.Hints[1], "sastool derive") {
		t.Errorf("rejection %+v, want the DPS CONNECT named, with what to do", r)
	}
}
