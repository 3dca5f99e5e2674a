package device

import (
	"github.com/hubkit/hubkit/pkg/iothub"
)

// C2DMessage is a cloud-to-device message as delivered on
// devices/{id}/messages/devicebound/{property bag}.
type C2DMessage struct {
	Topic   string // as received
	Payload []byte

	// System properties (empty when absent).
	MessageID       string // $.mid
	CorrelationID   string // $.cid
	UserID          string // $.uid
	To              string // $.to, e.g. "/devices/dev1/messages/devicebound"
	ContentType     string // $.ct
	ContentEncoding string // $.ce
	Expiry          string // $.exp, as sent
	Ack             string // iothub-ack: none, positive, negative or full

	Properties  iothub.Properties // the whole decoded bag, in wire order
	Application map[string]string // application properties (first value of each key)
	Duplicate   bool              // the MQTT DUP flag: a redelivery
}

func newC2DMessage(topic string, props iothub.Properties, body []byte, dup bool) C2DMessage {
	sys := props.System()
	return C2DMessage{
		Topic:           topic,
		Payload:         body,
		MessageID:       sys[iothub.PropMessageID],
		CorrelationID:   sys[iothub.PropCorrelationID],
		UserID:          sys[iothub.PropUserID],
		To:              sys[iothub.PropTo],
		ContentType:     sys[iothub.PropContentType],
		ContentEncoding: sys[iothub.PropContentEncoding],
		Expiry:          sys[iothub.PropExpiry],
		Ack:             sys[iothub.PropAck],
		Properties:      props,
		Application:     props.Application(),
		Duplicate:       dup,
	}
}

type c2dItem struct {
	msg  C2DMessage
	ack  func()
	sess *session // the connection it came on: only that connection can acknowledge it
}

// runC2D handles C2D messages one at a time, in order, and acknowledges each after its
// handler returns (so PUBACKs go out in order, as MQTT requires). Without a handler, messages
// wait unacknowledged.
func (c *Client) runC2D() {
	defer c.wg.Done()
	for {
		c.mu.Lock()
		h := c.handlers.c2d
		c.mu.Unlock()
		if h != nil {
			if it, ok := c.c2d.pop(); ok {
				select {
				case <-it.sess.lost:
					// Its connection is gone, so it cannot be acknowledged: the hub delivers
					// it again on the new connection. Handling it now would handle it twice.
					c.log.Debug("dropping a C2D message of a lost connection", "messageId", it.msg.MessageID)
					continue
				default:
				}
				h(c.life, it.msg)
				select {
				case <-c.done:
					// Close began while the handler ran (its ctx was cancelled): leave the
					// message unacknowledged, the hub redelivers it (at least once).
					return
				default:
				}
				it.ack()
				continue
			}
		}
		select {
		case <-c.done:
			return
		case <-c.c2d.wake:
		}
	}
}
