package fakehub

import (
	"errors"
	"fmt"
	"math"
	"sync"
	"time"

	"github.com/hubkit/hubkit/pkg/iothub"
)

// Limits are a hub's throttles and its daily message quota (docs/iothub-behavior.md §6).
// The zero value has no limits: every throttle is off and the quota unbounded. TierLimits
// fills them from IoT Hub's table for a tier; each field can also be set on its own (a D2C
// limit of 2/s: Limits{D2C: Throttle{PerSecond: 2}}).
type Limits struct {
	Connections Throttle // new device connections per second (hub-wide)
	D2C         Throttle // device-to-cloud sends per second
	C2D         Throttle // cloud-to-device sends per second (service API and Go API)
	TwinReads   Throttle // twin reads per second: device GETs and the service's GET /twins
	TwinUpdates Throttle // twin updates per second: reported PATCHes and the service's PATCH/PUT
	Methods     Throttle // direct methods, in 4 KB chunks of their payload per second
	Registry    Throttle // identity registry operations (service API /devices) per second
	// DailyMessages is the daily message quota in meter units (0: none). D2C and C2D
	// messages, twin reads and updates and direct methods are charged in MeterSize chunks
	// (a message of 0 to MeterSize bytes is one); the count starts again at 00:00 UTC of the
	// hub's clock.
	DailyMessages int64
	// MeterSize is the quota's meter in bytes: 4096 (default), 512 on the free tier.
	MeterSize int
}

// Throttle is one operation throttle with IoT Hub's traffic shaping: requests above the
// rate are first accepted at once (Burst), then queued and served at the rate (Backlog, the
// PUBACK or the answer is late), then refused with 429002 ThrottleBacklogLimitExceeded
// (docs/iothub-behavior.md §6.2). The page gives no sizes ("for the first minute or two"):
// by default Burst and Backlog each hold one minute of the rate ([I], §6.2).
type Throttle struct {
	PerSecond float64 // the limit rate; 0: no limit
	Burst     int     // operations accepted at once above the rate; 0: 60 s of the rate (at least 1)
	Backlog   int     // operations queued at the rate once the burst is spent; 0: 60 s of the rate; negative: none
}

// On reports whether the throttle limits anything.
func (t Throttle) On() bool { return t.PerSecond > 0 }

func (t Throttle) burst() float64 {
	if t.Burst > 0 {
		return float64(t.Burst)
	}
	return math.Max(1, math.Round(60*t.PerSecond))
}

func (t Throttle) backlog() float64 {
	switch {
	case t.Backlog < 0:
		return 0
	case t.Backlog > 0:
		return float64(t.Backlog)
	}
	return math.Max(1, math.Round(60*t.PerSecond))
}

// The operations the hub throttles, as named in logs, records and errors.
const (
	opConnect     = "new connections"
	opD2C         = "device-to-cloud sends"
	opC2D         = "cloud-to-device sends"
	opTwinRead    = "twin reads"
	opTwinUpdate  = "twin updates"
	opMethods     = "direct methods"
	opRegistry    = "identity registry operations"
	maxShapedWait = 5 * time.Minute // bound of one queued operation's wait
)

// bucket is a token bucket whose debt is the backlog: tokens go negative while operations
// wait for their turn at the limit rate.
type bucket struct {
	t      Throttle
	tokens float64
	last   time.Time
}

// limiter applies Limits with the hub's clock.
type limiter struct {
	now     func() time.Time
	changed func() <-chan struct{} // closed when the clock moves (nil: never)
	// throttled, when set, is told each operation a throttle refused or delayed (the
	// hubkit_throttled_total metric). It runs without the lock.
	throttled func(op string)

	mu      sync.Mutex
	l       Limits
	buckets map[string]*bucket
	day     string // UTC date the quota counts for
	used    int64  // meter units used that day
}

func (lm *limiter) count(op string) {
	if lm.throttled != nil {
		lm.throttled(op)
	}
}

func newLimiter(l Limits, now func() time.Time) *limiter {
	if l.MeterSize <= 0 {
		l.MeterSize = meterStandard
	}
	return &limiter{now: now, l: l, buckets: map[string]*bucket{}}
}

func (lm *limiter) throttle(op string) Throttle {
	switch op {
	case opConnect:
		return lm.l.Connections
	case opD2C:
		return lm.l.D2C
	case opC2D:
		return lm.l.C2D
	case opTwinRead:
		return lm.l.TwinReads
	case opTwinUpdate:
		return lm.l.TwinUpdates
	case opMethods:
		return lm.l.Methods
	case opRegistry:
		return lm.l.Registry
	}
	return Throttle{}
}

// throttledError is a refusal by a throttle: 429002 with the time after which a retry
// would be admitted.
func throttledError(op string, t Throttle, retry time.Duration) *iothub.Error {
	return &iothub.Error{Code: iothub.CodeThrottleBacklogLimitExceeded, RetryAfter: retry,
		Message: fmt.Sprintf("%s are throttled at %g/s and the backlog of %g is full (traffic shaping: burst, then queued at the limit rate, then 429)",
			op, t.PerSecond, t.backlog())}
}

// admit takes cost tokens of op's throttle. It returns at once when the burst allows,
// waits for the operation's turn at the limit rate when the backlog has room (by the
// hub's clock: a frozen test clock holds the operation until it is moved), and returns
// the *iothub.Error 429002 when the backlog is full. done closing ends a wait early with
// errWaitEnded.
func (lm *limiter) admit(done <-chan struct{}, op string, cost float64) error {
	at, err := lm.reserve(op, cost)
	if err != nil || at.IsZero() {
		return err
	}
	if !lm.waitUntil(done, at) {
		return errWaitEnded
	}
	return nil
}

// reserve takes cost tokens of op's throttle and returns when (by the hub's clock) the
// operation may proceed: the zero time for at once, a later time when it is queued in the
// backlog, or the *iothub.Error 429002 when the backlog is full.
func (lm *limiter) reserve(op string, cost float64) (time.Time, error) {
	lm.mu.Lock()
	t := lm.throttle(op)
	if !t.On() {
		lm.mu.Unlock()
		return time.Time{}, nil
	}
	now := lm.now()
	b := lm.buckets[op]
	if b == nil || b.t != t {
		b = &bucket{t: t, tokens: t.burst(), last: now}
		lm.buckets[op] = b
	}
	if dt := now.Sub(b.last).Seconds(); dt > 0 {
		b.tokens = math.Min(t.burst(), b.tokens+dt*t.PerSecond)
	}
	b.last = now
	if b.tokens-cost < -t.backlog()-1e-9 {
		retry := time.Duration((cost - b.tokens - t.backlog()) / t.PerSecond * float64(time.Second))
		lm.mu.Unlock()
		lm.count(op)
		return time.Time{}, throttledError(op, t, max(retry, time.Second))
	}
	b.tokens -= cost
	var at time.Time
	if b.tokens < 0 {
		at = now.Add(time.Duration(-b.tokens / t.PerSecond * float64(time.Second)))
	}
	lm.mu.Unlock()
	if !at.IsZero() {
		lm.count(op)
	}
	return at, nil
}

// errWaitEnded: the operation's wait for its turn ended with its connection or context.
var errWaitEnded = errors.New("fakehub: ended while queued by a throttle")

// waitUntil waits until the hub's clock reads at: on real timers, re-checked whenever the
// clock is moved. It returns false when done closes first.
func (lm *limiter) waitUntil(done <-chan struct{}, at time.Time) bool {
	deadline := time.NewTimer(maxShapedWait)
	defer deadline.Stop()
	for {
		d := at.Sub(lm.now())
		if d <= 0 {
			return true
		}
		var moved <-chan struct{}
		if lm.changed != nil {
			moved = lm.changed()
		}
		tm := time.NewTimer(d)
		select {
		case <-tm.C:
		case <-moved:
		case <-done:
			tm.Stop()
			return false
		case <-deadline.C:
			tm.Stop()
			return true
		}
		tm.Stop()
	}
}

// charge counts a message of size bytes against the daily quota and returns the
// *iothub.Error 403002 when the day's quota is used up (the message is not counted then).
func (lm *limiter) charge(what string, size int) error {
	lm.mu.Lock()
	defer lm.mu.Unlock()
	if lm.l.DailyMessages <= 0 {
		return nil
	}
	now := lm.now().UTC()
	if d := now.Format(time.DateOnly); d != lm.day {
		lm.day, lm.used = d, 0
	}
	units := int64(1)
	if size > lm.l.MeterSize {
		units = int64((size + lm.l.MeterSize - 1) / lm.l.MeterSize)
	}
	if lm.used+units > lm.l.DailyMessages {
		reset := time.Date(now.Year(), now.Month(), now.Day()+1, 0, 0, 0, 0, time.UTC)
		return &iothub.Error{Code: iothub.CodeIotHubQuotaExceeded, RetryAfter: reset.Sub(now),
			Message: fmt.Sprintf("the daily message quota of %d messages (%d-byte meter) is used up; %s is refused until %s (00:00 UTC)",
				lm.l.DailyMessages, lm.l.MeterSize, what, reset.Format(time.RFC3339))}
	}
	lm.used += units
	return nil
}

// Usage reports the quota day (UTC date) and how many meter units of it are used.
func (lm *limiter) usage() (string, int64) {
	lm.mu.Lock()
	defer lm.mu.Unlock()
	now := lm.now().UTC().Format(time.DateOnly)
	if now != lm.day {
		return now, 0
	}
	return lm.day, lm.used
}

// set replaces the limits (buckets start full again).
func (lm *limiter) set(l Limits) {
	if l.MeterSize <= 0 {
		l.MeterSize = meterStandard
	}
	lm.mu.Lock()
	lm.l = l
	lm.buckets = map[string]*bucket{}
	lm.mu.Unlock()
}

func (lm *limiter) get() Limits {
	lm.mu.Lock()
	defer lm.mu.Unlock()
	return lm.l
}

// clockMoved starts a new quota day when the clock crossed midnight UTC (charge would too;
// this makes the reset visible in the log at once).
func (lm *limiter) clockMoved() {
	lm.mu.Lock()
	defer lm.mu.Unlock()
	if d := lm.now().UTC().Format(time.DateOnly); lm.day != "" && d != lm.day {
		lm.day, lm.used = d, 0
	}
}

// Limits returns the hub's throttles and quota.
func (s *Server) Limits() Limits { return s.limits.get() }

// SetLimits replaces the hub's throttles and quota while it runs (the buckets start full).
func (s *Server) SetLimits(l Limits) { s.limits.set(l) }

// QuotaUsed returns the UTC date of the quota day and the meter units used so far that day.
func (s *Server) QuotaUsed() (day string, used int64) { return s.limits.usage() }

// chunks returns how many meter chunks of size bytes a payload of n bytes is (at least 1).
func chunks(n, size int) float64 {
	if n <= size {
		return 1
	}
	return float64((n + size - 1) / size)
}
