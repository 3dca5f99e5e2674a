package fakehub_test

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"

	"github.com/hubkit/hubkit/internal/testutil"
	"github.com/hubkit/hubkit/pkg/fakehub"
	"github.com/hubkit/hubkit/pkg/iothub"
)

func TestC2DReceiveWithProperties(t *testing.T) {
	h := startHub(t, fakehub.Options{})
	d := connectDevice(t, h, dev1, keyDev1A, true)
	d.subscribe(t, iothub.C2DFilter(dev1), 1)
	exp := time.Now().Add(30 * time.Minute).UTC().Truncate(time.Second)
	msgID := sendC2D(t, h, dev1, iothub.C2DMessage{
		MessageID: "m1", CorrelationID: "c1", UserID: "u1", ContentType: "application/json", ContentEncoding: "utf-8",
		Ack: "full", ExpiryTime: exp, Properties: iothub.Properties{{Key: "color", Value: "red"}, {Key: "a b", Value: "x/y&z"}},
		Payload: []byte(`{"on":true}`),
	})
	if msgID != "m1" {
		t.Errorf("SendC2D returned %q, want m1", msgID)
	}
	m := d.next(t)
	id, props, err := iothub.ParseC2DTopic(m.Topic())
	if err != nil || id != dev1 {
		t.Fatalf("ParseC2DTopic(%q) = %v, %v", m.Topic(), id, err)
	}
	if m.Qos() != 1 || string(m.Payload()) != `{"on":true}` {
		t.Errorf("got QoS %d payload %q", m.Qos(), m.Payload())
	}
	want := map[string]string{
		"$.mid": "m1", "$.cid": "c1", "$.uid": "u1", "$.ct": "application/json", "$.ce": "utf-8",
		"$.to": "/devices/dev1/messages/deviceBound", "$.exp": exp.Format(time.RFC3339), "iothub-ack": "full",
		"color": "red", "a b": "x/y&z",
	}
	for k, v := range want {
		if got, ok := props.Get(k); !ok || got != v {
			t.Errorf("property %q = %q, %v; want %q (topic %s)", k, got, ok, v, m.Topic())
		}
	}
	rec := waitState(t, h, "m1", iothub.C2DCompleted)
	if rec.DeliveryCount != 1 || rec.Identity() != dev1 {
		t.Errorf("record %+v", rec)
	}

	t.Run("qos0-subscription", func(t *testing.T) {
		d2 := connectDevice(t, h, dev2, keyDev2A, true)
		d2.subscribe(t, "devices/+/messages/devicebound/#", 0)
		id := sendC2D(t, h, dev2, iothub.C2DMessage{Payload: []byte("hi")})
		if m := d2.next(t); m.Qos() != 0 || string(m.Payload()) != "hi" || !strings.Contains(m.Topic(), "%24.mid="+id) {
			t.Errorf("got %s QoS %d %q", m.Topic(), m.Qos(), m.Payload())
		}
		waitState(t, h, id, iothub.C2DCompleted)
	})
	t.Run("module", func(t *testing.T) {
		dm := connectDevice(t, h, mod1, keyModA, true)
		dm.subscribe(t, iothub.C2DFilter(mod1), 1)
		id := sendC2D(t, h, mod1, iothub.C2DMessage{Payload: []byte("to module")})
		m := dm.next(t)
		if got, _, err := iothub.ParseC2DTopic(m.Topic()); err != nil || got != mod1 {
			t.Errorf("module C2D topic %q: %v %v", m.Topic(), got, err)
		}
		waitState(t, h, id, iothub.C2DCompleted)
	})
}

func TestC2DCompleteOnlyOnPuback(t *testing.T) {
	h := startHub(t, fakehub.Options{})
	noAck := func(o *paho.ClientOptions) { o.SetAutoAckDisabled(true) }
	d := connectDevice(t, h, dev1, keyDev1A, true, noAck)
	d.subscribe(t, iothub.C2DFilter(dev1), 1)
	id := sendC2D(t, h, dev1, iothub.C2DMessage{Payload: []byte("one")})
	d.next(t)
	if rec, _ := h.C2DState(id); rec.State != iothub.C2DDelivered {
		t.Fatalf("state before PUBACK = %s, want delivered", rec.State)
	}

	t.Run("redelivered-after-disconnect-before-puback", func(t *testing.T) {
		d.disconnect(t, h)
		waitState(t, h, id, iothub.C2DQueued)
		d2 := connectDevice(t, h, dev1, keyDev1A, true)
		d2.subscribe(t, iothub.C2DFilter(dev1), 1)
		m2 := d2.next(t)
		if string(m2.Payload()) != "one" {
			t.Fatalf("redelivered %q, want one", m2.Payload())
		}
		rec := waitState(t, h, id, iothub.C2DCompleted)
		if rec.DeliveryCount != 2 {
			t.Errorf("DeliveryCount = %d, want 2", rec.DeliveryCount)
		}
		id2 := sendC2D(t, h, dev1, iothub.C2DMessage{Payload: []byte("two")})
		if m := d2.next(t); string(m.Payload()) != "two" {
			t.Errorf("after the redelivery got %q, want two (no duplicate)", m.Payload())
		}
		waitState(t, h, id2, iothub.C2DCompleted)
	})
}

// TestC2DCleanSessionFalse: a clean=false session keeps its subscription;
// queued messages flow right after CONNACK (session present), an
// unacknowledged one exactly once.
func TestC2DCleanSessionFalse(t *testing.T) {
	h := startHub(t, fakehub.Options{})
	noAck := func(o *paho.ClientOptions) { o.SetAutoAckDisabled(true) }
	d := connectDevice(t, h, dev1, keyDev1A, false, noAck)
	d.subscribe(t, iothub.C2DFilter(dev1), 1)
	inflight := sendC2D(t, h, dev1, iothub.C2DMessage{Payload: []byte("unacked")})
	d.next(t)
	d.disconnect(t, h)
	queued := sendC2D(t, h, dev1, iothub.C2DMessage{Payload: []byte("queued")})

	d2 := connectDevice(t, h, dev1, keyDev1A, false)
	if !d2.sessionPresent {
		t.Error("CONNACK session present = 0 for a clean=false reconnect, want 1")
	}
	for _, want := range []string{"unacked", "queued"} {
		if m := d2.next(t); string(m.Payload()) != want {
			t.Fatalf("got %q, want %q (before any SUBSCRIBE)", m.Payload(), want)
		}
	}
	waitState(t, h, inflight, iothub.C2DCompleted)
	waitState(t, h, queued, iothub.C2DCompleted)
	if rec, _ := h.C2DState(inflight); rec.DeliveryCount != 2 {
		t.Errorf("DeliveryCount = %d, want 2", rec.DeliveryCount)
	}
	last := sendC2D(t, h, dev1, iothub.C2DMessage{Payload: []byte("last")})
	if m := d2.next(t); string(m.Payload()) != "last" {
		t.Errorf("got %q, want last (no duplicate from mochi's inflight store)", m.Payload())
	}
	waitState(t, h, last, iothub.C2DCompleted)
}

// TestC2DCleanSessionTrue: a clean=true reconnect drops the subscription;
// queued messages wait until the device subscribes again.
func TestC2DCleanSessionTrue(t *testing.T) {
	h := startHub(t, fakehub.Options{})
	d := connectDevice(t, h, dev1, keyDev1A, false)
	d.subscribe(t, iothub.C2DFilter(dev1), 1)
	d.disconnect(t, h)
	id := sendC2D(t, h, dev1, iothub.C2DMessage{Payload: []byte("later")})

	d2 := connectDevice(t, h, dev1, keyDev1A, true)
	if d2.sessionPresent {
		t.Error("CONNACK session present = 1 for a clean=true connection")
	}
	// A twin round trip as a barrier: anything the hub sent at CONNACK
	// time arrives before the twin answer.
	d2.subscribe(t, iothub.TwinResponseFilter, 0)
	d2.publish(t, iothub.TwinGetTopic("1"), "")
	if m := d2.next(t); !strings.HasPrefix(m.Topic(), "$iothub/twin/res/200/") {
		t.Fatalf("got %s %q before SUBSCRIBE, want only the twin answer", m.Topic(), m.Payload())
	}
	if rec, _ := h.C2DState(id); rec.State != iothub.C2DQueued {
		t.Fatalf("state = %s, want queued until SUBSCRIBE", rec.State)
	}
	d2.subscribe(t, iothub.C2DFilter(dev1), 1)
	if m := d2.next(t); string(m.Payload()) != "later" {
		t.Errorf("got %q after SUBSCRIBE", m.Payload())
	}
	waitState(t, h, id, iothub.C2DCompleted)
}

func TestC2DQueueLimit(t *testing.T) {
	h := startHub(t, fakehub.Options{})
	for i := range iothub.MaxC2DQueueDepth {
		if _, err := h.SendC2D(context.Background(), "dev1", iothub.C2DMessage{Payload: []byte{byte(i)}}); err != nil {
			t.Fatalf("message %d: %v", i+1, err)
		}
	}
	_, err := h.SendC2D(context.Background(), "dev1", iothub.C2DMessage{Payload: []byte("51st")})
	var se *iothub.Error
	if !errors.Is(err, iothub.ErrQueueFull) || !errors.As(err, &se) || se.Status() != http.StatusForbidden || se.Code != 403004 {
		t.Fatalf("51st message: %v, want 403004 ErrQueueFull", err)
	}
	if n := len(h.C2DMessages(dev1)); n != 50 {
		t.Errorf("C2DMessages = %d records, want 50", n)
	}
	// The queue drains to the device in order; then there is room again.
	d := connectDevice(t, h, dev1, keyDev1A, true)
	d.subscribe(t, iothub.C2DFilter(dev1), 1)
	for i := range 50 {
		if m := d.next(t); m.Payload()[0] != byte(i) {
			t.Fatalf("message %d: got %v (FIFO)", i, m.Payload())
		}
	}
	testutil.Eventually(t, "queue drained", func() bool {
		_, err := h.SendC2D(context.Background(), "dev1", iothub.C2DMessage{Payload: []byte("room")})
		return err == nil
	})
	if _, err := h.SendC2D(context.Background(), "nobody", iothub.C2DMessage{}); !errors.Is(err, iothub.ErrDeviceNotFound) {
		t.Errorf("SendC2D to an unknown device: %v, want ErrDeviceNotFound", err)
	}
	if _, err := h.SendC2D(context.Background(), "dev2", iothub.C2DMessage{Payload: make([]byte, 65*1024)}); !errors.Is(err, iothub.ErrMessageTooLarge) {
		t.Errorf("65 KB message: %v, want ErrMessageTooLarge", err)
	}
}

func TestC2DExpiry(t *testing.T) {
	clock := testutil.NewClock(time.Now())
	h := startHub(t, fakehub.Options{Now: clock.Now})
	def := sendC2D(t, h, dev1, iothub.C2DMessage{Payload: []byte("default ttl")})
	short := sendC2D(t, h, dev1, iothub.C2DMessage{Payload: []byte("short"), TTL: 2 * time.Minute})
	clock.Advance(3 * time.Minute)
	waitState(t, h, short, iothub.C2DExpired)
	if rec, _ := h.C2DState(def); rec.State != iothub.C2DQueued {
		t.Errorf("default-TTL message after 3 min: %s, want queued", rec.State)
	}
	clock.Advance(time.Hour)
	waitState(t, h, def, iothub.C2DExpired)

	d := connectDevice(t, h, dev1, keyDev1A, true)
	d.subscribe(t, iothub.C2DFilter(dev1), 1)
	fresh := sendC2D(t, h, dev1, iothub.C2DMessage{Payload: []byte("fresh")})
	if m := d.next(t); string(m.Payload()) != "fresh" {
		t.Errorf("got %q, want fresh (expired messages are not delivered)", m.Payload())
	}
	waitState(t, h, fresh, iothub.C2DCompleted)
}

func TestC2DWithoutSubscription(t *testing.T) {
	t.Run("rejected", func(t *testing.T) {
		h := startHub(t, fakehub.Options{})
		connectDevice(t, h, dev1, keyDev1A, true)
		id := sendC2D(t, h, dev1, iothub.C2DMessage{Payload: []byte("x")})
		rec := waitState(t, h, id, iothub.C2DRejected)
		if !strings.Contains(rec.Detail, "subscription") {
			t.Errorf("reason %q", rec.Detail)
		}
	})
	t.Run("quirk-keeps-it", func(t *testing.T) {
		h := startHub(t, fakehub.Options{Quirks: fakehub.Quirks{KeepC2DWithoutSubscription: true}})
		d := connectDevice(t, h, dev1, keyDev1A, true)
		id := sendC2D(t, h, dev1, iothub.C2DMessage{Payload: []byte("kept")})
		if rec, _ := h.C2DState(id); rec.State != iothub.C2DQueued {
			t.Fatalf("state %s, want queued", rec.State)
		}
		d.subscribe(t, iothub.C2DFilter(dev1), 1)
		if m := d.next(t); string(m.Payload()) != "kept" {
			t.Errorf("got %q", m.Payload())
		}
	})
}

func TestC2DPurgedWhenDeviceRemoved(t *testing.T) {
	h := startHub(t, fakehub.Options{})
	id := sendC2D(t, h, dev2, iothub.C2DMessage{Payload: []byte("x")})
	if _, err := h.UpdateDesired(context.Background(), dev2, []byte(`{"a":1}`)); err != nil {
		t.Fatal(err)
	}
	if err := h.Registry().Delete(iothub.Identity{DeviceID: "dev2"}, ""); err != nil {
		t.Fatal(err)
	}
	waitState(t, h, id, iothub.C2DPurged)
	if _, err := h.AddDevice("dev2", keyDev2A); err != nil {
		t.Fatal(err)
	}
	tw, err := h.DeviceTwin(dev2)
	if err != nil || tw.DesiredVersion() != 1 || string(tw.Desired) != `{"$version":1}` {
		t.Errorf("twin of the re-created device: %+v %v, want a fresh one", tw, err)
	}
}

// BenchmarkC2DRoundTrip measures one C2D message from SendC2D to the
// device's PUBACK (state completed), paho at QoS 1 over TLS:
//
//	go test -run '^$' -bench C2DRoundTrip -benchtime 2000x ./pkg/fakehub/
func BenchmarkC2DRoundTrip(b *testing.B) {
	h := startHub(b, fakehub.Options{})
	d := connectDevice(b, h, dev1, keyDev1A, true)
	d.subscribe(b, iothub.C2DFilter(dev1), 1)
	ctx := context.Background()
	payload := []byte(`{"led":"on"}`)
	b.ResetTimer()
	for range b.N {
		id, err := h.SendC2D(ctx, "dev1", iothub.C2DMessage{Payload: payload})
		if err != nil {
			b.Fatal(err)
		}
		d.next(b)
		if _, err := h.WaitC2DState(ctx, id, nil); err != nil {
			b.Fatal(err)
		}
	}
}
