package c2d

import (
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/hubkit/hubkit/internal/testutil"
	"github.com/hubkit/hubkit/pkg/iothub"
)

var (
	dev1 = iothub.Identity{DeviceID: "dev1"}
	t0   = time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
)

// newQueue returns a queue on a fake clock with IDs "m1", "m2", ...
func newQueue(t *testing.T, opts Options) (*Queue, *testutil.Clock) {
	t.Helper()
	clock := testutil.NewClock(t0)
	var mu sync.Mutex
	n := 0
	opts.Now = clock.Now
	opts.NewID = func() string { mu.Lock(); defer mu.Unlock(); n++; return fmt.Sprintf("m%d", n) }
	q, err := New(opts)
	if err != nil {
		t.Fatal(err)
	}
	return q, clock
}

func mustEnqueue(t *testing.T, q *Queue, id iothub.Identity, m iothub.C2DMessage) string {
	t.Helper()
	msgID, err := q.Enqueue(id, m)
	if err != nil {
		t.Fatalf("Enqueue(%v, %+v) = %v", id, m, err)
	}
	return msgID
}

func ids(ms []Message) string {
	var s []string
	for _, m := range ms {
		s = append(s, fmt.Sprintf("%s/%d", m.MessageID, m.DeliveryCount))
	}
	return strings.Join(s, " ")
}

func wantCode(t *testing.T, err error, code iothub.ErrorCode) {
	t.Helper()
	var e *iothub.Error
	if !errors.As(err, &e) || e.Code != code {
		t.Fatalf("error = %v, want *iothub.Error with code %v", err, code)
	}
}

func TestFIFO(t *testing.T) {
	q, _ := newQueue(t, Options{})
	for _, p := range []string{"a", "b", "c", "d"} {
		mustEnqueue(t, q, dev1, iothub.C2DMessage{Payload: []byte(p)})
	}
	if m, ok := q.Peek(dev1); !ok || m.MessageID != "m1" {
		t.Errorf("Peek = %v, %v; want m1", m.MessageID, ok)
	}
	if got := ids(q.Take(dev1, 1)); got != "m1/1" {
		t.Errorf("Take(1) = %s, want m1/1", got)
	}
	if got := ids(q.Take(dev1, 2)); got != "m2/1 m3/1" {
		t.Errorf("Take(2) = %s, want m2/1 m3/1", got)
	}
	if got := ids(q.Take(dev1, 0)); got != "m4/1" {
		t.Errorf("Take(0) = %s, want m4/1", got)
	}
	if got := q.Take(dev1, 0); len(got) != 0 {
		t.Errorf("Take on an empty queue = %s", ids(got))
	}
	if got := q.Take(iothub.Identity{DeviceID: "nobody"}, 0); len(got) != 0 {
		t.Errorf("Take for an unknown identity = %s", ids(got))
	}
}

func TestQueueDepth(t *testing.T) {
	q, _ := newQueue(t, Options{})
	for i := range MaxQueueDepth {
		if _, err := q.Enqueue(dev1, iothub.C2DMessage{}); err != nil {
			t.Fatalf("message %d refused: %v", i+1, err)
		}
	}
	_, err := q.Enqueue(dev1, iothub.C2DMessage{})
	wantCode(t, err, iothub.CodeDeviceMaximumQueueDepthExceeded)
	if got := err.Error(); !strings.Contains(got, "403004 DeviceMaximumQueueDepthExceeded") {
		t.Errorf("error text %q does not name 403004 DeviceMaximumQueueDepthExceeded", got)
	}
	// Other identities have their own queues.
	mustEnqueue(t, q, iothub.Identity{DeviceID: "dev2"}, iothub.C2DMessage{})
	// In-flight messages still count; completed ones free their place.
	taken := q.Take(dev1, 1)
	if _, err := q.Enqueue(dev1, iothub.C2DMessage{}); err == nil {
		t.Error("Enqueue succeeded with 49 queued and 1 in flight")
	}
	q.MarkDelivered(dev1, taken[0].MessageID, 7)
	q.Complete(dev1, 7)
	mustEnqueue(t, q, dev1, iothub.C2DMessage{})
}

func TestSizeLimit(t *testing.T) {
	q, _ := newQueue(t, Options{})
	base := iothub.C2DMessage{MessageID: "x", Properties: iothub.Properties{{Key: "k", Value: "v"}}}
	base.To = DefaultTo(dev1)
	overhead := Message{C2DMessage: base}.Size() // "x" + to + "none" + "k" + "v"
	tests := []struct {
		name    string
		payload int
		ok      bool
	}{
		{"at-limit", MaxMessageSize - overhead, true},
		{"one-over", MaxMessageSize - overhead + 1, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := base
			m.Payload = make([]byte, tt.payload)
			_, err := q.Enqueue(dev1, m)
			if tt.ok && err != nil {
				t.Fatalf("Enqueue(%d-byte payload) = %v", tt.payload, err)
			}
			if !tt.ok {
				wantCode(t, err, iothub.CodeMessageTooLarge)
			}
		})
	}
}

func TestTTL(t *testing.T) {
	tests := []struct {
		name       string
		m          iothub.C2DMessage
		wantExpiry time.Time // zero: refused with 400004
	}{
		{"default-one-hour", iothub.C2DMessage{}, t0.Add(time.Hour)},
		{"ttl-minimum", iothub.C2DMessage{TTL: time.Minute}, t0.Add(time.Minute)},
		{"ttl-below-minimum", iothub.C2DMessage{TTL: time.Minute - time.Second}, time.Time{}},
		{"ttl-maximum", iothub.C2DMessage{TTL: 48 * time.Hour}, t0.Add(48 * time.Hour)},
		{"ttl-above-maximum", iothub.C2DMessage{TTL: 48*time.Hour + time.Second}, time.Time{}},
		{"expiry-absolute", iothub.C2DMessage{ExpiryTime: t0.Add(2 * time.Hour)}, t0.Add(2 * time.Hour)},
		{"expiry-in-the-past", iothub.C2DMessage{ExpiryTime: t0.Add(-time.Hour)}, time.Time{}},
		{"expiry-too-far", iothub.C2DMessage{ExpiryTime: t0.Add(49 * time.Hour)}, time.Time{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			q, _ := newQueue(t, Options{})
			msgID, err := q.Enqueue(dev1, tt.m)
			if tt.wantExpiry.IsZero() {
				wantCode(t, err, iothub.CodeArgumentInvalid)
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			r, _ := q.State(msgID)
			if !r.Message.ExpiryTime.Equal(tt.wantExpiry) || !r.Message.EnqueuedTime.Equal(t0) {
				t.Errorf("expiry %v, enqueued %v; want %v, %v", r.Message.ExpiryTime, r.Message.EnqueuedTime, tt.wantExpiry, t0)
			}
		})
	}
	if _, err := New(Options{DefaultTTL: 30 * time.Second}); err == nil {
		t.Error("New with a 30s default TTL succeeded")
	}
}

func TestExpiry(t *testing.T) {
	q, clock := newQueue(t, Options{})
	short := mustEnqueue(t, q, dev1, iothub.C2DMessage{TTL: time.Minute, Ack: iothub.AckNegative})
	long := mustEnqueue(t, q, dev1, iothub.C2DMessage{})
	clock.Advance(time.Minute - time.Nanosecond)
	if r, _ := q.State(short); r.State != iothub.C2DQueued {
		t.Fatalf("state just before expiry = %s, want queued", r.State)
	}
	clock.Advance(time.Nanosecond)
	if got := ids(q.Take(dev1, 0)); got != long+"/1" {
		t.Errorf("Take after expiry = %s, want only %s", got, long)
	}
	r, _ := q.State(short)
	if r.State != iothub.C2DExpired || !r.Finished.Equal(t0.Add(time.Minute)) || r.Message.DeliveryCount != 0 {
		t.Errorf("expired message record = %+v", r)
	}
	want := []iothub.C2DFeedback{{OriginalMessageID: short, DeviceID: "dev1", StatusCode: iothub.FeedbackExpired, Description: "Expired", EnqueuedTime: t0.Add(time.Minute)}}
	if diff := cmp.Diff(want, q.Feedback()); diff != "" {
		t.Errorf("feedback (-want +got):\n%s", diff)
	}
}

func TestRequeueRedelivers(t *testing.T) {
	q, _ := newQueue(t, Options{})
	a := mustEnqueue(t, q, dev1, iothub.C2DMessage{})
	b := mustEnqueue(t, q, dev1, iothub.C2DMessage{})
	c := mustEnqueue(t, q, dev1, iothub.C2DMessage{})
	first := q.Take(dev1, 2)
	q.MarkDelivered(dev1, a, 1)
	q.MarkDelivered(dev1, b, 2)
	if m, ok := q.Complete(dev1, 2); !ok || m.MessageID != b {
		t.Fatalf("Complete(2) = %v, %v; want %s", m.MessageID, ok, b)
	}
	if n := q.Requeue(dev1); n != 1 {
		t.Errorf("Requeue = %d, want 1", n)
	}
	if r, _ := q.State(a); r.State != iothub.C2DQueued || r.PacketID != 0 {
		t.Errorf("requeued message: state %s, packet %d; want queued, 0", r.State, r.PacketID)
	}
	again := q.Take(dev1, 0)
	if got, want := ids(again), a+"/2 "+c+"/1"; got != want {
		t.Errorf("after Requeue, Take = %s, want %s", got, want)
	}
	if string(again[0].Payload) != string(first[0].Payload) || again[0].EnqueuedTime != first[0].EnqueuedTime {
		t.Errorf("redelivered message differs: %+v vs %+v", again[0], first[0])
	}
}

func TestDispatch(t *testing.T) {
	q, _ := newQueue(t, Options{})
	for range 3 {
		mustEnqueue(t, q, dev1, iothub.C2DMessage{})
	}
	pids := func(ds []Delivery) string {
		var s []string
		for _, d := range ds {
			s = append(s, fmt.Sprintf("%s@%d", d.Message.MessageID, d.PacketID))
		}
		return strings.Join(s, " ")
	}
	if got, want := pids(q.Dispatch(dev1, "s1", 2)), "m1@1 m2@2"; got != want {
		t.Errorf("Dispatch(s1, 2) = %s, want %s", got, want)
	}
	if got, want := pids(q.Dispatch(dev1, "s2", 0)), "m3@3"; got != want {
		t.Errorf("Dispatch(s2) = %s, want %s", got, want)
	}
	// The connection of session s1 closes: only its messages go back, at the head.
	if n := q.RequeueSession(dev1, "s1"); n != 2 {
		t.Errorf("RequeueSession(s1) = %d, want 2", n)
	}
	var got []string
	for _, r := range q.List(dev1) {
		got = append(got, fmt.Sprintf("%s:%s:%s:%d", r.Message.MessageID, r.State, r.Session, r.PacketID))
	}
	want := []string{"m3:delivered:s2:3", "m1:queued::0", "m2:queued::0"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("List after RequeueSession (-want +got):\n%s", diff)
	}
	if m, ok := q.Complete(dev1, 3); !ok || m.MessageID != "m3" {
		t.Errorf("Complete(3) = %s, %v; want m3", m.MessageID, ok)
	}
	// Packet IDs wrap after 65535 and skip those still in flight.
	if got, want := pids(q.Dispatch(dev1, "s3", 1)), "m1@4"; got != want {
		t.Errorf("Dispatch(s3, 1) = %s, want %s", got, want)
	}
	q.mu.Lock()
	q.queues[dev1].lastPacketID = 65534
	q.mu.Unlock()
	mustEnqueue(t, q, dev1, iothub.C2DMessage{})
	mustEnqueue(t, q, dev1, iothub.C2DMessage{})
	if got, want := pids(q.Dispatch(dev1, "s3", 0)), "m2@65535 m4@1 m5@2"; got != want {
		t.Errorf("Dispatch across the wrap = %s, want %s", got, want)
	}
	q.mu.Lock()
	q.queues[dev1].lastPacketID = 3
	q.mu.Unlock()
	q.Requeue(dev1)
	if got, want := pids(q.Dispatch(dev1, "s4", 0)), "m1@4 m2@5 m4@6 m5@7"; got != want {
		t.Errorf("Dispatch after Requeue = %s, want %s", got, want)
	}
}

func TestComplete(t *testing.T) {
	q, _ := newQueue(t, Options{})
	a := mustEnqueue(t, q, dev1, iothub.C2DMessage{Payload: []byte("hi"), Ack: "Positive"})
	if _, ok := q.Complete(dev1, 9); ok {
		t.Error("Complete with no message in flight = true")
	}
	q.Take(dev1, 0)
	if _, ok := q.Complete(dev1, 9); ok {
		t.Error("Complete before MarkDelivered = true")
	}
	if err := q.MarkDelivered(dev1, a, 9); err != nil {
		t.Fatal(err)
	}
	if err := q.MarkDelivered(dev1, "nope", 10); !errors.Is(err, ErrNotFound) {
		t.Errorf("MarkDelivered(unknown) = %v, want ErrNotFound", err)
	}
	if _, ok := q.Complete(iothub.Identity{DeviceID: "dev2"}, 9); ok {
		t.Error("Complete for another identity = true")
	}
	m, ok := q.Complete(dev1, 9)
	if !ok || m.MessageID != a || string(m.Payload) != "hi" {
		t.Fatalf("Complete(9) = %+v, %v", m, ok)
	}
	if _, ok := q.Complete(dev1, 9); ok {
		t.Error("second Complete(9) = true")
	}
	if f := q.TakeFeedback(); len(f) != 1 || f[0].StatusCode != iothub.FeedbackSuccess || f[0].OriginalMessageID != a {
		t.Errorf("feedback = %+v, want one Success for %s", f, a)
	}
	if f := q.Feedback(); len(f) != 0 {
		t.Errorf("feedback after TakeFeedback = %+v", f)
	}
	// QoS 0: complete by message ID.
	b := mustEnqueue(t, q, dev1, iothub.C2DMessage{})
	q.Take(dev1, 0)
	if _, ok := q.CompleteMessage(dev1, b); !ok {
		t.Error("CompleteMessage = false")
	}
}

func TestStates(t *testing.T) {
	q, clock := newQueue(t, Options{})
	a := mustEnqueue(t, q, dev1, iothub.C2DMessage{})
	want := Record{Identity: dev1, State: iothub.C2DQueued}
	check := func(step string) {
		t.Helper()
		r, ok := q.State(a)
		r.Message = Message{}
		if !ok {
			t.Fatalf("%s: State(%s) not found", step, a)
		}
		if diff := cmp.Diff(want, r); diff != "" {
			t.Errorf("%s: record (-want +got):\n%s", step, diff)
		}
	}
	check("queued")
	clock.Advance(time.Second)
	q.Take(dev1, 0)
	q.MarkDelivered(dev1, a, 3)
	want.State, want.PacketID, want.Delivered = iothub.C2DDelivered, 3, t0.Add(time.Second)
	check("delivered")
	clock.Advance(time.Second)
	q.Complete(dev1, 3)
	want.State, want.PacketID, want.Finished = iothub.C2DCompleted, 0, t0.Add(2*time.Second)
	check("completed")
	if _, ok := q.State("unknown"); ok {
		t.Error("State(unknown) found")
	}
}

func TestReject(t *testing.T) {
	q, _ := newQueue(t, Options{})
	a := mustEnqueue(t, q, dev1, iothub.C2DMessage{Ack: iothub.AckFull})
	b := mustEnqueue(t, q, dev1, iothub.C2DMessage{})
	c := mustEnqueue(t, q, dev1, iothub.C2DMessage{})
	const reason = "device connected without a C2D subscription"
	if err := q.Reject(dev1, b, reason); err != nil {
		t.Fatal(err)
	}
	if err := q.Reject(dev1, b, reason); !errors.Is(err, ErrNotFound) {
		t.Errorf("second Reject = %v, want ErrNotFound", err)
	}
	if n := q.RejectPending(dev1, reason); n != 2 {
		t.Errorf("RejectPending = %d, want 2", n)
	}
	for _, id := range []string{a, b, c} {
		if r, _ := q.State(id); r.State != iothub.C2DRejected || r.Reason != reason {
			t.Errorf("State(%s) = %s (%q), want rejected", id, r.State, r.Reason)
		}
	}
	if f := q.Feedback(); len(f) != 1 || f[0].StatusCode != iothub.FeedbackRejected || f[0].OriginalMessageID != a {
		t.Errorf("feedback = %+v, want one Rejected for %s", f, a)
	}
}

func TestPurge(t *testing.T) {
	q, _ := newQueue(t, Options{})
	inflight := mustEnqueue(t, q, dev1, iothub.C2DMessage{})
	q.Take(dev1, 0)
	a := mustEnqueue(t, q, dev1, iothub.C2DMessage{Ack: iothub.AckNegative})
	mustEnqueue(t, q, dev1, iothub.C2DMessage{})
	if n := q.Purge(dev1); n != 2 {
		t.Errorf("Purge = %d, want 2", n)
	}
	if r, _ := q.State(a); r.State != iothub.C2DPurged {
		t.Errorf("purged message state = %s", r.State)
	}
	list := q.List(dev1)
	if len(list) != 1 || list[0].Message.MessageID != inflight || list[0].State != iothub.C2DDelivered {
		t.Errorf("List after Purge = %+v, want only the in-flight %s", list, inflight)
	}
	if f := q.Feedback(); len(f) != 1 || f[0].StatusCode != iothub.FeedbackPurged {
		t.Errorf("feedback = %+v, want one Purged", f)
	}
	if n := q.Purge(iothub.Identity{DeviceID: "nobody"}); n != 0 {
		t.Errorf("Purge(unknown) = %d", n)
	}
}

func TestFeedbackByAck(t *testing.T) {
	tests := []struct {
		ack      iothub.C2DAck
		complete []iothub.C2DFeedbackStatus
		reject   []iothub.C2DFeedbackStatus
	}{
		{"", nil, nil},
		{iothub.AckNone, nil, nil},
		{iothub.AckPositive, []iothub.C2DFeedbackStatus{iothub.FeedbackSuccess}, nil},
		{iothub.AckNegative, nil, []iothub.C2DFeedbackStatus{iothub.FeedbackRejected}},
		{iothub.AckFull, []iothub.C2DFeedbackStatus{iothub.FeedbackSuccess}, []iothub.C2DFeedbackStatus{iothub.FeedbackRejected}},
	}
	statuses := func(fs []iothub.C2DFeedback) []iothub.C2DFeedbackStatus {
		var out []iothub.C2DFeedbackStatus
		for _, f := range fs {
			out = append(out, f.StatusCode)
		}
		return out
	}
	for _, tt := range tests {
		t.Run("ack-"+string(tt.ack), func(t *testing.T) {
			q, _ := newQueue(t, Options{})
			a := mustEnqueue(t, q, dev1, iothub.C2DMessage{Ack: tt.ack})
			q.Take(dev1, 0)
			q.CompleteMessage(dev1, a)
			if diff := cmp.Diff(tt.complete, statuses(q.TakeFeedback())); diff != "" {
				t.Errorf("on complete (-want +got):\n%s", diff)
			}
			b := mustEnqueue(t, q, dev1, iothub.C2DMessage{Ack: tt.ack})
			q.Reject(dev1, b, "test")
			if diff := cmp.Diff(tt.reject, statuses(q.TakeFeedback())); diff != "" {
				t.Errorf("on reject (-want +got):\n%s", diff)
			}
		})
	}
}

func TestEnqueueValidation(t *testing.T) {
	tests := []struct {
		name string
		id   iothub.Identity
		m    iothub.C2DMessage
	}{
		{"no-device", iothub.Identity{}, iothub.C2DMessage{}},
		{"bad-ack", dev1, iothub.C2DMessage{Ack: "sometimes"}},
		{"long-id", dev1, iothub.C2DMessage{MessageID: strings.Repeat("x", MaxIDLength+1)}},
		{"empty-property-name", dev1, iothub.C2DMessage{Properties: iothub.Properties{{Key: "", Value: "x"}}}},
		{"system-key-as-application-property", dev1, iothub.C2DMessage{Properties: iothub.Properties{{Key: "$.mid", Value: "x"}}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			q, _ := newQueue(t, Options{})
			_, err := q.Enqueue(tt.id, tt.m)
			wantCode(t, err, iothub.CodeArgumentInvalid)
		})
	}
	q, _ := newQueue(t, Options{})
	if _, err := q.Enqueue(dev1, iothub.C2DMessage{MessageID: strings.Repeat("x", MaxIDLength)}); err != nil {
		t.Errorf("Enqueue with a %d-character ID = %v", MaxIDLength, err)
	}
}

func TestEnqueueCopies(t *testing.T) {
	q, _ := newQueue(t, Options{})
	payload := []byte("abc")
	props := iothub.Properties{{Key: "k", Value: "v"}}
	id := mustEnqueue(t, q, dev1, iothub.C2DMessage{Payload: payload, Properties: props})
	payload[0], props[0].Value = 'X', "changed"
	got := q.Take(dev1, 0)[0]
	if string(got.Payload) != "abc" || got.Properties[0].Value != "v" {
		t.Errorf("queued message changed with the caller's slices: %+v", got)
	}
	got.Payload[0] = 'Y'
	if r, _ := q.State(id); string(r.Message.Payload) != "abc" {
		t.Errorf("queued message changed with a taken copy: %q", r.Message.Payload)
	}
}

func TestHistoryLimit(t *testing.T) {
	q, _ := newQueue(t, Options{HistoryLimit: 2})
	var msgIDs []string
	for range 3 {
		msgIDs = append(msgIDs, mustEnqueue(t, q, dev1, iothub.C2DMessage{}))
	}
	q.Purge(dev1)
	if _, ok := q.State(msgIDs[0]); ok {
		t.Errorf("State(%s) still found beyond the history limit", msgIDs[0])
	}
	for _, id := range msgIDs[1:] {
		if r, ok := q.State(id); !ok || r.State != iothub.C2DPurged {
			t.Errorf("State(%s) = %+v, %v; want purged", id, r.State, ok)
		}
	}
}

func TestDeliveryTopic(t *testing.T) {
	exp := time.Date(2030, 1, 1, 1, 0, 0, 0, time.UTC)
	tests := []struct {
		name string
		id   iothub.Identity
		m    iothub.C2DMessage
		want string
	}{
		{
			// Captured (docs/iothub-behavior.md §4.2): $.mid, $.to, $.ce, iothub-ack=none.
			name: "captured-minimal",
			id:   iothub.Identity{DeviceID: "pubsub"},
			m:    iothub.C2DMessage{MessageID: "2c2db32a", ContentEncoding: "utf-8"},
			want: "devices/pubsub/messages/devicebound/%24.mid=2c2db32a&%24.to=%2Fdevices%2Fpubsub%2Fmessages%2FdeviceBound&%24.ce=utf-8&iothub-ack=none",
		},
		{
			// Captured: $.mid, $.exp, $.to, $.cid, iothub-ack=full, application property.
			name: "captured-full",
			id:   iothub.Identity{DeviceID: "deviceID"},
			m: iothub.C2DMessage{MessageID: "m1", ExpiryTime: exp, CorrelationID: "c1", Ack: iothub.AckFull,
				Properties: iothub.Properties{{Key: "property1", Value: "value1"}}},
			want: "devices/deviceID/messages/devicebound/%24.mid=m1&%24.exp=2030-01-01T01%3A00%3A00Z&%24.to=%2Fdevices%2FdeviceID%2Fmessages%2FdeviceBound&%24.cid=c1&iothub-ack=full&property1=value1",
		},
		{
			name: "all-system-properties",
			id:   dev1,
			m: iothub.C2DMessage{MessageID: "m1", To: "/custom", CorrelationID: "c", UserID: "u", ContentType: "application/json",
				ContentEncoding: "utf-8", Ack: iothub.AckPositive, Properties: iothub.Properties{{Key: "a b", Value: "x&y"}}},
			want: "devices/dev1/messages/devicebound/%24.mid=m1&%24.to=%2Fcustom&%24.cid=c&%24.uid=u&%24.ct=application%2Fjson&%24.ce=utf-8&iothub-ack=positive&a%20b=x%26y",
		},
		{
			// A TTL chosen by the sender is an explicit expiry: sent as $.exp.
			name: "explicit-ttl",
			id:   dev1,
			m:    iothub.C2DMessage{MessageID: "m1", TTL: 2 * time.Hour},
			want: "devices/dev1/messages/devicebound/%24.mid=m1&%24.exp=2030-01-01T02%3A00%3A00Z&%24.to=%2Fdevices%2Fdev1%2Fmessages%2FdeviceBound&iothub-ack=none",
		},
		{
			// Observed for modules (azure-iot-sdk-node#1007).
			name: "module",
			id:   iothub.Identity{DeviceID: "d", ModuleID: "m"},
			m:    iothub.C2DMessage{MessageID: "m1"},
			want: "devices/d/modules/m/messages/devicebound/%24.mid=m1&%24.to=%2Fdevices%2Fd%2Fmodules%2Fm%2Fmessages%2FdeviceBound&iothub-ack=none",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			q, _ := newQueue(t, Options{})
			mustEnqueue(t, q, tt.id, tt.m)
			m := q.Take(tt.id, 0)[0]
			got := DeliveryTopic(tt.id, m)
			if got != tt.want {
				t.Errorf("DeliveryTopic =\n%s\nwant\n%s", got, tt.want)
			}
			id, props, err := iothub.ParseC2DTopic(got)
			if err != nil || id != tt.id {
				t.Fatalf("ParseC2DTopic(%q) = %v, %v", got, id, err)
			}
			if diff := cmp.Diff(m.WireProperties(), props); diff != "" {
				t.Errorf("round trip (-built +parsed):\n%s", diff)
			}
		})
	}
}

func TestConcurrentUse(t *testing.T) {
	q, clock := newQueue(t, Options{})
	var wg sync.WaitGroup
	for d := range 4 {
		id := iothub.Identity{DeviceID: fmt.Sprintf("dev%d", d)}
		wg.Go(func() { // sender
			for i := range 40 {
				if _, err := q.Enqueue(id, iothub.C2DMessage{Payload: []byte(fmt.Sprint(i))}); err != nil {
					t.Errorf("Enqueue: %v", err)
				}
			}
		})
		wg.Go(func() { // device: take, mark, complete; sometimes disconnect
			var pid uint16
			for range 100 {
				for _, m := range q.Take(id, 3) {
					pid++
					q.MarkDelivered(id, m.MessageID, pid)
					if pid%5 == 0 {
						q.Requeue(id)
						continue
					}
					q.Complete(id, pid)
				}
			}
		})
		wg.Go(func() { // service view
			for range 100 {
				for _, r := range q.List(id) {
					q.State(r.Message.MessageID)
				}
				q.Feedback()
				clock.Advance(time.Millisecond)
			}
		})
	}
	wg.Wait()
}
