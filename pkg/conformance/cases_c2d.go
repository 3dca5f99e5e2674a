package conformance

import (
	"context"
	"errors"
	"strings"
	"time"

	"github.com/hubkit/hubkit/internal/mqttraw"
	"github.com/hubkit/hubkit/pkg/device"
	"github.com/hubkit/hubkit/pkg/iothub"
)

const docC2D = "learn.microsoft.com/azure/iot-hub/iot-hub-devguide-messages-c2d"

var c2dNeeds = []string{NeedCloudToDevice, NeedC2D}

var c2dCases = []Case{
	{
		ID:          "c2d/receive",
		Requirement: "After subscribing devices/{deviceId}/messages/devicebound/#, a C2D message arrives on devices/{deviceId}/messages/devicebound/{bag} with its body, $.mid, $.to and application properties.",
		Section:     "docs/iothub-behavior.md §4.2, §10.11; " + docMQTT + " (Receiving cloud-to-device messages)",
		Certainty:   "C/O",
		Needs:       c2dNeeds,
		run: func(e *env) {
			got := make(chan device.C2DMessage, 4)
			cl := e.newClient(e.dev, nil)
			cl.OnC2D(func(_ context.Context, m device.C2DMessage) { got <- m })
			e.connectClient(cl, "reference client subscribed to C2D")
			sent := e.sendC2D("hello", iothub.Properties{{Key: "color", Value: "blue"}})
			select {
			case m := <-got:
				e.checkC2D(m.Topic, m.Payload, sent)
				if m.MessageID != sent.MessageID {
					e.Errorf("C2D $.mid = %q, want %q", m.MessageID, sent.MessageID)
				}
				if !strings.EqualFold(m.To, "/devices/"+e.dev.DeviceID+"/messages/devicebound") {
					e.Errorf("C2D $.to = %q, want /devices/%s/messages/devicebound (any case)", m.To, e.dev.DeviceID)
				}
				if m.Application["color"] != "blue" {
					e.Errorf("C2D application property color = %q, want \"blue\" (bag %v)", m.Application["color"], m.Properties)
				}
			case <-time.After(answerWithin):
				e.Errorf("no C2D message within %v of sending it, want it delivered", answerWithin)
			}
		},
	},
	{
		ID:          "c2d/receive-plus-filter",
		Requirement: "The filter devices/+/messages/devicebound/# (Azure SDK for Embedded C) is accepted at QoS 1 and receives the device's C2D messages.",
		Section:     "docs/iothub-behavior.md §4.2 ('+' in the device segment), §10.11",
		Certainty:   "O",
		Needs:       c2dNeeds,
		run: func(e *env) {
			c, _ := e.connect(e.dev, true)
			e.subscribe(c, "devices/+/messages/devicebound/#", 1, 1)
			sent := e.sendC2D("plus", nil)
			p := e.receiveC2D(c, sent, "C2D after subscribing devices/+/messages/devicebound/#")
			if p.QoS != 1 {
				e.Errorf("C2D delivered at QoS %d, want 1", p.QoS)
			}
			_ = c.Puback(p.PacketID)
		},
	},
	{
		ID:          "c2d/complete-on-puback",
		Requirement: "The device's PUBACK completes a C2D message: after it, a reconnect (CleanSession=0) does not deliver the message again.",
		Section:     "docs/iothub-behavior.md §4.2 (Completion), §10.11; " + docC2D,
		Certainty:   "C",
		Needs:       c2dNeeds,
		run: func(e *env) {
			c := e.c2dSubscribed(false)
			first := e.sendC2D("first", nil)
			p := e.receiveC2D(c, first, "first C2D")
			if err := c.Puback(p.PacketID); err != nil {
				e.Fatalf("PUBACK: %v", err)
			}
			e.disconnect(c)
			c2 := e.c2dSubscribed(false)
			second := e.sendC2D("second", nil)
			p = e.readC2D(c2, "C2D after reconnecting")
			if mid := midOf(p.Topic); mid == first.MessageID {
				e.Errorf("after PUBACK and reconnect the hub delivered %s again, want it completed", first.MessageID)
			} else {
				e.checkC2D(p.Topic, p.Payload, second)
			}
		},
	},
	{
		ID:          "c2d/redelivery-after-disconnect",
		Requirement: "A C2D message not acknowledged before the connection drops is delivered again after reconnecting with CleanSession=0.",
		Section:     "docs/iothub-behavior.md §1.16, §4.2, §10.12; " + docC2D,
		Certainty:   "C/O",
		Needs:       c2dNeeds,
		run: func(e *env) {
			c := e.c2dSubscribed(false)
			sent := e.sendC2D("redeliver-me", nil)
			p := e.receiveC2D(c, sent, "C2D before the drop")
			_ = c.Close() // no PUBACK, no DISCONNECT
			c2, _ := e.connect(e.dev, false)
			if err := c2.Subscribe(8, mqttraw.Subscription{Filter: iothub.C2DFilter(identityOf(e.dev)), QoS: 1}); err != nil {
				e.Fatalf("SUBSCRIBE after reconnecting: %v", err)
			}
			p = e.receiveC2D(c2, sent, "redelivery after reconnecting with CleanSession=0")
			e.Logf("redelivered with DUP=%v", p.Dup)
			_ = c2.Puback(p.PacketID)
		},
	},
	{
		ID:          "c2d/session-present-and-early-delivery",
		Requirement: "Reconnecting with CleanSession=0 after subscribing gives CONNACK session-present=1, and C2D queued while offline flows right after CONNACK, before any SUBSCRIBE.",
		Section:     "docs/iothub-behavior.md §1.16, §10.12; Azure-Samples/iot-middleware-freertos-samples#397",
		Certainty:   "C/O",
		Needs:       c2dNeeds,
		run: func(e *env) {
			c := e.c2dSubscribed(false)
			e.disconnect(c)
			sent := e.sendC2D("while-offline", nil)
			c2, ack := e.connect(e.dev, false)
			if !ack.SessionPresent {
				e.Errorf("CONNACK session-present = 0 after a CleanSession=0 reconnect with a stored subscription, want 1")
			}
			p := e.receiveC2D(c2, sent, "queued C2D after CONNACK, no SUBSCRIBE sent")
			_ = c2.Puback(p.PacketID)
		},
	},
	{
		ID:          "c2d/clean-session-drops-subscription",
		Requirement: "Reconnecting with CleanSession=1 discards the stored session: CONNACK session-present=0 and no C2D is delivered before the device subscribes again.",
		Section:     "docs/iothub-behavior.md §1.16, §10.12; " + docMQTT,
		Certainty:   "C/O",
		Needs:       c2dNeeds,
		run: func(e *env) {
			c := e.c2dSubscribed(false)
			e.disconnect(c)
			e.sendC2D("while-offline", nil)
			c2, ack := e.connect(e.dev, true)
			if ack.SessionPresent {
				e.Errorf("CONNACK session-present = 1 with CleanSession=1, want 0")
			}
			e.expectQuiet(c2, "CleanSession=1 reconnect before any SUBSCRIBE")
		},
	},
	{
		ID:          "c2d/queue-limit-50",
		Requirement: "A device queue holds at most 50 C2D messages: the 51st send to an offline device is refused to the sender (403004 DeviceMaximumQueueDepthExceeded).",
		Section:     "docs/iothub-behavior.md §4.2 (Queue/lifetime), §10.11; " + docC2D + "; learn.microsoft.com/azure/iot-hub/troubleshoot-error-codes",
		Certainty:   "C",
		Needs:       c2dNeeds,
		run: func(e *env) {
			c2d := e.target.(CloudToDevice)
			for i := 1; i <= 50; i++ {
				if err := c2d.SendC2D(e.ctx, e.dev.DeviceID, iothub.C2DMessage{MessageID: randomID("conf-q-"), Payload: []byte("q")}); err != nil {
					e.Fatalf("send #%d to an offline device: %v, want it queued (limit 50)", i, err)
				}
			}
			err := c2d.SendC2D(e.ctx, e.dev.DeviceID, iothub.C2DMessage{MessageID: randomID("conf-q-"), Payload: []byte("q")})
			var se *iothub.Error
			switch {
			case err == nil:
				e.Errorf("send #51 to a device with 50 queued messages: accepted, want 403 DeviceMaximumQueueDepthExceeded")
			case !errors.As(err, &se) || se.Status() != 403:
				e.Errorf("send #51 to a device with 50 queued messages: %v, want a 403 DeviceMaximumQueueDepthExceeded answer", err)
			}
		},
	},
	{
		ID:          "c2d/no-subscription-rejected",
		Requirement: "A C2D message arriving while the device is connected without a C2D subscription is rejected, not kept: subscribing later does not deliver it.",
		Section:     "docs/iothub-behavior.md §4.2 (Device connected without a matching subscription), §10.11; MicrosoftDocs/azure-docs#98930",
		Certainty:   "O/I",
		Needs:       c2dNeeds,
		run: func(e *env) {
			c, _ := e.connect(e.dev, true)
			lost := e.sendC2D("no-subscriber", nil)
			e.expectQuiet(c, "C2D while connected without a subscription")
			e.subscribe(c, iothub.C2DFilter(identityOf(e.dev)), 1, 1)
			marker := e.sendC2D("marker", nil)
			p := e.readC2D(c, "C2D sent after subscribing")
			if midOf(p.Topic) == lost.MessageID {
				e.Errorf("the message sent before the subscription (%s) was delivered after subscribing, want it rejected", lost.MessageID)
				return
			}
			e.checkC2D(p.Topic, p.Payload, marker)
		},
	},
}

// sendC2D sends a message with a fresh $.mid to the case device.
func (e *env) sendC2D(body string, props iothub.Properties) iothub.C2DMessage {
	e.t.Helper()
	m := iothub.C2DMessage{MessageID: randomID("conf-c2d-"), Payload: []byte(body), Properties: props}
	ctx, cancel := e.waitCtx(answerWithin)
	defer cancel()
	if err := e.target.(CloudToDevice).SendC2D(ctx, e.dev.DeviceID, m); err != nil {
		e.Fatalf("sending C2D %s: %v", m.MessageID, err)
	}
	return m
}

// readC2D waits for the next PUBLISH (skipping SUBACK and PINGRESP).
func (e *env) readC2D(c *mqttraw.Conn, what string) mqttraw.PublishPacket {
	e.t.Helper()
	deadline := time.Now().Add(answerWithin)
	for {
		p, err := c.ReadPacket(time.Until(deadline))
		if err != nil {
			e.Fatalf("%s: %v, want a C2D PUBLISH", what, err)
		}
		switch p.Type {
		case mqttraw.TypeSuback, mqttraw.TypePingresp:
			continue
		case mqttraw.TypePublish:
			return p.Publish
		}
		e.Fatalf("%s: got %s, want a C2D PUBLISH", what, p)
	}
}

// checkC2D checks a delivered message's topic and body against what was sent.
func (e *env) checkC2D(topic string, payload []byte, sent iothub.C2DMessage) {
	e.t.Helper()
	id, props, err := iothub.ParseC2DTopic(topic)
	if err != nil {
		e.Errorf("C2D topic %q: %v", topic, err)
		return
	}
	if id.DeviceID != e.dev.DeviceID {
		e.Errorf("C2D topic %q names device %q, want %q", topic, id.DeviceID, e.dev.DeviceID)
	}
	if mid, _ := props.Get(iothub.PropMessageID); mid != sent.MessageID {
		e.Errorf("C2D topic %q: $.mid = %q, want %q", topic, mid, sent.MessageID)
	}
	if string(payload) != string(sent.Payload) {
		e.Errorf("C2D body = %q, want %q", payload, sent.Payload)
	}
}

func midOf(topic string) string {
	_, props, err := iothub.ParseC2DTopic(topic)
	if err != nil {
		return ""
	}
	mid, _ := props.Get(iothub.PropMessageID)
	return mid
}

// disconnect sends DISCONNECT, closes c and waits until the hub has seen the
// connection end (its socket closes).
func (e *env) disconnect(c *mqttraw.Conn) {
	e.t.Helper()
	_ = c.Disconnect()
	if err := c.ExpectClosed(closeWithin); err != nil {
		e.Logf("after DISCONNECT: %v", err)
	}
	_ = c.Close()
}

// c2dSubscribed connects the case device and subscribes to its C2D filter at QoS 1.
func (e *env) c2dSubscribed(clean bool) *mqttraw.Conn {
	e.t.Helper()
	c, _ := e.connect(e.dev, clean)
	e.subscribe(c, iothub.C2DFilter(identityOf(e.dev)), 1, 1)
	return c
}

// receiveC2D reads the next C2D PUBLISH and checks it is sent.
func (e *env) receiveC2D(c *mqttraw.Conn, sent iothub.C2DMessage, what string) mqttraw.PublishPacket {
	e.t.Helper()
	p := e.readC2D(c, what)
	e.checkC2D(p.Topic, p.Payload, sent)
	return p
}
