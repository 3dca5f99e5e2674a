package device

import (
	"context"
	"encoding/json"
	"slices"

	paho "github.com/eclipse/paho.mqtt.golang"
	"github.com/hubkit/hubkit/pkg/iothub"
)

// C2DHandler handles one cloud-to-device message. The message is acknowledged (PUBACK, which
// completes it on the hub) when the handler returns, or earlier when it calls m.Complete. ctx
// is cancelled when the client closes; a handler that returns after Close began leaves its
// message unacknowledged (unless it called Complete), so the hub delivers it again on the next
// connection.
type C2DHandler func(ctx context.Context, m C2DMessage)

// DesiredHandler handles one desired-properties patch (JSON merge patch including "$version").
// After a reconnect it may receive the full desired properties, when their version moved while
// the client was offline.
type DesiredHandler func(ctx context.Context, patch json.RawMessage, version int64)

// MethodHandler answers one direct-method call. The response is sent as JSON (nil: no body;
// []byte and json.RawMessage: sent as is). A non-nil error answers status 500 with
// {"message": err.Error()} unless status is already set (non-zero).
type MethodHandler func(ctx context.Context, payload []byte) (status int, response any, err error)

// AnyMethodHandler answers direct-method calls that have no handler of their own.
type AnyMethodHandler func(ctx context.Context, name string, payload []byte) (status int, response any, err error)

type handlers struct {
	c2d       C2DHandler
	desired   DesiredHandler
	methods   map[string]MethodHandler
	anyMethod AnyMethodHandler
}

// OnC2D sets the cloud-to-device message handler and subscribes to
// devices/{id}/messages/devicebound/# at QoS 1. Messages arriving before a handler is set
// (a persistent session delivers them right after CONNACK) wait for it, unacknowledged.
func (c *Client) OnC2D(h C2DHandler) {
	c.mu.Lock()
	c.handlers.c2d = h
	c.mu.Unlock()
	c.want(map[string]byte{iothub.C2DFilter(c.s.id): 1})
	c.c2d.poke()
}

// OnDesired sets the desired-properties handler and subscribes to the twin response and
// desired-patch topics. On every (re)connection the client GETs the twin and ignores
// notifications whose $version is not newer than it (the documented flow).
func (c *Client) OnDesired(h DesiredHandler) {
	c.mu.Lock()
	c.handlers.desired = h
	c.mu.Unlock()
	c.want(map[string]byte{iothub.TwinResponseFilter: 0, iothub.TwinDesiredFilter: 0})
}

// OnMethod sets the handler of direct method name and subscribes to $iothub/methods/POST/#.
// Methods without a handler (and without OnAnyMethod) are answered with
// Config.UnknownMethodStatus (default 404).
func (c *Client) OnMethod(name string, h MethodHandler) {
	c.mu.Lock()
	c.handlers.methods[name] = h
	c.mu.Unlock()
	c.want(map[string]byte{iothub.MethodsFilter: 0})
}

// OnAnyMethod sets the handler for methods that have no OnMethod handler.
func (c *Client) OnAnyMethod(h AnyMethodHandler) {
	c.mu.Lock()
	c.handlers.anyMethod = h
	c.mu.Unlock()
	c.want(map[string]byte{iothub.MethodsFilter: 0})
}

// onMessage returns paho's only message handler for sess (the default publish handler: it
// also sees C2D messages a persistent session delivers before any SUBSCRIBE). It runs on
// paho's router goroutine, so it only parses and hands over; it never blocks.
func (c *Client) onMessage(sess *session) paho.MessageHandler {
	return func(_ paho.Client, m paho.Message) { c.route(sess, m) }
}

func (c *Client) route(sess *session, m paho.Message) {
	topic := m.Topic()
	body := slices.Clone(m.Payload())
	c.log.Debug("PUBLISH received", "topic", topic, "qos", m.Qos(), "dup", m.Duplicate(), "bytes", len(body))
	if status, rid, version, err := iothub.ParseTwinResponseTopic(topic); err == nil {
		m.Ack()
		c.deliverTwin(rid, twinResult{status: status, version: version, body: body})
		return
	}
	if version, err := iothub.ParseTwinDesiredPatchTopic(topic); err == nil {
		m.Ack()
		c.desired.push(desiredItem{version: version, body: body})
		return
	}
	if name, rid, err := iothub.ParseMethodRequestTopic(topic); err == nil {
		m.Ack()
		c.startMethod(name, rid, body)
		return
	}
	if id, props, err := iothub.ParseC2DTopic(topic); err == nil && id == c.s.id {
		msg := newC2DMessage(topic, props, body, m.Duplicate())
		msg.ack = &c2dAck{send: m.Ack, sess: sess, log: c.log, mid: msg.MessageID}
		c.c2d.push(c2dItem{msg: msg, sess: sess})
		return
	}
	c.log.Warn("ignoring a message on an unexpected topic", "topic", topic)
	m.Ack()
}
