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

func authMethodJSON(scope string) string {
	am, _ := json.Marshal(authMethod{Scope: scope, Type: "sas", Issuer: "iothub"})
	return string(am)
}

// telemetryHook captures accepted device publishes. Nothing a device
// publishes is routed through mochi's topic tree: telemetry goes to the
// capture buffer, twin and method messages to the cloud side; the device
// still gets its PUBACK (packets.CodeSuccessIgnore).
type telemetryHook struct {
	mqtt.HookBase
	s *Server
}

func (h *telemetryHook) ID() string { return "fakehub-telemetry" }

func (h *telemetryHook) Provides(b byte) bool {
	return bytes.Contains([]byte{mqtt.OnPublish, mqtt.OnWillSent}, []byte{b})
}

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
	ss.lastTopic = ""
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
		extra := map[string]string{}
		if pk.FixedHeader.Retain {
			extra[iothub.PropMQTTRetain] = "true"
		}
		if pk.FixedHeader.Dup {
			extra[iothub.PropMQTTDup] = "true"
		}
		if plan.admitAt.IsZero() && plan.pubackAt.IsZero() {
			s.capture(ss, pk.TopicName, p.Properties, pk.Payload, extra)
			if plan.noPuback {
				return pk, packets.ErrRejectPacket
			}
			return pk, packets.CodeSuccessIgnore
		}
		// Queued by the throttle or a PUBACK fault: the connection goes on reading while the
		// message waits; the hub writes its PUBACK itself (mochi sends none after ErrRejectPacket).
		go s.deferTelemetry(ss, pk, p.Properties, extra, plan)
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
	s.capture(ss, topic, p.Properties, payload, map[string]string{iothub.PropMessageType: "Will"})
}

func (s *Server) capture(ss *session, topic string, props iothub.Properties, payload []byte, extra map[string]string) {
	now := s.opts.Now().UTC()
	app := props.Application()
	for k, v := range extra {
		app[k] = v
	}
	ann := map[string]string{
		iothub.PropConnectionDeviceID:         ss.id.DeviceID,
		iothub.PropConnectionAuthMethod:       ss.authMethod,
		iothub.PropConnectionAuthGenerationID: ss.generation,
		iothub.PropEnqueuedTime:               now.Format(time.RFC3339Nano),
		iothub.PropMessageSource:              "Telemetry",
	}
	if ss.id.IsModule() {
		ann[iothub.PropConnectionModuleID] = ss.id.ModuleID
	}
	if ss.userName.ModelID != "" {
		ann[iothub.PropDataSchema] = ss.userName.ModelID
	}
	m := iothub.Event{
		DeviceID: ss.id.DeviceID, ModuleID: ss.id.ModuleID, Topic: topic,
		Payload:          bytes.Clone(payload),
		SystemProperties: props.System(), Properties: app, Annotations: ann, EnqueuedTime: now,
	}
	seq := s.telemetry.add(m)
	s.metrics.telemetryAccepted(len(payload))
	ss.lastActive.Store(now.UnixNano())
	s.log.Debug("telemetry", "deviceId", m.DeviceID, "moduleId", m.ModuleID, "seq", seq, "bytes", len(payload))
}

// ring is the bounded telemetry buffer shared by all Streams: at most
// maxCount messages and maxBytes bytes (size), oldest evicted first.
type ring struct {
	mu       sync.Mutex
	buf      []iothub.Event // retained, oldest first: buf[i] has sequence number oldest()+i
	maxCount int
	maxBytes int
	bytes    int    // sum of size over buf
	next     uint64 // sequence number of the next message (first is 1)
	dropped  uint64
	changed  chan struct{}
}

func newRing(maxCount, maxBytes int) *ring {
	return &ring{maxCount: maxCount, maxBytes: maxBytes, next: 1, changed: make(chan struct{})}
}

// size estimates the memory m holds.
func eventSize(m *iothub.Event) int {
	n := 256 + len(m.DeviceID) + len(m.ModuleID) + len(m.Topic) + len(m.Payload)
	for _, mp := range []map[string]string{m.SystemProperties, m.Properties, m.Annotations} {
		for k, v := range mp {
			n += len(k) + len(v) + 32
		}
	}
	return n
}

func (r *ring) add(m iothub.Event) uint64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	m.SequenceNumber = r.next
	r.next++
	sz := eventSize(&m)
	for len(r.buf) > 0 && (len(r.buf) >= r.maxCount || r.bytes+sz > r.maxBytes) {
		r.bytes -= eventSize(&r.buf[0])
		r.buf[0] = iothub.Event{} // release the payload before the array is reallocated
		r.buf = r.buf[1:]
		r.dropped++
	}
	r.buf = append(r.buf, m)
	r.bytes += sz
	close(r.changed)
	r.changed = make(chan struct{})
	return m.SequenceNumber
}

// oldest returns the sequence number of the oldest retained message (r.mu held).
func (r *ring) oldest() uint64 { return r.next - uint64(len(r.buf)) }

// at returns the retained message seq (r.mu held, oldest() <= seq < next).
func (r *ring) at(seq uint64) iothub.Event { return r.buf[seq-r.oldest()] }

// Stream reads captured telemetry with its own cursor.
type Stream struct {
	r      *ring
	mu     sync.Mutex
	cursor uint64 // next sequence number to read
	filter func(iothub.Event) bool
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
	for seq < r.next && r.at(seq).EnqueuedTime.Before(t) { // arrival order is time order
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
	return &Stream{r: st.r, cursor: st.cursor, filter: func(m iothub.Event) bool {
		return (prev == nil || prev(m)) && m.DeviceID == deviceID && (moduleID == "" || m.ModuleID == moduleID)
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
			m := st.r.at(st.cursor)
			st.cursor++
			if st.filter == nil || st.filter(m) {
				st.r.mu.Unlock()
				st.mu.Unlock()
				return m, nil
			}
		}
		ch := st.r.changed
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
	defer st.mu.Unlock()
	st.r.mu.Lock()
	defer st.r.mu.Unlock()
	var out []iothub.Event
	for seq := max(st.cursor, st.r.oldest()); seq < st.r.next; seq++ {
		if m := st.r.at(seq); st.filter == nil || st.filter(m) {
			out = append(out, m)
		}
	}
	return out
}

// Dropped returns how many messages the hub evicted from its buffer in total.
func (st *Stream) Dropped() uint64 {
	st.r.mu.Lock()
	defer st.r.mu.Unlock()
	return st.r.dropped
}

// deferTelemetry captures a queued message at its turn and acknowledges it when its plan
// allows; a connection that ends first gets neither (the device resends).
func (s *Server) deferTelemetry(ss *session, pk packets.Packet, props iothub.Properties, extra map[string]string, plan telemetryPlan) {
	defer s.recoverHook("queued telemetry", ss.cl, nil)
	if !plan.admitAt.IsZero() && !s.limits.waitUntil(ss.done, plan.admitAt) {
		s.limits.refund(plan.quotaDay, plan.size)
		return
	}
	s.capture(ss, pk.TopicName, props, pk.Payload, extra)
	if plan.noPuback || pk.FixedHeader.Qos == 0 {
		return
	}
	if !plan.pubackAt.IsZero() && !s.limits.waitUntil(ss.done, plan.pubackAt) {
		return
	}
	_ = ss.cl.WritePacket(packets.Packet{FixedHeader: packets.FixedHeader{Type: packets.Puback}, PacketID: pk.PacketID})
}
