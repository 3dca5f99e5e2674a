package fakehub

import (
	"bytes"
	"context"
	"testing"
	"time"

	"github.com/hubkit/hubkit/pkg/iothub"
)

// rec is a record of device d with a payload of n bytes.
func rec(n int) record {
	return record{conn: &connInfo{id: iothub.Identity{DeviceID: "d"}}, payload: bytes.Repeat([]byte{'x'}, n), size: recordOverhead + n}
}

func TestTelemetryRingByteBudget(t *testing.T) {
	r := newRing(1000, 10<<10)
	for range 10 {
		r.add(rec(3000))
	}
	if r.bytes > 10<<10 {
		t.Errorf("ring holds %d bytes, want at most %d", r.bytes, 10<<10)
	}
	if r.n != 3 || r.dropped != 7 {
		t.Errorf("kept %d, dropped %d; want 3 and 7", r.n, r.dropped)
	}
	st := &Stream{r: r, cursor: 1}
	m, err := st.Next(context.Background())
	if err != nil || m.SequenceNumber != 8 {
		t.Errorf("Next = seq %d, %v; want the oldest retained, 8", m.SequenceNumber, err)
	}
	// The count bound still applies, and both evictions are counted.
	r = newRing(2, 1<<20)
	for range 5 {
		r.add(rec(0))
	}
	r.add(rec(2 << 20)) // over the budget alone: kept, the rest evicted
	if r.n != 1 || r.dropped != 5 {
		t.Errorf("kept %d, dropped %d; want 1 and 5", r.n, r.dropped)
	}
	if got := (&Server{telemetry: r}).Dropped(); got != 5 {
		t.Errorf("Dropped() = %d, want 5", got)
	}
}

// The ring wraps around and grows without losing order: every Stream reads
// sequence numbers in order, the last maxCount of them, whatever the
// interleaving of adds and reads.
func TestTelemetryRingWrapsInOrder(t *testing.T) {
	r := newRing(100, 1<<30)
	st := &Stream{r: r, cursor: 1}
	ctx := context.Background()
	var want uint64 = 1
	for i := range 1000 {
		for range i % 7 {
			r.add(rec(i))
		}
		for range i % 5 {
			if r.next == st.cursor {
				break
			}
			m, err := st.Next(ctx)
			if err != nil {
				t.Fatal(err)
			}
			// The next unread one, or the oldest retained when that was evicted.
			if exp := max(want, r.oldest()); m.SequenceNumber != exp {
				t.Fatalf("read seq %d, want %d", m.SequenceNumber, exp)
			}
			want = m.SequenceNumber + 1
		}
	}
	if r.n != 100 || len(r.buf) != 100 {
		t.Errorf("holds %d records in a buffer of %d, want 100 in 100 (the count bound)", r.n, len(r.buf))
	}
	all := (&Stream{r: r}).All()
	for i, m := range all {
		if want := r.oldest() + uint64(i); m.SequenceNumber != want {
			t.Fatalf("All()[%d] has seq %d, want %d", i, m.SequenceNumber, want)
		}
	}
}

// BenchmarkCapture is the hub's cost of keeping one telemetry message
// (OnPublish's share after the classification); BenchmarkCaptureAndRead adds
// what a reader pays to get it as an iothub.Event (maps and the formatted time).
//
//	go test -run '^$' -bench Capture -benchmem ./pkg/fakehub/
func BenchmarkCapture(b *testing.B) {
	s, ss, topic, props := benchCaptureSetup(b)
	payload := make([]byte, 256)
	b.ReportAllocs()
	for b.Loop() {
		s.capture(ss, topic, props, payload, 0)
	}
}

func BenchmarkCaptureAndRead(b *testing.B) {
	s, ss, topic, props := benchCaptureSetup(b)
	payload := make([]byte, 256)
	st := s.Telemetry()
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		s.capture(ss, topic, props, payload, 0)
		if _, err := st.Next(ctx); err != nil {
			b.Fatal(err)
		}
	}
}

func benchCaptureSetup(b *testing.B) (*Server, *session, string, iothub.Properties) {
	s := &Server{opts: Options{Now: time.Now}, telemetry: newRing(DefaultTelemetryBuffer, DefaultTelemetryBufferBytes)}
	ss := &session{id: iothub.Identity{DeviceID: "dev1"}, authMethod: authMethodJSON("device"), generation: "638000000000000000"}
	topic := "devices/dev1/messages/events/%24.ct=application%2Fjson&%24.ce=utf-8&alert=high"
	p, err := iothub.ClassifyPublish(ss.id, topic)
	if err != nil {
		b.Fatal(err)
	}
	return s, ss, topic, p.Properties
}
