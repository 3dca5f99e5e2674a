package fakehub_test

import (
	"context"
	"github.com/hubkit/hubkit/pkg/iothub"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/hubkit/hubkit/internal/mqttraw"
	"github.com/hubkit/hubkit/pkg/fakehub"
	"github.com/hubkit/hubkit/pkg/sas"
)

func TestRejectionFieldsAreCut(t *testing.T) {
	lb := &fakehub.LogBuffer{}
	h := startHub(t, fakehub.Options{Logger: slog.New(slog.NewTextHandler(lb, nil))})
	p := goodConnect(dev1, keyDev1A)
	p.ClientID = strings.Repeat("c", 60000)
	p.UserName = mqttraw.String(strings.Repeat("u", 60000))
	ack, _ := rawConnect(t, h, p)
	if ack.ReturnCode != 5 {
		t.Errorf("CONNACK %d, want 5", ack.ReturnCode)
	}
	r := waitRejection(t, h, 0, sas.ReasonClientIDMismatch)
	for name, v := range map[string]string{"ClientID": r.ClientID, "UserName": r.UserName, "Detail": r.Detail} {
		if len(v) > 300 {
			t.Errorf("%s is %d bytes, want it cut to about 256", name, len(v))
		}
		if !strings.Contains(v, "bytes)") && name != "Detail" {
			t.Errorf("%s = %q, want it to say how long it was", name, v)
		}
	}
	for _, hint := range r.Hints {
		if len(hint) > 300 {
			t.Errorf("hint of %d bytes", len(hint))
		}
	}
	for _, line := range strings.Split(lb.String(), "\n") {
		if len(line) > 2000 {
			t.Errorf("log line of %d bytes: %.200s...", len(line), line)
		}
	}
}

func TestWaitRejectionMatchMayCallTheServer(t *testing.T) {
	h := startHub(t, fakehub.Options{})
	p := goodConnect(dev1, keyWrong)
	rawConnect(t, h, p)
	done := make(chan iothub.Rejection, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		// match reads the log itself: it must not run under the log's lock.
		r, _ := h.WaitRejection(ctx, func(r iothub.Rejection) bool { return len(h.Rejections()) > 0 })
		done <- r
	}()
	select {
	case r := <-done:
		if r.Reason != sas.ReasonSignatureMismatch {
			t.Errorf("WaitRejection = %+v", r)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("WaitRejection deadlocked: match ran under the lock")
	}
}
