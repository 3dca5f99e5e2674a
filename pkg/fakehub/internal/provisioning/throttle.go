package provisioning

import (
	"sync"
	"time"
)

// throttleState counts requests in sliding windows for Options.Throttle.
type throttleState struct {
	registrations []time.Time            // accepted registrations in the last minute
	polls         map[string][]time.Time // polls per registration ID in the last 10 s
}

// window keeps the times after now-d and reports how long until one more fits under
// limit (0: it fits, and now is added).
func window(ts []time.Time, now time.Time, d time.Duration, limit int) ([]time.Time, time.Duration) {
	keep := ts[:0]
	for _, t := range ts {
		if now.Sub(t) < d {
			keep = append(keep, t)
		}
	}
	if limit > 0 && len(keep) >= limit {
		return keep, max(keep[0].Add(d).Sub(now), time.Second)
	}
	return append(keep, now), 0
}

func (t *throttleState) register(now time.Time, limit int, mu *sync.Mutex) time.Duration {
	if limit <= 0 {
		return 0
	}
	mu.Lock()
	defer mu.Unlock()
	var wait time.Duration
	t.registrations, wait = window(t.registrations, now, time.Minute, limit)
	return wait
}

func (t *throttleState) poll(now time.Time, reg string, limit int, mu *sync.Mutex) time.Duration {
	if limit <= 0 {
		return 0
	}
	mu.Lock()
	defer mu.Unlock()
	if t.polls == nil {
		t.polls = map[string][]time.Time{}
	}
	ts, wait := window(t.polls[reg], now, 10*time.Second, limit)
	t.polls[reg] = ts
	if len(ts) == 0 {
		delete(t.polls, reg)
	}
	return wait
}
