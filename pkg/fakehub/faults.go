package fakehub

import (
	"errors"
	"fmt"
	"net"
	"sync"
	"time"

	"github.com/hubkit/hubkit/pkg/iothub"
	"github.com/hubkit/hubkit/pkg/sas"
)

// Reasons of the faults the hub injects (service side, the SDKs' fault-injection
// properties, and the limits). Each is recorded in Rejections with the IoT Hub error code
// the real hub logs for it.
const (
	// ReasonFaultDrop: the connection was dropped by Server.Drop / DropAll (POST /hubkit/faults).
	ReasonFaultDrop sas.Reason = "fault-drop"
	// ReasonFaultRefused: a CONNECT refused while Server.RefuseConnections is in force; CONNACK 3.
	ReasonFaultRefused sas.Reason = "fault-refuse-connect"
	// ReasonFaultPuback: a PUBACK delayed or withheld by Server.DelayPubacks / DropPubacks.
	ReasonFaultPuback sas.Reason = "fault-puback"
	// ReasonFaultTwin: a twin request left unanswered by Server.SilenceTwin.
	ReasonFaultTwin sas.Reason = "fault-twin-unanswered"
	// ReasonRestart: the connection was closed by Server.Restart.
	ReasonRestart sas.Reason = "hub-restart"
	// ReasonFaultInjection: a fault asked for by the device's AzIoTHub_FaultOperationType
	// telemetry property (the detail names the type).
	ReasonFaultInjection sas.Reason = "fault-injection"
	// ReasonThrottled: a throttle's backlog was full (429002); the connection is closed
	// (telemetry) or the request answered 429.
	ReasonThrottled sas.Reason = "throttled"
	// ReasonQuotaExceeded: the daily message quota is used up (403002); the connection is
	// closed.
	ReasonQuotaExceeded sas.Reason = "quota-exceeded"
	// ReasonKeyRotated: the identity's keys changed and its token no longer verifies
	// (Quirks.DropOnKeyChange); the connection is closed.
	ReasonKeyRotated sas.Reason = "key-rotated"
)

// DropOptions say how Server.Drop closes a connection.
type DropOptions struct {
	// Reason is recorded with the drop (default "dropped by the service"). MQTT 3.1.1 has no
	// way to tell the device why: it sees the connection end either way.
	Reason string
	// ErrorCode is the code recorded (and logged) for the drop: what the real hub would log,
	// e.g. 400027 to mimic a takeover; default 400029 ConnectionForcefullyClosedOnFaultInjection.
	ErrorCode iothub.ErrorCode
	// Abort resets the TCP connection (RST, no TLS close_notify), like KillTcp; by default
	// the hub closes cleanly (close_notify, FIN), like ShutDownMqtt.
	Abort bool
}

// faultTable holds the service-side faults in force.
type faultTable struct {
	mu          sync.Mutex
	refuseAll   time.Time                     // CONNECTs refused until then (hub clock)
	refuse      map[iothub.Identity]time.Time // per identity
	pubackDelay map[iothub.Identity]time.Duration
	pubackDrop  map[iothub.Identity]bool
	twinSilent  map[iothub.Identity]bool
	windows     map[iothub.Identity]faultWindow // from fault-injection properties
}

// faultWindow is an Invoke* fault in force for an identity: between from and until, its
// telemetry is refused with code (and, for an auth error, its CONNECTs with CONNACK 5).
type faultWindow struct {
	kind        string
	code        iothub.ErrorCode
	from, until time.Time
}

func (w faultWindow) active(now time.Time) bool {
	return w.kind != "" && !now.Before(w.from) && now.Before(w.until)
}

func (f *faultTable) init() {
	f.refuse = map[iothub.Identity]time.Time{}
	f.pubackDelay = map[iothub.Identity]time.Duration{}
	f.pubackDrop = map[iothub.Identity]bool{}
	f.twinSilent = map[iothub.Identity]bool{}
	f.windows = map[iothub.Identity]faultWindow{}
}

// allIdentities is the zero Identity: a fault for every identity.
var allIdentities = iothub.Identity{}

// Drop closes the live connection of id, recording why (ReasonFaultDrop with the options'
// error code). It returns ErrOffline when id is not connected.
func (s *Server) Drop(id iothub.Identity, o DropOptions) error {
	ss := s.sessions.lookup(id)
	if ss == nil || ss.cl.Closed() {
		return fmt.Errorf("dropping %s: %w", id, ErrOffline)
	}
	s.dropSession(ss, ReasonFaultDrop, o)
	return nil
}

// DropAll closes every live connection as Drop does and returns how many there were.
func (s *Server) DropAll(o DropOptions) int {
	n := 0
	for _, ss := range s.sessions.all() {
		if !ss.cl.Closed() {
			s.dropSession(ss, ReasonFaultDrop, o)
			n++
		}
	}
	return n
}

func (s *Server) dropSession(ss *session, reason sas.Reason, o DropOptions) {
	if o.Reason == "" {
		o.Reason = "dropped by the service"
	}
	if o.ErrorCode == 0 {
		o.ErrorCode = iothub.CodeConnectionForcefullyClosedOnFaultInjection
	}
	how := "closed cleanly (TLS close_notify, FIN)"
	if o.Abort {
		how = "reset (TCP RST)"
	}
	// The record first: a device that reconnects at once must not make it a takeover.
	s.claimClose(ss, reason, o.ErrorCode, fmt.Sprintf("%s; the connection was %s", o.Reason, how))
	if o.Abort {
		abortConn(ss.cl.Net.Conn)
	}
	s.hubCloseCode(ss, reason, o.ErrorCode, "")
}

// abortConn resets a connection: linger 0, then close the TCP socket under TLS, so the
// peer gets an RST and no close_notify.
func abortConn(c net.Conn) {
	if g := guardOf(c); g != nil {
		c = g.Conn
	}
	if tc, ok := c.(interface{ NetConn() net.Conn }); ok {
		c = tc.NetConn()
	}
	if tcp, ok := c.(*net.TCPConn); ok {
		_ = tcp.SetLinger(0)
	}
	_ = c.Close()
}

// RefuseConnections refuses the CONNECTs of id (the zero Identity: of every identity) for
// d by the hub's clock, with CONNACK 3 (server unavailable) and the record
// 400030 ConnectionRejectedOnFaultInjection; d <= 0 ends the refusal. Live connections stay.
func (s *Server) RefuseConnections(id iothub.Identity, d time.Duration) {
	until := time.Time{}
	if d > 0 {
		until = s.opts.Now().Add(d)
	}
	s.faults.mu.Lock()
	defer s.faults.mu.Unlock()
	if id == allIdentities {
		s.faults.refuseAll = until
		return
	}
	s.faults.refuse[id] = until
}

// DelayPubacks holds the PUBACK of each telemetry message of id (the zero Identity: of
// every identity) for d by the hub's clock (the message is captured at once); 0 ends it.
func (s *Server) DelayPubacks(id iothub.Identity, d time.Duration) {
	s.faults.mu.Lock()
	defer s.faults.mu.Unlock()
	if d <= 0 {
		delete(s.faults.pubackDelay, id)
		return
	}
	s.faults.pubackDelay[id] = d
}

// DropPubacks withholds the PUBACK of every telemetry message of id (the zero Identity: of
// every identity) while on: the message is captured, the device never hears of it and, if
// it is well behaved, sends it again on its next connection.
func (s *Server) DropPubacks(id iothub.Identity, on bool) {
	s.faults.mu.Lock()
	defer s.faults.mu.Unlock()
	if !on {
		delete(s.faults.pubackDrop, id)
		return
	}
	s.faults.pubackDrop[id] = true
}

// SilenceTwin leaves the twin GETs and reported PATCHes of id (the zero Identity: of every
// identity) unanswered while on: no $iothub/twin/res/... is published (a reported PATCH is
// not applied either).
func (s *Server) SilenceTwin(id iothub.Identity, on bool) {
	s.faults.mu.Lock()
	defer s.faults.mu.Unlock()
	if !on {
		delete(s.faults.twinSilent, id)
		return
	}
	s.faults.twinSilent[id] = true
}

// ClearFaults ends every service-side fault and every fault window the devices asked for.
func (s *Server) ClearFaults() {
	s.faults.mu.Lock()
	defer s.faults.mu.Unlock()
	s.faults.refuseAll = time.Time{}
	s.faults.init()
}

func lookupFault[V any](f *faultTable, m map[iothub.Identity]V, id iothub.Identity) (V, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if v, ok := m[id]; ok {
		return v, true
	}
	v, ok := m[allIdentities]
	return v, ok
}

// refused reports whether a CONNECT of id is refused now, and until when.
func (f *faultTable) refused(id iothub.Identity, now time.Time) (time.Time, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	until := f.refuseAll
	if u, ok := f.refuse[id]; ok && u.After(until) {
		until = u
	}
	return until, now.Before(until)
}

// Restart restarts the hub in place: every connection is closed (recorded as
// hub-restart, 400029), and the stored MQTT sessions (CleanSession=0 subscriptions) are
// forgotten, as after a service restart. With keepState the cloud state stays: C2D queues,
// twins, the registry. Without it, C2D queues and twins are emptied as well (the registry,
// telemetry and the rejection log are kept). The listeners stay open: devices reconnect.
func (s *Server) Restart(keepState bool) {
	// A device that reconnects the instant its connection closes must not inherit the
	// session being forgotten: its CONNECT waits here until the restart is over.
	s.restart.Lock()
	defer s.restart.Unlock()
	for _, ss := range s.sessions.all() {
		s.hubCloseCode(ss, ReasonRestart, iothub.CodeConnectionForcefullyClosedOnFaultInjection,
			fmt.Sprintf("the hub restarted (state kept: %t)", keepState))
	}
	for _, cl := range s.mochi.Clients.GetAll() {
		if cl.Net.Inline {
			continue
		}
		// The close above is asynchronous, and OnDisconnect removes the session record
		// after mochi marks the client closed: wait for both (bounded), or the session
		// would survive the restart for a device that reconnects at once.
		for i := 0; i < 200 && (!cl.Closed() || s.sessions.get(cl) != nil); i++ {
			time.Sleep(5 * time.Millisecond)
		}
		if cl.Closed() && s.sessions.get(cl) == nil {
			s.forgetSession(cl)
		}
	}
	if !keepState {
		s.cloud.reset()
	}
	s.log.Info("hub restarted", "stateKept", keepState)
}

// errFaultClosed marks a publish whose connection a fault or limit closed.
var errFaultClosed = errors.New("fakehub: connection closed by a fault or limit")

// reset empties the cloud state of every identity (C2D queues, twins, pending methods), as
// a restart without kept state does.
func (c *cloud) reset() {
	c.mu.Lock()
	ids := make([]iothub.Identity, 0, len(c.known))
	for k := range c.known {
		ids = append(ids, k)
	}
	c.known = map[iothub.Identity]bool{}
	c.sent = map[iothub.Identity][]string{}
	c.mu.Unlock()
	for _, k := range ids {
		c.c2d.Purge(k)
		c.twins.Delete(k)
		c.methods.Disconnected(k)
	}
	c.notify()
}
