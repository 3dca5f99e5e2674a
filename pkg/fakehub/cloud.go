package fakehub

import (
	"context"
	"sync"
	"time"

	"github.com/hubkit/hubkit/pkg/fakehub/internal/c2d"
	"github.com/hubkit/hubkit/pkg/fakehub/internal/methods"
	"github.com/hubkit/hubkit/pkg/fakehub/internal/twin"
	"github.com/hubkit/hubkit/pkg/iothub"
)

// cloud is the cloud half of the hub: it implements cloudSide over the pure
// packages internal/c2d (queues), internal/twin (twin store) and
// internal/methods (direct-method correlation). The MQTT side of each
// concern lives in c2d.go, twin.go and methods.go.
type cloud struct {
	s       *Server
	c2d     *c2d.Queue
	twins   *twin.Store
	methods *methods.Registry

	mu      sync.Mutex
	known   map[iothub.Identity]bool     // identities with cloud state, for purges
	sent    map[iothub.Identity][]string // message IDs sent to each identity, oldest first (bounded)
	changed chan struct{}                // closed and replaced when a C2D state may have changed
}

// maxSentIDs bounds the per-identity list of message IDs behind C2DMessages.
const maxSentIDs = 1000

func newCloud(s *Server) (*cloud, error) {
	c := &cloud{s: s, known: map[iothub.Identity]bool{}, sent: map[iothub.Identity][]string{}, changed: make(chan struct{})}
	var err error
	c.c2d, err = c2d.New(c2d.Options{Now: s.opts.Now, DefaultTTL: s.opts.C2DDefaultTTL, Logger: s.log, OnFinish: s.metrics.c2dFinished,
		GenerationID: func(id iothub.Identity) string { d, _ := s.opts.Registry.Get(id); return d.GenerationID }})
	if err != nil {
		return nil, err
	}
	c.twins = twin.New(twin.Options{Now: s.opts.Now, OnDesiredChange: c.desiredChanged})
	// The Go API takes any positive response timeout (tests exercise 504
	// quickly); the service API keeps the hub's 5-300 s (restapi checks it).
	c.methods, err = methods.New(methods.Options{Send: c.sendMethod, Now: s.opts.Now, Logger: s.log, MinTimeout: time.Nanosecond})
	if err != nil {
		return nil, err
	}
	return c, nil
}

// touch records that id has cloud state (queue, twin) to purge when it is
// removed from the registry.
func (c *cloud) touch(id iothub.Identity) {
	c.mu.Lock()
	c.known[id] = true
	c.mu.Unlock()
}

// notify wakes WaitC2DState callers.
func (c *cloud) notify() {
	c.mu.Lock()
	close(c.changed)
	c.changed = make(chan struct{})
	c.mu.Unlock()
	c.s.activity.changed()
}

func (c *cloud) changes() <-chan struct{} {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.changed
}

// established: queued C2D flows right after CONNACK when the session
// inherited a C2D subscription (CleanSession=0); with CleanSession=1 there is
// none until the device subscribes.
func (c *cloud) established(ss *session) { c.flushC2D(ss) }

func (c *cloud) subscribed(ss *session, filters []string, granted []byte) {
	for i, f := range filters {
		if i < len(granted) && granted[i] < 0x80 {
			if k, err := iothub.ClassifySubscribe(ss.id, f); err == nil && k == iothub.FilterC2D {
				c.flushC2D(ss)
				return
			}
		}
	}
}

func (c *cloud) devicePublish(ss *session, p iothub.DevicePublish, payload []byte) {
	switch p.Kind {
	case iothub.TopicTwinGet:
		if answer, status := c.s.twinGate(ss, opTwinRead); !answer {
			return
		} else if status != 0 {
			c.twinRespond(ss, iothub.TwinResponseTopic(status, p.RID, 0), nil)
			return
		}
		c.twinGet(ss, p.RID)
	case iothub.TopicTwinPatchReported:
		if answer, status := c.s.twinGate(ss, opTwinUpdate); !answer {
			return
		} else if status != 0 {
			c.twinRespond(ss, iothub.TwinResponseTopic(status, p.RID, 0), nil)
			return
		}
		c.twinPatchReported(ss, p.RID, payload)
	case iothub.TopicMethodResponse:
		c.methodResponse(ss, p.RID, p.Status, payload)
	}
}

func (c *cloud) puback(ss *session, packetID uint16) {
	if m, ok := c.c2d.Complete(ss.id, packetID); ok {
		c.s.log.Info("C2D completed", append(idAttrs(ss.id), "messageId", m.MessageID)...)
		c.notify()
	}
}

// disconnected puts the session's unacknowledged C2D messages back at the
// head of the queue (the queue is the only source of redelivery) and fails
// the direct methods waiting for the identity.
func (c *cloud) disconnected(ss *session, _ bool) {
	if c.c2d.RequeueSession(ss.id, ss.tag) > 0 {
		c.notify()
	}
	c.methods.Disconnected(ss.id)
}

// removed forgets the cloud state of an identity deleted from the registry
// (a device: with its modules): queued C2D messages are purged, the twin is
// deleted.
func (c *cloud) removed(id iothub.Identity) {
	c.mu.Lock()
	var ids []iothub.Identity
	for k := range c.known {
		if k == id || (!id.IsModule() && k.DeviceID == id.DeviceID) {
			ids = append(ids, k)
			delete(c.known, k)
			delete(c.sent, k)
		}
	}
	c.mu.Unlock()
	for _, k := range ids {
		c.c2d.Purge(k)
		c.twins.Delete(k)
		c.methods.Disconnected(k)
	}
	if len(ids) > 0 {
		c.notify()
	}
}

func (c *cloud) close() { _ = c.methods.Close() }

// sessionFor returns the live session of id, or nil. A session is live once
// its CONNACK is being written (acked): before that, a stored session's
// subscriptions may not be inherited yet, and a C2D message sent then stays
// queued for OnSessionEstablished's flush instead of being rejected for
// want of a subscription.
func (c *cloud) sessionFor(id iothub.Identity) *session {
	ss := c.s.sessions.lookup(id)
	if ss == nil || !ss.acked.Load() || ss.cl.Closed() {
		return nil
	}
	return ss
}

// ctxErr is the context's error, if it has ended.
func ctxErr(ctx context.Context) error {
	if ctx == nil {
		return nil
	}
	return ctx.Err()
}
