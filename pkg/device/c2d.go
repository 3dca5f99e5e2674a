package device

import (
	"context"
	"fmt"
	"log/slog"
	"sync"

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

	ack *c2dAck // nil for a message built by a caller
}

// c2dAck acknowledges one delivered message at most once, on the connection it came on.
type c2dAck struct {
	once sync.Once
	send func() // paho's Ack: hands the PUBACK to the connection's writer
	sess *session
	log  *slog.Logger
	mid  string // the message ID, for the log
}

func (a *c2dAck) ack() {
	a.once.Do(func() {
		a.send()
		a.log.Debug("PUBACK sent", "messageId", a.mid)
	})
}

// Complete acknowledges the message now (PUBACK, which completes it on the hub) instead of
// when its handler returns; the handler's return then sends nothing more. It is for a handler
// that must know its message is acknowledged before it tells others it is done, e.g. before
// it lets its program Close the client: without it, a handler that returns after Close began
// leaves its message to be delivered again. It returns nil once the PUBACK is handed to the
// connection (so it is written before anything sent later, DISCONNECT included),
// ErrConnectionLost if the connection the message came on is gone (the hub delivers it again
// on the next one), and ctx's error, without acknowledging, if ctx is already done. Calling it
// again, or from another goroutine, is safe.
func (m C2DMessage) Complete(ctx context.Context) error {
	a := m.ack
	switch {
	case a == nil:
		return fmt.Errorf("device: completing message %q: it was not delivered by a Client", m.MessageID)
	case ctx.Err() != nil:
		return fmt.Errorf("device: completing message %q: %w", m.MessageID, ctx.Err())
	case isDone(a.sess.lost):
		return fmt.Errorf("device: completing message %q: %w", m.MessageID, ErrConnectionLost)
	}
	a.ack()
	return nil
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
					// message unacknowledged (unless the handler called Complete), the hub
					// redelivers it (at least once).
					return
				default:
				}
				it.msg.ack.ack()
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
