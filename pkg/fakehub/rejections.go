package fakehub

import (
	"context"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/hubkit/hubkit/pkg/iothub"
	"github.com/hubkit/hubkit/pkg/sas"
)

// Reasons fakehub adds to the sas verdicts, for refusals and closes that are
// about packets and topics rather than tokens. Like sas.Reason values they
// are stable codes.
const (
	// ReasonProtocolName: CONNECT with a protocol name other than "MQTT"; closed without CONNACK.
	ReasonProtocolName sas.Reason = "protocol-name"
	// ReasonProtocolVersion: CONNECT with a protocol level other than 4 (3.1.1); CONNACK 1, then closed.
	ReasonProtocolVersion sas.Reason = "protocol-version"
	// ReasonMalformedConnect: a CONNECT MQTT 3.1.1 says to close on (reserved flag set); closed.
	ReasonMalformedConnect sas.Reason = "connect-malformed"
	// ReasonConnectTimeout: no TLS handshake and CONNECT within Options.ConnectTimeout.
	ReasonConnectTimeout sas.Reason = "connect-timeout"
	// ReasonDuplicateConnect: a second CONNECT on an established connection; closed.
	ReasonDuplicateConnect sas.Reason = "duplicate-connect"
	// ReasonWillTopic: a will that does not target the identity's telemetry topic; CONNACK 5.
	ReasonWillTopic sas.Reason = "will-topic-forbidden"
	// ReasonTopicForbidden: PUBLISH to a topic the identity may not publish to; closed.
	ReasonTopicForbidden sas.Reason = "topic-forbidden"
	// ReasonSubscribeForbidden: SUBSCRIBE to a filter the identity may not use; closed
	// (or SUBACK 0x80 with Quirks.SubackOnForbiddenSubscribe).
	ReasonSubscribeForbidden sas.Reason = "subscribe-forbidden"
	// ReasonQoS2Publish: PUBLISH with QoS 2; closed.
	ReasonQoS2Publish sas.Reason = "qos2-publish"
	// ReasonMessageTooLarge: telemetry over iothub.MaxTelemetrySize (body + properties); closed.
	ReasonMessageTooLarge sas.Reason = "message-too-large"
	// ReasonKeepAlive: nothing received for 1.5 × keep-alive (capped); closed.
	ReasonKeepAlive sas.Reason = "keepalive-timeout"
	// ReasonReplaced: a newer connection for the same identity; this one closed.
	ReasonReplaced sas.Reason = "connection-replaced"
	// ReasonTwinPatchRefused: a reported-properties PATCH the hub answered
	// with an error status (400: invalid JSON, a broken limit, no
	// api-version in the user name); the connection stays open.
	ReasonTwinPatchRefused sas.Reason = "twin-patch-refused"
	// ReasonWebSocket: a WebSocket upgrade (MQTT over WebSocket, IoT Hub's
	// port 443) on the MQTT port; closed.
	ReasonWebSocket sas.Reason = "websocket-upgrade"
	// ReasonHTTPRequest: an HTTP request (the device or service REST API)
	// on the MQTT port; closed.
	ReasonHTTPRequest sas.Reason = "http-request"
	// ReasonNotTLS: plaintext (MQTT or HTTP without TLS) on the TLS port;
	// the handshake fails and the connection is closed.
	ReasonNotTLS sas.Reason = "not-tls"
	// ReasonFirstPacketNotConnect: the first packet is not a CONNECT; closed.
	ReasonFirstPacketNotConnect sas.Reason = "first-packet-not-connect"
	// ReasonDPSConnect: a Device Provisioning Service CONNECT (user name
	// {idScope}/registrations/{registrationId}/...) at the hub; CONNACK 5.
	ReasonDPSConnect sas.Reason = "dps-connect"
	// ReasonServerClosing: the hub was shutting down; CONNACK 3.
	ReasonServerClosing sas.Reason = "server-closing"
	// ReasonOutOfDescriptors: the process had no file descriptor left (its
	// open-files limit); the connection was accepted and closed at once.
	ReasonOutOfDescriptors sas.Reason = "out-of-file-descriptors"
)

// Token expiry while connected is recorded with sas.ReasonExpired, disabling
// or removing a connected identity with sas.ReasonDisabled or
// sas.ReasonUnknownIdentity.

// Bounds of the history kept by Server.Rejections: entries, their total
// size, and the size of each text field (longer ones are cut, see clip).
const (
	maxRejections     = 10000
	maxRejectionBytes = 16 << 20
	maxRejectionField = 256
	rejectionOverhead = 256 // struct, slice headers, Time: a rough per-entry cost
)

type rejectionLog struct {
	mu      sync.Mutex
	list    []iothub.Rejection
	bytes   int // sum of size() over list
	dropped int
	changed chan struct{}
}

// size estimates the memory r holds.
func rejectionSize(r *iothub.Rejection) int {
	n := rejectionOverhead + len(r.RemoteAddr) + len(r.ClientID) + len(r.UserName) + len(r.Detail) +
		len(r.DeviceID) + len(r.ModuleID) + len(r.Reason)
	for _, h := range r.Hints {
		n += len(h) + 16
	}
	return n
}

func (l *rejectionLog) add(r iothub.Rejection) {
	l.mu.Lock()
	defer l.mu.Unlock()
	sz := rejectionSize(&r)
	for len(l.list) > 0 && (len(l.list) >= maxRejections || l.bytes+sz > maxRejectionBytes) {
		l.bytes -= rejectionSize(&l.list[0])
		l.list[0] = iothub.Rejection{} // release its strings before the array is reallocated
		l.list = l.list[1:]
		l.dropped++
	}
	l.bytes += sz
	l.list = append(l.list, r)
	if l.changed != nil {
		close(l.changed)
		l.changed = nil
	}
}

// Rejections returns the refusals and hub-initiated closes so far, oldest
// first (at most the last 10000).
func (s *Server) Rejections() []iothub.Rejection {
	s.rejections.mu.Lock()
	defer s.rejections.mu.Unlock()
	return append([]iothub.Rejection(nil), s.rejections.list...)
}

// WaitRejection returns the first recorded rejection (past or future) for
// which match returns true (nil matches any), or ctx's error.
func (s *Server) WaitRejection(ctx context.Context, match func(iothub.Rejection) bool) (iothub.Rejection, error) {
	st := s.RejectionsFrom(time.Time{})
	for {
		r, err := st.Next(ctx) // match runs outside the log's lock: it may be slow, or call back into the Server
		if err != nil {
			return iothub.Rejection{}, err
		}
		if match == nil || match(r) {
			return r, nil
		}
	}
}

// reject records a refusal and logs it at WARN as "refused" (no secrets).
// Client-supplied text can be 64 KB per field: every text field is cut to
// maxRejectionField bytes.
func (s *Server) reject(r iothub.Rejection) { s.record(r, "refused") }

// closedFor records why the hub closed an established connection and logs
// it at WARN as "closed".
func (s *Server) closedFor(r iothub.Rejection) { s.record(r, "closed") }

func (s *Server) record(r iothub.Rejection, msg string) {
	if r.Time.IsZero() {
		r.Time = s.opts.Now().UTC()
	}
	r.RemoteAddr, r.ClientID, r.UserName, r.Detail = clean(r.RemoteAddr), clean(r.ClientID), clean(r.UserName), clean(r.Detail)
	r.DeviceID, r.ModuleID = clean(r.DeviceID), clean(r.ModuleID)
	if len(r.Hints) > 0 {
		hints := make([]string, len(r.Hints))
		for i, h := range r.Hints {
			hints[i] = clean(h)
		}
		r.Hints = hints
	}
	s.rejections.add(r)
	s.metrics.rejected(r.Reason)
	s.activity.changed()
	attrs := []any{"reason", string(r.Reason), "detail", r.Detail, "clientId", r.ClientID, "remoteAddr", r.RemoteAddr}
	if r.DeviceID != "" {
		attrs = append(attrs, "deviceId", r.DeviceID)
	}
	if r.ModuleID != "" {
		attrs = append(attrs, "moduleId", r.ModuleID)
	}
	if len(r.Hints) > 0 {
		attrs = append(attrs, "hints", r.Hints)
	}
	s.log.Warn(msg, attrs...)
}

func rejectionFrom(err error, reason sas.Reason) (sas.Reason, string, []string) {
	if rj, ok := err.(*sas.Rejection); ok {
		return rj.Reason, rj.Detail, rj.Hints
	}
	return reason, err.Error(), nil
}

// clean makes client-supplied text fit for a iothub.Rejection and a WARN line:
// secrets redacted, then cut to maxRejectionField bytes.
func clean(s string) string { return clip(redactSecrets(s)) }

// secretRE matches the values of sig= and SharedAccessKey= (also
// percent-encoded once, "sig%3D..."), as a token or connection string pasted
// into the wrong CONNECT field carries them.
var secretRE = regexp.MustCompile(`(?i)(sig|sharedaccesskey)(=|%3d)(?:[^&;\s"'\\%]|%[^2]|%2[^6])*`)

// redactSecrets replaces each signature or key, name and value, in s with
// "<redacted sig>" ("<redacted SharedAccessKey>").
func redactSecrets(s string) string {
	if !strings.Contains(strings.ToLower(s), "sig") && !strings.Contains(strings.ToLower(s), "key") {
		return s
	}
	return secretRE.ReplaceAllString(s, "<redacted ${1}>")
}

// clip cuts s to maxRejectionField bytes (on a rune boundary) and says how
// long it was: "abc…(70000 bytes)".
func clip(s string) string {
	if len(s) <= maxRejectionField {
		return s
	}
	cut := maxRejectionField
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + "…(" + strconv.Itoa(len(s)) + " bytes)"
}
