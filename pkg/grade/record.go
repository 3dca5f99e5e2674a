package grade

import (
	"context"
	"sync"
	"time"

	"github.com/hubkit/hubkit/pkg/iothub"
)

// obs is one observed packet of the graded identity, with the real time the grader saw it.
type obs struct {
	iothub.Packet
	real time.Time
}

// recorder keeps the packets of one identity (and of its DPS registration) as the hub
// reports them, in arrival order.
type recorder struct {
	id    iothub.Identity
	regID string
	now   func() time.Time
	stop  func()

	mu       sync.Mutex
	ev       []obs
	accepts  map[string]map[uint64]obs // service -> conn -> its accept, until a CONNECT names the identity
	mine     map[string]map[uint64]bool
	lastDev  time.Time // real time of the device's last packet to the hub
	changed  chan struct{}
	maxAccep int

	// The TLS handshakes on the hub's MQTT endpoint, of every connection (tls.go): hsBase
	// counts those trimmed from the front of hs; others are the live connections whose
	// CONNECT named another identity, with their remote IP.
	hs       []*handshake
	hsBase   int
	hsByConn map[uint64]*handshake
	others   map[uint64]string
}

// maxHandshakes bounds the handshakes kept.
const maxHandshakes = 2048

func newRecorder(id iothub.Identity, regID string, now func() time.Time) *recorder {
	return &recorder{id: id, regID: regID, now: now, changed: make(chan struct{}), maxAccep: 4096,
		accepts: map[string]map[uint64]obs{"": {}, "dps": {}}, mine: map[string]map[uint64]bool{"": {}, "dps": {}},
		hsByConn: map[uint64]*handshake{}, others: map[uint64]string{}}
}

// observe is the hub's packet observer.
func (r *recorder) observe(p iothub.Packet) {
	o := obs{Packet: p, real: r.now()}
	r.mu.Lock()
	defer r.mu.Unlock()
	acc, mine := r.accepts[p.Service], r.mine[p.Service]
	if acc == nil {
		return
	}
	if p.Type == iothub.PacketAccept {
		if len(acc) >= r.maxAccep {
			for k, a := range acc { // drop the stale ones (connections that never sent CONNECT)
				if o.real.Sub(a.real) > time.Minute {
					delete(acc, k)
				}
			}
		}
		if len(acc) < r.maxAccep {
			acc[p.Conn] = o
		}
		return
	}
	if p.Service == "" && r.handshakeEvent(o) {
		r.signal()
		return
	}
	if p.Type == iothub.PacketConnect && r.ours(p) {
		mine[p.Conn] = true
		if a, ok := acc[p.Conn]; ok {
			a.DeviceID, a.ModuleID, a.ClientID = p.DeviceID, p.ModuleID, p.ClientID
			r.ev = append(r.ev, a)
			delete(acc, p.Conn)
		}
	}
	if !mine[p.Conn] {
		if p.Type == iothub.PacketClose || (p.Type == iothub.PacketConnack && p.ReturnCode != 0) {
			delete(acc, p.Conn)
		}
		return
	}
	r.ev = append(r.ev, o)
	if p.FromDevice && p.Service == "" {
		r.lastDev = o.real
	}
	if p.Type == iothub.PacketClose {
		delete(mine, p.Conn)
	}
	r.signal()
}

// signal wakes the waiters (r.mu held).
func (r *recorder) signal() {
	close(r.changed)
	r.changed = make(chan struct{})
}

// ours reports whether a CONNECT is the graded identity's (or its DPS registration's).
func (r *recorder) ours(p iothub.Packet) bool {
	if p.Service == "dps" {
		return p.ClientID == r.regID
	}
	return p.Identity() == r.id
}

// mark returns a position in the event list: events after it are newer.
func (r *recorder) mark() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.ev)
}

// events returns the events from mark on (a shared, read-only slice).
func (r *recorder) events(mark int) []obs {
	r.mu.Lock()
	defer r.mu.Unlock()
	if mark > len(r.ev) {
		return nil
	}
	return r.ev[mark:len(r.ev):len(r.ev)]
}

func (r *recorder) lastFromDevice() time.Time {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.lastDev
}

// waitFor returns the first event from mark on for which pred holds, waiting up to d.
func (r *recorder) waitFor(ctx context.Context, mark int, d time.Duration, pred func(obs) bool) (obs, bool) {
	var found obs
	ok := r.waitUntil(ctx, d, func(ev []obs) bool {
		for _, o := range ev[min(mark, len(ev)):] {
			if pred(o) {
				found = o
				return true
			}
		}
		return false
	})
	return found, ok
}

// waitUntil waits up to d for cond (given every event so far) to hold; cond is evaluated
// at every new event.
func (r *recorder) waitUntil(ctx context.Context, d time.Duration, cond func([]obs) bool) bool {
	return r.waitTick(ctx, d, 0, cond)
}

// waitTick is waitUntil evaluating cond also every tick (> 0), for conditions on time.
func (r *recorder) waitTick(ctx context.Context, d, tick time.Duration, cond func([]obs) bool) bool {
	timer := time.NewTimer(d)
	defer timer.Stop()
	var tc <-chan time.Time
	if tick > 0 {
		t := time.NewTicker(tick)
		defer t.Stop()
		tc = t.C
	}
	for {
		r.mu.Lock()
		ev, ch := r.ev[:len(r.ev):len(r.ev)], r.changed
		r.mu.Unlock()
		if cond(ev) {
			return true
		}
		select {
		case <-ch:
		case <-tc:
		case <-timer.C:
			r.mu.Lock()
			ev = r.ev[:len(r.ev):len(r.ev)]
			r.mu.Unlock()
			return cond(ev)
		case <-ctx.Done():
			return false
		}
	}
}

// Predicates over observations of the hub's MQTT endpoint.

func isHub(o obs) bool { return o.Service == "" }

func isConnackOK(o obs) bool {
	return isHub(o) && o.Type == iothub.PacketConnack && !o.FromDevice && o.ReturnCode == 0
}

func isConnect(o obs) bool { return isHub(o) && o.Type == iothub.PacketConnect }

func isClose(o obs) bool { return isHub(o) && o.Type == iothub.PacketClose }

// publishKind classifies a PUBLISH the device sent (ok false for another packet or a
// topic the grammar does not know).
func (g *grader) publishKind(o obs) (iothub.DevicePublish, bool) {
	if !isHub(o) || o.Type != iothub.PacketPublish || !o.FromDevice {
		return iothub.DevicePublish{}, false
	}
	p, err := iothub.ClassifyPublish(g.id, o.Topic)
	return p, err == nil
}

func (g *grader) isTelemetry(o obs) bool {
	p, ok := g.publishKind(o)
	return ok && p.Kind == iothub.TopicTelemetry
}

// connection is what the events say about one connection of the identity.
type connection struct {
	conn    uint64
	accept  *obs
	connect *obs
	connack *obs
	close   *obs
	events  []obs // every event of the connection, in order
}

func (c *connection) accepted() bool { return c.connack != nil && c.connack.ReturnCode == 0 }

// start is when the connection began: its accept, else its CONNECT.
func (c *connection) start() obs {
	if c.accept != nil {
		return *c.accept
	}
	if c.connect != nil {
		return *c.connect
	}
	return c.events[0]
}

// connections groups the hub events into connections, in the order they began.
func connections(ev []obs) []*connection {
	var out []*connection
	by := map[uint64]*connection{}
	for i := range ev {
		o := ev[i]
		if !isHub(o) {
			continue
		}
		c := by[o.Conn]
		if c == nil {
			c = &connection{conn: o.Conn}
			by[o.Conn] = c
			out = append(out, c)
		}
		c.events = append(c.events, o)
	}
	for _, c := range out { // pointers into c.events, now that it no longer grows
		for i := range c.events {
			o := &c.events[i]
			switch {
			case o.Type == iothub.PacketAccept:
				c.accept = o
			case o.Type == iothub.PacketConnect && c.connect == nil:
				c.connect = o
			case o.Type == iothub.PacketConnack && c.connack == nil:
				c.connack = o
			case o.Type == iothub.PacketClose:
				c.close = o
			}
		}
	}
	return out
}

// subscribedBefore reports whether, on connection c, the device held a granted
// subscription of kind by the time of event at (index into c.events): its session-present
// CONNACK says it inherited a matching filter, or a SUBACK granting one came earlier. The
// hub reports what the session brought (iothub.Packet.Inherited) rather than the grader
// working it out from the connections before, which it may not have seen: a device
// connected before the grade began subscribed on a connection the grader never saw.
func (g *grader) subscribedBefore(c *connection, at int, kind iothub.TopicKind) bool {
	if c.connack != nil && c.connack.SessionPresent {
		for _, f := range c.connack.Inherited {
			if g.isKind(f.Filter, kind) {
				return true
			}
		}
	}
	pending := map[uint16][]iothub.PacketFilter{}
	for _, o := range c.events[:at] {
		switch {
		case o.Type == iothub.PacketSubscribe && o.FromDevice:
			pending[o.PacketID] = o.Filters
		case o.Type == iothub.PacketSuback && !o.FromDevice:
			for i, f := range pending[o.PacketID] {
				if i < len(o.ReturnCodes) && o.ReturnCodes[i] < 0x80 && g.isKind(f.Filter, kind) {
					return true
				}
			}
		}
	}
	return false
}

// heldAtEnd reports whether connection c held a subscription of kind when it ended (or now).
func (g *grader) heldAtEnd(c *connection, kind iothub.TopicKind) bool {
	return g.subscribedBefore(c, len(c.events), kind)
}

// isKind reports whether filter is the graded identity's subscription of kind.
func (g *grader) isKind(filter string, kind iothub.TopicKind) bool {
	k, err := iothub.ClassifySubscribe(g.id, filter)
	return err == nil && k == kind
}
