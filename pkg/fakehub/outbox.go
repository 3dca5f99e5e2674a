package fakehub

import (
	"errors"
	"fmt"
	"time"

	"github.com/mochi-mqtt/server/v2/packets"
)

// outbox is a session's queue of packets the cloud side sends it (C2D,
// twin answers and desired patches, method requests). One writer goroutine
// per session drains it, so a device that stops reading blocks nothing but
// its own writer: twin notifications, C2D senders and method callers never
// wait on its socket. The queue is bounded (Options.OutboxSize) and each
// write has a deadline (Options.WriteTimeout); a device that cannot keep up
// is disconnected with ReasonWriteBacklog or ReasonWriteTimeout, its
// unacknowledged C2D messages go back to its queue, and the rest (QoS 0
// twin and method traffic) is dropped, as a lost connection would.
type outbox struct {
	ch   chan *packets.Packet // pointers: a Packet is large, and the channel is allocated per session
	done chan struct{}        // closed when the writer has stopped
}

// errOutboxFull is returned by send when the device's outbox is full.
var errOutboxFull = errors.New("fakehub: the device's outbox is full")

// startOutbox starts the session's writer. It ends when the session ends
// (ss.done) or a write fails.
func (ss *session) startOutbox() {
	ob := &outbox{ch: make(chan *packets.Packet, ss.srv.opts.OutboxSize), done: make(chan struct{})}
	ss.outbox.Store(ob)
	go ss.writeLoop(ob)
}

func (ss *session) writeLoop(ob *outbox) {
	defer close(ob.done)
	defer ss.srv.recoverHook("outbox writer", ss.cl, nil)
	for {
		select {
		case pk := <-ob.ch:
			if err := ss.cl.WritePacket(*pk); err != nil {
				if g := guardOf(ss.cl.Net.Conn); g != nil && g.writeTimedOut.Load() {
					ss.srv.hubClose(ss, ReasonWriteTimeout, fmt.Sprintf("a write to the device did not finish within %s: it stopped reading", ss.srv.opts.WriteTimeout))
				} else {
					ss.cl.Stop(err)
				}
				return
			}
		case <-ss.done:
			return
		}
	}
}

// send queues pk for the device without waiting. A full outbox closes the
// connection (ReasonWriteBacklog) and returns errOutboxFull.
func (ss *session) send(pk packets.Packet) error {
	ob := ss.outbox.Load()
	if ob == nil || ss.cl.Closed() {
		return ErrOffline
	}
	select {
	case <-ob.done:
		return ErrOffline
	default:
	}
	select {
	case ob.ch <- &pk:
		return nil
	default:
		ss.srv.hubClose(ss, ReasonWriteBacklog, fmt.Sprintf("%d packets for the device are waiting to be written: it is not reading", cap(ob.ch)))
		return errOutboxFull
	}
}

// Defaults of Options.WriteTimeout and Options.OutboxSize.
const (
	DefaultWriteTimeout = 30 * time.Second
	DefaultOutboxSize   = 256
)
