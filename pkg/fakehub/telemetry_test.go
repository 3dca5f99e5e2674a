package fakehub_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/hubkit/hubkit/internal/mqttraw"
	"github.com/hubkit/hubkit/internal/testutil"
	"github.com/hubkit/hubkit/pkg/fakehub"
	"github.com/hubkit/hubkit/pkg/iothub"
	"github.com/hubkit/hubkit/pkg/sas"
)

func TestTelemetryCapture(t *testing.T) {
	h := startHub(t, fakehub.Options{})
	st := h.Telemetry()
	user := "localhost/dev1/?api-version=2021-04-12&model-id=dtmi%3Acom%3Aexample%3AThermostat%3B1"
	r, err := pahoConnect(t, h, dev1, user, deviceToken("localhost", dev1, keyDev1A))
	if err != nil {
		t.Fatal(err)
	}
	topic := "devices/dev1/messages/events/%24.mid=m-1&%24.ct=application%2Fjson&$.ce=utf-8&temp%20unit=deg%20C&empty=&flag"
	if tok := r.c.Publish(topic, 1, false, `{"t":21.5}`); !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
		t.Fatalf("publish: %v", tok.Error())
	}
	m := nextMessage(t, st)
	gen, _ := h.Registry().Get(iothub.Identity{DeviceID: "dev1"})
	want := iothub.Event{
		DeviceID:         "dev1",
		Topic:            topic,
		Payload:          []byte(`{"t":21.5}`),
		SystemProperties: map[string]string{"$.mid": "m-1", "$.ct": "application/json", "$.ce": "utf-8"},
		Properties:       map[string]string{"temp unit": "deg C", "empty": "", "flag": ""},
		Annotations: map[string]string{
			"iothub-connection-device-id":          "dev1",
			"iothub-connection-auth-method":        `{"scope":"device","type":"sas","issuer":"iothub","acceptingIpFilterRule":null}`,
			"iothub-connection-auth-generation-id": gen.GenerationID,
			"iothub-message-source":                "Telemetry",
			"dt-dataschema":                        "dtmi:com:example:Thermostat;1",
		},
	}
	enq, err := time.Parse(time.RFC3339Nano, m.Annotations["iothub-enqueuedtime"])
	if err != nil || !enq.Equal(m.EnqueuedTime) || time.Since(enq) > time.Minute {
		t.Errorf("iothub-enqueuedtime %q, EnqueuedTime %v", m.Annotations["iothub-enqueuedtime"], m.EnqueuedTime)
	}
	delete(m.Annotations, "iothub-enqueuedtime")
	if m.SequenceNumber == 0 {
		t.Error("SequenceNumber 0")
	}
	m.EnqueuedTime, m.SequenceNumber = time.Time{}, 0
	if diff := cmp.Diff(want, m); diff != "" {
		t.Errorf("message (-want +got):\n%s", diff)
	}
}

func TestTelemetryAnnotationsByAuth(t *testing.T) {
	h := startHub(t, fakehub.Options{})
	pol, _ := h.Registry().Policy("device")
	polKey, _ := sas.DecodeKey(pol.PrimaryKey)
	tests := []struct {
		name, password string
		id             iothub.Identity
		scope          string
	}{
		{"module-key", deviceToken("localhost", mod1, keyModA), mod1, "module"},
		{"policy-token", token("localhost/devices/dev2", "device", polKey, time.Now().Add(time.Hour)), dev2, "hub"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			st := h.Telemetry().ForDevice(tt.id.DeviceID, tt.id.ModuleID)
			p := goodConnect(tt.id, nil)
			p.Password = mqttraw.String(tt.password)
			c := rawSession(t, h, p)
			if err := c.Publish(mqttraw.PublishPacket{Topic: iothub.TelemetryTopic(tt.id, nil), Payload: []byte("x")}); err != nil {
				t.Fatal(err)
			}
			m := nextMessage(t, st)
			var am struct{ Scope, Type string }
			if err := json.Unmarshal([]byte(m.Annotations["iothub-connection-auth-method"]), &am); err != nil || am.Scope != tt.scope || am.Type != "sas" {
				t.Errorf("auth method %q, want scope %q", m.Annotations["iothub-connection-auth-method"], tt.scope)
			}
			if got := m.Annotations["iothub-connection-module-id"]; got != tt.id.ModuleID {
				t.Errorf("module id annotation %q, want %q", got, tt.id.ModuleID)
			}
		})
	}
}

func TestRetainDupAndWill(t *testing.T) {
	h := startHub(t, fakehub.Options{})
	t.Run("retain-not-stored-but-flagged", func(t *testing.T) {
		st := h.Telemetry()
		c := rawSession(t, h, goodConnect(dev1, keyDev1A))
		if err := c.Publish(mqttraw.PublishPacket{Topic: "devices/dev1/messages/events/", Retain: true, Dup: true, QoS: 1, PacketID: 3, Payload: []byte("r")}); err != nil {
			t.Fatal(err)
		}
		m := nextMessage(t, st)
		if m.Properties["mqtt-retain"] != "true" || m.Properties["mqtt-dup"] != "true" {
			t.Errorf("properties %v, want mqtt-retain and mqtt-dup", m.Properties)
		}
		// A subscriber gets no retained message (only C2D filters are allowed anyway).
		s := rawSession(t, h, goodConnect(mod1, keyModA))
		if err := s.Subscribe(1, mqttraw.Subscription{Filter: "devices/dev1/modules/mod1/messages/devicebound/#", QoS: 1}); err != nil {
			t.Fatal(err)
		}
		if p, err := s.ReadPacket(5 * time.Second); err != nil || p.Type != mqttraw.TypeSuback {
			t.Fatalf("got %v %v", p, err)
		}
		if p, err := s.ReadPacket(100 * time.Millisecond); !errors.Is(err, mqttraw.ErrTimeout) {
			t.Errorf("got %v %v after SUBACK, want nothing", p, err)
		}
	})
	t.Run("will-on-network-loss-is-telemetry", func(t *testing.T) {
		st := h.Telemetry().ForDevice("dev2", "")
		p := goodConnect(dev2, keyDev2A)
		p.Will = &mqttraw.Will{Topic: "devices/dev2/messages/events/k=v", Payload: []byte("gone"), QoS: 2, Retain: true}
		c := rawSession(t, h, p)
		_ = c.Close()
		m := nextMessage(t, st)
		if string(m.Payload) != "gone" || m.Properties["iothub-MessageType"] != "Will" || m.Properties["k"] != "v" {
			t.Errorf("will message %+v", m)
		}
	})
	t.Run("empty-will-payload-accepted", func(t *testing.T) {
		st := h.Telemetry().ForDevice("dev2", "")
		p := goodConnect(dev2, keyDev2A)
		p.Will = &mqttraw.Will{Topic: "devices/dev2/messages/events/"}
		c := rawSession(t, h, p)
		_ = c.Close()
		if m := nextMessage(t, st); len(m.Payload) != 0 || m.Properties["iothub-MessageType"] != "Will" {
			t.Errorf("will message %+v", m)
		}
	})
	t.Run("no-will-after-disconnect", func(t *testing.T) {
		p := goodConnect(dev2, keyDev2A)
		p.Will = &mqttraw.Will{Topic: "devices/dev2/messages/events/", Payload: []byte("x")}
		c := rawSession(t, h, p)
		before := len(h.TelemetrySince(0).All())
		if err := c.Disconnect(); err != nil {
			t.Fatal(err)
		}
		expectClosedSilently(t, c)
		testutil.Eventually(t, "session gone", func() bool { return !h.Connected(dev2) })
		if n := len(h.TelemetrySince(0).All()); n != before {
			t.Errorf("%d messages after DISCONNECT, want %d", n, before)
		}
	})
}

func TestStream(t *testing.T) {
	h := startHub(t, fakehub.Options{TelemetryBuffer: 3})
	c := rawSession(t, h, goodConnect(dev1, keyDev1A))
	early := h.Telemetry()
	for i := range 5 {
		if err := c.Publish(mqttraw.PublishPacket{Topic: "devices/dev1/messages/events/", QoS: 1, PacketID: uint16(i + 1), Payload: []byte(fmt.Sprint(i))}); err != nil {
			t.Fatal(err)
		}
		if p, err := c.ReadPacket(5 * time.Second); err != nil || p.Type != mqttraw.TypePuback {
			t.Fatalf("got %v %v", p, err)
		}
	}
	if got := h.Dropped(); got != 2 {
		t.Errorf("Dropped() = %d, want 2", got)
	}
	var got []string
	for _, m := range h.TelemetrySince(0).All() {
		got = append(got, string(m.Payload))
	}
	if diff := cmp.Diff([]string{"2", "3", "4"}, got); diff != "" {
		t.Errorf("retained (-want +got):\n%s", diff)
	}
	// A reader that fell behind skips what was evicted.
	if m := nextMessage(t, early); string(m.Payload) != "2" || m.SequenceNumber != 3 {
		t.Errorf("first message for a late reader: %q seq %d", m.Payload, m.SequenceNumber)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if _, err := h.Telemetry().Next(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Next on an empty stream: %v, want deadline exceeded", err)
	}
	if n := len(h.Telemetry().ForDevice("dev2", "").All()); n != 0 {
		t.Errorf("dev2 has %d messages", n)
	}
}
