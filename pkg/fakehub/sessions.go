package fakehub

import (
	"context"
	"errors"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	mqtt "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/packets"

	"github.com/hubkit/hubkit/pkg/iothub"
	"github.com/hubkit/hubkit/pkg/sas"
)

// session is one authenticated MQTT connection of an identity. The cloud
// side (C2D, twins, methods) reads it; its fields are set before the session
// is published in the table and never change, except where noted.
type session struct {
	srv         *Server
	cl          *mqtt.Client
	id          iothub.Identity
	userName    iothub.UserName
	rawUserName string
	remote      string
	authScope   string // "device", "module" or "hub" (policy token)
	generation  string // iothub-connection-auth-generation-id
	expiry      time.Time
	connectedAt time.Time

	authMethod string        // iothub-connection-auth-method JSON, computed once
	idle       time.Duration // keep-alive time-out (1.5 × keep-alive, capped; 0: none)

	// will is the CONNECT's will as the hub accepted it (nil: none), copied
	// in OnConnect on the connection's goroutine. Other goroutines read
	// this copy, never cl.Properties.Will, which mochi rewrites without
	// synchronisation when the connection ends.
	will *willMessage
	// willSettled is set by whoever decides the will's fate first: hubClose
	// (drop it, or capture it with Quirks.WillOnHubClose) or OnWillSent
	// (capture what mochi published after a network loss).
	willSettled atomic.Bool

	// lastPublish is the classification of lastTopic, the last PUBLISH
	// topic that classified without error, made in OnPacketRead and reused by
	// OnPublish and by the next PUBLISH to the same topic (all on the
	// connection's read goroutine, one packet at a time).
	lastTopic   string
	lastPublish iothub.DevicePublish

	acked       atomic.Bool // the CONNACK is being written: subscriptions (inherited too) are in place
	established atomic.Bool // OnSessionEstablished ran: OnDisconnect will run too; writes may go out
	sentDisconn atomic.Bool // the device sent DISCONNECT (set before mochi closes the connection)
	timerMu     sync.Mutex
	timer       *time.Timer                // token expiry; see armExpiry
	timerOff    bool                       // stopExpiry ran: arm no more
	closeReason atomic.Pointer[sas.Reason] // first hub-initiated close reason
	done        chan struct{}              // closed on disconnect

	subMu       sync.Mutex
	pendingSubs map[uint16][]string // SUBSCRIBE filters by packet ID until the SUBACK is sent

	tag   string     // unique per connection (set by establish): tags C2D deliveries
	c2dMu sync.Mutex // serialises C2D flushes (service and connection goroutines) for FIFO order

	lastActive atomic.Int64       // Unix nanoseconds of the latest telemetry (0: none yet), for the dashboard
	token      sas.Token          // the CONNECT's token (re-verified when the identity's keys change)
	warnings   []iothub.Rejection // the strict profile's warnings for this CONNECT

	capInfo atomic.Pointer[connInfo] // what its telemetry records share (telemetryInfo)
}

// willMessage is a device's will (topic and payload).
type willMessage struct {
	topic   string
	payload []byte
}

// deadline is when the session is dropped for token expiry.
func (ss *session) deadline() time.Time { return ss.expiry.Add(ss.srv.opts.TokenExpiryGrace) }

func (ss *session) rejection(reason sas.Reason, detail string) iothub.Rejection {
	return iothub.Rejection{RemoteAddr: ss.remote, ClientID: ss.cl.ID, DeviceID: ss.id.DeviceID, ModuleID: ss.id.ModuleID, UserName: ss.rawUserName, Reason: reason, Detail: detail}
}

// subscriptions returns the filters the device holds now (inherited ones
// included after a clean=false reconnect) with their granted QoS.
func (ss *session) subscriptions() map[string]byte {
	out := map[string]byte{}
	for f, sub := range ss.cl.State.Subscriptions.GetAll() {
		out[f] = sub.Qos
	}
	return out
}

// subscribed reports whether the device holds a filter of that kind, and
// its granted QoS.
func (ss *session) subscribed(kind iothub.TopicKind) (byte, bool) {
	for f, q := range ss.subscriptions() {
		if k, err := iothub.ClassifySubscribe(ss.id, f); err == nil && k == kind {
			return q, true
		}
	}
	return 0, false
}

// sessionTable maps identities and mochi clients to live sessions.
type sessionTable struct {
	mu       sync.Mutex
	byID     map[iothub.Identity]*session
	byClient map[*mqtt.Client]*session
	pending  map[*mqtt.Client]*session // authenticated in OnConnect, not yet established
	seq      uint64                    // connections established so far (session tags)
}

func (t *sessionTable) init() {
	t.byID = map[iothub.Identity]*session{}
	t.byClient = map[*mqtt.Client]*session{}
	t.pending = map[*mqtt.Client]*session{}
}

// get returns the session of a connection, pending or established. Hooks
// call it several times per packet: the session is found on the connection
// itself, without the table's lock, for every connection that came through a
// guardListener (all but the inline client's).
func (t *sessionTable) get(cl *mqtt.Client) *session {
	if g, ok := cl.Net.Conn.(*guardConn); ok {
		return g.session.Load()
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if ss := t.byClient[cl]; ss != nil {
		return ss
	}
	return t.pending[cl]
}

// addPending records the session OnConnect authenticated.
func (t *sessionTable) addPending(ss *session) {
	t.mu.Lock()
	t.pending[ss.cl] = ss
	t.mu.Unlock()
	if g, ok := ss.cl.Net.Conn.(*guardConn); ok {
		g.session.Store(ss)
	}
}

func (t *sessionTable) lookup(id iothub.Identity) *session {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.byID[id]
}

func (t *sessionTable) all() []*session {
	t.mu.Lock()
	defer t.mu.Unlock()
	out := make([]*session, 0, len(t.byClient))
	for _, ss := range t.byClient {
		out = append(out, ss)
	}
	return out
}

// establish publishes ss and returns the session it replaces, if any.
func (t *sessionTable) establish(ss *session) (old *session) {
	t.mu.Lock()
	defer t.mu.Unlock()
	delete(t.pending, ss.cl)
	t.seq++
	ss.tag = strconv.FormatUint(t.seq, 10)
	old = t.byID[ss.id]
	t.byID[ss.id] = ss
	t.byClient[ss.cl] = ss
	return old
}

func (t *sessionTable) remove(cl *mqtt.Client) *session {
	t.mu.Lock()
	defer t.mu.Unlock()
	if g, ok := cl.Net.Conn.(*guardConn); ok {
		g.session.Store(nil)
	}
	delete(t.pending, cl)
	ss := t.byClient[cl]
	if ss == nil {
		return nil
	}
	delete(t.byClient, cl)
	if t.byID[ss.id] == ss {
		delete(t.byID, ss.id)
	}
	return ss
}

func (t *sessionTable) stopAll() {
	for _, ss := range t.all() {
		ss.stopExpiry()
	}
}

// armExpiry drops the session for token expiry once Options.Now reaches its
// deadline. The timer runs on the real clock; when it fires before the
// injected clock says the deadline has come, it waits again.
func (ss *session) armExpiry() {
	if ss.expiry.IsZero() {
		return // an X.509 connection: no token to expire
	}
	s := ss.srv
	d := ss.deadline().Sub(s.opts.Now())
	ss.timerMu.Lock()
	defer ss.timerMu.Unlock()
	if ss.timerOff {
		return
	}
	ss.timer = time.AfterFunc(max(d, 0), func() {
		defer s.recoverHook("token expiry timer", ss.cl, nil)
		if s.opts.Now().Before(ss.deadline()) {
			ss.armExpiry()
			return
		}
		s.expire(ss)
	})
}

// stopExpiry stops the expiry timer for good.
func (ss *session) stopExpiry() {
	ss.timerMu.Lock()
	defer ss.timerMu.Unlock()
	ss.timerOff = true
	if ss.timer != nil {
		ss.timer.Stop()
	}
}

// Session is a read-only view of a connected identity.
type Session struct {
	Identity      iothub.Identity
	RemoteAddr    string
	ConnectedAt   time.Time
	TokenExpiry   time.Time
	Subscriptions map[string]byte // filter -> granted QoS
}

// waitEstablished waits up to d for OnSessionEstablished to have run on ss (its CONNACK
// sent), for ss to close, or for ctx to end. mochi calls OnSessionEstablished before it
// reads the connection's next packet, so the wait is as long as a CONNACK write.
func (ss *session) waitEstablished(ctx context.Context, d time.Duration) {
	deadline := time.Now().Add(d)
	for !ss.established.Load() && !ss.cl.Closed() && ctx.Err() == nil && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
}

// Sessions returns the connected identities.
func (s *Server) Sessions() []Session {
	var out []Session
	for _, ss := range s.sessions.all() {
		out = append(out, Session{Identity: ss.id, RemoteAddr: ss.remote, ConnectedAt: ss.connectedAt, TokenExpiry: ss.expiry, Subscriptions: ss.subscriptions()})
	}
	return out
}

// Connected reports whether the identity has a live connection.
func (s *Server) Connected(id iothub.Identity) bool {
	ss := s.sessions.lookup(id)
	return ss != nil && !ss.cl.Closed()
}

// ErrOffline means the identity has no live connection.
var ErrOffline = errors.New("fakehub: device not connected")

// deliver writes a PUBLISH straight to the identity's connection, bypassing
// mochi's topic tree (which would broadcast $iothub topics to every device,
// mochi-and-paho.md §2f). For QoS 1 the inflight is registered so it is
// resent on a clean=false reconnect; the device's PUBACK arrives at
// cloudSide.puback with the returned packet ID. The cloud side publishes
// only QoS 0 with it: C2D messages (QoS 1) are written by flushC2D, which
// keeps them out of mochi's inflight store.
func (s *Server) deliver(id iothub.Identity, topic string, payload []byte, qos byte) (uint16, error) {
	ss := s.sessions.lookup(id)
	if ss == nil || !ss.established.Load() || ss.cl.Closed() {
		return 0, ErrOffline // nothing goes out before the CONNACK (and resent inflights)
	}
	pk := packets.Packet{
		FixedHeader: packets.FixedHeader{Type: packets.Publish, Qos: qos},
		TopicName:   topic,
		Payload:     payload,
		Created:     s.opts.Now().Unix(),
	}
	if qos > 0 {
		pid, err := ss.cl.NextPacketID()
		if err != nil {
			return 0, err
		}
		pk.PacketID = uint16(pid)
		ss.cl.State.Inflight.Set(pk)
	}
	if err := ss.cl.WritePacket(pk); err != nil {
		if qos > 0 {
			ss.cl.State.Inflight.Delete(pk.PacketID)
		}
		return 0, err
	}
	return pk.PacketID, nil
}

// cloudSide is the extension point for the cloud half of the hub (C2D
// queue, twins, direct methods). Its methods run on mochi's per-connection
// goroutines and must not block; they are called in order for one session.
type cloudSide interface {
	// established: CONNACK sent, inherited inflights resent (flush queued C2D here).
	established(ss *session)
	// subscribed: the SUBACK for filters (with granted codes) has been sent.
	subscribed(ss *session, filters []string, granted []byte)
	// devicePublish: the device published a twin GET, reported PATCH or
	// method response (never telemetry); the device gets its PUBACK.
	devicePublish(ss *session, p iothub.DevicePublish, payload []byte)
	// puback: the device acknowledged our QoS 1 PUBLISH packetID.
	puback(ss *session, packetID uint16)
	// disconnected: the connection ended; replaced is true when a newer
	// connection of the same identity took over.
	disconnected(ss *session, replaced bool)
}
