package grade

import (
	"context"
	"fmt"
	"net"
	"slices"
	"strings"
	"time"

	"github.com/hubkit/hubkit/pkg/iothub"
)

// The TLS drill cases (docs/iothub-behavior.md §15.17, §8.5): the hub presents a
// drill's chain to new handshakes (Hub.PresentTLSDrill), closes the device's connection
// and watches the handshakes of its reconnection. A handshake the device refuses ends
// before any CONNECT names it, so it is attributed to the device by its remote IP (the
// IP of the device's last connection), and only while no other identity is connected
// from that IP; a handshake whose connection then sends the device's CONNECT is its own.

// The drills the cases present (internal/certs drill names).
const (
	drillRootChange = "root-change"
	drillWrongSAN   = "wrong-san"
)

// handshake is one observed TLS handshake on the hub's MQTT endpoint.
type handshake struct {
	obs
	owner      string // ownerMine, ownerOther, or "" (no CONNECT on its connection yet)
	othersLive int    // live connections of other identities from its IP when it ended
	// closedBare: the handshake completed but its connection closed before any CONNECT.
	// Clients that check the certificate once the TLS layer is done (Node.js's tls with
	// rejectUnauthorized, many embedded stacks) refuse that way: the server sees a
	// completed handshake, then the close.
	closedBare bool
}

const (
	ownerMine  = "mine"  // its connection's CONNECT named the graded identity
	ownerOther = "other" // ... another identity
)

func (h *handshake) refused() bool { return h.TLSError != "" || h.closedBare }

// refusal says how the handshake was refused ("" when it was not).
func (h *handshake) refusal() string {
	switch {
	case h.TLSError != "":
		return h.TLSError
	case h.closedBare:
		return "the connection closed after the handshake without a CONNECT (the client checked the certificate once the handshake was done)"
	}
	return ""
}

// handshakeEvent keeps what the TLS cases need from a hub packet (r.mu held); true for a
// handshake, which is not an event of the identity's connections.
func (r *recorder) handshakeEvent(o obs) bool {
	switch o.Type {
	case iothub.PacketHandshake:
		h := &handshake{obs: o}
		ip := HostKey(o.RemoteAddr)
		for _, oip := range r.others {
			if oip == ip {
				h.othersLive++
			}
		}
		if len(r.hs) >= maxHandshakes {
			n := len(r.hs) / 2
			for _, old := range r.hs[:n] {
				if r.hsByConn[old.Conn] == old {
					delete(r.hsByConn, old.Conn)
				}
			}
			r.hs = append(r.hs[:0:0], r.hs[n:]...)
			r.hsBase += n
		}
		r.hs = append(r.hs, h)
		r.hsByConn[o.Conn] = h
		return true
	case iothub.PacketConnect:
		owner := ownerOther
		if r.ours(o.Packet) {
			owner = ownerMine
		} else if len(r.others) < maxHandshakes {
			r.others[o.Conn] = HostKey(o.RemoteAddr)
		}
		if h := r.hsByConn[o.Conn]; h != nil {
			h.owner = owner
			delete(r.hsByConn, o.Conn)
		}
	case iothub.PacketConnack:
		if o.ReturnCode != 0 {
			delete(r.others, o.Conn)
		}
	case iothub.PacketClose:
		delete(r.others, o.Conn)
		if h := r.hsByConn[o.Conn]; h != nil && h.owner == "" && h.TLSError == "" {
			h.closedBare = true
		}
		delete(r.hsByConn, o.Conn)
	}
	return false
}

// handshakeMark is a position in the handshake list: handshakes after it are newer.
func (r *recorder) handshakeMark() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.hsBase + len(r.hs)
}

// handshakes returns copies of the handshakes from mark on.
func (r *recorder) handshakes(mark int) []handshake {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []handshake
	for _, h := range r.hs[min(max(mark-r.hsBase, 0), len(r.hs)):] {
		out = append(out, *h)
	}
	return out
}

// HostKey is the address the TLS cases attribute handshakes by: the host of a remote
// address (host:port or a bare host), an IPv4-mapped IPv6 address as IPv4, and every
// loopback address as "loopback": a device on the grader's machine dialling "localhost"
// may come from 127.0.0.1 on one connection and ::1 on the next (Node.js tries both
// families), and both are the same machine.
func HostKey(addr string) string {
	h := addr
	if host, _, err := net.SplitHostPort(addr); err == nil {
		h = host
	}
	if ip := net.ParseIP(h); ip != nil {
		if ip.IsLoopback() {
			return "loopback"
		}
		if v4 := ip.To4(); v4 != nil {
			return v4.String()
		}
		return ip.String()
	}
	return h
}

// drillWindow is what the grader saw of the device while a drill was presented.
type drillWindow struct {
	name, ip   string
	mine       []handshake // attributed to the device, in order
	why        []string    // how each of mine was attributed
	ambiguous  int         // refused handshakes from the IP that could not be attributed
	refused    int         // of mine, refused over the drill's chain
	connect    *handshake  // the first of mine over the drill's chain on which the device sent its CONNECT
	accepted   *obs        // the CONNACK 0 on connect's connection
	neighbours []string    // other identities connected from ip during the window
}

// window works out the drill window from handshake mark hm and event mark em; neighbours
// are the other identities seen connected from ip meanwhile.
func (g *grader) window(name, ip string, hm, em int, neighbours map[iothub.Identity]bool) drillWindow {
	w := drillWindow{name: name, ip: ip}
	hs := g.rec.handshakes(hm)
	otherFromIP := len(neighbours) > 0
	for _, h := range hs {
		if h.owner == ownerOther && HostKey(h.RemoteAddr) == ip {
			otherFromIP = true
		}
	}
	acks := map[uint64]obs{}
	for _, o := range g.rec.events(em) {
		if isConnackOK(o) {
			acks[o.Conn] = o
		}
	}
	for _, h := range hs {
		switch {
		case h.owner == ownerMine:
			w.why = append(w.why, "its connection's CONNECT named the device")
		case h.owner == ownerOther || HostKey(h.RemoteAddr) != ip:
			continue
		case otherFromIP || h.othersLive > 0:
			if h.refused() {
				w.ambiguous++
			}
			continue
		default:
			w.why = append(w.why, fmt.Sprintf("attributed to the device: from %s, the IP of its last connection, while no other identity was connected from it", ip))
		}
		w.mine = append(w.mine, h)
		if h.TLSDrill != name {
			continue
		}
		if h.refused() {
			w.refused++
		}
		if h.owner == ownerMine && w.connect == nil {
			w.connect = &h
			if a, ok := acks[h.Conn]; ok {
				w.accepted = &a
			}
		}
	}
	return w
}

// evidence describes the attributed handshakes.
func (g *grader) drillEvidence(w drillWindow) []iothub.GradeEvidence {
	var out []iothub.GradeEvidence
	for i, h := range w.mine {
		chain := "the hub's own chain"
		if h.TLSDrill != "" {
			chain = "the " + h.TLSDrill + " chain"
		}
		what := "completed"
		if h.refused() {
			what = "refused: " + h.refusal()
		}
		out = append(out, g.ev(h.obs, fmt.Sprintf("TLS handshake on connection %d from %s with %s %s (%s)", h.Conn, h.RemoteAddr, chain, what, w.why[i])))
	}
	if w.accepted != nil {
		out = append(out, g.ev(*w.accepted, describe(*w.accepted)))
	}
	return out
}

// lastIP is the remote IP of the device's last connection the grader saw ("" none).
func (g *grader) lastIP() string {
	ev := g.rec.events(0)
	for i := len(ev) - 1; i >= 0; i-- {
		if isHub(ev[i]) && (ev[i].Type == iothub.PacketConnect || ev[i].Type == iothub.PacketAccept) && ev[i].RemoteAddr != "" {
			return HostKey(ev[i].RemoteAddr)
		}
	}
	return ""
}

// drillRun is a drill presented, the device dropped and its reconnection watched.
type drillRun struct {
	w        drillWindow
	evidence []iothub.GradeEvidence
	back     *obs // after the restore: the CONNACK 0 of its return (nil: not back, or never gone)
	problem  string
}

// presentDrill presents drill name, closes the device's connection and watches its
// handshakes until done holds or Timing.Reconnect passes; then it restores the hub's own
// chain and, if the device is not connected, waits up to Timing.Reconnect for it.
func (g *grader) presentDrill(ctx context.Context, name, what string, done func(drillWindow) bool) drillRun {
	var run drillRun
	ip := g.lastIP()
	if ip == "" {
		run.problem = "the grader saw no connection of the device to take its address from"
		return run
	}
	hm := g.rec.handshakeMark()
	restore, err := g.hub.PresentTLSDrill(name)
	if err != nil {
		run.problem = "the hub could not present the TLS drill " + name + ": " + err.Error()
		return run
	}
	run.evidence = append(run.evidence, g.now(fmt.Sprintf("the hub presents the TLS drill %s (%s) to new handshakes and closes the device's connection", name, what)))
	em := g.rec.mark()
	if err := g.hub.Drop(g.id, "the grader presents the TLS drill "+name+" to the device's next handshake", iothub.CodeConnectionForcefullyClosedOnFaultInjection); err != nil {
		restore()
		run.problem = "the hub could not close the connection: " + err.Error()
		return run
	}
	neighbours := map[iothub.Identity]bool{}
	look := func() {
		for _, id := range g.hub.ConnectedFrom(ip) {
			if id != g.id {
				neighbours[id] = true
			}
		}
	}
	look()
	g.rec.waitTick(ctx, g.t.Reconnect, 50*time.Millisecond, func([]obs) bool {
		look()
		return done(g.window(name, ip, hm, em, neighbours))
	})
	restore()
	rm := g.rec.mark()
	look()
	run.w = g.window(name, ip, hm, em, neighbours)
	if len(neighbours) > 0 {
		var ids []string
		for id := range neighbours {
			ids = append(ids, id.String())
		}
		slices.Sort(ids)
		run.w.neighbours = ids
	}
	run.evidence = append(run.evidence, g.drillEvidence(run.w)...)
	run.evidence = append(run.evidence, g.now("the hub presents its own chain again"))
	if run.w.connect == nil && !g.hub.Connected(g.id) { // (a CONNECT over the drill is not a return)
		if o, ok := g.rec.waitFor(ctx, rm, g.t.Reconnect, isConnackOK); ok {
			run.back = &o
			run.evidence = append(run.evidence, g.ev(o, describe(o)+" (back on the hub's own chain)"))
		}
	}
	return run
}

// refusals says what the refused handshakes' errors were.
func refusals(w drillWindow) string {
	seen := map[string]bool{}
	var errs []string
	for _, h := range w.mine {
		if e := h.refusal(); e != "" && h.TLSDrill == w.name && !seen[e] {
			seen[e] = true
			errs = append(errs, e)
		}
	}
	return strings.Join(errs, "; ")
}

// enoughRefusals ends a drill window early: two refused handshakes show the device's
// answer to the chain.
const enoughRefusals = 2

func (g *grader) unattributed(w drillWindow) result {
	if w.ambiguous > 0 {
		who := "another identity connects from that IP too"
		if len(w.neighbours) > 0 {
			who = "other identities are connected from that IP too (" + clip(strings.Join(w.neighbours, ", "), 200) + ")"
		}
		return result{verdict: iothub.GradeNotExercised, reason: fmt.Sprintf("%d handshake(s) from %s were refused, but %s: they cannot be attributed to the device (grade it with no other device on its address)", w.ambiguous, w.ip, who)}
	}
	return result{verdict: iothub.GradeNotExercised, reason: fmt.Sprintf("no TLS handshake from the device (%s) was seen within %s after the hub closed its connection", w.ip, g.t.Reconnect)}
}

func caseRefusesWrongSAN(ctx context.Context, g *grader) result {
	run := g.presentDrill(ctx, drillWrongSAN, "a certificate from the hub's CA whose subject alternative names do not include the hub's host name", func(w drillWindow) bool {
		return w.connect != nil || w.refused >= enoughRefusals
	})
	if run.problem != "" {
		return result{verdict: iothub.GradeNotExercised, reason: run.problem}
	}
	w := run.w
	r := result{evidence: run.evidence}
	switch {
	case w.connect != nil:
		r.verdict = iothub.GradeFail
		r.reason = fmt.Sprintf("the device accepted a server certificate that does not name the host it dialled: it sent its CONNECT (its credentials) on connection %d over the %s chain; it must verify the server's host name (no InsecureSkipVerify, no custom verification that skips the SAN check)", w.connect.Conn, w.name)
	case w.refused > 0 && run.back == nil && !g.hub.Connected(g.id):
		r.verdict = iothub.GradeFail
		r.reason = fmt.Sprintf("the device refused the %s chain (%d handshake(s): %s) but did not reconnect within %s once the hub presented its own chain again", w.name, w.refused, refusals(w), g.t.Reconnect)
	case w.refused > 0:
		r.verdict = iothub.GradePass
		r.reason = fmt.Sprintf("the device refused the certificate for another host on %d handshake(s) (%s) and sent no CONNECT over it", w.refused, refusals(w))
		if run.back != nil {
			r.reason += "; it reconnected once the hub presented its own chain again"
		}
	default:
		res := g.unattributed(w)
		res.evidence = r.evidence
		return res
	}
	return r
}

func caseAcceptsMigratedRoot(ctx context.Context, g *grader) result {
	run := g.presentDrill(ctx, drillRootChange, "its new chain: the G2-shaped root the hub's chain migrates to", func(w drillWindow) bool {
		return w.accepted != nil || w.refused >= enoughRefusals
	})
	if run.problem != "" {
		return result{verdict: iothub.GradeNotExercised, reason: run.problem}
	}
	w := run.w
	r := result{evidence: run.evidence}
	switch {
	case w.accepted != nil:
		r.verdict = iothub.GradePass
		r.reason = fmt.Sprintf("the device connected over the migrated root's chain (connection %d)", w.accepted.Conn)
		if w.refused > 0 {
			r.reason += fmt.Sprintf(", after %d refused handshake(s)", w.refused)
		}
	case w.refused > 0:
		r.verdict = iothub.GradeFail
		r.reason = fmt.Sprintf("the device refused the chain of the new root on %d handshake(s) (%s): it does not trust the new root; a device must trust both the old and the new root before a migration (fakehub: give it the drill trust file, DIR/drills/root-change-trust.pem of fakehub --ca DIR)", w.refused, refusals(w))
	case w.connect != nil:
		r.verdict = iothub.GradeFail
		r.reason = fmt.Sprintf("the device sent its CONNECT over the migrated root's chain (connection %d) but the hub did not accept it within %s", w.connect.Conn, g.t.Reconnect)
	default:
		res := g.unattributed(w)
		res.evidence = r.evidence
		return res
	}
	return r
}
