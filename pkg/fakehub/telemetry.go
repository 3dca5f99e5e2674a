package fakehub

import (
	"bytes"
	"context"
	"encoding/json"
	"sync"
	"time"

	mqtt "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/packets"

	"github.com/hubkit/hubkit/pkg/iothub"
)

// authMethod is the iothub-connection-auth-method annotation.
type authMethod struct {
	Scope                 string  `json:"scope"`
	Type                  string  `json:"type"`
	Issuer                string  `json:"issuer"`
	AcceptingIPFilterRule *string `json:"acceptingIpFilterRule"`
}

// authMethodJSON returns the annotation for a scope ("device", "module",
// "hub"): one string per scope, shared by every session.
func authMethodJSON(scope string) string {
	if am, ok := authMethods.Load(scope); ok {
		return am.(string)
	}
	b, _ := json.Marshal(authMethod{Scope: scope, Type: "sas", Issuer: "iothub"})
	am, _ := authMethods.LoadOrStore(scope, string(b))
	return am.(string)
}

var authMethods sync.Map // scope -> JSON

// telemetryHook captures accepted device publishes. Nothing a device
// publishes is routed through mochi's topic tree: telemetry goes to the
// capture buffer, twin and method messages to the cloud side; the device
// still gets its PUBACK (packets.CodeSuccessIgnore).
type telemetryHook struct {
	mqtt.HookBase
	s *Server
}

func (h *telemetryHook) ID() string { return "fakehub-telemetry" }

func (h *telemetryHook) Provides(b byte) bool { return b == mqtt.OnPublish || b == mqtt.OnWillSent }

func (h *telemetryHook) OnPublish(cl *mqtt.Client, pk packets.Packet) (_ packets.Packet, err error) {
	defer h.s.recoverHook("OnPublish", cl, &err)
	if cl.Net.Inline {
		return pk, nil
	}
	s := h.s
	ss := s.sessions.get(cl)
	if ss == nil {
		return pk, packets.ErrRejectPacket
	}
	p, err := ss.lastPublish, error(nil)
	if ss.lastTopic != pk.TopicName || pk.TopicName == "" {
		p, err = s.classifyPublish(ss.id, pk.TopicName)
	}
	if err != nil { // only with Quirks.IgnoreForbiddenPublish
		s.log.Debug("forbidden publish ignored", "deviceId", ss.id.DeviceID, "moduleId", ss.id.ModuleID, "topic", pk.TopicName, "reason", err.Error())
		return pk, packets.CodeSuccessIgnore
	}
	if p.Kind == iothub.TopicTelemetry {
		closes, opened := s.injectFault(ss, p.Properties)
		if closes {
			return pk, packets.ErrRejectPacket // no PUBACK: the fault closes the connection
		}
		plan, err := s.telemetryGate(ss, !opened, len(pk.Payload)+p.Properties.Size())
		if err != nil {
			return pk, packets.ErrRejectPacket // refused: the connection is closed, no PUBACK
		}
		var flags captureFlags
		if pk.FixedHeader.Retain {
			flags |= flagRetain
		}
		if pk.FixedHeader.Dup {
			flags |= flagDup
		}
		// The payload is kept as is: mochi decodes every packet from a buffer
		// of its own (Client.ReadPacket) and, after CodeSuccessIgnore or
		// ErrRejectPacket, never touches it again.
		if plan.admitAt.IsZero() && plan.pubackAt.IsZero() {
			s.capture(ss, pk.TopicName, p.Properties, pk.Payload, flags)
			if plan.noPuback {
				return pk, packets.ErrRejectPacket
			}
			return pk, packets.CodeSuccessIgnore
		}
		// Queued by the throttle or a PUBACK fault: the connection goes on reading while the
		// message waits; the hub writes its PUBACK itself (mochi sends none after ErrRejectPacket).
		go s.deferTelemetry(ss, pk, p.Properties, flags, plan)
		return pk, packets.ErrRejectPacket
	}
	s.cloudEvents.devicePublish(ss, p, pk.Payload)
	return pk, packets.CodeSuccessIgnore
}

// OnWillSent captures the will (mochi publishes it past OnPublish) unless
// hubClose settled it first.
func (h *telemetryHook) OnWillSent(cl *mqtt.Client, pk packets.Packet) {
	defer h.s.recoverHook("OnWillSent", nil, nil) // the connection is already gone
	if ss := h.s.sessions.get(cl); ss != nil && ss.willSettled.CompareAndSwap(false, true) {
		h.s.captureWill(ss, pk.TopicName, pk.Payload)
	}
}

// captureWill captures a will published to the identity's telemetry topic.
func (s *Server) captureWill(ss *session, topic string, payload []byte) {
	p, err := s.classifyPublish(ss.id, topic)
	if err != nil || p.Kind != iothub.TopicTelemetry {
		return
	}
	s.capture(ss, topic, p.Properties, bytes.Clone(payload), flagWill) // the will belongs to mochi's client
}

// captureFlags are the application properties the hub adds to a message.
type captureFlags uint8

const (
	flagRetain captureFlags = 1 << iota // mqtt-retain=true
	flagDup                             // mqtt-dup=true
	flagWill                            // iothub-MessageType=Will
)

// record is a captured message as the ring keeps it: what the device sent,
// when, and who sent it. The iothub.Event a Stream returns (its property and
// annotation maps, the formatted enqueued time) is built from it when it is
// read, so a message nobody reads costs one copy of its payload and no map.
type record struct {
	conn    *connInfo
	topic   string
	payload []byte
	props   iothub.Properties // as parsed from the topic (the hub's own copy)
	flags   captureFlags
	at      time.Time
	size    int // what it counts against Options.TelemetryBufferBytes
}

// connInfo is what the messages of one connection share: the identity and
// the annotations the hub stamps from it.
type connInfo struct {
	id         iothub.Identity
	authMethod string
	generation string
	modelID    string
}

// telemetryInfo returns the session's connInfo, made on first use.
func (ss *session) telemetryInfo() *connInfo {
	if ci := ss.capInfo.Load(); ci != nil {
		return ci
	}
	ss.capInfo.CompareAndSwap(nil, &connInfo{id: ss.id, authMethod: ss.authMethod, generation: ss.generation, modelID: ss.userName.ModelID})
	return ss.capInfo.Load()
}

// capture keeps a message; payload becomes the ring's (the caller does not
// touch it again).
func (s *Server) capture(ss *session, topic string, props iothub.Properties, payload []byte, flags captureFlags) {
	rec := record{conn: ss.telemetryInfo(), topic: topic, payload: payload, props: props, flags: flags, at: s.opts.Now()}
	rec.size = recordOverhead + len(topic) + len(payload)
	for _, p := range props {
		rec.size += len(p.Key) + len(p.Value) + propertyOverhead
	}
	s.telemetry.add(rec)
	s.metrics.telemetryAccepted(len(payload))
	ss.lastActive.Store(rec.at.UnixNano())
}

// Rough memory costs of a record and of each property, for the byte bound.
const (
	recordOverhead   = 256
	propertyOverhead = 32
)

// event builds the service-side view of r, sequence number seq.
func (r *record) event(seq uint64) iothub.Event {
	app := r.props.Application()
	if r.flags&flagRetain != 0 {
		app[iothub.PropMQTTRetain] = "true"
	}
	if r.flags&flagDup != 0 {
		app[iothub.PropMQTTDup] = "true"
	}
	if r.flags&flagWill != 0 {
		app[iothub.PropMessageType] = "Will"
	}
	at := r.at.UTC()
	ci := r.conn
	ann := map[string]string{
		iothub.PropConnectionDeviceID:         ci.id.DeviceID,
		iothub.PropConnectionAuthMethod:       ci.authMethod,
		iothub.PropConnectionAuthGenerationID: ci.generation,
		iothub.PropEnqueuedTime:               at.Format(time.RFC3339Nano),
		iothub.PropMessageSource:              "Telemetry",
	}
	if ci.id.IsModule() {
		ann[iothub.PropConnectionModuleID] = ci.id.ModuleID
	}
	if ci.modelID != "" {
		ann[iothub.PropDataSchema] = ci.modelID
	}
	return iothub.Event{
		DeviceID: ci.id.DeviceID, ModuleID: ci.id.ModuleID, Topic: r.topic, Payload: r.payload,
		SystemProperties: r.props.System(), Properties: app, Annotations: ann, EnqueuedTime: at, SequenceNumber: seq,
	}
}

// ring is the bounded telemetry buffer shared by all Streams: at most
// maxCount records and maxBytes bytes (their size), oldest evicted first.
// It is circular and grows (doubling) up to maxCount, so adding a record
// neither moves the others nor allocates once it is full.
type ring struct {
	mu       sync.Mutex
	buf      []record // buf[(head+i) % len(buf)], i < n, has sequence number oldest()+i
	head, n  int
	maxCount int
	maxBytes int
	bytes    int    // sum of size over the records held
	next     uint64 // sequence number of the next record (first is 1)
	dropped  uint64
	changed  chan struct{} // closed by the next add; nil while no Stream waits
}

func newRing(maxCount, maxBytes int) *ring {
	return &ring{maxCount: maxCount, maxBytes: maxBytes, next: 1}
}

func (r *ring) add(rec record) uint64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	seq := r.next
	r.next++
	for r.n > 0 && (r.n >= r.maxCount || r.bytes+rec.size > r.maxBytes) {
		r.bytes -= r.buf[r.head].size
		r.buf[r.head] = record{} // release the payload now
		r.head = (r.head + 1) % len(r.buf)
		r.n--
		r.dropped++
	}
	if r.n == len(r.buf) {
		grown := make([]record, min(max(2*len(r.buf), 64), r.maxCount))
		for i := range r.n {
			grown[i] = r.buf[(r.head+i)%len(r.buf)]
		}
		r.buf, r.head = grown, 0
	}
	r.buf[(r.head+r.n)%len(r.buf)] = rec
	r.n++
	r.bytes += rec.size
	if r.changed != nil {
		close(r.changed)
		r.changed = nil
	}
	return seq
}

// oldest returns the sequence number of the oldest retained record (r.mu held).
func (r *ring) oldest() uint64 { return r.next - uint64(r.n) }

// at returns the retained record seq (r.mu held, oldest() <= seq < next).
func (r *ring) at(seq uint64) *record {
	return &r.buf[(r.head+int(seq-r.oldest()))%len(r.buf)]
}

// wait returns a channel closed by the next add (r.mu held).
func (r *ring) wait() <-chan struct{} {
	if r.changed == nil {
		r.changed = make(chan struct{})
	}
	return r.changed
}

// Stream reads captured telemetry with its own cursor.
type Stream struct {
	r      *ring
	mu     sync.Mutex
	cursor uint64 // next sequence number to read
	filter func(iothub.Identity) bool
}

// Telemetry returns a Stream positioned after the last captured message: Next
// waits for messages arriving from now on. This is the rule of every telemetry
// stream the hub offers (docs/iothub-behavior.md §13.6): a stream starts where it
// is opened, so open it before the device sends; TelemetryFrom starts at a time
// instead, TelemetrySince at a sequence number, and Stream.All lists what is held.
func (s *Server) Telemetry() *Stream {
	s.telemetry.mu.Lock()
	defer s.telemetry.mu.Unlock()
	return &Stream{r: s.telemetry, cursor: s.telemetry.next}
}

// TelemetryFrom returns a Stream starting at the first retained message enqueued
// at or after t (by Options.Now's clock), so Next returns what arrived since t and
// then waits for more. A zero t starts at the oldest message retained.
func (s *Server) TelemetryFrom(t time.Time) *Stream {
	r := s.telemetry
	r.mu.Lock()
	defer r.mu.Unlock()
	seq := r.oldest()
	for seq < r.next && r.at(seq).at.Before(t) { // arrival order is time order
		seq++
	}
	return &Stream{r: r, cursor: seq}
}

// TelemetrySince returns a Stream starting at sequence number seq (0 or 1:
// the oldest message still retained).
func (s *Server) TelemetrySince(seq uint64) *Stream {
	return &Stream{r: s.telemetry, cursor: max(seq, 1)}
}

// Dropped returns how many telemetry messages were evicted from the buffer
// (for Options.TelemetryBuffer or Options.TelemetryBufferBytes).
func (s *Server) Dropped() uint64 {
	s.telemetry.mu.Lock()
	defer s.telemetry.mu.Unlock()
	return s.telemetry.dropped
}

// ForDevice returns a Stream at the same position that only yields messages
// of deviceID (and, when moduleID is not "", that module; "" matches the
// device's own and its modules' messages).
func (st *Stream) ForDevice(deviceID, moduleID string) *Stream {
	st.mu.Lock()
	defer st.mu.Unlock()
	prev := st.filter
	return &Stream{r: st.r, cursor: st.cursor, filter: func(id iothub.Identity) bool {
		return (prev == nil || prev(id)) && id.DeviceID == deviceID && (moduleID == "" || id.ModuleID == moduleID)
	}}
}

// Next returns the next message, waiting for it until ctx is done. Messages
// evicted before they were read are skipped (see Dropped). A Stream may be
// shared by goroutines; each message is returned once.
func (st *Stream) Next(ctx context.Context) (iothub.Event, error) {
	for {
		st.mu.Lock()
		st.r.mu.Lock()
		if st.cursor < st.r.oldest() {
			st.cursor = st.r.oldest()
		}
		for st.cursor < st.r.next {
			rec, seq := st.r.at(st.cursor), st.cursor
			st.cursor++
			if st.filter == nil || st.filter(rec.conn.id) {
				r := *rec
				st.r.mu.Unlock()
				st.mu.Unlock()
				return r.event(seq), nil
			}
		}
		ch := st.r.wait()
		st.r.mu.Unlock()
		st.mu.Unlock()
		select {
		case <-ch:
		case <-ctx.Done():
			return iothub.Event{}, ctx.Err()
		}
	}
}

// All returns the retained messages from the stream's position on, without
// moving it.
func (st *Stream) All() []iothub.Event {
	st.mu.Lock()
	st.r.mu.Lock()
	type entry struct {
		rec record
		seq uint64
	}
	var recs []entry
	for seq := max(st.cursor, st.r.oldest()); seq < st.r.next; seq++ {
		if rec := st.r.at(seq); st.filter == nil || st.filter(rec.conn.id) {
			recs = append(recs, entry{*rec, seq})
		}
	}
	st.r.mu.Unlock()
	st.mu.Unlock()
	var out []iothub.Event
	for i := range recs {
		out = append(out, recs[i].rec.event(recs[i].seq))
	}
	return out
}

// SkipToEnd moves the stream past the last captured message without
// reading what it skips (no Event is built) and returns how many messages
// that was, filtered ones and evicted ones included: for a reader that
// samples a fast stream, such as fakehub's log.
func (st *Stream) SkipToEnd() uint64 {
	st.mu.Lock()
	defer st.mu.Unlock()
	st.r.mu.Lock()
	defer st.r.mu.Unlock()
	n := st.r.next - min(st.cursor, st.r.next)
	st.cursor = st.r.next
	return n
}

// Dropped returns how many messages the hub evicted from its buffer in total.
func (st *Stream) Dropped() uint64 {
	st.r.mu.Lock()
	defer st.r.mu.Unlock()
	return st.r.dropped
}

// deferTelemetry captures a queued message at its turn and acknowledges it when its plan
// allows; a connection that ends first gets neither (the device resends).
func (s *Server) deferTelemetry(ss *session, pk packets.Packet, props iothub.Properties, flags captureFlags, plan telemetryPlan) {
	defer s.recoverHook("queued telemetry", ss.cl, nil)
	if !plan.admitAt.IsZero() && !s.limits.waitUntil(ss.done, plan.admitAt) {
		s.limits.refund(plan.quotaDay, plan.size)
		return
	}
	s.capture(ss, pk.TopicName, props, pk.Payload, flags)
	if plan.noPuback || pk.FixedHeader.Qos == 0 {
		return
	}
	if !plan.pubackAt.IsZero() && !s.limits.waitUntil(ss.done, plan.pubackAt) {
		return
	}
	_ = ss.cl.WritePacket(packets.Packet{FixedHeader: packets.FixedHeader{Type: packets.Puback}, PacketID: pk.PacketID})
}
