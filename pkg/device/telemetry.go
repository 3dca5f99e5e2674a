package device

import (
	"context"
	"fmt"
	"time"

	"github.com/hubkit/hubkit/pkg/iothub"
)

// Event is a device-to-cloud telemetry message. System properties have their own fields;
// Properties are the application properties, sent in order.
type Event struct {
	Payload         []byte
	Properties      iothub.Properties // application properties, in order
	MessageID       string            // $.mid
	CorrelationID   string            // $.cid
	UserID          string            // $.uid
	ContentType     string            // $.ct, e.g. "application/json"
	ContentEncoding string            // $.ce, e.g. "utf-8"
	CreationTime    time.Time         // $.ctime (sent in UTC, seconds precision); zero: omitted
	Subject         string            // $.sub, the Plug and Play component name
}

// creationTimeLayout is the $.ctime format of the IoT Hub documentation (UTC, no offset).
const creationTimeLayout = "2006-01-02T15:04:05Z"

// bag returns the event's property bag: system properties first, then the application ones.
func (e *Event) bag() iothub.Properties {
	var p iothub.Properties
	add := func(k, v string) {
		if v != "" {
			p = append(p, iothub.Property{Key: k, Value: v})
		}
	}
	add(iothub.PropMessageID, e.MessageID)
	add(iothub.PropCorrelationID, e.CorrelationID)
	add(iothub.PropUserID, e.UserID)
	add(iothub.PropContentType, e.ContentType)
	add(iothub.PropContentEncoding, e.ContentEncoding)
	if !e.CreationTime.IsZero() {
		add(iothub.PropCreationTime, e.CreationTime.UTC().Format(creationTimeLayout))
	}
	add(iothub.PropSubject, e.Subject)
	return append(p, e.Properties...)
}

// topic returns the telemetry topic for the event, or ErrTooLarge.
func (e *Event) topic(id iothub.Identity) (string, error) {
	bag := e.bag()
	if size := len(e.Payload) + bag.Size(); size > iothub.MaxTelemetrySize {
		return "", fmt.Errorf("%w: %d bytes of body and properties, the hub accepts %d", ErrTooLarge, size, iothub.MaxTelemetrySize)
	}
	return iothub.TelemetryTopic(id, bag), nil
}

// SendEvent publishes e as telemetry at QoS 1 and waits for the hub's PUBACK or for ctx. While
// the connection is down it waits (until ctx ends) for the client to reconnect; a message
// whose connection drops before the PUBACK is sent again on the next one (at least once).
func (c *Client) SendEvent(ctx context.Context, e Event) error {
	topic, err := e.topic(c.s.id)
	if err != nil {
		return err
	}
	return c.publish(ctx, topic, 1, e.Payload, true)
}
