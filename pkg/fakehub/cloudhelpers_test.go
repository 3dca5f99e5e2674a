package fakehub_test

import (
	"context"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"

	"github.com/hubkit/hubkit/internal/testutil"
	"github.com/hubkit/hubkit/pkg/fakehub/fakehubtest"
	"github.com/hubkit/hubkit/pkg/iothub"
)

// device is a paho client (MQTT 3.1.1) playing a device: every PUBLISH it
// receives, subscribed or not (a clean=false session's inherited C2D),
// lands in msgs.
type device struct {
	*pahoResult
	id   iothub.Identity
	msgs chan paho.Message
}

// connectDevice connects id (keys of startHub's registry) with a token
// valid for a day (fake clocks move forward).
func connectDevice(t testing.TB, h *fakehubtest.Hub, id iothub.Identity, key []byte, clean bool, tune ...func(*paho.ClientOptions)) *device {
	t.Helper()
	d := &device{id: id, msgs: make(chan paho.Message, 100)}
	res := "localhost/devices/" + id.DeviceID
	if id.IsModule() {
		res += "/modules/" + id.ModuleID
	}
	pw := token(res, "", key, time.Now().Add(24*time.Hour))
	opts := append([]func(*paho.ClientOptions){func(o *paho.ClientOptions) {
		o.SetCleanSession(clean)
		o.SetDefaultPublishHandler(func(_ paho.Client, m paho.Message) { d.msgs <- m })
	}}, tune...)
	r, err := pahoConnect(t, h, id, userName("localhost", id), pw, opts...)
	if err != nil {
		t.Fatalf("connect %s: %v", id, err)
	}
	d.pahoResult = r
	return d
}

// subscribe subscribes (waiting for the SUBACK) with messages routed to msgs.
func (d *device) subscribe(t testing.TB, filter string, qos byte) {
	t.Helper()
	tok := d.c.Subscribe(filter, qos, func(_ paho.Client, m paho.Message) { d.msgs <- m })
	if !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
		t.Fatalf("subscribe %s: %v", filter, tok.Error())
	}
}

func (d *device) publish(t testing.TB, topic string, payload string) {
	t.Helper()
	tok := d.c.Publish(topic, 0, false, payload)
	if !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
		t.Fatalf("publish %s: %v", topic, tok.Error())
	}
}

// next returns the next message the device received.
func (d *device) next(t testing.TB) paho.Message {
	t.Helper()
	select {
	case m := <-d.msgs:
		return m
	case <-time.After(5 * time.Second):
		t.Fatalf("%s received nothing", d.id)
		return nil
	}
}

// disconnect closes the connection and waits until the hub has seen it go.
func (d *device) disconnect(t testing.TB, h *fakehubtest.Hub) {
	t.Helper()
	d.c.Disconnect(0)
	testutil.Eventually(t, d.id.String()+" gone", func() bool { return !h.Connected(d.id) })
}

// sendC2D sends m to id and fails the test on error.
func sendC2D(t testing.TB, h *fakehubtest.Hub, id iothub.Identity, m iothub.C2DMessage) string {
	t.Helper()
	msgID, err := h.SendC2DTo(context.Background(), id, m)
	if err != nil {
		t.Fatalf("SendC2D: %v", err)
	}
	return msgID
}

// waitState waits until message msgID is in state want.
func waitState(t testing.TB, h *fakehubtest.Hub, msgID string, want iothub.C2DState) iothub.C2DStatus {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	rec, err := h.WaitC2DState(ctx, msgID, func(s iothub.C2DState) bool { return s == want })
	if err != nil {
		t.Fatalf("state of %s: %v, want %s", msgID, err, want)
	}
	return rec
}
