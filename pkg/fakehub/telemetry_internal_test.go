package fakehub

import (
	"bytes"
	"context"
	"github.com/hubkit/hubkit/pkg/iothub"
	"testing"
)

func TestTelemetryRingByteBudget(t *testing.T) {
	r := newRing(1000, 10<<10)
	for range 10 {
		r.add(iothub.Event{DeviceID: "d", Payload: bytes.Repeat([]byte{'x'}, 3000)})
	}
	if r.bytes > 10<<10 {
		t.Errorf("ring holds %d bytes, want at most %d", r.bytes, 10<<10)
	}
	if len(r.buf) != 3 || r.dropped != 7 {
		t.Errorf("kept %d, dropped %d; want 3 and 7", len(r.buf), r.dropped)
	}
	st := &Stream{r: r, cursor: 1}
	m, err := st.Next(context.Background())
	if err != nil || m.SequenceNumber != 8 {
		t.Errorf("Next = seq %d, %v; want the oldest retained, 8", m.SequenceNumber, err)
	}
	// The count bound still applies, and both evictions are counted.
	r = newRing(2, 1<<20)
	for range 5 {
		r.add(iothub.Event{DeviceID: "d"})
	}
	r.add(iothub.Event{DeviceID: "d", Payload: make([]byte, 2<<20)}) // over the budget alone: kept, the rest evicted
	if len(r.buf) != 1 || r.dropped != 5 {
		t.Errorf("kept %d, dropped %d; want 1 and 5", len(r.buf), r.dropped)
	}
	if got := (&Server{telemetry: r}).Dropped(); got != 5 {
		t.Errorf("Dropped() = %d, want 5", got)
	}
}
