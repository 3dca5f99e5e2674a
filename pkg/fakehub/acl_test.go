package fakehub_test

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/hubkit/hubkit/internal/mqttraw"
	"github.com/hubkit/hubkit/pkg/fakehub"
	"github.com/hubkit/hubkit/pkg/iothub"
	"github.com/hubkit/hubkit/pkg/sas"
)

func TestPublishRules(t *testing.T) {
	h := startHub(t, fakehub.Options{})
	big := bytes.Repeat([]byte("x"), iothub.MaxTelemetrySize)
	tests := []struct {
		name   string
		id     iothub.Identity
		pub    mqttraw.PublishPacket
		reason sas.Reason // "" = accepted (PUBACK for QoS 1)
	}{
		{"telemetry", dev1, mqttraw.PublishPacket{Topic: "devices/dev1/messages/events/", QoS: 1, PacketID: 1}, ""},
		{"telemetry-without-slash", dev1, mqttraw.PublishPacket{Topic: "devices/dev1/messages/events", QoS: 1, PacketID: 1}, ""},
		{"telemetry-with-bag", dev1, mqttraw.PublishPacket{Topic: "devices/dev1/messages/events/%24.mid=1&a=b", QoS: 1, PacketID: 1}, ""},
		{"module-telemetry", mod1, mqttraw.PublishPacket{Topic: "devices/dev1/modules/mod1/messages/events/", QoS: 1, PacketID: 1}, ""},
		{"twin-get", dev1, mqttraw.PublishPacket{Topic: "$iothub/twin/GET/?$rid=1", QoS: 0}, ""},
		{"twin-patch", dev1, mqttraw.PublishPacket{Topic: "$iothub/twin/PATCH/properties/reported/?$rid=2", Payload: []byte(`{}`), QoS: 1, PacketID: 2}, ""},
		{"method-response", dev1, mqttraw.PublishPacket{Topic: "$iothub/methods/res/200/?$rid=3", QoS: 1, PacketID: 3}, ""},
		{"exactly-256-kb", dev1, mqttraw.PublishPacket{Topic: "devices/dev1/messages/events/", Payload: big, QoS: 1, PacketID: 4}, ""},
		{"over-256-kb-with-properties", dev1, mqttraw.PublishPacket{Topic: "devices/dev1/messages/events/a=b", Payload: big, QoS: 1, PacketID: 4}, fakehub.ReasonMessageTooLarge},
		{"qos-2", dev1, mqttraw.PublishPacket{Topic: "devices/dev1/messages/events/", QoS: 2, PacketID: 5}, fakehub.ReasonQoS2Publish},
		{"other-device-telemetry-qos-0", dev1, mqttraw.PublishPacket{Topic: "devices/dev2/messages/events/"}, fakehub.ReasonTopicForbidden},
		{"other-device-telemetry-qos-1", dev1, mqttraw.PublishPacket{Topic: "devices/dev2/messages/events/", QoS: 1, PacketID: 6}, fakehub.ReasonTopicForbidden},
		{"device-prefix-of-other", dev1, mqttraw.PublishPacket{Topic: "devices/dev10/messages/events/"}, fakehub.ReasonTopicForbidden},
		{"module-publishing-device-topic", mod1, mqttraw.PublishPacket{Topic: "devices/dev1/messages/events/"}, fakehub.ReasonTopicForbidden},
		{"unknown-topic", dev1, mqttraw.PublishPacket{Topic: "hello/world"}, fakehub.ReasonTopicForbidden},
		{"c2d-topic", dev1, mqttraw.PublishPacket{Topic: "devices/dev1/messages/devicebound/"}, fakehub.ReasonTopicForbidden},
		{"wildcard-plus", dev1, mqttraw.PublishPacket{Topic: "devices/+/messages/events/"}, fakehub.ReasonTopicForbidden},
		{"wildcard-hash", dev1, mqttraw.PublishPacket{Topic: "devices/dev1/messages/events/#"}, fakehub.ReasonTopicForbidden},
		{"twin-get-without-rid", dev1, mqttraw.PublishPacket{Topic: "$iothub/twin/GET/"}, fakehub.ReasonTopicForbidden},
		{"method-response-bad-status", dev1, mqttraw.PublishPacket{Topic: "$iothub/methods/res/ok/?$rid=1"}, fakehub.ReasonTopicForbidden},
		{"desired-patch-from-device", dev1, mqttraw.PublishPacket{Topic: "$iothub/twin/PATCH/properties/desired/?$version=2"}, fakehub.ReasonTopicForbidden},
		{"malformed-bag", dev1, mqttraw.PublishPacket{Topic: "devices/dev1/messages/events/a=%zz"}, fakehub.ReasonTopicForbidden},
	}
	bystander := rawSession(t, h, goodConnect(dev2, keyDev2A))
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			key := keyDev1A
			if tt.id.IsModule() {
				key = keyModA
			}
			mark := len(h.Rejections())
			c := rawSession(t, h, goodConnect(tt.id, key))
			if err := c.Publish(tt.pub); err != nil {
				t.Fatal(err)
			}
			if tt.reason != "" {
				expectClosedSilently(t, c)
				r := waitRejection(t, h, mark, tt.reason)
				if r.Identity() != tt.id || r.Detail == "" {
					t.Errorf("rejection %+v", r)
				}
				return
			}
			if tt.pub.QoS == 0 {
				expectPing(t, c)
				return
			}
			p, err := c.ReadPacket(5 * time.Second)
			if err != nil || p.Type != mqttraw.TypePuback || p.Puback.PacketID != tt.pub.PacketID {
				t.Fatalf("got %v, %v; want PUBACK %d", p, err, tt.pub.PacketID)
			}
		})
	}
	t.Run("bystander-undisturbed", func(t *testing.T) { expectPing(t, bystander) })
}

// expectPing checks the connection is alive (PINGREQ answered).
func expectPing(t testing.TB, c *mqttraw.Conn) {
	t.Helper()
	if err := c.Pingreq(); err != nil {
		t.Fatal(err)
	}
	p, err := c.ReadPacket(5 * time.Second)
	if err != nil || p.Type != mqttraw.TypePingresp {
		t.Fatalf("got %v, %v; want PINGRESP", p, err)
	}
}

func TestSubscribeRules(t *testing.T) {
	h := startHub(t, fakehub.Options{})
	tests := []struct {
		name    string
		id      iothub.Identity
		filters []mqttraw.Subscription
		granted []byte // nil: the connection is closed
	}{
		{"all-device-filters", dev1, []mqttraw.Subscription{
			{Filter: "devices/dev1/messages/devicebound/#", QoS: 1},
			{Filter: "$iothub/twin/res/#", QoS: 0},
			{Filter: "$iothub/twin/PATCH/properties/desired/#", QoS: 0},
			{Filter: "$iothub/methods/POST/#", QoS: 0},
		}, []byte{1, 0, 0, 0}},
		{"c2d-plus-device-segment", dev1, []mqttraw.Subscription{{Filter: "devices/+/messages/devicebound/#", QoS: 1}}, []byte{1}},
		{"qos-2-granted-1", dev1, []mqttraw.Subscription{{Filter: "devices/dev1/messages/devicebound/#", QoS: 2}}, []byte{1}},
		{"module-c2d", mod1, []mqttraw.Subscription{{Filter: "devices/dev1/modules/mod1/messages/devicebound/#", QoS: 1}}, []byte{1}},
		{"other-device-c2d", dev1, []mqttraw.Subscription{{Filter: "devices/dev2/messages/devicebound/#", QoS: 1}}, nil},
		{"everything", dev1, []mqttraw.Subscription{{Filter: "#", QoS: 0}}, nil},
		{"telemetry-topic", dev1, []mqttraw.Subscription{{Filter: "devices/dev1/messages/events/#", QoS: 0}}, nil},
		{"c2d-sub-topic", dev1, []mqttraw.Subscription{{Filter: "devices/dev1/messages/devicebound/x", QoS: 0}}, nil},
		{"one-bad-among-good", dev1, []mqttraw.Subscription{
			{Filter: "$iothub/twin/res/#", QoS: 0}, {Filter: "$SYS/#", QoS: 0}}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			key := keyDev1A
			if tt.id.IsModule() {
				key = keyModA
			}
			mark := len(h.Rejections())
			c := rawSession(t, h, goodConnect(tt.id, key))
			if err := c.Subscribe(7, tt.filters...); err != nil {
				t.Fatal(err)
			}
			if tt.granted == nil {
				expectClosedSilently(t, c)
				waitRejection(t, h, mark, fakehub.ReasonSubscribeForbidden)
				return
			}
			p, err := c.ReadPacket(5 * time.Second)
			if err != nil || p.Type != mqttraw.TypeSuback || !bytes.Equal(p.Suback.Codes, tt.granted) {
				t.Fatalf("got %v %v, want SUBACK %v", p, err, tt.granted)
			}
		})
	}
}

func TestACLQuirks(t *testing.T) {
	t.Run("suback-0x80-on-forbidden-subscribe", func(t *testing.T) {
		h := startHub(t, fakehub.Options{Quirks: fakehub.Quirks{SubackOnForbiddenSubscribe: true}})
		c := rawSession(t, h, goodConnect(dev1, keyDev1A))
		if err := c.Subscribe(1, mqttraw.Subscription{Filter: "$iothub/twin/res/#"}, mqttraw.Subscription{Filter: "devices/dev2/messages/devicebound/#", QoS: 1}); err != nil {
			t.Fatal(err)
		}
		p, err := c.ReadPacket(5 * time.Second)
		if err != nil || p.Type != mqttraw.TypeSuback || !bytes.Equal(p.Suback.Codes, []byte{0, 0x80}) {
			t.Fatalf("got %v %v, want SUBACK [0 0x80]", p, err)
		}
		expectPing(t, c)
	})
	t.Run("ignore-forbidden-publish", func(t *testing.T) {
		h := startHub(t, fakehub.Options{Quirks: fakehub.Quirks{IgnoreForbiddenPublish: true}})
		c := rawSession(t, h, goodConnect(dev1, keyDev1A))
		if err := c.Publish(mqttraw.PublishPacket{Topic: "devices/dev2/messages/events/", QoS: 1, PacketID: 9}); err != nil {
			t.Fatal(err)
		}
		p, err := c.ReadPacket(5 * time.Second)
		if err != nil || p.Type != mqttraw.TypePuback {
			t.Fatalf("got %v %v, want PUBACK", p, err)
		}
		if n := len(h.TelemetrySince(0).All()); n != 0 {
			t.Errorf("%d messages captured, want 0", n)
		}
	})
	t.Run("question-mark-before-bag", func(t *testing.T) {
		h := startHub(t, fakehub.Options{Quirks: fakehub.Quirks{AcceptLeadingQuestionMarkInBag: true}})
		st := h.Telemetry()
		c := rawSession(t, h, goodConnect(dev1, keyDev1A))
		if err := c.Publish(mqttraw.PublishPacket{Topic: "devices/dev1/messages/events/?a=b"}); err != nil {
			t.Fatal(err)
		}
		m := nextMessage(t, st)
		if m.Properties["a"] != "b" {
			t.Errorf("properties %v, want a=b", m.Properties)
		}
	})
}

func TestMalformedInputNeverCrashes(t *testing.T) {
	h := startHub(t, fakehub.Options{})
	garbage := [][]byte{
		{0x30, 0xff, 0xff, 0xff, 0xff, 0x7f}, // bad remaining length
		{0x30, 0x03, 0x00, 0x05, 'a'},        // topic longer than the packet
		{0x82, 0x03, 0x00, 0x01, 0x00},       // subscribe without filters
		{0xf0, 0x00},                         // reserved type
		{0x32, 0x04, 0x00, 0x01, 'a', 0x00},  // publish QoS 1 with truncated packet id
	}
	for i, g := range garbage {
		c := rawSession(t, h, goodConnect(dev1, keyDev1A))
		if err := c.WriteRaw(g); err != nil {
			t.Fatal(err)
		}
		if err := c.ExpectClosed(5 * time.Second); err != nil {
			t.Errorf("garbage %d (% x): %v", i, g, err)
		}
	}
	for _, pw := range []string{"SharedAccessSignature ", "SharedAccessSignature sr=%zz&sig=a&se=1", "SharedAccessSignature sr=a&sig=%&se=99999999999999999999", strings.Repeat("&", 5000)} {
		p := goodConnect(dev1, keyDev1A)
		p.Password = mqttraw.String(pw)
		ack, _ := rawConnect(t, h, p)
		if ack.ReturnCode != 5 {
			t.Errorf("password %.40q: CONNACK %d, want 5", pw, ack.ReturnCode)
		}
	}
	expectPing(t, rawSession(t, h, goodConnect(dev2, keyDev2A)))
}
