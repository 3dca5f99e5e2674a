package fakehub

import (
	"bytes"
	"context"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hubkit/hubkit/internal/mqttraw"
	"github.com/hubkit/hubkit/pkg/iothub"
	"github.com/hubkit/hubkit/pkg/sas"
)

// panicky is the real cloud side, except that a twin request from device
// "boom" panics.
type panicky struct{ cloudSide }

func (p panicky) devicePublish(ss *session, dp iothub.DevicePublish, payload []byte) {
	if ss.id.DeviceID == "boom" {
		panic("injected cloud-side panic")
	}
	p.cloudSide.devicePublish(ss, dp, payload)
}

type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

func TestPanicInCloudHandlerClosesOnlyItsConnection(t *testing.T) {
	newCloudSide = func(s *Server) cloudSide { return panicky{s.svc} }
	t.Cleanup(func() { newCloudSide = nil })
	logs := &lockedBuffer{}
	s, err := NewServer(Options{InsecureAddr: "127.0.0.1:0", Logger: slog.New(slog.NewTextHandler(logs, nil))})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	key := bytes.Repeat([]byte{1}, 32)
	connect := func(id string) *mqttraw.Conn {
		t.Helper()
		if _, err := s.AddDevice(id, key); err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		ack, c, err := mqttraw.ConnectAndWait(ctx, s.Addr(), nil, mqttraw.ConnectPacket{
			ClientID: id, UserName: mqttraw.String("localhost/" + id + "/?api-version=2021-04-12"), CleanSession: true, KeepAlive: 60,
			Password: mqttraw.String(sas.Sign(sas.EncodeResource("localhost/devices/"+id), "", key, time.Now().Add(time.Hour)).String()),
		})
		if err != nil || ack.ReturnCode != 0 {
			t.Fatalf("connect %s: %v %+v", id, err, ack)
		}
		t.Cleanup(func() { c.Close() })
		return c
	}
	good, boom := connect("good"), connect("boom")

	if err := boom.Publish(mqttraw.PublishPacket{Topic: iothub.TwinGetTopic("1")}); err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := boom.ReadPacket(5 * time.Second); err != nil {
			if err == mqttraw.ErrTimeout {
				t.Fatal("the panicking connection stayed open")
			}
			break
		}
	}
	if !strings.Contains(logs.String(), "level=ERROR") || !strings.Contains(logs.String(), "injected cloud-side panic") {
		t.Errorf("no ERROR log with the panic:\n%s", logs.String())
	}
	// The other connection still works: a twin GET is answered.
	if err := good.Subscribe(1, mqttraw.Subscription{Filter: iothub.TwinResponseFilter}); err != nil {
		t.Fatal(err)
	}
	if p, err := good.ReadPacket(5 * time.Second); err != nil || p.Type != mqttraw.TypeSuback {
		t.Fatalf("SUBACK: %v %v", p, err)
	}
	if err := good.Publish(mqttraw.PublishPacket{Topic: iothub.TwinGetTopic("2")}); err != nil {
		t.Fatal(err)
	}
	if p, err := good.ReadPacket(5 * time.Second); err != nil || !strings.HasPrefix(p.Publish.Topic, "$iothub/twin/res/200/") {
		t.Fatalf("twin response on the other connection: %v %v", p, err)
	}
	if s.sessions.lookup(iothub.Identity{DeviceID: "good"}) == nil {
		t.Error("the other device is no longer connected")
	}
}
