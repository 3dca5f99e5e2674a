package fakehub

import (
	"bytes"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hubkit/hubkit/internal/mqttraw"
	"github.com/hubkit/hubkit/pkg/iothub"
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

// Reset empties the buffer.
func (l *lockedBuffer) Reset() {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.b.Reset()
}

func TestPanicInCloudHandlerClosesOnlyItsConnection(t *testing.T) {
	logs := &lockedBuffer{}
	s := startPlain(t, Options{Logger: slog.New(slog.NewTextHandler(logs, nil)),
		cloudEvents: func(s *Server) cloudSide { return panicky{s.cloud} }})
	for _, id := range []string{"good", "boom"} {
		if _, err := s.AddDevice(id, testKey); err != nil {
			t.Fatal(err)
		}
	}
	good, boom := connectPlain(t, s, "good"), connectPlain(t, s, "boom")

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
