package loadgen

import (
	"fmt"
	"strconv"
	"strings"
)

// Shard is one part of a device range split across processes (or
// Kubernetes pods): part Index of Count, counted from 0.
type Shard struct {
	Index, Count int
}

// ParseShard parses "i/n" with 0 <= i < n, as in --shard 3/8.
func ParseShard(s string) (Shard, error) {
	is, ns, ok := strings.Cut(s, "/")
	i, err1 := strconv.Atoi(is)
	n, err2 := strconv.Atoi(ns)
	switch {
	case !ok || err1 != nil || err2 != nil:
		return Shard{}, fmt.Errorf("shard %q: want INDEX/COUNT, e.g. 0/4", s)
	case n < 1:
		return Shard{}, fmt.Errorf("shard %q: the count must be at least 1", s)
	case i < 0 || i >= n:
		return Shard{}, fmt.Errorf("shard %q: the index must be from 0 to %d", s, n-1)
	}
	return Shard{Index: i, Count: n}, nil
}

// String returns "i/n".
func (s Shard) String() string { return fmt.Sprintf("%d/%d", s.Index, s.Count) }

// Range returns the part of the devices [first, first+total) this shard
// drives: contiguous, in order, the sizes of any two shards differing by at
// most one, so the Count shards cover the range exactly once. The zero
// Shard is the whole range.
func (s Shard) Range(first, total int) (start, count int) {
	if s.Count <= 1 {
		return first, total
	}
	lo := total * s.Index / s.Count
	hi := total * (s.Index + 1) / s.Count
	return first + lo, hi - lo
}
