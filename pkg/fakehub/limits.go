package fakehub

import (
	"cmp"
	"errors"
	"fmt"
	"math"
	"strings"
	"sync"
	"time"

	"github.com/hubkit/hubkit/pkg/iothub"
)

// Limits are a hub's throttles and its daily message quota (docs/iothub-behavior.md §6):
// the service vocabulary's iothub.Limits, which the service API serves at /hubkit/limits.
// The zero value has no limits. TierLimits fills them from IoT Hub's table for a tier; each
// field can also be set on its own (a D2C limit of 2/s: Limits{D2C: Throttle{PerSecond: 2}}).
type Limits = iothub.Limits

// Throttle is one operation throttle with IoT Hub's traffic shaping (iothub.Throttle): a
// burst accepted at once, then a backlog served at the rate, then 429002.
type Throttle = iothub.Throttle

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
			op, t.PerSecond, t.BacklogSize())}
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
		b = &bucket{t: t, tokens: t.BurstSize(), last: now}
		lm.buckets[op] = b
	}
	if dt := now.Sub(b.last).Seconds(); dt > 0 {
		b.tokens = math.Min(t.BurstSize(), b.tokens+dt*t.PerSecond)
	}
	b.last = now
	if b.tokens-cost < -t.BacklogSize()-1e-9 {
		retry := time.Duration((cost - b.tokens - t.BacklogSize()) / t.PerSecond * float64(time.Second))
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

// charge counts an operation of size bytes against the daily quota, in meter chunks, and
// returns the *iothub.Error 403002 when the day's quota cannot hold it (it is not counted
// then). Without a quota nothing is refused, but the use is still counted (QuotaUsed), so a
// test can read what its device would cost on a real hub.
func (lm *limiter) charge(what string, size int) error {
	_, err := lm.meter(what, size, false)
	return err
}

// chargeDay is charge that also returns the quota day the operation was counted on, for
// refund.
func (lm *limiter) chargeDay(what string, size int) (string, error) {
	return lm.meter(what, size, false)
}

// refund takes back an operation of size bytes charged on day that the hub did not carry
// out after all (a queued message whose connection ended before its turn: the device
// resends it, and only the message the hub accepts counts, docs/iothub-behavior.md §14.9).
// A day that is over is left alone.
func (lm *limiter) refund(day string, size int) {
	lm.mu.Lock()
	defer lm.mu.Unlock()
	if day == lm.day {
		lm.used = max(0, lm.used-int64(chunks(size, lm.l.MeterSize)))
	}
}

// chargeAfter counts an operation the hub has already carried out (a direct method's
// response): it is never refused, and may take the day's count past the quota, so the next
// operation is refused.
func (lm *limiter) chargeAfter(size int) { _, _ = lm.meter("", size, true) }

func (lm *limiter) meter(what string, size int, always bool) (string, error) {
	lm.mu.Lock()
	defer lm.mu.Unlock()
	now := lm.now().UTC()
	if d := now.Format(time.DateOnly); d != lm.day {
		lm.day, lm.used = d, 0
	}
	units := int64(chunks(size, lm.l.MeterSize))
	if !always && lm.l.DailyMessages > 0 && lm.used+units > lm.l.DailyMessages {
		reset := time.Date(now.Year(), now.Month(), now.Day()+1, 0, 0, 0, 0, time.UTC)
		return lm.day, &iothub.Error{Code: iothub.CodeIotHubQuotaExceeded, RetryAfter: reset.Sub(now),
			Message: fmt.Sprintf("the daily message quota of %d messages (%d-byte meter) is used up; %s is refused until %s (00:00 UTC)",
				lm.l.DailyMessages, lm.l.MeterSize, what, reset.Format(time.RFC3339))}
	}
	lm.used += units
	return lm.day, nil
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

// set replaces the limits. A throttle that changed starts again with a full burst (reserve
// makes a new bucket when its throttle differs); the others keep their state, and the day's
// quota count is kept.
func (lm *limiter) set(l Limits) {
	if l.MeterSize <= 0 {
		l.MeterSize = meterStandard
	}
	lm.mu.Lock()
	lm.l = l
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

// SetLimits replaces the hub's throttles and quota while it runs, effective at once for
// new operations (operations already queued by a throttle keep their turn). A throttle that
// changed starts with a full burst; the others, and the day's quota count, carry on. Limits
// that fail Limits.Validate are an *iothub.Error (iothub.ErrInvalidArgument) and change
// nothing.
func (s *Server) SetLimits(l Limits) error {
	if err := l.Validate(); err != nil {
		return err
	}
	s.limits.set(l)
	s.log.Info("limits changed", "limits", describeLimits(l))
	return nil
}

// describeLimits is the one-line log form of l: "d2c=2/s burst=2 backlog=2 daily=100", or
// "none".
func describeLimits(l Limits) string {
	var parts []string
	for _, nt := range l.Throttles() {
		if t := *nt.Throttle; t.On() {
			parts = append(parts, fmt.Sprintf("%s=%g/s burst=%g backlog=%g", nt.Name, t.PerSecond, t.BurstSize(), t.BacklogSize()))
		}
	}
	if l.DailyMessages > 0 {
		parts = append(parts, fmt.Sprintf("daily=%d meter=%d", l.DailyMessages, cmp.Or(l.MeterSize, meterStandard)))
	}
	if len(parts) == 0 {
		return "none"
	}
	return strings.Join(parts, " ")
}

// QuotaUsed returns the UTC date of the quota day and the meter units used so far that day.
func (s *Server) QuotaUsed() (day string, used int64) { return s.limits.usage() }

// LimitsStatus returns the limits in force and the quota used today, as GET /hubkit/limits
// answers.
func (s *Server) LimitsStatus() iothub.LimitsStatus {
	day, used := s.limits.usage()
	return iothub.LimitsStatus{Limits: s.limits.get(), QuotaDay: day, QuotaUsed: used}
}

// chunks returns how many meter chunks of size bytes a payload of n bytes is (at least 1).
func chunks(n, size int) float64 {
	if n <= size {
		return 1
	}
	return float64((n + size - 1) / size)
}
