package fakehub

import (
	"bytes"
	"crypto/tls"
	"errors"
	"fmt"
	"github.com/hubkit/hubkit/pkg/iothub"
	"strings"
)

// What a client that does not speak MQTT 3.1.1 over TLS sent first, named,
// so that its refusal is not a silent close: mochi closes such a connection
// without a word (it wants CONNECT first), and a TLS handshake that fails
// never reaches mochi at all.

// connectByte is the first byte of an MQTT CONNECT (type 1, flags 0).
const connectByte = 0x10

// maxSniff bounds how much of the first bytes is looked at.
const maxSniff = 2048

// firstRead is the listeners' onFirstRead: it records a rejection when a
// connection's first bytes are not an MQTT CONNECT, or are not TLS on the
// TLS port. A CONNECT (or nothing yet) records nothing: mochi and the auth
// hook take it from there.
func (s *Server) firstRead(remote string, b []byte, err error) {
	if rh, ok := errors.AsType[tls.RecordHeaderError](err); ok {
		s.reject(notTLS(remote, rh.RecordHeader[:]))
		return
	}
	if len(b) == 0 || b[0] == connectByte {
		return
	}
	if r, ok := s.httpRequest(remote, b); ok {
		s.reject(r)
		return
	}
	s.reject(iothub.Rejection{RemoteAddr: remote, Reason: ReasonFirstPacketNotConnect,
		Detail: fmt.Sprintf("the first packet is %s, not a CONNECT: MQTT requires CONNECT first (docs/iothub-behavior.md §1.7)", packetName(b[0])),
		Hints:  []string{"an MQTT client sends CONNECT first by itself; this client speaks another protocol, or replays a session without connecting"}})
}

// notTLS names plaintext on the TLS port by its first bytes.
func notTLS(remote string, head []byte) iothub.Rejection {
	r := iothub.Rejection{RemoteAddr: remote, Reason: ReasonNotTLS}
	switch {
	case len(head) > 0 && head[0] == connectByte:
		r.Detail = "a plain MQTT CONNECT (no TLS) on the TLS port: IoT Hub speaks MQTT over TLS only (docs/iothub-behavior.md §1.1)"
		r.Hints = []string{"turn TLS on in the client and trust the hub's CA (mosquitto: -p 8883 --cafile ca.pem; paho: tls_set(ca_certs=...)); sastool mqtt --format mosquitto prints the commands"}
	case looksHTTP(head):
		r.Detail = "a plain HTTP request (no TLS) on the MQTT-over-TLS port"
		r.Hints = []string{"this port speaks MQTT over TLS; the service REST API is HTTPS on fakehub's --http address (default :8443)"}
	default:
		r.Detail = fmt.Sprintf("the first bytes (%q) are not a TLS handshake: this port speaks MQTT over TLS", head)
	}
	return r
}

// httpRequest recognises an HTTP request (a WebSocket upgrade included) in
// the first bytes of a connection.
func (s *Server) httpRequest(remote string, b []byte) (iothub.Rejection, bool) {
	if !looksHTTP(b) {
		return iothub.Rejection{}, false
	}
	head := string(b[:min(len(b), maxSniff)])
	lines := strings.Split(head, "\r\n")
	method, target, _ := strings.Cut(lines[0], " ")
	target, _, _ = strings.Cut(target, " ")
	header := func(name string) string {
		for _, l := range lines[1:] {
			if k, v, ok := strings.Cut(l, ":"); ok && strings.EqualFold(strings.TrimSpace(k), name) {
				return strings.TrimSpace(v)
			}
		}
		return ""
	}
	if strings.EqualFold(header("Upgrade"), "websocket") {
		detail := fmt.Sprintf("a WebSocket upgrade (%s %s", method, target)
		if p := header("Sec-WebSocket-Protocol"); p != "" {
			detail += ", sub-protocol " + p
		}
		detail += ") on the MQTT port: the client wants MQTT over WebSocket, which IoT Hub serves on port 443 (/$iothub/websocket) and fakehub on its WebSocket listener (docs/iothub-behavior.md §1.1, §1.2)"
		hint := "dial fakehub's WebSocket listener (fakehub --ws ADDR, default :443; Options.WebSocketAddr)"
		if u := s.WebSocketURL(); u != "" {
			hint = "dial fakehub's WebSocket listener: " + u
		}
		return iothub.Rejection{RemoteAddr: remote, Reason: ReasonWebSocket, Detail: detail, Hints: []string{hint,
			"or use MQTT over TLS on this port: in the Azure SDKs pick the MQTT transport, not MQTT over WebSocket (Python: websockets=False; Node: Mqtt, not MqttWs; .NET: TransportType.Mqtt_Tcp_Only; Java: MQTT, not MQTT_WS)",
		}}, true
	}
	hint := "this port speaks MQTT over TLS, not HTTP; fakehub has no device HTTPS API (IoT Hub's POST /devices/{id}/messages/events)"
	if u := s.ServiceURL(); u != "" {
		hint += "; its service REST API is at " + u
	}
	return iothub.Rejection{RemoteAddr: remote, Reason: ReasonHTTPRequest,
		Detail: fmt.Sprintf("an HTTP request (%s %s) on the MQTT port", method, target),
		Hints:  []string{hint}}, true
}

// httpMethods are the request methods looksHTTP recognises.
var httpMethods = []string{"GET ", "POST ", "PUT ", "PATCH ", "DELETE ", "HEAD ", "OPTIONS ", "CONNECT "}

// looksHTTP reports whether b starts like an HTTP/1.x request line.
func looksHTTP(b []byte) bool {
	for _, m := range httpMethods {
		if bytes.HasPrefix(b, []byte(m)) {
			return true
		}
	}
	return false
}

// packetName names an MQTT packet by its first byte.
func packetName(b byte) string {
	names := [...]string{"reserved type 0", "CONNECT", "CONNACK", "PUBLISH", "PUBACK", "PUBREC", "PUBREL",
		"PUBCOMP", "SUBSCRIBE", "SUBACK", "UNSUBSCRIBE", "UNSUBACK", "PINGREQ", "PINGRESP", "DISCONNECT", "reserved type 15"}
	return fmt.Sprintf("%s (first byte 0x%02x)", names[b>>4], b)
}
