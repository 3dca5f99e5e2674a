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

// SendC2D enqueues a cloud-to-device message for a device and returns its
// message ID. A connected device subscribed to its C2D topic gets it at
// once; otherwise it waits in the device's queue (FIFO, 50 messages, TTL).
// Errors are *iothub.Error: iothub.ErrDeviceNotFound, iothub.ErrQueueFull
// (the 51st pending message), iothub.ErrMessageTooLarge (over 64 KB),
// iothub.ErrInvalidArgument, iothub.ErrServiceUnavailable (the hub is closing).
//
// When the device is connected WITHOUT a C2D subscription the message is
// accepted and then rejected (state C2DRejected), as IoT Hub does, unless
// Quirks.KeepC2DWithoutSubscription. Follow a message with C2DState or
// WaitC2DState.
func (s *Server) SendC2D(ctx context.Context, deviceID string, m iothub.C2DMessage) (string, error) {
	return s.SendC2DTo(ctx, iothub.Identity{DeviceID: deviceID}, m)
}

// SendC2DTo is SendC2D for any identity: a device, or a module
// (devices/{d}/modules/{m}/messages/devicebound/...).
func (s *Server) SendC2DTo(ctx context.Context, id iothub.Identity, m iothub.C2DMessage) (string, error) {
	if err := ctxErr(ctx); err != nil {
		return "", err
	}
	if s.closing.Load() {
		return "", &iothub.Error{Code: iothub.CodeServiceUnavailable, Message: "the hub is shutting down", Err: ErrClosed}
	}
	if err := s.opts.Registry.Exists(id); err != nil {
		return "", err
	}
	if err := s.serviceGate(ctx, opC2D, 1, "a cloud-to-device message", len(m.Payload)); err != nil {
		return "", err
	}
	return s.cloud.sendC2D(id, m)
}

// C2DState returns the status of a message by ID (the latest one sent with
// that ID); finished messages are kept for the last 1000.
func (s *Server) C2DState(msgID string) (iothub.C2DStatus, bool) {
	rec, ok := s.cloud.c2d.State(msgID)
	if !ok {
		return iothub.C2DStatus{}, false
	}
	return rec.Status(), true
}

// WaitC2DState waits until the message reaches a state for which match
// returns true (nil: any final state) and returns its record, or ctx's
// error with the last record seen.
func (s *Server) WaitC2DState(ctx context.Context, msgID string, match func(iothub.C2DState) bool) (iothub.C2DStatus, error) {
	if match == nil {
		match = iothub.C2DState.Finished
	}
	tick := time.NewTicker(20 * time.Millisecond) // expiry is computed when read: poll for it
	defer tick.Stop()
	for {
		ch := s.cloud.changes()
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
func (s *Server) C2DMessages(id iothub.Identity) []iothub.C2DStatus {
	s.cloud.mu.Lock()
	ids := slices.Clone(s.cloud.sent[id])
	s.cloud.mu.Unlock()
	out := make([]iothub.C2DStatus, 0, len(ids))
	for _, mid := range ids {
		if rec, ok := s.cloud.c2d.State(mid); ok && rec.Identity == id && !slices.ContainsFunc(out, func(r iothub.C2DStatus) bool { return r.MessageID == mid }) {
			out = append(out, rec.Status())
		}
	}
	return out
}

// C2DFeedback returns the delivery feedback records of messages sent with an
// Ack other than none, oldest first (the last 1000).
func (s *Server) C2DFeedback() []iothub.C2DFeedback { return s.cloud.c2d.Feedback() }

// PurgeC2D removes the messages waiting for id (not those awaiting a PUBACK)
// and returns how many there were.
func (s *Server) PurgeC2D(id iothub.Identity) int {
	n := s.cloud.c2d.Purge(id)
	s.cloud.notify()
	return n
}

func (c *cloud) sendC2D(id iothub.Identity, m iothub.C2DMessage) (string, error) {
	msgID, err := c.c2d.Enqueue(id, m)
	c.s.metrics.c2dSent(err)
	if err != nil {
		return "", err
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
				c.s.log.Debug("C2D delivery failed; requeued", append(idAttrs(ss.id), "messageId", d.Message.MessageID, "error", err)...)
				c.c2d.RequeueSession(ss.id, ss.tag)
				return false
			}
			if qos == 0 {
				c.c2d.CompleteMessage(ss.id, d.Message.MessageID)
			}
			c.s.log.Info("C2D delivered", append(idAttrs(ss.id), "messageId", d.Message.MessageID, "qos", qos, "bytes", len(d.Message.Payload))...)
		}
	}
}
