package fakehub_test

import (
	"context"
	"crypto/tls"
	"encoding/binary"
	"errors"
	"net"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/hubkit/hubkit/internal/mqttraw"
	"github.com/hubkit/hubkit/pkg/fakehub"
	"github.com/hubkit/hubkit/pkg/sas"
)

// rawFrame builds a packet from its first byte and body.
func rawFrame(t testing.TB, first byte, body []byte) []byte {
	t.Helper()
	b, err := mqttraw.Frame(mqttraw.PacketType(first>>4), first&0x0f, body)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func field(s string) []byte { return append(binary.BigEndian.AppendUint16(nil, uint16(len(s))), s...) }

// connectBody is a CONNECT body for "MQTT" level 4 with the given connect
// flags and payload fields, as dev1 with a valid token where the flags say
// so (client ID, [will topic, will message], [user name], [password]).
func connectBody(flags byte, payload ...string) []byte {
	b := append(field("MQTT"), 4, flags, 0, 60)
	for _, f := range payload {
		b = append(b, field(f)...)
	}
	return b
}

// The MQTT 3.1.1 "MUST close" rules a broker can check, each sent raw: the
// hub closes the connection without answering (for a CONNECT: no CONNACK,
// in particular none with an MQTT 5 code such as 0x82) and records a
// rejection whose detail cites the rule. Cases after CONNECT first open a
// valid session of dev1.
func TestMustCloseRules(t *testing.T) {
	h := startHub(t, fakehub.Options{})
	user, pass := userName("localhost", dev1), deviceToken("localhost", dev1, keyDev1A)
	sub := func(id uint16, rest ...byte) []byte { return append(binary.BigEndian.AppendUint16(nil, id), rest...) }
	c2d := field("devices/dev1/messages/devicebound/#")
	tel := field("devices/dev1/messages/events/")
	type tc struct {
		name      string
		connected bool   // send after a valid CONNECT
		raw       []byte // what to send
		reason    sas.Reason
		rule      string // must appear in the rejection's detail
	}
	tests := []tc{
		// CONNECT (§3.1).
		{"first-packet-publish", false, rawFrame(t, 0x30, tel), fakehub.ReasonFirstPacketNotConnect, "MQTT-3.1.0-1"},
		{"first-packet-pingreq", false, rawFrame(t, 0xc0, nil), fakehub.ReasonFirstPacketNotConnect, "MQTT-3.1.0-1"},
		{"first-packet-subscribe", false, rawFrame(t, 0x82, append(sub(1), append(c2d, 1)...)), fakehub.ReasonFirstPacketNotConnect, "MQTT-3.1.0-1"},
		{"second-connect", true, rawFrame(t, 0x10, connectBody(0xc2, "dev1", user, pass)), fakehub.ReasonDuplicateConnect, "MQTT-3.1.0-2"},
		{"reserved-connect-flag", false, rawFrame(t, 0x10, connectBody(0xc3, "dev1", user, pass)), fakehub.ReasonMalformedConnect, "MQTT-3.1.2-3"},
		{"will-qos-without-will-flag", false, rawFrame(t, 0x10, connectBody(0xca, "dev1", user, pass)), fakehub.ReasonMalformedConnect, "MQTT-3.1.2-13"},
		{"will-qos-3", false, rawFrame(t, 0x10, connectBody(0xde, "dev1", "devices/dev1/messages/events/", "bye", user, pass)), fakehub.ReasonMalformedConnect, "MQTT-3.1.2-14"},
		{"will-retain-without-will-flag", false, rawFrame(t, 0x10, connectBody(0xe2, "dev1", user, pass)), fakehub.ReasonMalformedConnect, "MQTT-3.1.2-15"},
		{"empty-will-topic", false, rawFrame(t, 0x10, connectBody(0xc6, "dev1", "", "bye", user, pass)), fakehub.ReasonMalformedConnect, "MQTT-4.7.3-1"},
		{"password-without-user-name", false, rawFrame(t, 0x10, connectBody(0x42, "dev1", pass)), fakehub.ReasonMalformedConnect, "MQTT-3.1.2-22"},
		{"client-id-with-nul", false, rawFrame(t, 0x10, connectBody(0xc2, "dev\x001", user, pass)), fakehub.ReasonMalformedConnect, "MQTT-1.5.3-2"},
		{"client-id-invalid-utf8", false, rawFrame(t, 0x10, connectBody(0xc2, "dev\xff1", user, pass)), fakehub.ReasonMalformedConnect, "MQTT-1.5.3-1"},
		{"user-name-invalid-utf8", false, rawFrame(t, 0x10, connectBody(0xc2, "dev1", user+"\xc3", pass)), fakehub.ReasonMalformedConnect, "MQTT-1.5.3-1"},
		{"truncated-connect", false, rawFrame(t, 0x10, connectBody(0xc2, "dev1", user)), fakehub.ReasonMalformedConnect, "MQTT-3.1.3-1"},
		{"bytes-after-password", false, rawFrame(t, 0x10, append(connectBody(0xc2, "dev1", user, pass), "trailing"...)), fakehub.ReasonMalformedConnect, "MQTT-3.1.3-1"},
		{"five-byte-remaining-length", false, []byte{0x10, 0x80, 0x80, 0x80, 0x80, 0x01}, fakehub.ReasonMalformedConnect, "§2.2.3"},
		{"256-MB-remaining-length", false, []byte{0x10, 0xff, 0xff, 0xff, 0x7f}, fakehub.ReasonMessageTooLarge, "IoT Hub limit"},
		// Fixed header (§2.2) and packets a client may not send.
		{"reserved-type-0", true, rawFrame(t, 0x00, nil), fakehub.ReasonMalformedPacket, "MQTT-4.8.0-1"},
		{"reserved-type-15", true, rawFrame(t, 0xf0, nil), fakehub.ReasonMalformedPacket, "MQTT-4.8.0-1"},
		{"connack-from-client", true, rawFrame(t, 0x20, []byte{0, 0}), fakehub.ReasonMalformedPacket, "MQTT-4.8.0-1"},
		{"five-byte-remaining-length-publish", true, []byte{0x30, 0x80, 0x80, 0x80, 0x80, 0x01}, fakehub.ReasonMalformedPacket, "§2.2.3"},
		// PUBLISH (§3.3).
		{"publish-qos-3", true, rawFrame(t, 0x36, append(tel, 0, 1)), fakehub.ReasonMalformedPacket, "MQTT-3.3.1-4"},
		{"publish-qos0-dup", true, rawFrame(t, 0x38, tel), fakehub.ReasonMalformedPacket, "MQTT-3.3.1-2"},
		{"publish-topic-nul", true, rawFrame(t, 0x30, field("devices/dev1/messages/events/\x00")), fakehub.ReasonMalformedPacket, "MQTT-1.5.3-2"},
		{"publish-topic-invalid-utf8", true, rawFrame(t, 0x30, field("devices/dev1/messages/events/\xed\xa0\x80")), fakehub.ReasonMalformedPacket, "MQTT-1.5.3-1"},
		{"publish-packet-id-0", true, rawFrame(t, 0x32, append(tel, 0, 0)), fakehub.ReasonMalformedPacket, "MQTT-2.3.1-1"},
		// PUBACK (§3.4), PUBREL (§3.6).
		{"puback-flags", true, rawFrame(t, 0x42, []byte{0, 1}), fakehub.ReasonMalformedPacket, "MQTT-2.2.2-2"},
		{"pubrel-flags", true, rawFrame(t, 0x60, []byte{0, 1}), fakehub.ReasonMalformedPacket, "MQTT-3.6.1-1"},
		// SUBSCRIBE (§3.8).
		{"subscribe-flags", true, rawFrame(t, 0x80, append(sub(1), append(c2d, 1)...)), fakehub.ReasonMalformedPacket, "MQTT-3.8.1-1"},
		{"subscribe-no-filters", true, rawFrame(t, 0x82, sub(1)), fakehub.ReasonMalformedPacket, "MQTT-3.8.3-3"},
		{"subscribe-qos-3", true, rawFrame(t, 0x82, append(sub(1), append(c2d, 3)...)), fakehub.ReasonMalformedPacket, "MQTT-3.8.3-4"},
		{"subscribe-reserved-qos-bits", true, rawFrame(t, 0x82, append(sub(1), append(c2d, 0x81)...)), fakehub.ReasonMalformedPacket, "MQTT-3.8.3-4"},
		{"subscribe-packet-id-0", true, rawFrame(t, 0x82, append(sub(0), append(c2d, 1)...)), fakehub.ReasonMalformedPacket, "MQTT-2.3.1-1"},
		{"subscribe-filter-nul", true, rawFrame(t, 0x82, append(sub(1), append(field("$iothub/twin/res/#\x00"), 0)...)), fakehub.ReasonMalformedPacket, "MQTT-1.5.3-2"},
		{"subscribe-filter-invalid-utf8", true, rawFrame(t, 0x82, append(sub(1), append(field("\xff#"), 0)...)), fakehub.ReasonMalformedPacket, "MQTT-1.5.3-1"},
		// UNSUBSCRIBE (§3.10).
		{"unsubscribe-flags", true, rawFrame(t, 0xa0, append(sub(1), c2d...)), fakehub.ReasonMalformedPacket, "MQTT-3.10.1-1"},
		{"unsubscribe-no-filters", true, rawFrame(t, 0xa2, sub(1)), fakehub.ReasonMalformedPacket, "MQTT-3.10.3-2"},
		{"unsubscribe-packet-id-0", true, rawFrame(t, 0xa2, append(sub(0), c2d...)), fakehub.ReasonMalformedPacket, "MQTT-2.3.1-1"},
		// PINGREQ (§3.12), DISCONNECT (§3.14).
		{"pingreq-flags", true, rawFrame(t, 0xc2, nil), fakehub.ReasonMalformedPacket, "MQTT-2.2.2-2"},
		{"pingreq-with-body", true, rawFrame(t, 0xc0, []byte{0}), fakehub.ReasonMalformedPacket, "MQTT-4.8.0-1"},
		{"disconnect-flags", true, rawFrame(t, 0xe1, nil), fakehub.ReasonMalformedPacket, "MQTT-3.14.1-1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			since := len(h.Rejections())
			var c *mqttraw.Conn
			if tt.connected {
				c = rawSession(t, h, goodConnect(dev1, keyDev1A))
			} else {
				c = rawDial(t, h)
			}
			if err := c.WriteRaw(tt.raw); err != nil {
				t.Fatal(err)
			}
			expectClosedSilently(t, c)
			r := waitRejection(t, h, since, tt.reason)
			if !strings.Contains(r.Detail, tt.rule) {
				t.Errorf("detail %q does not cite %s", r.Detail, tt.rule)
			}
			if tt.connected && r.DeviceID != "dev1" {
				t.Errorf("rejection %+v does not name the session's device", r)
			}
		})
	}
}

// Every kind of close before CONNECT leaves a record: failed TLS
// handshakes (plaintext on the TLS port, TLS 1.0/1.1, garbage), a CONNECT
// cut off by the client, a 1 MB password.
func TestPreConnectClosesRecorded(t *testing.T) {
	h := startHub(t, fakehub.Options{})
	dialTCP := func(t *testing.T) net.Conn {
		c, err := net.DialTimeout("tcp", h.Addr(), 5*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		return c
	}
	conn, _ := goodConnect(dev1, keyDev1A).Encode()
	tests := []struct {
		name   string
		do     func(t *testing.T)
		reason sas.Reason
		hint   string
	}{
		{"plaintext-mqtt-on-tls-port", func(t *testing.T) { _, _ = dialTCP(t).Write(conn) }, fakehub.ReasonNotTLS, "turn TLS on"},
		{"garbage", func(t *testing.T) { _, _ = dialTCP(t).Write([]byte("GET / HTTP/1.1\r\nHost: x\r\n\r\n")) }, fakehub.ReasonNotTLS, ""},
		{"tls-1.1", func(t *testing.T) {
			cfg := h.ClientTLS()
			cfg.MinVersion, cfg.MaxVersion = tls.VersionTLS10, tls.VersionTLS11
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			if c, err := (&tls.Dialer{Config: cfg}).DialContext(ctx, "tcp", h.Addr()); err == nil {
				c.Close()
				t.Fatal("a TLS 1.1 handshake succeeded")
			}
		}, fakehub.ReasonTLSHandshake, "TLS 1.2"},
		{"connect-cut-off", func(t *testing.T) {
			c := rawDial(t, h)
			if err := c.WriteRaw(conn[:len(conn)/2]); err != nil {
				t.Fatal(err)
			}
			_ = c.Close()
		}, fakehub.ReasonConnectIncomplete, ""},
		{"1-MB-password", func(t *testing.T) {
			// A field holds at most 64 KB: a CONNECT claiming 1 MB is what such a client sends first.
			c := rawDial(t, h)
			_ = c.WriteRaw([]byte{0x10, 0x80, 0x80, 0x40})
			expectClosedSilently(t, c)
		}, fakehub.ReasonMessageTooLarge, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			since := len(h.Rejections())
			tt.do(t)
			r := waitRejection(t, h, since, tt.reason)
			if tt.hint != "" && !strings.Contains(strings.Join(r.Hints, " "), tt.hint) {
				t.Errorf("hints %q, want one mentioning %q", r.Hints, tt.hint)
			}
		})
	}
}

// The "MUST close" rules hold over MQTT over WebSockets too: the wire
// checker reads the MQTT inside the binary messages, the hub closes
// without answering and records the rule.
func TestMustCloseOverWebSocket(t *testing.T) {
	h := startHub(t, fakehub.Options{})
	user, pass := userName("localhost", dev1), deviceToken("localhost", dev1, keyDev1A)
	good, err := goodConnect(dev1, keyDev1A).Encode()
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		name      string
		connected bool
		raw       []byte
		reason    sas.Reason
		rule      string
	}{
		{"will-qos-3", false, rawFrame(t, 0x10, connectBody(0xde, "dev1", "devices/dev1/messages/events/", "bye", user, pass)), fakehub.ReasonMalformedConnect, "MQTT-3.1.2-14"},
		{"first-packet-pingreq", false, rawFrame(t, 0xc0, nil), fakehub.ReasonFirstPacketNotConnect, "MQTT-3.1.0-1"},
		{"publish-qos-3", true, rawFrame(t, 0x36, append(field("devices/dev1/messages/events/"), 0, 1)), fakehub.ReasonMalformedPacket, "MQTT-3.3.1-4"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			before := len(h.Rejections())
			d := websocket.Dialer{TLSClientConfig: h.ClientTLS(), Subprotocols: []string{"mqtt"}, HandshakeTimeout: 5 * time.Second}
			ws, _, err := d.Dial(h.WebSocketURL(), nil)
			if err != nil {
				t.Fatal(err)
			}
			defer ws.Close()
			_ = ws.SetReadDeadline(time.Now().Add(5 * time.Second))
			if tt.connected {
				if err := ws.WriteMessage(websocket.BinaryMessage, good); err != nil {
					t.Fatal(err)
				}
				if _, ack, err := ws.ReadMessage(); err != nil || len(ack) != 4 || ack[0] != 0x20 || ack[3] != 0 {
					t.Fatalf("CONNACK over WebSockets: % x, %v", ack, err)
				}
			}
			since := len(h.Rejections())
			if err := ws.WriteMessage(websocket.BinaryMessage, tt.raw); err != nil {
				t.Fatal(err)
			}
			if _, m, err := ws.ReadMessage(); err == nil {
				t.Fatalf("got % x before the close, want nothing", m)
			} else if errors.Is(err, os.ErrDeadlineExceeded) {
				t.Fatal("hub kept the connection open")
			}
			r := waitRejection(t, h, since, tt.reason)
			if !strings.Contains(r.Detail, tt.rule) {
				t.Errorf("detail %q does not cite %s", r.Detail, tt.rule)
			}
			for _, r := range h.Rejections()[before:] {
				if r.Reason != tt.reason {
					t.Errorf("another rejection for the connection: %+v", r)
				}
			}
		})
	}
}
