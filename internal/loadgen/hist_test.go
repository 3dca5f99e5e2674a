package loadgen

import (
	"math/rand/v2"
	"slices"
	"testing"
	"time"
)

// Every value falls in a bucket whose bounds hold it, buckets are
// contiguous, and a bucket is at most 1/64 of its lower bound wide.
func TestBuckets(t *testing.T) {
	for b := 1; b < bucketOf(1<<50); b++ {
		if bucketLow(b) != bucketHigh(b-1)+1 {
			t.Fatalf("bucket %d starts at %d, want %d (right after bucket %d)", b, bucketLow(b), bucketHigh(b-1)+1, b-1)
		}
		if w := bucketHigh(b) - bucketLow(b) + 1; b >= subCount && w*subCount > bucketLow(b) {
			t.Fatalf("bucket %d is %d wide at %d: more than 1/64", b, w, bucketLow(b))
		}
	}
	r := rand.New(rand.NewPCG(1, 2))
	for range 100000 {
		v := r.Uint64() >> r.IntN(64)
		if b := bucketOf(v); v < bucketLow(b) || v > bucketHigh(b) {
			t.Fatalf("value %d in bucket %d = [%d, %d]", v, b, bucketLow(b), bucketHigh(b))
		}
	}
}

// Quantiles of a known sample are within the bucket precision of the exact
// ones (computed by sorting).
func TestQuantiles(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	var h histogram
	var vals []time.Duration
	for range 50000 {
		d := time.Duration(r.ExpFloat64() * float64(2*time.Millisecond))
		vals = append(vals, d)
		h.record(d)
	}
	slices.Sort(vals)
	for _, q := range []float64{0.5, 0.99, 0.999, 1} {
		exact := vals[int(q*float64(len(vals))+0.999999)-1]
		got := h.quantile(q)
		if diff := got - exact; diff < -exact/50 || diff > exact/50 {
			t.Errorf("quantile(%v) = %v, want %v ± 2%%", q, got, exact)
		}
	}
	if s := h.summary(); s.Count != 50000 || s.Max != vals[len(vals)-1] {
		t.Errorf("summary = %+v, want count 50000 and max %v", s, vals[len(vals)-1])
	}
	var empty histogram
	if got := empty.quantile(0.99); got != 0 {
		t.Errorf("quantile of an empty histogram = %v, want 0", got)
	}
}
