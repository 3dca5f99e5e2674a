package fakehub

import (
	"context"
	"time"

	"github.com/hubkit/hubkit/pkg/iothub"
)

// RejectionStream reads the rejection log (refusals and hub-initiated closes) with its own
// cursor, as Stream reads telemetry, under the same rule (docs/iothub-behavior.md §13.6,
// §13.9): RejectionStream starts where it is opened, RejectionsFrom at a time; Next waits
// for the next record and All lists what the hub holds from the cursor on. A stream may be
// shared by goroutines; each record is returned once. Records evicted (the log keeps the
// last 10,000) or cleared by Reset before they were read are skipped.
type RejectionStream struct {
	l      *rejectionLog
	cursor int // the next record's position in the log: l.dropped + its index in l.list
	filter func(iothub.Rejection) bool
}

// RejectionStream returns a stream positioned after the last record: Next waits for
// refusals and closes from now on. Open it before the step that should be refused.
func (s *Server) RejectionStream() *RejectionStream {
	l := &s.rejections
	l.mu.Lock()
	defer l.mu.Unlock()
	return &RejectionStream{l: l, cursor: l.dropped + len(l.list)}
}

// RejectionsFrom returns a stream starting at the first record still held whose time is at
// or after t (by Options.Now's clock); a zero t starts at the oldest record held. Next
// returns what was recorded since t, then waits for more.
func (s *Server) RejectionsFrom(t time.Time) *RejectionStream {
	l := &s.rejections
	l.mu.Lock()
	defer l.mu.Unlock()
	i := 0
	for i < len(l.list) && l.list[i].Time.Before(t) { // recording order is time order
		i++
	}
	return &RejectionStream{l: l, cursor: l.dropped + i}
}

// ForDevice returns a stream at the same position that yields only the records of deviceID
// (and, when moduleID is not "", that module; "" matches the device and its modules).
// Records made before the hub knew an identity (a TLS failure, a first packet that is not
// CONNECT) have none and never match.
func (st *RejectionStream) ForDevice(deviceID, moduleID string) *RejectionStream {
	st.l.mu.Lock()
	defer st.l.mu.Unlock()
	prev := st.filter
	return &RejectionStream{l: st.l, cursor: st.cursor, filter: func(r iothub.Rejection) bool {
		return (prev == nil || prev(r)) && r.DeviceID == deviceID && (moduleID == "" || r.ModuleID == moduleID)
	}}
}

// Next returns the next record, waiting for it until ctx is done.
func (st *RejectionStream) Next(ctx context.Context) (iothub.Rejection, error) {
	l := st.l
	for {
		l.mu.Lock()
		st.cursor = max(st.cursor, l.dropped)
		for st.cursor < l.dropped+len(l.list) {
			r := l.list[st.cursor-l.dropped]
			st.cursor++
			if st.filter == nil || st.filter(r) {
				l.mu.Unlock()
				return r, nil
			}
		}
		if l.changed == nil {
			l.changed = make(chan struct{})
		}
		ch := l.changed
		l.mu.Unlock()
		select {
		case <-ch:
		case <-ctx.Done():
			return iothub.Rejection{}, ctx.Err()
		}
	}
}

// All returns the records held from the stream's position on, oldest first, without
// moving it.
func (st *RejectionStream) All() []iothub.Rejection {
	l := st.l
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []iothub.Rejection
	for _, r := range l.list[max(st.cursor-l.dropped, 0):] {
		if st.filter == nil || st.filter(r) {
			out = append(out, r)
		}
	}
	return out
}
