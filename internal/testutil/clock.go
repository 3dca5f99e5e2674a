package testutil

import (
	"sync"
	"time"
)

// Clock is a fake clock that moves only when told (Set, Advance) or, with SetStep,
// by a fixed step on every reading. It is safe for concurrent use; pass its Now
// method wherever an option wants a func() time.Time (fakehub.Options.Now,
// device.Config.Now, c2d.Options.Now, ...).
type Clock struct {
	mu   sync.Mutex
	t    time.Time
	step time.Duration
}

// NewClock returns a clock reading start.
func NewClock(start time.Time) *Clock { return &Clock{t: start} }

// Now returns the clock's time; with a step set it first advances by the step.
func (c *Clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(c.step)
	return c.t
}

// Set sets the clock to t.
func (c *Clock) Set(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = t
}

// Advance moves the clock by d (backwards if d is negative).
func (c *Clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// SetStep makes every later Now advance the clock by step before reading it (0 stops
// it): a clock that moves a known amount between two readings.
func (c *Clock) SetStep(step time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.step = step
}
