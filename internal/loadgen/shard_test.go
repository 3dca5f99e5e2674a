package loadgen

import (
	"fmt"
	"testing"
)

// The n shards of a range cover every device exactly once, whatever the
// sizes (fewer devices than shards included), and their sizes differ by at
// most one.
func TestShardsCoverTheRangeExactlyOnce(t *testing.T) {
	for _, first := range []int{0, 1, 1000} {
		for _, total := range []int{0, 1, 2, 7, 100, 19000, 50001} {
			for _, n := range []int{1, 2, 3, 7, 8, 64, 101} {
				t.Run(fmt.Sprintf("first-%d-total-%d-shards-%d", first, total, n), func(t *testing.T) {
					seen := make([]int, total)
					minSize, maxSize := total, 0
					next := first
					for i := range n {
						start, count := Shard{Index: i, Count: n}.Range(first, total)
						if start != next {
							t.Fatalf("shard %d/%d starts at %d, want %d (right after the previous shard)", i, n, start, next)
						}
						next = start + count
						minSize, maxSize = min(minSize, count), max(maxSize, count)
						for d := start; d < start+count; d++ {
							if d < first || d >= first+total {
								t.Fatalf("shard %d/%d includes device %d, outside [%d, %d)", i, n, d, first, first+total)
							}
							seen[d-first]++
						}
					}
					for d, c := range seen {
						if c != 1 {
							t.Fatalf("device %d is in %d shards, want exactly 1", first+d, c)
						}
					}
					if total > 0 && maxSize-minSize > 1 {
						t.Errorf("shard sizes range from %d to %d, want a difference of at most 1", minSize, maxSize)
					}
				})
			}
		}
	}
}

func TestParseShard(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want Shard
		err  string
	}{
		{"0/1", Shard{0, 1}, ""},
		{"3/8", Shard{3, 8}, ""},
		{"8/8", Shard{}, `shard "8/8": the index must be from 0 to 7`},
		{"-1/8", Shard{}, `shard "-1/8": the index must be from 0 to 7`},
		{"0/0", Shard{}, `shard "0/0": the count must be at least 1`},
		{"3", Shard{}, `shard "3": want INDEX/COUNT, e.g. 0/4`},
		{"a/b", Shard{}, `shard "a/b": want INDEX/COUNT, e.g. 0/4`},
	} {
		got, err := ParseShard(tc.in)
		if tc.err != "" {
			if err == nil || err.Error() != tc.err {
				t.Errorf("ParseShard(%q) = %v, %v; want error %q", tc.in, got, err, tc.err)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("ParseShard(%q) = %v, %v; want %v", tc.in, got, err, tc.want)
		}
	}
}
