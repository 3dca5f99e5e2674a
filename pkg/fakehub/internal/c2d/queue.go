package c2d

import (
	"crypto/rand"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/hubkit/hubkit/pkg/iothub"
)

// Limits of IoT Hub's cloud-to-device queues (learn.microsoft.com, "Understand cloud-to-device
// messaging", "IoT Hub quotas and throttling").
const (
	MaxQueueDepth  = iothub.MaxC2DQueueDepth // 50 messages per identity
	MaxMessageSize = iothub.MaxC2DSize       // 64 KB
	DefaultTTL     = iothub.DefaultC2DTTL
	MinTTL         = iothub.MinC2DTTL
	MaxTTL         = iothub.MaxC2DTTL
	MaxIDLength    = 128 // $.mid
)

// Record is a message with its state, as State and List report it.
type Record struct {
	Identity  iothub.Identity
	Message   Message
	State     iothub.C2DState
	PacketID  uint16    // MQTT packet ID of the delivery awaiting PUBACK (0: none recorded)
	Session   string    // the session tag given to Dispatch for the delivery awaiting PUBACK
	Reason    string    // why it was rejected, expired or purged
	Delivered time.Time // the last delivery (zero if never delivered)
	Finished  time.Time // when it reached a final state
}

// Status returns the record as the service sees it.
func (r Record) Status() iothub.C2DStatus {
	upd := r.Message.EnqueuedTime
	switch {
	case !r.Finished.IsZero():
		upd = r.Finished
	case !r.Delivered.IsZero():
		upd = r.Delivered
	}
	return iothub.C2DStatus{
		DeviceID: r.Identity.DeviceID, ModuleID: r.Identity.ModuleID, MessageID: r.Message.MessageID,
		State: r.State, Detail: r.Reason, DeliveryCount: r.Message.DeliveryCount,
		EnqueuedTime: r.Message.EnqueuedTime.UTC(), UpdatedTime: upd.UTC(),
		DeliveredTime: utc(r.Delivered), FinishedTime: utc(r.Finished), ExpiryTime: utc(r.Message.ExpiryTime),
	}
}

func utc(t time.Time) time.Time {
	if t.IsZero() {
		return t
	}
	return t.UTC()
}

// Options configure a Queue. Zero values mean the documented defaults.
type Options struct {
	Now           func() time.Time // default time.Now
	NewID         func() string    // message IDs for messages without one; default a random UUID
	DefaultTTL    time.Duration    // default 1h; must be within MinTTL..MaxTTL
	MaxQueueDepth int              // default MaxQueueDepth (50)
	MaxSize       int              // default MaxMessageSize (64 KB)
	HistoryLimit  int              // finished messages kept for State; default 1000
	FeedbackLimit int              // feedback records kept; default 1000 (oldest dropped)
	// GenerationID, when set, gives the deviceGenerationId of feedback records (the
	// registry's generation ID of the target identity).
	GenerationID func(iothub.Identity) string
	Logger       *slog.Logger // nil = discard
	// OnFinish, when set, is told each message that reaches a final state
	// (completed, rejected, expired, purged). It runs with the queue's lock
	// held: it must be quick and must not call back into the Queue.
	OnFinish func(id iothub.Identity, s iothub.C2DState)
}

// Queue holds the C2D queues of every identity. It is safe for concurrent use.
type Queue struct {
	opts Options
	log  *slog.Logger

	mu       sync.Mutex
	queues   map[iothub.Identity]*queue
	byID     map[string]*entry // the latest message with each ID
	history  []*entry          // finished messages, oldest first
	feedback []iothub.C2DFeedback
}

type queue struct {
	inflight     []*entry // delivered, in delivery order
	pending      []*entry // queued, FIFO
	lastPacketID uint16   // for Dispatch
}

type entry struct{ rec Record }

// New returns an empty Queue.
func New(opts Options) (*Queue, error) {
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.NewID == nil {
		opts.NewID = randomUUID
	}
	if opts.DefaultTTL == 0 {
		opts.DefaultTTL = DefaultTTL
	}
	if opts.DefaultTTL < MinTTL || opts.DefaultTTL > MaxTTL {
		return nil, fmt.Errorf("c2d: default TTL %v is outside %v-%v", opts.DefaultTTL, MinTTL, MaxTTL)
	}
	if opts.MaxQueueDepth <= 0 {
		opts.MaxQueueDepth = MaxQueueDepth
	}
	if opts.MaxSize <= 0 {
		opts.MaxSize = MaxMessageSize
	}
	if opts.HistoryLimit <= 0 {
		opts.HistoryLimit = 1000
	}
	if opts.FeedbackLimit <= 0 {
		opts.FeedbackLimit = 1000
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Queue{opts: opts, log: log, queues: make(map[iothub.Identity]*queue), byID: make(map[string]*entry)}, nil
}

// randomUUID returns a version 4 UUID, the form the service SDKs use for message IDs.
func randomUUID() string {
	var b [16]byte
	rand.Read(b[:]) // never fails (crypto/rand)
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:])
}

// Enqueue validates sent and appends it to the identity's queue. It returns the message ID
// (generated when sent.MessageID is empty) or an *iothub.Error (see the package documentation
// for the limits).
func (q *Queue) Enqueue(id iothub.Identity, sent iothub.C2DMessage) (string, error) {
	m := Message{C2DMessage: sent}.clone()
	now := q.opts.Now()
	if err := q.prepare(id, &m, now); err != nil {
		return "", err
	}
	q.mu.Lock()
	defer q.mu.Unlock()
	qu := q.queue(id)
	q.expire(qu, now)
	if n := len(qu.pending) + len(qu.inflight); n >= q.opts.MaxQueueDepth {
		return "", iothub.Errorf(iothub.CodeDeviceMaximumQueueDepthExceeded, "the queue of %s already holds %d messages (the limit is %d)",
			id.ClientID(), n, q.opts.MaxQueueDepth)
	}
	e := &entry{rec: Record{Identity: id, Message: m, State: iothub.C2DQueued}}
	qu.pending = append(qu.pending, e)
	q.byID[m.MessageID] = e
	q.log.Debug("c2d message queued", "clientId", id.ClientID(), "messageId", m.MessageID, "depth", len(qu.pending)+len(qu.inflight))
	return m.MessageID, nil
}

// prepare validates m and fills the fields Enqueue sets.
func (q *Queue) prepare(id iothub.Identity, m *Message, now time.Time) error {
	if id.DeviceID == "" {
		return iothub.Errorf(iothub.CodeArgumentInvalid, "no device ID")
	}
	ack, err := iothub.ParseC2DAck(string(m.Ack))
	if err != nil {
		return err
	}
	m.Ack = ack
	if m.MessageID == "" {
		m.MessageID = q.opts.NewID()
	}
	if len(m.MessageID) > MaxIDLength {
		return iothub.Errorf(iothub.CodeArgumentInvalid, "message ID is %d characters, more than %d", len(m.MessageID), MaxIDLength)
	}
	if m.To == "" {
		m.To = DefaultTo(id)
	}
	for _, p := range m.Properties {
		if p.Key == "" {
			return iothub.Errorf(iothub.CodeArgumentInvalid, "an application property has an empty name")
		}
		if iothub.IsSystemProperty(p.Key) {
			return iothub.Errorf(iothub.CodeArgumentInvalid, "application property %q is a system property name", p.Key)
		}
	}
	m.EnqueuedTime = now
	m.DeliveryCount = 0
	m.DefaultExpiry = m.ExpiryTime.IsZero() && m.TTL == 0
	switch {
	case m.DefaultExpiry:
		m.ExpiryTime = now.Add(q.opts.DefaultTTL)
	case m.ExpiryTime.IsZero():
		m.ExpiryTime = now.Add(m.TTL)
	}
	if ttl := m.ExpiryTime.Sub(now); ttl < MinTTL || ttl > MaxTTL {
		return iothub.Errorf(iothub.CodeArgumentInvalid, "time to live %v is outside %v-%v", ttl, MinTTL, MaxTTL)
	}
	if size := m.Size(); size > q.opts.MaxSize {
		return iothub.Errorf(iothub.CodeMessageTooLarge, "message is %d bytes (payload and properties), more than the %d allowed", size, q.opts.MaxSize)
	}
	return nil
}

// queue returns the identity's queue, creating it. Callers hold q.mu.
func (q *Queue) queue(id iothub.Identity) *queue {
	qu := q.queues[id]
	if qu == nil {
		qu = &queue{}
		q.queues[id] = qu
	}
	return qu
}

// expire finishes every queued message of qu whose expiry has passed. Callers hold q.mu.
func (q *Queue) expire(qu *queue, now time.Time) {
	qu.pending = slices.DeleteFunc(qu.pending, func(e *entry) bool {
		if now.Before(e.rec.Message.ExpiryTime) {
			return false
		}
		q.finish(e, iothub.C2DExpired, "expired at "+e.rec.Message.ExpiryTime.UTC().Format(time.RFC3339), now)
		return true
	})
}

// finish moves e to a final state, keeps it in the history and records feedback. Callers hold
// q.mu and remove e from its queue.
func (q *Queue) finish(e *entry, s iothub.C2DState, reason string, now time.Time) {
	e.rec.State, e.rec.Reason, e.rec.Finished, e.rec.PacketID, e.rec.Session = s, reason, now, 0, ""
	if q.opts.OnFinish != nil {
		q.opts.OnFinish(e.rec.Identity, s)
	}
	q.history = append(q.history, e)
	if over := len(q.history) - q.opts.HistoryLimit; over > 0 {
		for _, old := range q.history[:over] {
			if q.byID[old.rec.Message.MessageID] == old {
				delete(q.byID, old.rec.Message.MessageID)
			}
		}
		q.history = slices.Delete(q.history, 0, over)
	}
	q.log.Debug("c2d message finished", "clientId", e.rec.Identity.ClientID(), "messageId", e.rec.Message.MessageID, "state", s, "reason", reason)

	ack := e.rec.Message.Ack
	var status iothub.C2DFeedbackStatus
	switch s {
	case iothub.C2DCompleted:
		if ack != iothub.AckPositive && ack != iothub.AckFull {
			return
		}
		status = iothub.FeedbackSuccess
	case iothub.C2DExpired, iothub.C2DRejected, iothub.C2DPurged:
		if ack != iothub.AckNegative && ack != iothub.AckFull {
			return
		}
		status = map[iothub.C2DState]iothub.C2DFeedbackStatus{iothub.C2DExpired: iothub.FeedbackExpired, iothub.C2DRejected: iothub.FeedbackRejected, iothub.C2DPurged: iothub.FeedbackPurged}[s]
	}
	q.feedback = append(q.feedback, iothub.C2DFeedback{
		OriginalMessageID: e.rec.Message.MessageID, DeviceID: e.rec.Identity.DeviceID, ModuleID: e.rec.Identity.ModuleID,
		StatusCode: status, Description: string(status), EnqueuedTime: now.UTC(), DeviceGenerationID: q.generationID(e.rec.Identity),
	})
	if over := len(q.feedback) - q.opts.FeedbackLimit; over > 0 {
		q.feedback = slices.Delete(q.feedback, 0, over)
	}
}

func (q *Queue) generationID(id iothub.Identity) string {
	if q.opts.GenerationID == nil {
		return ""
	}
	return q.opts.GenerationID(id)
}

// Peek returns the message the next Take would hand out first, without taking it.
func (q *Queue) Peek(id iothub.Identity) (Message, bool) {
	q.mu.Lock()
	defer q.mu.Unlock()
	qu := q.queues[id]
	if qu == nil {
		return Message{}, false
	}
	q.expire(qu, q.opts.Now())
	if len(qu.pending) == 0 {
		return Message{}, false
	}
	return qu.pending[0].rec.Message.clone(), true
}

// Take hands out up to limit queued messages (all of them when limit <= 0), oldest first,
// skipping (and expiring) those past their expiry. Each becomes delivered, its DeliveryCount
// goes up by one, and it waits for MarkDelivered and Complete (or CompleteMessage, or
// Requeue). Dispatch does the same and also assigns packet IDs.
func (q *Queue) Take(id iothub.Identity, limit int) []Message {
	ds := q.Dispatch(id, "", limit)
	out := make([]Message, len(ds))
	for i, d := range ds {
		out[i] = d.Message
	}
	return out
}

// Delivery is a message handed out by Dispatch with the MQTT packet ID to publish it with.
type Delivery struct {
	Message  Message
	PacketID uint16
}

// Dispatch is Take for wirings that let the queue choose packet IDs: each message gets the next
// packet ID of the identity (1 to 65535, wrapping, skipping IDs still in flight), so no
// MarkDelivered is needed. session tags the deliveries with the connection they were sent on
// (any string unique per connection, "" for none) so that RequeueSession can put back exactly
// that connection's unacknowledged messages.
func (q *Queue) Dispatch(id iothub.Identity, session string, limit int) []Delivery {
	q.mu.Lock()
	defer q.mu.Unlock()
	qu := q.queues[id]
	if qu == nil {
		return nil
	}
	now := q.opts.Now()
	q.expire(qu, now)
	n := len(qu.pending)
	if limit > 0 && limit < n {
		n = limit
	}
	out := make([]Delivery, 0, n)
	for _, e := range qu.pending[:n] {
		e.rec.State, e.rec.Delivered, e.rec.Session = iothub.C2DDelivered, now, session
		e.rec.PacketID = 0
		if session != "" {
			e.rec.PacketID = qu.nextPacketID()
		}
		e.rec.Message.DeliveryCount++
		qu.inflight = append(qu.inflight, e)
		out = append(out, Delivery{Message: e.rec.Message.clone(), PacketID: e.rec.PacketID})
	}
	qu.pending = slices.Delete(qu.pending, 0, n)
	return out
}

// nextPacketID returns the identity's next packet ID not in flight.
func (qu *queue) nextPacketID() uint16 {
	for {
		qu.lastPacketID++
		if qu.lastPacketID == 0 {
			qu.lastPacketID = 1
		}
		if !slices.ContainsFunc(qu.inflight, func(e *entry) bool { return e.rec.PacketID == qu.lastPacketID }) {
			return qu.lastPacketID
		}
	}
}

// MarkDelivered records the MQTT packet ID a taken message was published with, so Complete can
// find it when the PUBACK arrives. It returns ErrNotFound if the message is not in flight.
func (q *Queue) MarkDelivered(id iothub.Identity, msgID string, packetID uint16) error {
	q.mu.Lock()
	defer q.mu.Unlock()
	e := q.inflight(id, func(e *entry) bool { return e.rec.Message.MessageID == msgID && e.rec.PacketID == 0 })
	if e == nil {
		e = q.inflight(id, func(e *entry) bool { return e.rec.Message.MessageID == msgID })
	}
	if e == nil {
		return iothub.Errorf(iothub.CodeGenericNotFound, "marking %q delivered to %s: no such message in flight", msgID, id.ClientID())
	}
	e.rec.PacketID = packetID
	return nil
}

// inflight returns the first in-flight entry of the identity matching f. Callers hold q.mu.
func (q *Queue) inflight(id iothub.Identity, f func(*entry) bool) *entry {
	qu := q.queues[id]
	if qu == nil {
		return nil
	}
	if i := slices.IndexFunc(qu.inflight, f); i >= 0 {
		return qu.inflight[i]
	}
	return nil
}

// Complete finishes the in-flight message delivered with packetID (the device's PUBACK) and
// returns it. It returns false if no in-flight message of the identity has that packet ID.
func (q *Queue) Complete(id iothub.Identity, packetID uint16) (Message, bool) {
	return q.completeFunc(id, func(e *entry) bool { return e.rec.PacketID == packetID && packetID != 0 })
}

// CompleteMessage finishes an in-flight message by ID: the QoS 0 case, where a message counts
// as completed once sent. It returns false if the message is not in flight.
func (q *Queue) CompleteMessage(id iothub.Identity, msgID string) (Message, bool) {
	return q.completeFunc(id, func(e *entry) bool { return e.rec.Message.MessageID == msgID })
}

func (q *Queue) completeFunc(id iothub.Identity, f func(*entry) bool) (Message, bool) {
	q.mu.Lock()
	defer q.mu.Unlock()
	e := q.inflight(id, f)
	if e == nil {
		return Message{}, false
	}
	qu := q.queues[id]
	qu.inflight = slices.DeleteFunc(qu.inflight, func(x *entry) bool { return x == e })
	q.finish(e, iothub.C2DCompleted, "", q.opts.Now())
	return e.rec.Message.clone(), true
}

// Requeue puts every in-flight message of the identity back at the head of its queue, in
// delivery order (the device disconnected before its PUBACKs). The next Take hands them out
// again with DeliveryCount+1. It returns how many were put back; messages that expired in the
// meantime become expired instead.
func (q *Queue) Requeue(id iothub.Identity) int {
	return q.requeue(id, func(*entry) bool { return true })
}

// RequeueSession is Requeue for only the messages dispatched with the given session tag: what
// a connection that closed (or was taken over by a newer one) left unacknowledged, without
// touching what the newer connection has in flight.
func (q *Queue) RequeueSession(id iothub.Identity, session string) int {
	return q.requeue(id, func(e *entry) bool { return e.rec.Session == session })
}

func (q *Queue) requeue(id iothub.Identity, match func(*entry) bool) int {
	q.mu.Lock()
	defer q.mu.Unlock()
	qu := q.queues[id]
	if qu == nil {
		return 0
	}
	var back, keep []*entry
	for _, e := range qu.inflight {
		if match(e) {
			e.rec.State, e.rec.PacketID, e.rec.Session = iothub.C2DQueued, 0, ""
			back = append(back, e)
		} else {
			keep = append(keep, e)
		}
	}
	qu.pending = append(back, qu.pending...)
	qu.inflight = keep
	q.expire(qu, q.opts.Now())
	return len(back)
}

// Reject finishes one queued or in-flight message as rejected, with the reason (for example
// "device connected without a C2D subscription"). It returns ErrNotFound if the identity has
// no such message.
func (q *Queue) Reject(id iothub.Identity, msgID, reason string) error {
	q.mu.Lock()
	defer q.mu.Unlock()
	qu := q.queues[id]
	if qu != nil {
		for _, list := range []*[]*entry{&qu.inflight, &qu.pending} {
			if i := slices.IndexFunc(*list, func(e *entry) bool { return e.rec.Message.MessageID == msgID }); i >= 0 {
				e := (*list)[i]
				*list = slices.Delete(*list, i, i+1)
				q.finish(e, iothub.C2DRejected, reason, q.opts.Now())
				return nil
			}
		}
	}
	return iothub.Errorf(iothub.CodeGenericNotFound, "rejecting %q for %s: no such message queued or in flight", msgID, id.ClientID())
}

// RejectPending rejects every queued (not in-flight) message of the identity and returns how
// many. Expired messages become expired, not rejected.
func (q *Queue) RejectPending(id iothub.Identity, reason string) int {
	return q.drain(id, iothub.C2DRejected, reason)
}

// Purge removes every queued (not in-flight) message of the identity, as the service's purge
// operation does, and returns how many were removed.
func (q *Queue) Purge(id iothub.Identity) int {
	return q.drain(id, iothub.C2DPurged, "queue purged")
}

func (q *Queue) drain(id iothub.Identity, s iothub.C2DState, reason string) int {
	q.mu.Lock()
	defer q.mu.Unlock()
	qu := q.queues[id]
	if qu == nil {
		return 0
	}
	now := q.opts.Now()
	q.expire(qu, now)
	n := len(qu.pending)
	for _, e := range qu.pending {
		q.finish(e, s, reason, now)
	}
	qu.pending = nil
	if len(qu.inflight) == 0 {
		delete(q.queues, id)
	}
	return n
}

// State returns the record of a message by ID: queued, in flight, or finished and still in the
// history. With duplicate IDs it reports the latest message enqueued with that ID.
func (q *Queue) State(msgID string) (Record, bool) {
	q.mu.Lock()
	defer q.mu.Unlock()
	e := q.byID[msgID]
	if e == nil {
		return Record{}, false
	}
	if qu := q.queues[e.rec.Identity]; qu != nil {
		q.expire(qu, q.opts.Now())
	}
	return e.record(), true
}

func (e *entry) record() Record {
	r := e.rec
	r.Message = r.Message.clone()
	return r
}

// List returns the identity's unfinished messages in delivery order: in-flight ones first, then
// the queue.
func (q *Queue) List(id iothub.Identity) []Record {
	q.mu.Lock()
	defer q.mu.Unlock()
	qu := q.queues[id]
	if qu == nil {
		return nil
	}
	q.expire(qu, q.opts.Now())
	out := make([]Record, 0, len(qu.inflight)+len(qu.pending))
	for _, e := range slices.Concat(qu.inflight, qu.pending) {
		out = append(out, e.record())
	}
	return out
}

// Reset forgets every message (queued, in flight or finished) and all feedback, as if the
// queue were new. A PUBACK for a message that was in flight then completes nothing.
func (q *Queue) Reset() {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.queues = map[iothub.Identity]*queue{}
	q.byID = map[string]*entry{}
	q.history, q.feedback = nil, nil
}

// Depth returns how many messages wait for their identities, all queues
// together: queued, or delivered and awaiting a PUBACK. Messages past their
// expiry count until a queue is next read.
func (q *Queue) Depth() int {
	q.mu.Lock()
	defer q.mu.Unlock()
	n := 0
	for _, qu := range q.queues {
		n += len(qu.pending) + len(qu.inflight)
	}
	return n
}

// Feedback returns the feedback records kept so far, oldest first.
func (q *Queue) Feedback() []iothub.C2DFeedback {
	q.mu.Lock()
	defer q.mu.Unlock()
	return slices.Clone(q.feedback)
}

// TakeFeedback returns the feedback records kept so far and forgets them, as a service
// feedback receiver that completes what it reads.
func (q *Queue) TakeFeedback() []iothub.C2DFeedback {
	q.mu.Lock()
	defer q.mu.Unlock()
	f := q.feedback
	q.feedback = nil
	return f
}
