package grade

import (
	"testing"
	"time"
)

func ms(v ...int) []time.Duration {
	out := make([]time.Duration, len(v))
	for i, x := range v {
		out[i] = time.Duration(x) * time.Millisecond
	}
	return out
}

// TestGrows: a doubling back-off, jittered or capped, grows; a constant one does not,
// even with one wait stretched by scheduling noise (of three waits, the last).
func TestGrows(t *testing.T) {
	tests := []struct {
		name  string
		waits []time.Duration
		want  bool
	}{
		{"doubling", ms(200, 400, 800, 1600), true},
		{"doubling-jittered-worst", ms(800, 1600, 1600, 1600), true},
		{"doubling-odd", ms(400, 900, 1600), true},
		{"capped-after-growth", ms(400, 800, 1600, 1600, 1600), true},
		{"constant", ms(200, 202, 201, 203, 202, 201), false},
		{"constant-one-spike", ms(200, 202, 201, 203, 310, 201), false},
		{"constant-three-last-stretched", ms(4280, 4250, 6330), false}, // a supervisor's 4 s pause, one slow start
		{"doubling-three-jittered-narrowest", ms(400, 400, 800), true},
		{"one-wait", ms(200), false},
		{"shrinking", ms(1600, 800, 400, 200), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := grows(tt.waits); got != tt.want {
				t.Errorf("grows(%v) = %t, want %t", tt.waits, got, tt.want)
			}
		})
	}
}
