package fakehub_test

import (
	"bytes"
	"context"
	"github.com/hubkit/hubkit/internal/testutil"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hubkit/hubkit/pkg/fakehub"
	"github.com/hubkit/hubkit/pkg/iothub"
)

// logBuffer collects log lines from the hub's goroutines.
type logBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// At the default level the hub logs each C2D, method and twin step at INFO, with IDs,
// versions, statuses and sizes, never a payload.
func TestActivityLoggedAtInfo(t *testing.T) {
	logs := &logBuffer{}
	h := startHub(t, fakehub.Options{Logger: slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelInfo}))})
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("hub log:\n%s", logs)
		}
	})
	d := connectDevice(t, h, dev1, keyDev1A, true)
	d.subscribe(t, iothub.C2DFilter(dev1), 1)
	d.subscribe(t, iothub.TwinResponseFilter, 0)
	d.subscribe(t, iothub.TwinDesiredFilter, 0)
	answerMethods(t, d, 200)

	id := sendC2D(t, h, dev1, iothub.C2DMessage{Payload: []byte("secret-c2d-payload")})
	d.next(t) // paho PUBACKs it
	waitState(t, h, id, iothub.C2DCompleted)
	if _, err := h.InvokeMethod(context.Background(), "dev1", "reboot", []byte(`{"secret":"method-payload"}`), 5*time.Second); err != nil {
		t.Fatal(err)
	}
	twinAnswer(t, d, iothub.TwinGetTopic("g1"), "", "g1")
	twinAnswer(t, d, iothub.TwinPatchReportedTopic("p1"), `{"secret":"reported-payload"}`, "p1")
	if _, err := h.UpdateDesired(context.Background(), dev1, []byte(`{"secret":"desired-payload"}`)); err != nil {
		t.Fatal(err)
	}
	d.next(t)
	sendC2D(t, h, dev2, iothub.C2DMessage{Payload: []byte("secret-offline")})

	want := []string{
		`level=INFO msg="C2D delivered" deviceId=dev1 messageId=` + id + ` qos=1 bytes=18`,
		`level=INFO msg="C2D completed" deviceId=dev1 messageId=` + id,
		`level=INFO msg="method request sent" deviceId=dev1 method=reboot rid=`,
		`level=INFO msg="method response" deviceId=dev1 rid=`,
		`level=INFO msg="twin GET" deviceId=dev1 rid=g1 desiredVersion=1 reportedVersion=1`,
		`level=INFO msg="reported properties updated" deviceId=dev1 rid=p1 version=2 bytes=29`,
		`level=INFO msg="desired properties sent" deviceId=dev1 version=2`,
		`level=INFO msg="C2D queued: the device is offline" deviceId=dev2 messageId=`,
	}
	testutil.Eventually(t, "the activity log lines", func() bool {
		got := logs.String()
		for _, w := range want {
			if !strings.Contains(got, w) {
				return false
			}
		}
		return true
	})
	if got := logs.String(); strings.Contains(got, "secret") {
		t.Errorf("a payload reached the log:\n%s", got)
	}
}

// A hub-initiated close is a WARN "closed" line with its reason (a refusal is "refused").
func TestCloseLoggedAtWarn(t *testing.T) {
	logs := &logBuffer{}
	h := startHub(t, fakehub.Options{Logger: slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelInfo}))})
	connectDevice(t, h, dev1, keyDev1A, true)
	connectDevice(t, h, dev1, keyDev1A, true) // replaces the first
	waitRejection(t, h, 0, fakehub.ReasonReplaced)
	if got := logs.String(); !strings.Contains(got, "level=WARN msg=closed reason=connection-replaced detail=\"a newer connection for dev1 from ") {
		t.Errorf("log lacks the WARN close of the replaced connection:\n%s", got)
	}
}
