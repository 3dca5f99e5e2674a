package fakehub

import (
	"bytes"
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/hubkit/hubkit/internal/mqttraw"
	"github.com/hubkit/hubkit/pkg/iothub"
	"github.com/hubkit/hubkit/pkg/sas"
)

// recorder is a cloudSide that records its calls, for testing the extension point.
type recorder struct {
	mu     sync.Mutex
	events []string
	ch     chan struct{}
}

func (r *recorder) add(format string, args ...any) {
	r.mu.Lock()
	r.events = append(r.events, fmt.Sprintf(format, args...))
	r.mu.Unlock()
	select {
	case r.ch <- struct{}{}:
	default:
	}
}

func (r *recorder) established(ss *session) { r.add("established %s", ss.id) }
func (r *recorder) subscribed(ss *session, f []string, g []byte) {
	r.add("subscribed %s %v %v", ss.id, f, g)
}
func (r *recorder) devicePublish(ss *session, p iothub.DevicePublish, payload []byte) {
	r.add("publish %s %s rid=%s %q", ss.id, p.Kind, p.RID, payload)
}
func (r *recorder) puback(ss *session, id uint16) { r.add("puback %s %d", ss.id, id) }
func (r *recorder) disconnected(ss *session, replaced bool) {
	r.add("disconnected %s replaced=%v", ss.id, replaced)
}

// wait returns once an event equal to want was recorded.
func (r *recorder) wait(t *testing.T, want string) {
	t.Helper()
	deadline := time.After(5 * time.Second)
	for {
		r.mu.Lock()
		for _, e := range r.events {
			if e == want {
				r.mu.Unlock()
				return
			}
		}
		got := append([]string(nil), r.events...)
		r.mu.Unlock()
		select {
		case <-r.ch:
		case <-deadline:
			t.Fatalf("no event %q; got %q", want, got)
		}
	}
}

func TestCloudSideExtensionPoint(t *testing.T) {
	rec := &recorder{ch: make(chan struct{}, 1)}
	s, err := NewServer(Options{InsecureAddr: "127.0.0.1:0", cloudEvents: func(*Server) cloudSide { return rec }})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	key := bytes.Repeat([]byte{1}, 32)
	if _, err := s.AddDevice("d1", key); err != nil {
		t.Fatal(err)
	}
	id := iothub.Identity{DeviceID: "d1"}
	connect := func() *mqttraw.Conn {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		ack, c, err := mqttraw.ConnectAndWait(ctx, s.Addr(), nil, mqttraw.ConnectPacket{
			ClientID: "d1", UserName: mqttraw.String("localhost/d1/?api-version=2021-04-12"), CleanSession: true,
			Password: mqttraw.String(sas.Sign(sas.EncodeResource("localhost/devices/d1"), "", key, time.Now().Add(time.Hour)).String()),
		})
		if err != nil || ack.ReturnCode != 0 {
			t.Fatalf("connect: %v %+v", err, ack)
		}
		t.Cleanup(func() { c.Close() })
		return c
	}
	c := connect()
	rec.wait(t, "established d1")
	if err := c.Subscribe(1, mqttraw.Subscription{Filter: iothub.TwinResponseFilter}, mqttraw.Subscription{Filter: iothub.C2DFilter(id), QoS: 1}); err != nil {
		t.Fatal(err)
	}
	if p, err := c.ReadPacket(5 * time.Second); err != nil || p.Type != mqttraw.TypeSuback {
		t.Fatalf("got %v %v", p, err)
	}
	rec.wait(t, "subscribed d1 [$iothub/twin/res/# devices/d1/messages/devicebound/#] [0 1]")
	ss := s.sessions.lookup(id)
	if q, ok := ss.subscribed(iothub.FilterC2D); !ok || q != 1 {
		t.Errorf("subscribed(FilterC2D) = %d, %v", q, ok)
	}

	if err := c.Publish(mqttraw.PublishPacket{Topic: iothub.TwinGetTopic("7")}); err != nil {
		t.Fatal(err)
	}
	rec.wait(t, `publish d1 twin-get rid=7 ""`)
	if _, err := s.deliver(id, iothub.TwinResponseTopic(200, "7", 0), []byte(`{}`), 0); err != nil {
		t.Fatal(err)
	}
	if p, err := c.ReadPacket(5 * time.Second); err != nil || p.Publish.Topic != "$iothub/twin/res/200/?$rid=7" {
		t.Fatalf("twin response: %v %v", p, err)
	}
	pid, err := s.deliver(id, iothub.C2DTopic(id, nil), []byte("c2d"), 1)
	if err != nil {
		t.Fatal(err)
	}
	p, err := c.ReadPacket(5 * time.Second)
	if err != nil || p.Publish.PacketID != pid || p.Publish.QoS != 1 {
		t.Fatalf("C2D: %v %v", p, err)
	}
	if err := c.Puback(pid); err != nil {
		t.Fatal(err)
	}
	rec.wait(t, fmt.Sprintf("puback d1 %d", pid))

	connect() // takeover
	rec.wait(t, "disconnected d1 replaced=true")
	if _, err := s.deliver(iothub.Identity{DeviceID: "nobody"}, "x", nil, 0); err != ErrOffline {
		t.Errorf("deliver to an offline identity: %v", err)
	}
}
