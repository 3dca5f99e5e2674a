package iothub

import (
	"encoding/json"
	"time"
	"unicode/utf8"

	"github.com/hubkit/hubkit/pkg/sas"
)

// Event is one device-to-cloud (telemetry) message as the service side of IoT Hub sees it:
// what the device published, decoded, and what the hub stamped on it. It is a hubkit
// extension (the real hub delivers telemetry through Event Hubs): fakehub captures it, GET
// /hubkit/telemetry streams it as NDJSON, and the Go service client reads it back.
//
// In JSON, Payload travels as "bodyBase64" (the exact bytes), and a "payload" member is
// added for reading: the body itself when it is valid JSON, else a JSON string when it is
// UTF-8 text, else absent (the shape `az iot hub monitor-events` prints). Decoding ignores
// "payload".
type Event struct {
	DeviceID string `json:"deviceId"`
	ModuleID string `json:"moduleId,omitempty"`
	Topic    string `json:"topic,omitempty"` // as published
	// SystemProperties are the decoded "$."-properties of the topic's bag (keys as on the
	// wire: "$.mid", "$.ct", ..., "iothub-ack").
	SystemProperties map[string]string `json:"systemProperties,omitempty"`
	// Properties are the application properties, including the hub-added mqtt-retain,
	// mqtt-dup and iothub-MessageType=Will.
	Properties map[string]string `json:"properties,omitempty"`
	// Annotations are what the hub stamps on the message (iothub-connection-*,
	// iothub-enqueuedtime, iothub-message-source, dt-dataschema).
	Annotations    map[string]string `json:"annotations,omitempty"`
	EnqueuedTime   time.Time         `json:"enqueuedTime"`
	SequenceNumber uint64            `json:"sequenceNumber,omitempty"` // 1, 2, ... in arrival order across the hub
	Payload        []byte            `json:"bodyBase64"`
}

// Identity returns the identity that sent the message.
func (e Event) Identity() Identity { return Identity{DeviceID: e.DeviceID, ModuleID: e.ModuleID} }

// MarshalJSON adds the readable "payload" member (see Event).
func (e Event) MarshalJSON() ([]byte, error) {
	type plain Event
	out := struct {
		plain
		Body json.RawMessage `json:"payload,omitempty"`
	}{plain: plain(e), Body: e.PayloadJSON()}
	return json.Marshal(out)
}

// PayloadJSON returns the payload for reading: itself when it is valid JSON, a JSON string
// when it is UTF-8 text, nil when it is binary.
func (e Event) PayloadJSON() json.RawMessage {
	switch {
	case len(e.Payload) > 0 && json.Valid(e.Payload):
		return json.RawMessage(e.Payload)
	case utf8.Valid(e.Payload):
		b, _ := json.Marshal(string(e.Payload))
		return b
	}
	return nil
}

// Rejection records why the hub refused a connection or closed one, with the pkg/sas verdict
// (a hubkit extension: GET /hubkit/rejections). Client-supplied text in it is cut short and
// has its secrets redacted.
type Rejection struct {
	Time       time.Time  `json:"time"`
	RemoteAddr string     `json:"remoteAddr,omitempty"`
	ClientID   string     `json:"clientId,omitempty"` // as sent in CONNECT ("" before CONNECT)
	DeviceID   string     `json:"deviceId,omitempty"` // the identity claimed or authenticated, when known
	ModuleID   string     `json:"moduleId,omitempty"`
	UserName   string     `json:"userName,omitempty"` // as sent (never the password)
	Reason     sas.Reason `json:"reason"`             // stable code: sas reasons and fakehub's own
	Detail     string     `json:"detail,omitempty"`   // one sentence, no secrets
	Hints      []string   `json:"hints,omitempty"`    // most likely cause first
}

// Identity returns the identity the rejection concerns (zero when unknown).
func (r Rejection) Identity() Identity { return Identity{DeviceID: r.DeviceID, ModuleID: r.ModuleID} }
