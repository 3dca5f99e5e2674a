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
	// ErrorCode is the IoT Hub error code the real hub logs for this refusal or close, where
	// one is documented (401003 for an expired token, 429002 after throttling, 403002 for the
	// daily quota, 400027 for a newer connection, 400029 for a fault injection).
	ErrorCode ErrorCode `json:"errorCode,omitempty"`
	// Warning is true for a record of something the hub accepted but Microsoft's
	// documentation calls wrong (fakehub's strict profile): nothing was refused or closed.
	Warning bool `json:"warning,omitempty"`
}

// Identity returns the identity the rejection concerns (zero when unknown).
func (r Rejection) Identity() Identity { return Identity{DeviceID: r.DeviceID, ModuleID: r.ModuleID} }

// ClockReading is the state of a hub's movable clock (a hubkit extension: GET and POST
// /hubkit/clock): the time it reads and how far it has been moved from the real clock.
type ClockReading struct {
	Now           time.Time `json:"now"`
	Offset        string    `json:"offset"`        // Go duration text, e.g. "55m0s"
	OffsetSeconds float64   `json:"offsetSeconds"` // the same, in seconds
}

// ClockChange moves a hub's clock (POST /hubkit/clock): exactly one of Advance (a Go
// duration such as "55m" or "-1h", or seconds), Set (an RFC 3339 time) or Reset (back to
// the real clock).
type ClockChange struct {
	Advance string     `json:"advance,omitempty"`
	Set     *time.Time `json:"set,omitempty"`
	Reset   bool       `json:"reset,omitempty"`
}

// FaultRequest asks a hubkit hub for a service-side fault (a hubkit extension: POST
// /hubkit/faults). Action is one of the Fault* action names; DeviceID (and ModuleID) name
// the identity, empty for every identity where the action allows it.
type FaultRequest struct {
	Action    string    `json:"action"`
	DeviceID  string    `json:"deviceId,omitempty"`
	ModuleID  string    `json:"moduleId,omitempty"`
	Reason    string    `json:"reason,omitempty"`    // drop: recorded with the drop
	ErrorCode ErrorCode `json:"errorCode,omitempty"` // drop: the code recorded (default 400029)
	Abort     bool      `json:"abort,omitempty"`     // drop: TCP reset instead of a clean close
	Duration  string    `json:"duration,omitempty"`  // refuse-connections, delay-pubacks: a Go duration ("30s") or seconds
	Off       bool      `json:"off,omitempty"`       // drop-pubacks, silence-twin, refuse-connections, delay-pubacks: end it
	KeepState bool      `json:"keepState,omitempty"` // restart: keep C2D queues and twins
}

// The actions of a FaultRequest.
const (
	FaultDrop              = "drop"               // close the identity's connection
	FaultDropAll           = "drop-all"           // close every connection
	FaultRefuseConnections = "refuse-connections" // refuse CONNECTs (CONNACK 3) for Duration
	FaultDelayPubacks      = "delay-pubacks"      // hold each telemetry PUBACK for Duration
	FaultDropPubacks       = "drop-pubacks"       // withhold telemetry PUBACKs (until Off)
	FaultSilenceTwin       = "silence-twin"       // leave twin requests unanswered (until Off)
	FaultRestart           = "restart"            // restart the hub in place (KeepState or not)
	FaultClear             = "clear"              // end every fault
)

// FaultResult is the answer to a FaultRequest: how many connections it closed.
type FaultResult struct {
	Closed int `json:"closed"`
}
