package fakehub

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/mochi-mqtt/server/v2/packets"

	"github.com/hubkit/hubkit/pkg/fakehub/internal/c2d"
	"github.com/hubkit/hubkit/pkg/iothub"
)

// C2DMessage is a cloud-to-device message as the service sends it. Only
// Payload is needed; the hub fills the rest as IoT Hub does.
type C2DMessage struct {
	MessageID       string // $.mid; a UUID is generated when empty (at most 128 characters)
	CorrelationID   string // $.cid
	UserID          string // $.uid
	To              string // $.to; default "/devices/{id}/messages/deviceBound"
	ContentType     string // $.ct
	ContentEncoding string // $.ce
	// Ack is the feedback asked for (iothub-ack): "none" (default),
	// "positive", "negative" or "full".
	Ack string
	// ExpiryTime is the absolute expiry ($.exp, sent to the device). When
	// zero, the message expires TTL after it is enqueued, or
	// Options.C2DDefaultTTL (1 h) when TTL is zero too (then no $.exp is sent).
	ExpiryTime time.Time
	TTL        time.Duration
	// Properties are the application properties, in order (system keys,
	// "$."-prefixed and iothub-*, are refused).
	Properties iothub.Properties
	Payload    []byte
}

// The time-to-live range of a C2D message, as on IoT Hub (1 minute to 2
// days; docs/iothub-behavior.md §4.2).
const (
	MinC2DTTL = c2d.MinTTL
	MaxC2DTTL = c2d.MaxTTL
)

// C2DAcks are the feedback values a C2D message may ask for (iothub-ack).
var C2DAcks = []string{"none", "positive", "negative", "full"}

// C2DState is where a C2D message is in its life.
type C2DState string

// The C2D message states.
const (
	C2DQueued    C2DState = "queued"    // waiting for the device or its C2D subscription
	C2DDelivered C2DState = "delivered" // published at QoS 1, waiting for the device's PUBACK
	C2DCompleted C2DState = "completed" // PUBACK received (or published at QoS 0)
	C2DExpired   C2DState = "expired"   // its expiry passed before it was completed
	C2DRejected  C2DState = "rejected"  // the device was connected without a C2D subscription
	C2DPurged    C2DState = "purged"    // removed by a purge or by deleting the identity
)

// Finished reports whether the state is final.
func (s C2DState) Finished() bool { return s != C2DQueued && s != C2DDelivered }

// C2DRecord is what the hub knows about one C2D message.
type C2DRecord struct {
	Identity      iothub.Identity
	MessageID     string
	State         C2DState
	Reason        string // why it was rejected, expired or purged
	DeliveryCount int    // how many times it was published to the device
	EnqueuedTime  time.Time
	DeliveredTime time.Time // the last delivery (zero if never)
	FinishedTime  time.Time // when it reached a final state (zero if not yet)
	ExpiryTime    time.Time
}

// SendC2D enqueues a cloud-to-device message for a device and returns its
// message ID. A connected device subscribed to its C2D topic gets it at
// once; otherwise it waits in the device's queue (FIFO, 50 messages, TTL).
// Errors are *ServiceError: ErrDeviceNotFound, ErrQueueFull (the 51st
// pending message), ErrMessageTooLarge (over 64 KB), ErrInvalidArgument.
//
// When the device is connected WITHOUT a C2D subscription the message is
// accepted and then rejected (state C2DRejected), as IoT Hub does, unless
// Quirks.KeepC2DWithoutSubscription. Follow a message with C2DState or
// WaitC2DState.
func (s *Server) SendC2D(ctx context.Context, deviceID string, m C2DMessage) (string, error) {
	return s.SendC2DTo(ctx, iothub.Identity{DeviceID: deviceID}, m)
}

// SendC2DTo is SendC2D for any identity: a device, or a module
// (devices/{d}/modules/{m}/messages/devicebound/...).
func (s *Server) SendC2DTo(ctx context.Context, id iothub.Identity, m C2DMessage) (string, error) {
	if err := ctxErr(ctx); err != nil {
		return "", err
	}
	if s.closing.Load() {
		return "", ErrClosed
	}
	if err := s.identityExists(id); err != nil {
		return "", err
	}
	return s.svc.sendC2D(id, c2d.Message{
		ID: m.MessageID, CorrelationID: m.CorrelationID, UserID: m.UserID, To: m.To,
		ContentType: m.ContentType, ContentEncoding: m.ContentEncoding, Ack: c2d.Ack(m.Ack),
		ExpiryTime: m.ExpiryTime, TTL: m.TTL, Properties: slices.Clone(m.Properties), Payload: m.Payload,
	})
}

// C2DState returns the record of a message by ID (the latest one sent with
// that ID); finished messages are kept for the last 1000.
func (s *Server) C2DState(msgID string) (C2DRecord, bool) {
	rec, ok := s.svc.c2d.State(msgID)
	if !ok {
		return C2DRecord{}, false
	}
	return c2dRecord(rec), true
}

// WaitC2DState waits until the message reaches a state for which match
// returns true (nil: any final state) and returns its record, or ctx's
// error with the last record seen.
func (s *Server) WaitC2DState(ctx context.Context, msgID string, match func(C2DState) bool) (C2DRecord, error) {
	if match == nil {
		match = C2DState.Finished
	}
	tick := time.NewTicker(20 * time.Millisecond) // expiry is computed when read: poll for it
	defer tick.Stop()
	for {
		ch := s.svc.changes()
		rec, ok := s.C2DState(msgID)
		if ok && match(rec.State) {
			return rec, nil
		}
		select {
		case <-ch:
		case <-tick.C:
		case <-ctx.Done():
			if !ok {
				return rec, fmt.Errorf("message %q: %w", msgID, ctx.Err())
			}
			return rec, fmt.Errorf("message %q is %s: %w", msgID, rec.State, ctx.Err())
		}
	}
}

// C2DMessages returns the records of the messages sent to id, oldest first
// (the last 1000 per identity).
func (s *Server) C2DMessages(id iothub.Identity) []C2DRecord {
	s.svc.mu.Lock()
	ids := slices.Clone(s.svc.sent[id])
	s.svc.mu.Unlock()
	out := make([]C2DRecord, 0, len(ids))
	for _, mid := range ids {
		if rec, ok := s.svc.c2d.State(mid); ok && rec.Identity == id && !slices.ContainsFunc(out, func(r C2DRecord) bool { return r.MessageID == mid }) {
			out = append(out, c2dRecord(rec))
		}
	}
	return out
}

// PurgeC2D removes the messages waiting for id (not those awaiting a PUBACK)
// and returns how many there were.
func (s *Server) PurgeC2D(id iothub.Identity) int {
	n := s.svc.c2d.Purge(id)
	s.svc.notify()
	return n
}

func c2dRecord(r c2d.Record) C2DRecord {
	return C2DRecord{
		Identity: r.Identity, MessageID: r.Message.ID, State: C2DState(r.State), Reason: r.Reason,
		DeliveryCount: r.Message.DeliveryCount, EnqueuedTime: r.Message.EnqueuedTime,
		DeliveredTime: r.Delivered, FinishedTime: r.Finished, ExpiryTime: r.Message.ExpiryTime,
	}
}

func (c *cloud) sendC2D(id iothub.Identity, m c2d.Message) (string, error) {
	msgID, err := c.c2d.Enqueue(id, m)
	if err != nil {
		return "", asServiceError(err)
	}
	c.mu.Lock()
	c.known[id] = true
	ids := append(c.sent[id], msgID)
	if len(ids) > maxSentIDs {
		ids = slices.Delete(ids, 0, len(ids)-maxSentIDs)
	}
	c.sent[id] = ids
	c.mu.Unlock()
	if ss := c.sessionFor(id); ss != nil {
		if _, ok := ss.subscribed(iothub.FilterC2D); ok {
			c.flushC2D(ss)
		} else if !c.s.opts.Quirks.KeepC2DWithoutSubscription {
			c.c2d.RejectPending(id, "device connected without a subscription to "+iothub.C2DFilter(id))
			c.s.log.Info("C2D rejected: the device is connected without a subscription to "+iothub.C2DFilter(id),
				append(idAttrs(id), "messageId", msgID)...)
		}
	} else {
		c.s.log.Info("C2D queued: the device is offline", append(idAttrs(id), "messageId", msgID, "bytes", len(m.Payload))...)
	}
	c.notify()
	return msgID, nil
}

// flushC2D publishes the identity's queued messages on ss, in order, at
// min(granted QoS, 1). The queue picks the packet IDs before the write (a
// fast PUBACK finds its message) and the write skips mochi's inflight store:
// the queue is the only source of redelivery (RequeueSession on disconnect),
// so a clean=false reconnect does not get a message twice.
func (c *cloud) flushC2D(ss *session) {
	for ss != nil && !c.flushOnce(ss) {
		// The connection died under the write: its messages are back in the
		// queue. A newer connection of the identity may already have
		// flushed; hand them to it.
		cur := c.sessionFor(ss.id)
		if cur == ss {
			return
		}
		ss = cur
	}
}

// flushOnce writes what the queue holds for ss and reports false if a write
// failed (the session's deliveries are then requeued).
func (c *cloud) flushOnce(ss *session) bool {
	qos, ok := ss.subscribed(iothub.FilterC2D)
	if !ok || !ss.established.Load() {
		return true // not established yet: OnSessionEstablished flushes
	}
	qos = min(qos, 1)
	ss.c2dMu.Lock()
	defer ss.c2dMu.Unlock()
	defer c.notify()
	for {
		ds := c.c2d.Dispatch(ss.id, ss.tag, 0)
		if len(ds) == 0 {
			return true
		}
		for _, d := range ds {
			pk := packets.Packet{
				FixedHeader: packets.FixedHeader{Type: packets.Publish, Qos: qos},
				TopicName:   c2d.DeliveryTopic(ss.id, d.Message),
				Payload:     d.Message.Payload,
				Created:     c.s.opts.Now().Unix(),
			}
			if qos > 0 {
				pk.PacketID = d.PacketID
			}
			if err := ss.cl.WritePacket(pk); err != nil {
				c.s.log.Debug("C2D delivery failed; requeued", append(idAttrs(ss.id), "messageId", d.Message.ID, "error", err)...)
				c.c2d.RequeueSession(ss.id, ss.tag)
				return false
			}
			if qos == 0 {
				c.c2d.CompleteMessage(ss.id, d.Message.ID)
			}
			c.s.log.Info("C2D delivered", append(idAttrs(ss.id), "messageId", d.Message.ID, "qos", qos, "bytes", len(d.Message.Payload))...)
		}
	}
}
