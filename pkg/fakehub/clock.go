package fakehub

import (
	"sync"
	"time"

	"github.com/hubkit/hubkit/pkg/iothub"
)

// Clock is the hub's movable clock: Options.Now plus an offset that tests move
// (Advance, Set, Reset), from Go, from the service API (POST /hubkit/clock) or
// from the CLI (fakehub clock advance 55m). Everything time-dependent in the hub
// reads it: token expiry at CONNECT and while connected, C2D expiry, the daily
// message quota's reset at 00:00 UTC, the throttles' refill, time stamps. After
// each move the hub re-checks at once what the move may have ended (connected
// tokens, the quota day), so a device can be driven past its token expiry or a
// quota reset in milliseconds. The service API checks its own SAS tokens against
// Options.Now, not against this clock, so that scripts and the CLI keep working
// after a move.
type Clock struct {
	mu     sync.Mutex
	base   func() time.Time
	offset time.Duration
	moved  func()        // the Server's reaction to a move (nil until NewServer sets it)
	ch     chan struct{} // closed and replaced on every move
}

func newClock(base func() time.Time) *Clock { return &Clock{base: base, ch: make(chan struct{})} }

// changes returns a channel closed at the next move.
func (c *Clock) changes() <-chan struct{} {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.ch
}

// Now returns the hub's time: Options.Now plus the offset.
func (c *Clock) Now() time.Time {
	c.mu.Lock()
	off := c.offset
	c.mu.Unlock()
	return c.base().Add(off)
}

// Offset returns how far the clock has been moved from Options.Now.
func (c *Clock) Offset() time.Duration {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.offset
}

// Advance moves the clock by d (backwards when d is negative) and returns the new time.
func (c *Clock) Advance(d time.Duration) time.Time {
	c.mu.Lock()
	c.offset += d
	c.mu.Unlock()
	return c.afterMove()
}

// Set moves the clock so that it reads t now (it keeps running from there) and returns
// the new time.
func (c *Clock) Set(t time.Time) time.Time {
	c.mu.Lock()
	c.offset = t.Sub(c.base())
	c.mu.Unlock()
	return c.afterMove()
}

// Reset takes the offset back to zero: the clock reads Options.Now again.
func (c *Clock) Reset() time.Time {
	c.mu.Lock()
	c.offset = 0
	c.mu.Unlock()
	return c.afterMove()
}

// Reading returns the clock's state in the service API's shape.
func (c *Clock) Reading() iothub.ClockReading {
	now, off := c.Now(), c.Offset()
	return iothub.ClockReading{Now: now.UTC(), Offset: off.String(), OffsetSeconds: off.Seconds()}
}

func (c *Clock) afterMove() time.Time {
	c.mu.Lock()
	f := c.moved
	close(c.ch)
	c.ch = make(chan struct{})
	c.mu.Unlock()
	if f != nil {
		f()
	}
	return c.Now()
}

// Clock returns the hub's movable clock.
func (s *Server) Clock() *Clock { return s.clock }

// clockMoved re-checks what a move of the clock may have ended: connected tokens
// (dropped with 401003, then 404104, docs/iothub-behavior.md §2.5), the quota day,
// and the C2D states that waiters follow (expiry is computed when read).
func (s *Server) clockMoved() {
	s.log.Info("clock moved", "now", s.clock.Now().UTC().Format(time.RFC3339), "offset", s.clock.Offset().String())
	s.CheckTokens()
	s.limits.clockMoved()
	s.cloud.notify()
}
