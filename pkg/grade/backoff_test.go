package grade

import (
	"testing"
	"time"

	"github.com/hubkit/hubkit/pkg/iothub"
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

// TestJudgeJitter: the waits of one CI run's model device (jitter between w and 2w) whose
// first two episodes landed within noise of each other at every position fail on their
// own and pass once a third episode differs; a device without jitter fails with three.
func TestJudgeJitter(t *testing.T) {
	g := &grader{t: Timing{JitterFloor: 150 * time.Millisecond, JitterMin: 50 * time.Millisecond}}
	ep := func(w []time.Duration) episode { return episode{waits: w} }
	coincide1, coincide2 := ep(ms(325, 473, 1500, 1700, 2400)), ep(ms(278, 476, 1540, 1640, 2480))
	tests := []struct {
		name string
		eps  []episode
		want iothub.GradeVerdict
	}{
		{"two-coinciding", []episode{coincide1, coincide2}, iothub.GradeFail},
		{"third-differs", []episode{coincide1, coincide2, ep(ms(390, 610, 1190, 2900, 2050))}, iothub.GradePass},
		{"no-jitter", []episode{ep(ms(210, 405, 810, 1610, 1605)), ep(ms(205, 410, 805, 1615, 1610)), ep(ms(215, 402, 812, 1604, 1612))}, iothub.GradeFail},
		{"jittered", []episode{ep(ms(250, 700, 900, 3000)), ep(ms(380, 450, 1500, 1700))}, iothub.GradePass},
		{"too-short", []episode{ep(ms(20, 30)), ep(ms(25, 90))}, iothub.GradeNotExercised},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := g.judgeJitter(tt.eps, nil); got.verdict != tt.want {
				t.Errorf("judgeJitter = %s (%s), want %s", got.verdict, got.reason, tt.want)
			}
		})
	}
}
