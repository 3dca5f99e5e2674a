package c2d

import (
	"time"

	"github.com/hubkit/hubkit/pkg/iothub"
)

// Message is a cloud-to-device message in a queue: what the sender gave (Enqueue fills
// MessageID when empty, To when empty and ExpiryTime when zero) and what the queue keeps.
type Message struct {
	iothub.C2DMessage
	// DefaultExpiry is set by Enqueue when the hub's default TTL gave ExpiryTime; $.exp is then
	// not sent to the device, as the hub sends it only for an expiry the sender chose.
	DefaultExpiry bool
	EnqueuedTime  time.Time // set by Enqueue
	DeliveryCount int       // how many times the message was handed out by Take
}

// WireProperties returns the property bag the hub puts in the delivery topic, in the order
// captured from the real hub: $.mid, $.exp (only for an explicit expiry, RFC 3339 UTC), $.to,
// $.cid, $.uid, $.ct, $.ce (each only when set), iothub-ack (always; "none" by default), then
// the application properties in order.
func (m Message) WireProperties() iothub.Properties {
	p := make(iothub.Properties, 0, 8+len(m.Properties))
	add := func(key, value string) {
		if value != "" {
			p = append(p, iothub.Property{Key: key, Value: value})
		}
	}
	add(iothub.PropMessageID, m.MessageID)
	if !m.ExpiryTime.IsZero() && !m.DefaultExpiry {
		add(iothub.PropExpiry, m.ExpiryTime.UTC().Format(time.RFC3339))
	}
	add(iothub.PropTo, m.To)
	add(iothub.PropCorrelationID, m.CorrelationID)
	add(iothub.PropUserID, m.UserID)
	add(iothub.PropContentType, m.ContentType)
	add(iothub.PropContentEncoding, m.ContentEncoding)
	ack := m.Ack
	if ack == "" {
		ack = iothub.AckNone
	}
	add(iothub.PropAck, string(ack))
	return append(p, m.Properties...)
}

// DeliveryTopic returns the topic the hub publishes the message on for the identity:
// devices/{d}/messages/devicebound/{WireProperties} (modules: devices/{d}/modules/{m}/...).
func DeliveryTopic(id iothub.Identity, m Message) string {
	return iothub.C2DTopic(id, m.WireProperties())
}

// Size returns what the message counts towards the 64 KB limit: the payload plus the values of
// the system properties and the names and values of the application properties.
func (m Message) Size() int { return len(m.Payload) + m.WireProperties().Size() }

// DefaultTo returns the default $.to for an identity.
func DefaultTo(id iothub.Identity) string {
	if id.IsModule() {
		return "/devices/" + id.DeviceID + "/modules/" + id.ModuleID + "/messages/deviceBound"
	}
	return "/devices/" + id.DeviceID + "/messages/deviceBound"
}

// clone returns a copy that shares no memory with m.
func (m Message) clone() Message {
	m.Properties = append(iothub.Properties(nil), m.Properties...)
	if m.Payload != nil {
		m.Payload = append([]byte{}, m.Payload...)
	}
	return m
}
