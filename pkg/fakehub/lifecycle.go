package fakehub

import (
	"errors"
	"fmt"
	"net"
	"os"
	"sync/atomic"
	"time"

	mqtt "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/packets"

	"github.com/hubkit/hubkit/pkg/sas"
)

// lifecycleHook owns what happens to a connection authHook accepted: the
// CONNACK that makes it live, one connection per identity (takeover), the
// registry re-check and token timer when the session starts, the keep-alive
// cap, and the accounting when it ends (keep-alive time-outs, oversize
// packets, the cloud side's cleanup).
type lifecycleHook struct {
	mqtt.HookBase
	s *Server

	// Test seams: when set, beforeTable runs in OnSessionEstablish before the
	// session enters the table (where registry changes find it), inTable just
	// after, before mochi inherits a stored session and sends the CONNACK.
	beforeTable, inTable atomic.Pointer[func(*session)]
}

func (h *lifecycleHook) ID() string { return "fakehub-lifecycle" }

// Provides is asked for every hook event of every packet: a switch, not a search.
func (h *lifecycleHook) Provides(b byte) bool {
	switch b {
	case mqtt.OnPacketRead, mqtt.OnPacketEncode,
		mqtt.OnSessionEstablish, mqtt.OnSessionEstablished, mqtt.OnDisconnect:
		return true
	}
	return false
}

// OnPacketRead notes a DISCONNECT before mochi closes the socket, so that a
// reconnect it allows is not taken for a takeover.
func (h *lifecycleHook) OnPacketRead(cl *mqtt.Client, pk packets.Packet) (_ packets.Packet, err error) {
	if pk.FixedHeader.Type != packets.Disconnect {
		return pk, nil // every packet read comes here: the others skip the deferred recover
	}
	defer h.s.recoverHook("OnPacketRead", cl, &err)
	if ss := h.s.sessions.get(cl); ss != nil {
		ss.sentDisconn.Store(true)
	}
	return pk, nil
}

// OnPacketEncode marks the session live when its CONNACK is about to be
// written: mochi has inherited any stored session by then, and a device
// that sees the CONNACK must find the hub treating it as connected.
func (h *lifecycleHook) OnPacketEncode(cl *mqtt.Client, pk packets.Packet) packets.Packet {
	if pk.FixedHeader.Type != packets.Connack {
		return pk // every packet written comes here: the others skip the deferred recover
	}
	defer h.s.recoverHook("OnPacketEncode", cl, nil)
	if pk.ReasonCode == packets.CodeSuccess.Code {
		if ss := h.s.sessions.get(cl); ss != nil {
			ss.acked.Store(true)
		}
	}
	return pk
}

// capKeepAlive sets the keep-alive time-out: 1.5 × keep-alive, exactly
// (guardConn replaces mochi's deadline, which rounds down to whole seconds),
// at most the cap; keep-alive 0 gets the cap unless
// Quirks.KeepAliveZeroNoTimeout. It returns the time-out (0: none).
// cl.State.Keepalive is capped too, so mochi's own deadline stays non-zero
// and bounded.
func (s *Server) capKeepAlive(cl *mqtt.Client, ka uint16) time.Duration {
	q := s.opts.Quirks
	capD := max(q.keepAliveCap(), time.Second)
	if ka == 0 && q.KeepAliveZeroNoTimeout {
		return 0
	}
	idle := capD
	if ka != 0 {
		idle = min(time.Duration(ka)*time.Second*3/2, capD)
	}
	if g := guardOf(cl.Net.Conn); g != nil {
		g.idle.Store(int64(idle))
	}
	capSec := int(capD / time.Second)
	if ka != 0 && int(ka)+int(ka)/2 <= capSec {
		return idle
	}
	// Largest k with k + k/2 <= cap (1767 s -> 1178).
	k := capSec * 2 / 3
	for (k+1)+(k+1)/2 <= capSec {
		k++
	}
	k = max(min(k, 65535), 1)
	cl.State.Keepalive = uint16(k)
	return idle
}

// OnSessionEstablish runs before mochi's own takeover, which would send the
// MQTT 5 DISCONNECT e0 00 to a 3.1.1 client: the older connection of the
// identity is closed here first, silently, so mochi's write fails.
func (h *lifecycleHook) OnSessionEstablish(cl *mqtt.Client, _ packets.Packet) {
	defer h.s.recoverHook("OnSessionEstablish", cl, nil)
	s := h.s
	ss := s.sessions.get(cl)
	if ss == nil {
		return
	}
	if f := h.beforeTable.Load(); f != nil {
		(*f)(ss)
	}
	old := s.sessions.establish(ss)
	if f := h.inTable.Load(); f != nil {
		(*f)(ss)
	}
	if old == nil {
		return
	}
	// An old connection that has already ended (the device sent DISCONNECT,
	// or the connection is closed) was not replaced: it is only waited for
	// below, so its session is stored before the CONNACK's session-present
	// is decided. sentDisconn is set before mochi closes the socket, hence
	// before a device that saw the close can CONNECT again.
	if !old.sentDisconn.Load() && !old.cl.Closed() {
		s.hubClose(old, ReasonReplaced, fmt.Sprintf("a newer connection for %s from %s replaced this one", ss.id, ss.remote))
	}
	if !old.established.Load() {
		// Its CONNACK failed: mochi gave up on it before OnSessionEstablished
		// and will not call OnDisconnect.
		s.sessions.remove(old.cl)
		return
	}
	// Wait for the old connection to finish, so mochi's bookkeeping for it
	// (which deletes by client ID) cannot remove the new one.
	select {
	case <-old.done:
	case <-time.After(2 * time.Second):
	}
	if old.cl.Properties.Clean {
		for i := 0; i < 500; i++ {
			if cur, ok := s.mochi.Clients.Get(cl.ID); !ok || cur != old.cl {
				break
			}
			time.Sleep(time.Millisecond)
		}
	}
}

// OnSessionEstablished starts the token timer and tells the cloud side.
func (h *lifecycleHook) OnSessionEstablished(cl *mqtt.Client, _ packets.Packet) {
	defer h.s.recoverHook("OnSessionEstablished", cl, nil)
	s := h.s
	ss := s.sessions.get(cl)
	if ss == nil {
		return
	}
	ss.established.Store(true)
	// A removal or disabling between authenticate and now found no session
	// to drop: check again, now that registryChanged can see this one.
	switch cred, ok := s.opts.Registry.lookup(ss.id); {
	case !ok || cred.generationID != ss.generation:
		s.hubClose(ss, sas.ReasonUnknownIdentity, ss.id.String()+" was removed from the registry while connecting")
		return
	case !cred.enabled:
		s.hubClose(ss, sas.ReasonDisabled, "device "+ss.id.DeviceID+" was disabled while connecting")
		return
	}
	ss.armExpiry()
	expiry := "none (X.509)"
	if !ss.expiry.IsZero() {
		expiry = ss.expiry.UTC().Format(time.RFC3339)
	}
	s.log.Info("connected", append(idAttrs(ss.id), "remoteAddr", ss.remote,
		"auth", ss.authScope, "tokenExpiry", expiry)...)
	s.cloudEvents.established(ss)
}

// OnDisconnect clears the session and records keep-alive time-outs.
func (h *lifecycleHook) OnDisconnect(cl *mqtt.Client, err error, _ bool) {
	defer h.s.recoverHook("OnDisconnect", nil, nil) // the connection is already gone
	s := h.s
	ss := s.sessions.remove(cl)
	if ss == nil {
		return
	}
	ss.stopExpiry()
	var ne net.Error
	if ss.closeReason.Load() == nil && err != nil && (errors.Is(err, os.ErrDeadlineExceeded) || (errors.As(err, &ne) && ne.Timeout())) {
		r := ReasonKeepAlive
		if ss.closeReason.CompareAndSwap(nil, &r) {
			s.closedFor(ss.rejection(ReasonKeepAlive, fmt.Sprintf("nothing received for %s (1.5 × keep-alive, capped)", ss.idle)))
		}
	}
	if ss.closeReason.Load() == nil && errors.Is(err, packets.ErrPacketTooLarge) {
		r := ReasonMessageTooLarge
		if ss.closeReason.CompareAndSwap(nil, &r) {
			s.closedFor(ss.rejection(r, fmt.Sprintf("a packet over %d bytes", s.mochi.Options.Capabilities.MaximumPacketSize)))
		}
	}
	replaced := false
	if r := ss.closeReason.Load(); r != nil && *r == ReasonReplaced {
		replaced = true
	}
	attrs := append(idAttrs(ss.id), "remoteAddr", ss.remote)
	if r := ss.closeReason.Load(); r != nil {
		attrs = append(attrs, "reason", string(*r))
	} else if err != nil {
		attrs = append(attrs, "error", err.Error())
	}
	s.log.Info("disconnected", attrs...)
	s.cloudEvents.disconnected(ss, replaced)
	if r := ss.closeReason.Load(); r != nil && *r == sas.ReasonUnknownIdentity {
		s.forgetSession(cl) // a removed identity keeps no stored session
	}
	close(ss.done)
}
