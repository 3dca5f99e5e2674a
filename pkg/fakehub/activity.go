package fakehub

import (
	"sync"
	"time"

	mqtt "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/packets"

	"github.com/hubkit/hubkit/pkg/iothub"
)

// activityHook watches connections come and go for the metrics and the
// dashboard: it counts accepted connections, remembers when each identity
// was last seen, and signals a change. It runs after lifecycleHook, so a
// connection that hook closed while it was being established is not
// counted.
type activityHook struct {
	mqtt.HookBase
	s *Server
}

func (h *activityHook) ID() string { return "fakehub-activity" }

func (h *activityHook) Provides(b byte) bool {
	return b == mqtt.OnSessionEstablished || b == mqtt.OnDisconnect
}

func (h *activityHook) OnSessionEstablished(cl *mqtt.Client, _ packets.Packet) {
	defer h.s.recoverHook("OnSessionEstablished (activity)", cl, nil)
	ss := h.s.sessions.get(cl)
	if ss == nil || ss.closeReason.Load() != nil {
		return
	}
	h.s.metrics.connected()
	h.s.activity.seen(ss.id, ss.connectedAt)
	h.s.activity.changed()
}

func (h *activityHook) OnDisconnect(cl *mqtt.Client, _ error, _ bool) {
	defer h.s.recoverHook("OnDisconnect (activity)", nil, nil)
	if id, err := iothub.ParseClientID(cl.ID); err == nil {
		h.s.activity.seen(id, h.s.opts.Now())
	}
	h.s.activity.changed()
}

// activity is what the dashboard follows: a change signal for everything
// its pages show except telemetry (connections, rejections, C2D states,
// twins), and when each identity was last seen connected.
type activity struct {
	mu       sync.Mutex
	gen      uint64
	wait     chan struct{} // closed by the next change; nil while nobody waits
	lastSeen map[iothub.Identity]time.Time
}

// changed wakes the waiters of Changes. It allocates nothing unless
// someone waits.
func (a *activity) changed() {
	a.mu.Lock()
	a.gen++
	if a.wait != nil {
		close(a.wait)
		a.wait = nil
	}
	a.mu.Unlock()
}

// changes returns the change count and a channel closed by the next change.
func (a *activity) changes() (uint64, <-chan struct{}) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.wait == nil {
		a.wait = make(chan struct{})
	}
	return a.gen, a.wait
}

// seen records that id was connected at t (it connected, or left then).
func (a *activity) seen(id iothub.Identity, t time.Time) {
	a.mu.Lock()
	if a.lastSeen == nil {
		a.lastSeen = map[iothub.Identity]time.Time{}
	}
	if t.After(a.lastSeen[id]) {
		a.lastSeen[id] = t
	}
	a.mu.Unlock()
}

func (a *activity) lastSeenAt(id iothub.Identity) time.Time {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.lastSeen[id]
}

// lastActivity is when id last connected, sent telemetry or left: the
// session's latest telemetry while connected, else the time it was last
// seen.
func (s *Server) lastActivity(id iothub.Identity) time.Time {
	t := s.activity.lastSeenAt(id)
	if ss := s.sessions.lookup(id); ss != nil {
		if n := ss.lastActive.Load(); n != 0 {
			if lt := time.Unix(0, n); lt.After(t) {
				t = lt
			}
		}
		if ss.connectedAt.After(t) {
			t = ss.connectedAt
		}
	}
	return t
}

// count returns how many sessions are established.
func (t *sessionTable) count() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return len(t.byClient)
}

// count returns how many devices the registry holds (modules not counted).
func (r *Registry) count() int {
	r.mu.RLock()
	defer r.mu.RUnlock()
	return len(r.devices)
}
