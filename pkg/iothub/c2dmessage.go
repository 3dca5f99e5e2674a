package iothub

import (
	"maps"
	"net/http"
	"slices"
	"strings"
	"time"
)

// The time to live of a cloud-to-device message, as on IoT Hub (docs/iothub-behavior.md §4.2).
const (
	DefaultC2DTTL = time.Hour
	MinC2DTTL     = time.Minute
	MaxC2DTTL     = 48 * time.Hour
)

// C2DAck is the delivery feedback a cloud-to-device message asks for (iothub-ack).
type C2DAck string

// The iothub-ack values (docs/iothub-behavior.md §4.2).
const (
	AckNone     C2DAck = "none" // the default
	AckPositive C2DAck = "positive"
	AckNegative C2DAck = "negative"
	AckFull     C2DAck = "full"
)

// ParseC2DAck accepts an iothub-ack value in any case; "" is none.
func ParseC2DAck(s string) (C2DAck, error) {
	switch a := C2DAck(strings.ToLower(s)); a {
	case "":
		return AckNone, nil
	case AckNone, AckPositive, AckNegative, AckFull:
		return a, nil
	}
	return "", Errorf(CodeArgumentInvalid, "%s must be none, positive, negative or full, got %q", HeaderAck, s)
}

// C2DMessage is a cloud-to-device message as the service sends it. Only Payload is needed;
// the hub fills the rest as IoT Hub does.
type C2DMessage struct {
	MessageID       string // $.mid; the hub generates a UUID when empty (at most 128 characters)
	CorrelationID   string // $.cid
	UserID          string // $.uid
	To              string // $.to; default "/devices/{id}/messages/deviceBound"
	ContentType     string // $.ct
	ContentEncoding string // $.ce
	Ack             C2DAck // iothub-ack: none (default), positive, negative, full
	// ExpiryTime is the absolute expiry ($.exp, sent to the device). When zero the message
	// expires TTL after it is enqueued, or after the hub's default TTL (1 h) when TTL is
	// zero too (then no $.exp is sent). TTL does not travel over the service API: a client
	// turns it into ExpiryTime.
	ExpiryTime time.Time
	TTL        time.Duration
	// Properties are the application properties, in order (system keys, "$."-prefixed and
	// iothub-*, are refused).
	Properties Properties
	Payload    []byte
}

// Request headers of a cloud-to-device message over the service API. They are the names IoT
// Hub's HTTPS device API uses for a message's system properties (the C# SDK's
// HttpTransportHandler, Java's HttpsSingleMessage, Node's azure-iot-http-base), and
// iothub-app-{name} for application properties.
const (
	HeaderMessageID       = "iothub-messageid"
	HeaderCorrelationID   = "iothub-correlationid"
	HeaderUserID          = "iothub-userid"
	HeaderTo              = "iothub-to"
	HeaderAck             = "iothub-ack"
	HeaderExpiry          = "iothub-expiry" // RFC 3339 UTC time
	HeaderContentType     = "iothub-contenttype"
	HeaderContentEncoding = "iothub-contentencoding"
	HeaderAppPrefix       = "iothub-app-"
	// HeaderProperties is a hubkit extension: the application properties as an IoT Hub
	// property bag ("k1=v1&k2=v2", percent-encoded), because HTTP header names are
	// case-insensitive while property names are case-sensitive.
	HeaderProperties = "X-Hubkit-Properties"
)

// Header returns the request headers that carry m over the service API (the body is
// m.Payload). A TTL without ExpiryTime becomes an expiry relative to now.
func (m C2DMessage) Header(now time.Time) http.Header {
	h := http.Header{}
	set := func(k, v string) {
		if v != "" {
			h.Set(k, v)
		}
	}
	set(HeaderMessageID, m.MessageID)
	set(HeaderCorrelationID, m.CorrelationID)
	set(HeaderUserID, m.UserID)
	set(HeaderTo, m.To)
	set(HeaderAck, string(m.Ack))
	set(HeaderContentType, m.ContentType)
	set(HeaderContentEncoding, m.ContentEncoding)
	set("Content-Type", m.ContentType)
	exp := m.ExpiryTime
	if exp.IsZero() && m.TTL > 0 {
		exp = now.Add(m.TTL)
	}
	if !exp.IsZero() {
		h.Set(HeaderExpiry, exp.UTC().Format(time.RFC3339Nano))
	}
	if len(m.Properties) > 0 {
		h.Set(HeaderProperties, m.Properties.Encode())
	}
	return h
}

// C2DMessageFromHeader reads a message sent over the service API: the system properties
// from their headers, the application properties from iothub-app-* headers (names
// lower-cased, sorted) and then the X-Hubkit-Properties bag (a later key replaces an earlier
// one). Errors wrap ErrInvalidArgument and name the header.
func C2DMessageFromHeader(hd http.Header, body []byte) (C2DMessage, error) {
	m := C2DMessage{
		MessageID:       hd.Get(HeaderMessageID),
		CorrelationID:   hd.Get(HeaderCorrelationID),
		UserID:          hd.Get(HeaderUserID),
		To:              hd.Get(HeaderTo),
		ContentType:     hd.Get(HeaderContentType),
		ContentEncoding: hd.Get(HeaderContentEncoding),
		Payload:         body,
	}
	// Plain Content-Type stands in for iothub-contenttype, except curl's default for -d
	// (which says nothing about the message).
	if ct := hd.Get("Content-Type"); m.ContentType == "" && ct != "" && ct != "application/x-www-form-urlencoded" {
		m.ContentType = ct
	}
	var err error
	if m.Ack, err = ParseC2DAck(hd.Get(HeaderAck)); err != nil {
		return m, err
	}
	if exp := hd.Get(HeaderExpiry); exp != "" {
		t, err := time.Parse(time.RFC3339Nano, exp)
		if err != nil {
			return m, Errorf(CodeArgumentInvalid, "%s must be an RFC 3339 time such as 2030-01-01T00:00:00Z, got %q", HeaderExpiry, exp)
		}
		m.ExpiryTime = t.UTC()
	}
	for _, name := range slices.Sorted(maps.Keys(hd)) {
		lower := strings.ToLower(name)
		if strings.HasPrefix(lower, HeaderAppPrefix) && len(lower) > len(HeaderAppPrefix) {
			m.Properties = m.Properties.Set(lower[len(HeaderAppPrefix):], hd[name][0])
		}
	}
	if bag := hd.Get(HeaderProperties); bag != "" {
		ps, err := ParseProperties(bag)
		if err != nil {
			return m, &Error{Code: CodeArgumentInvalid, Message: HeaderProperties + ": " + err.Error(), Err: err}
		}
		for _, p := range ps {
			if IsSystemProperty(p.Key) {
				return m, Errorf(CodeArgumentInvalid, "%s: %q is a system property; use its iothub-* header", HeaderProperties, p.Key)
			}
			m.Properties = m.Properties.Set(p.Key, p.Value)
		}
	}
	return m, nil
}

// C2DState is where a cloud-to-device message is in its life.
type C2DState string

// The C2D message states.
const (
	C2DQueued    C2DState = "queued"    // waiting for the device or its C2D subscription
	C2DDelivered C2DState = "delivered" // published at QoS 1, waiting for the device's PUBACK
	C2DCompleted C2DState = "completed" // PUBACK received (or published at QoS 0)
	C2DExpired   C2DState = "expired"   // its expiry passed before it was completed
	C2DRejected  C2DState = "rejected"  // the device was connected without a C2D subscription
	C2DPurged    C2DState = "purged"    // removed by a purge or by deleting the identity
)

// Finished reports whether the state is final.
func (s C2DState) Finished() bool { return s != C2DQueued && s != C2DDelivered }

// C2DStatus is what the hub knows about one cloud-to-device message (a hubkit extension:
// GET /devices/{id}/messages/devicebound/{messageId}).
type C2DStatus struct {
	DeviceID      string    `json:"deviceId"`
	ModuleID      string    `json:"moduleId,omitempty"`
	MessageID     string    `json:"messageId"`
	State         C2DState  `json:"state"`
	Detail        string    `json:"detail,omitempty"` // why it was rejected, expired or purged
	DeliveryCount int       `json:"deliveryCount"`    // how many times it was published to the device
	EnqueuedTime  time.Time `json:"enqueuedTime"`
	UpdatedTime   time.Time `json:"updatedTime"`            // the last change of state
	DeliveredTime time.Time `json:"deliveredTime,omitzero"` // the last delivery
	FinishedTime  time.Time `json:"finishedTime,omitzero"`  // when it reached a final state
	ExpiryTime    time.Time `json:"expiryTime,omitzero"`    // when it expires (or expired)
}

// MaxC2DWait is the longest a hubkit hub holds GET
// /devices/{id}/messages/devicebound/{messageId}?wait=SECONDS for the message to reach a final
// state (a hubkit extension): a client that waits longer asks again, so that no answer
// outlives the service API's write deadline or an idle proxy.
const MaxC2DWait = 20 * time.Second

// Identity returns the identity the message was sent to.
func (s C2DStatus) Identity() Identity { return Identity{DeviceID: s.DeviceID, ModuleID: s.ModuleID} }

// C2DFeedbackStatus is the outcome a feedback record reports.
type C2DFeedbackStatus string

// Feedback statuses (docs/iothub-behavior.md §4.2).
const (
	FeedbackSuccess               C2DFeedbackStatus = "Success"
	FeedbackExpired               C2DFeedbackStatus = "Expired"
	FeedbackDeliveryCountExceeded C2DFeedbackStatus = "DeliveryCountExceeded"
	FeedbackRejected              C2DFeedbackStatus = "Rejected"
	FeedbackPurged                C2DFeedbackStatus = "Purged"
)

// C2DFeedback is one delivery feedback record, in the shape of the entries of IoT Hub's
// feedback messages.
type C2DFeedback struct {
	OriginalMessageID  string            `json:"originalMessageId"`
	DeviceID           string            `json:"deviceId"`
	ModuleID           string            `json:"moduleId,omitempty"`
	DeviceGenerationID string            `json:"deviceGenerationId,omitempty"`
	StatusCode         C2DFeedbackStatus `json:"statusCode"`
	Description        string            `json:"description"`
	EnqueuedTime       time.Time         `json:"enqueuedTimeUtc"`
}

// PurgeResult is IoT Hub's PurgeMessageQueueResult (DELETE /devices/{id}/commands).
type PurgeResult struct {
	DeviceID            string `json:"deviceId"`
	ModuleID            string `json:"moduleId,omitempty"`
	TotalMessagesPurged int    `json:"totalMessagesPurged"`
}
