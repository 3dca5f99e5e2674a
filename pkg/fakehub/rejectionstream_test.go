package fakehub_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/hubkit/hubkit/internal/mqttraw"
	"github.com/hubkit/hubkit/internal/testutil"
	"github.com/hubkit/hubkit/pkg/fakehub"
	"github.com/hubkit/hubkit/pkg/iothub"
)

// TestRejectionStream: the rejection log read under the rule of telemetry streams
// (docs/iothub-behavior.md §13.9): RejectionStream from now, RejectionsFrom a time,
// ForDevice, All without moving, and Reset skipping what it cleared.
func TestRejectionStream(t *testing.T) {
	t0 := time.Now().UTC().Truncate(time.Second)
	clk := testutil.NewClock(t0)
	h := startHub(t, fakehub.Options{Now: clk.Now})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	refuse := func(deviceID string) {
		t.Helper()
		key := keyDev10 // not the key of dev1 or dev2
		if deviceID == "dev10" {
			key = keyDev1A
		}
		if ack, _ := rawConnect(t, h, goodConnect(iothub.Identity{DeviceID: deviceID}, key)); ack.ReturnCode != mqttraw.ConnackNotAuthorized {
			t.Fatalf("CONNACK %d for %s, want 5", ack.ReturnCode, deviceID)
		}
	}
	next := func(st *fakehub.RejectionStream) iothub.Rejection {
		t.Helper()
		r, err := st.Next(ctx)
		if err != nil {
			t.Fatalf("Next: %v (log %+v)", err, h.Rejections())
		}
		return r
	}

	refuse("dev1") // at t0
	if r := next(h.RejectionsFrom(time.Time{})); r.DeviceID != "dev1" {
		t.Fatalf("first record = %+v", r)
	}
	fromNow := h.RejectionStream()
	dev2Now := h.RejectionStream().ForDevice("dev2", "")
	fromT1 := h.RejectionsFrom(t0.Add(time.Second))
	dev1All := h.RejectionsFrom(time.Time{}).ForDevice("dev1", "")
	if got := fromNow.All(); len(got) != 0 {
		t.Errorf("a stream from now lists %+v, want nothing", got)
	}

	clk.Advance(2 * time.Second)
	refuse("dev1")
	refuse("dev2")
	if r := next(fromNow); r.DeviceID != "dev1" || !r.Time.Equal(t0.Add(2*time.Second)) {
		t.Errorf("from now: first = %+v, want dev1's second refusal", r)
	}
	if r := next(fromNow); r.DeviceID != "dev2" {
		t.Errorf("from now: second = %+v, want dev2's", r)
	}
	if r := next(dev2Now); r.DeviceID != "dev2" {
		t.Errorf("dev2 from now = %+v", r)
	}
	if r := next(fromT1); r.DeviceID != "dev1" || r.Time.Before(t0.Add(time.Second)) {
		t.Errorf("from t0+1s: first = %+v, want dev1's second refusal", r)
	}
	if got := dev1All.All(); len(got) != 2 || got[0].DeviceID != "dev1" || got[1].DeviceID != "dev1" {
		t.Errorf("dev1's records = %+v, want two", got)
	}
	if a, b := next(dev1All), next(dev1All); !a.Time.Equal(t0) || !b.Time.Equal(t0.Add(2*time.Second)) {
		t.Errorf("dev1's records in order = %v, %v", a.Time, b.Time)
	}

	// A cancelled context ends a wait.
	done, stop := context.WithCancel(ctx)
	stop()
	if _, err := dev1All.Next(done); !errors.Is(err, context.Canceled) {
		t.Errorf("Next with a cancelled context = %v, want context.Canceled", err)
	}

	// Reset: a stream skips what was cleared and reads what comes next.
	behind := h.RejectionsFrom(time.Time{})
	h.Reset(fakehub.ResetRejections)
	if got := behind.All(); len(got) != 0 {
		t.Errorf("after Reset the stream lists %+v", got)
	}
	refuse("dev10")
	if r := next(behind); r.DeviceID != "dev10" {
		t.Errorf("after Reset: next = %+v, want dev10's refusal", r)
	}
	if r := next(fromNow); r.DeviceID != "dev10" {
		t.Errorf("from now after Reset: next = %+v, want dev10's refusal", r)
	}
}
