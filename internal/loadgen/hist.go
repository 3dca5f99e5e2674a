package loadgen

import (
	"math/bits"
	"sync/atomic"
	"time"
)

// histogram records durations in log-linear buckets (64 per power of two,
// so a percentile is within 1.6 % of the true value) with atomic counters:
// any number of goroutines may record at once.
type histogram struct {
	counts [(64 - subBits + 1) * subCount]atomic.Uint64
	n      atomic.Uint64
	max    atomic.Int64
}

const (
	subBits  = 6
	subCount = 1 << subBits
)

func bucketOf(v uint64) int {
	if v < subCount {
		return int(v)
	}
	shift := bits.Len64(v) - 1 - subBits
	return (shift+1)*subCount + int(v>>shift) - subCount
}

// bucketLow and bucketHigh bound the values of bucket b: [low, high].
func bucketLow(b int) uint64 {
	if b < subCount {
		return uint64(b)
	}
	shift := b/subCount - 1
	return uint64(b%subCount+subCount) << shift
}

func bucketHigh(b int) uint64 {
	if b < subCount {
		return uint64(b)
	}
	return bucketLow(b) + 1<<(b/subCount-1) - 1
}

func (h *histogram) record(d time.Duration) {
	v := max(int64(d), 0)
	h.counts[bucketOf(uint64(v))].Add(1)
	h.n.Add(1)
	for {
		m := h.max.Load()
		if v <= m || h.max.CompareAndSwap(m, v) {
			return
		}
	}
}

// quantile returns the q-quantile (0 < q <= 1): the midpoint of the bucket
// holding the ceil(q·n)-th smallest value, never above the maximum seen.
func (h *histogram) quantile(q float64) time.Duration {
	n := h.n.Load()
	if n == 0 {
		return 0
	}
	rank := uint64(q*float64(n) + 0.999999)
	rank = min(max(rank, 1), n)
	var seen uint64
	for b := range h.counts {
		seen += h.counts[b].Load()
		if seen >= rank {
			mid := (bucketLow(b) + bucketHigh(b)) / 2
			return min(time.Duration(mid), time.Duration(h.max.Load()))
		}
	}
	return time.Duration(h.max.Load())
}

// Latency summarises a histogram.
type Latency struct {
	Count uint64
	P50   time.Duration
	P99   time.Duration
	P999  time.Duration
	Max   time.Duration
}

func (h *histogram) summary() Latency {
	return Latency{Count: h.n.Load(), P50: h.quantile(0.5), P99: h.quantile(0.99), P999: h.quantile(0.999), Max: time.Duration(h.max.Load())}
}
