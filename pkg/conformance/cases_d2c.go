package conformance

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"strings"

	"github.com/hubkit/hubkit/internal/mqttraw"
	"github.com/hubkit/hubkit/pkg/device"
	"github.com/hubkit/hubkit/pkg/iothub"
)

var d2cCases = []Case{
	{
		ID:          "d2c/telemetry/puback",
		Requirement: "Telemetry published at QoS 1 on devices/{deviceId}/messages/events/ is acknowledged with PUBACK (and, when the target can read it, arrives with its body).",
		Section:     "docs/iothub-behavior.md §4.1, §5, §10.7; " + docMQTT + " (Sending device-to-cloud messages)",
		Certainty:   "C",
		run: func(e *env) {
			cl := e.newClient(e.dev, nil)
			e.connectClient(cl, "reference client")
			body := []byte(`{"temperature":21.5}`)
			ctx, cancel := e.waitCtx(answerWithin)
			defer cancel()
			if err := cl.SendEvent(ctx, device.Event{Payload: body}); err != nil {
				e.Fatalf("SendEvent at QoS 1: %v, want a PUBACK", err)
			}
			if tr, ok := e.target.(TelemetryReader); ok {
				m := e.nextTelemetry(tr, "the acknowledged telemetry")
				if !bytes.Equal(m.Payload, body) {
					e.Errorf("telemetry body = %q, want %q", m.Payload, body)
				}
			}
		},
	},
	{
		ID:          "d2c/property-bag/system",
		Requirement: "System properties in the telemetry topic ($.mid or %24.mid, $.ct, $.ce) are decoded, and the hub stamps iothub-connection-device-id, iothub-connection-auth-method and iothub-enqueuedtime.",
		Section:     "docs/iothub-behavior.md §4.1 (system-property keys, hub-added properties), §10.7; learn.microsoft.com/azure/iot-hub/iot-hub-devguide-messages-construct",
		Certainty:   "C/O",
		Needs:       []string{NeedTelemetryReader},
		run: func(e *env) {
			tr := e.target.(TelemetryReader)
			c, _ := e.connect(e.dev, true)
			base := "devices/" + e.dev.DeviceID + "/messages/events/"
			sent := []struct{ bag, mid, ct string }{
				{"$.mid=mid-dollar&$.ct=application%2Fjson&$.ce=utf-8", "mid-dollar", "application/json"},
				{"%24.mid=mid-escaped&%24.ct=text%2Fplain%3B%20charset%3Dutf-8&%24.ce=utf-8", "mid-escaped", "text/plain; charset=utf-8"},
			}
			for i, s := range sent {
				e.publish1(c, base+s.bag, []byte(`{"n":1}`), uint16(i+1))
			}
			for _, s := range sent {
				m := e.nextTelemetry(tr, "telemetry with bag "+s.bag)
				for k, want := range map[string]string{iothub.PropMessageID: s.mid, iothub.PropContentType: s.ct, iothub.PropContentEncoding: "utf-8"} {
					if got := m.SystemProperties[k]; got != want {
						e.Errorf("bag %q: system property %s = %q, want %q", s.bag, k, got, want)
					}
				}
				if got := m.Annotations[iothub.PropConnectionDeviceID]; got != e.dev.DeviceID {
					e.Errorf("annotation iothub-connection-device-id = %q, want %q", got, e.dev.DeviceID)
				}
				if got := m.Annotations["iothub-enqueuedtime"]; got == "" {
					e.Errorf("annotation iothub-enqueuedtime is missing, want the enqueue time")
				}
				var auth struct{ Scope, Type string }
				raw := m.Annotations[iothub.PropConnectionAuthMethod]
				if err := json.Unmarshal([]byte(raw), &auth); err != nil || auth.Scope != "device" || auth.Type != "sas" {
					e.Errorf(`annotation iothub-connection-auth-method = %q, want JSON with "scope":"device","type":"sas"`, raw)
				}
			}
		},
	},
	{
		ID:          "d2c/property-bag/application",
		Requirement: "Application properties in the telemetry topic are percent-decoded (%20 is a space, %25 a percent sign) and 'k=' is an empty value.",
		Section:     "docs/iothub-behavior.md §4.1 (property bag); " + docMQTT,
		Certainty:   "C",
		Needs:       []string{NeedTelemetryReader},
		run: func(e *env) {
			c, _ := e.connect(e.dev, true)
			e.publish1(c, "devices/"+e.dev.DeviceID+"/messages/events/color=red&note=two%20words&pct=100%25&empty=", []byte("x"), 1)
			m := e.nextTelemetry(e.target.(TelemetryReader), "telemetry with application properties")
			for k, want := range map[string]string{"color": "red", "note": "two words", "pct": "100%", "empty": ""} {
				if got, ok := m.Properties[k]; !ok || got != want {
					e.Errorf("application property %q = %q (present %v), want %q", k, got, ok, want)
				}
			}
		},
	},
	{
		ID:          "d2c/qos2-closes",
		Requirement: "A PUBLISH at QoS 2 makes the hub close the connection (no PUBREC).",
		Section:     "docs/iothub-behavior.md §5, §10.8; " + docMQTT,
		Certainty:   "C",
		run: func(e *env) {
			c, _ := e.connect(e.dev, true)
			e.send(c, mqttraw.PublishPacket{Topic: iothub.TelemetryTopic(identityOf(e.dev), nil), Payload: []byte("q2"), QoS: 2, PacketID: 1})
			e.expectClosedSilently(c, "a QoS 2 PUBLISH")
		},
	},
	{
		ID:          "d2c/retain-mqtt-retain",
		Requirement: "Telemetry with RETAIN=1 is acknowledged and forwarded with the application property mqtt-retain=true.",
		Section:     "docs/iothub-behavior.md §4.1, §5, §10.9; " + docMQTT,
		Certainty:   "C",
		Needs:       []string{NeedTelemetryReader},
		run: func(e *env) {
			c, _ := e.connect(e.dev, true)
			if err := c.Publish(mqttraw.PublishPacket{Topic: iothub.TelemetryTopic(identityOf(e.dev), nil), Payload: []byte("retained"), QoS: 1, PacketID: 3, Retain: true}); err != nil {
				e.Fatalf("PUBLISH with RETAIN: %v", err)
			}
			e.readPacket(c, mqttraw.TypePuback, "PUBLISH with RETAIN=1")
			m := e.nextTelemetry(e.target.(TelemetryReader), "retained telemetry")
			if got := m.Properties["mqtt-retain"]; got != "true" {
				e.Errorf("application property mqtt-retain = %q, want \"true\" (properties %v)", got, m.Properties)
			}
		},
	},
	{
		ID:          "d2c/will-as-telemetry",
		Requirement: "A will on the telemetry topic is sent as telemetry stamped iothub-MessageType=Will when the connection drops without DISCONNECT.",
		Section:     "docs/iothub-behavior.md §4.1 (Will), §10.9; " + docMQTT,
		Certainty:   "C",
		Needs:       []string{NeedTelemetryReader},
		run: func(e *env) {
			p := e.connectPacket(e.dev, e.token(e.dev))
			p.Will = &mqttraw.Will{Topic: iothub.TelemetryTopic(identityOf(e.dev), nil), Payload: []byte("gone"), QoS: 1}
			ack, c, err := e.dial(p)
			if err != nil || ack.ReturnCode != 0 {
				e.Fatalf("CONNECT with a will on the telemetry topic: %v CONNACK %d, want CONNACK 0", err, ack.ReturnCode)
			}
			_ = c.Close() // no DISCONNECT: an abnormal close
			m := e.nextTelemetry(e.target.(TelemetryReader), "the will after an abnormal close")
			if string(m.Payload) != "gone" {
				e.Errorf("will telemetry body = %q, want %q", m.Payload, "gone")
			}
			if got := m.Properties["iothub-MessageType"]; got != "Will" {
				e.Errorf("application property iothub-MessageType = %q, want \"Will\" (properties %v)", got, m.Properties)
			}
		},
	},
	{
		ID:          "d2c/oversize-closes",
		Requirement: "Telemetry larger than 256 KB (body plus properties) makes the hub close the connection without PUBACK.",
		Section:     "docs/iothub-behavior.md §4.1 (message size), §10.10; learn.microsoft.com/azure/iot-hub/iot-hub-devguide-quotas-throttling",
		Certainty:   "O",
		run: func(e *env) {
			c, _ := e.connect(e.dev, true)
			body := bytes.Repeat([]byte("x"), iothub.MaxTelemetrySize+1)
			if err := c.Publish(mqttraw.PublishPacket{Topic: iothub.TelemetryTopic(identityOf(e.dev), nil), Payload: body, QoS: 1, PacketID: 9}); err != nil {
				e.Logf("the hub stopped reading during the oversized PUBLISH: %v", err)
			}
			e.expectClosedSilently(c, fmt.Sprintf("a %d-byte telemetry PUBLISH", len(body)))
		},
	},
	{
		ID:          "d2c/module-telemetry",
		Requirement: "A module publishes on devices/{deviceId}/modules/{moduleId}/messages/events/; the hub stamps iothub-connection-device-id and iothub-connection-module-id.",
		Section:     "docs/iothub-behavior.md §4.1 (modules; hub-added properties); " + docMQTT + " (as a module)",
		Certainty:   "C",
		Needs:       []string{NeedModuleProvisioner, NeedTelemetryReader},
		run: func(e *env) {
			dev, mod := e.target.(ModuleProvisioner).NewModule(e.t)
			c, _ := e.connect(mod, true)
			e.publish1(c, iothub.TelemetryTopic(identityOf(mod), nil), []byte("from a module"), 1)
			m := e.nextTelemetryOf(e.target.(TelemetryReader), dev.DeviceID, "module telemetry")
			if m.ModuleID != mod.ModuleID || m.Annotations[iothub.PropConnectionModuleID] != mod.ModuleID || m.Annotations[iothub.PropConnectionDeviceID] != dev.DeviceID {
				e.Errorf("module telemetry: module %q, annotations %v; want module %q with iothub-connection-device-id=%s and iothub-connection-module-id=%s",
					m.ModuleID, m.Annotations, mod.ModuleID, dev.DeviceID, mod.ModuleID)
			}
		},
	},
}

var topicCases = []Case{
	{
		ID:          "topic/publish-other-device-closes",
		Requirement: "A PUBLISH to another device's telemetry topic makes the hub close the connection without PUBACK.",
		Section:     "docs/iothub-behavior.md §4.5, §10.15",
		Certainty:   "I",
		run: func(e *env) {
			e.publishExpectClose(iothub.TelemetryTopic(iothub.Identity{DeviceID: e.dev.DeviceID + "-other"}, nil), []byte("spoof"))
		},
	},
	{
		ID:          "topic/subscribe-unsupported-closes",
		Requirement: "A SUBSCRIBE to a filter IoT Hub does not support makes the hub close the connection (no SUBACK, not even 0x80).",
		Section:     "docs/iothub-behavior.md §4.5, §10.15; Azure/azure-iot-middleware-freertos#89",
		Certainty:   "O",
		run: func(e *env) {
			c, _ := e.connect(e.dev, true)
			filter := "devices/" + e.dev.DeviceID + "/messages/events/#"
			if err := c.Subscribe(1, mqttraw.Subscription{Filter: filter, QoS: 1}); err != nil {
				e.Fatalf("SUBSCRIBE %q: %v", filter, err)
			}
			e.expectClosedSilently(c, "a SUBSCRIBE to "+filter)
		},
	},
	{
		ID:          "topic/wildcard-in-topic-name-closes",
		Requirement: "A PUBLISH whose topic name contains a wildcard ('#') makes the hub close the connection.",
		Section:     "docs/iothub-behavior.md §4.5 (wildcards); MQTT 3.1.1 §4.7.1",
		Certainty:   "C/I",
		run: func(e *env) {
			e.publishExpectClose("devices/"+e.dev.DeviceID+"/messages/events/#", []byte("w"))
		},
	},
	{
		ID:          "subscribe/iothub-filters",
		Requirement: "The documented $iothub filters (twin responses, desired-property patches, methods) are accepted with a SUBACK that grants them (not 0x80) and the connection stays open.",
		Section:     "docs/iothub-behavior.md §4.3, §4.4; " + docMQTT,
		Certainty:   "C",
		run: func(e *env) {
			c, _ := e.connect(e.dev, true)
			filters := []string{iothub.TwinResponseFilter, iothub.TwinDesiredFilter, iothub.MethodsFilter}
			for i, f := range filters {
				if err := c.Subscribe(uint16(10+i), mqttraw.Subscription{Filter: f, QoS: 0}); err != nil {
					e.Fatalf("SUBSCRIBE %q: %v", f, err)
				}
				p := e.readPacket(c, mqttraw.TypeSuback, "SUBSCRIBE "+f)
				if len(p.Suback.Codes) != 1 || p.Suback.Codes[0] > 1 {
					e.Errorf("SUBACK for %q = %v, want [0] or [1]", f, p.Suback.Codes)
				}
			}
		},
	},
	{
		ID:          "subscribe/unsubscribe-unsuback",
		Requirement: "UNSUBSCRIBE of the C2D filter is answered with UNSUBACK.",
		Section:     "docs/iothub-behavior.md §4.5 (UNSUBSCRIBE)",
		Certainty:   "I",
		run: func(e *env) {
			c, _ := e.connect(e.dev, true)
			filter := iothub.C2DFilter(identityOf(e.dev))
			e.subscribe(c, filter, 1, 1)
			if err := c.Unsubscribe(21, filter); err != nil {
				e.Fatalf("UNSUBSCRIBE %q: %v", filter, err)
			}
			if p := e.readPacket(c, mqttraw.TypeUnsuback, "UNSUBSCRIBE "+filter); p.Unsuback.PacketID != 21 {
				e.Errorf("UNSUBACK packet ID = %d, want 21", p.Unsuback.PacketID)
			}
		},
	},
	{
		ID:          "subscribe/qos2-granted-1",
		Requirement: "A SUBSCRIBE to the C2D filter at QoS 2 is granted QoS 1.",
		Section:     "docs/iothub-behavior.md §4.2, §5, §10.8; " + docMQTT,
		Certainty:   "C",
		run: func(e *env) {
			c, _ := e.connect(e.dev, true)
			e.subscribe(c, iothub.C2DFilter(identityOf(e.dev)), 2, 1)
		},
	},
}

// nextTelemetry reads the case device's next telemetry message.
func (e *env) nextTelemetry(tr TelemetryReader, what string) iothub.Event {
	e.t.Helper()
	return e.nextTelemetryOf(tr, e.dev.DeviceID, what)
}

func (e *env) nextTelemetryOf(tr TelemetryReader, deviceID, what string) iothub.Event {
	e.t.Helper()
	ctx, cancel := context.WithTimeout(e.ctx, answerWithin)
	defer cancel()
	m, err := tr.NextTelemetry(ctx, deviceID)
	if err != nil {
		e.Fatalf("%s: reading it on the service side: %v", what, err)
	}
	if !strings.EqualFold(m.DeviceID, deviceID) {
		e.Errorf("%s: telemetry device ID = %q, want %q", what, m.DeviceID, deviceID)
	}
	return m
}

// publishExpectClose publishes at QoS 1 to a topic the hub must not accept
// and checks that it closes the connection without PUBACK.
func (e *env) publishExpectClose(topic string, payload []byte) {
	e.t.Helper()
	c, _ := e.connect(e.dev, true)
	e.send(c, mqttraw.PublishPacket{Topic: topic, Payload: payload, QoS: 1, PacketID: 1})
	e.expectClosedSilently(c, "a PUBLISH to "+topic)
}

func (e *env) send(c *mqttraw.Conn, p mqttraw.PublishPacket) {
	e.t.Helper()
	if err := c.Publish(p); err != nil {
		e.Fatalf("PUBLISH %q QoS %d: %v", p.Topic, p.QoS, err)
	}
}
