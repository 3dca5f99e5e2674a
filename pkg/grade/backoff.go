package grade

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/hubkit/hubkit/pkg/iothub"
)

// episode is one refusal episode of device/reconnect/backoff-with-jitter: the hub closed
// the device's connection and refused its CONNECTs (CONNACK 3) for a while.
type episode struct {
	n        int
	closed   time.Time       // real: when the connection ended
	attempts int             // connection attempts seen
	refused  int             // of them refused
	waits    []time.Duration // [0]: close -> first attempt; [i]: i-th refusal -> next attempt
	span     time.Duration   // close -> last attempt
	example  *obs            // a refusal, for the evidence
}

// afterRefusals are the waits the device chose after a refusal (not the first one, which
// follows the close).
func (e episode) afterRefusals() []time.Duration {
	if len(e.waits) < 2 {
		return nil
	}
	return e.waits[1:]
}

// maxEpisodeAttempts ends an episode early: enough attempts to judge anything.
const maxEpisodeAttempts = 50

// refusalEpisode closes the device's connection and refuses its CONNECTs until it has
// seen Timing.BackoffAttempts refused attempts and Timing.BackoffMin has passed (at most
// BackoffMax), then accepts them again and waits for the device to reconnect.
func (g *grader) refusalEpisode(ctx context.Context, n int) (episode, bool, error) {
	e := episode{n: n}
	mark := g.rec.mark()
	g.hub.RefuseConnections(g.id, 24*time.Hour)
	defer g.hub.RefuseConnections(g.id, 0)
	start := g.opts.Now()
	if err := g.hub.Drop(g.id, "the service is unavailable (the grader: reconnect back-off)", iothub.CodeConnectionForcefullyClosedOnFaultInjection); err != nil {
		return e, false, err
	}
	refusedSince := func(ev []obs) int {
		n := 0
		for _, o := range ev[min(mark, len(ev)):] {
			if isHub(o) && o.Type == iothub.PacketConnack && !o.FromDevice && o.ReturnCode != 0 {
				n++
			}
		}
		return n
	}
	g.rec.waitTick(ctx, g.t.BackoffMax, 20*time.Millisecond, func(ev []obs) bool {
		r := refusedSince(ev)
		return r >= maxEpisodeAttempts || (r >= g.t.BackoffAttempts && g.opts.Now().Sub(start) >= g.t.BackoffMin)
	})
	g.hub.RefuseConnections(g.id, 0)
	_, back := g.rec.waitFor(ctx, mark, g.t.Reconnect, isConnackOK)
	e.build(connections(g.rec.events(mark)), start)
	return e, back, nil
}

// build reads the episode from the connections after its mark: the one the hub closed
// (dropped: when the grader closed it, should its close not have been seen), then the
// device's attempts in the order they began, up to the first one accepted.
func (e *episode) build(conns []*connection, dropped time.Time) {
	e.closed = dropped
	var attempts []*connection
	for _, c := range conns {
		switch {
		case c.accept == nil && c.connect == nil:
			if c.close != nil {
				e.closed = c.close.real
			}
		default:
			attempts = append(attempts, c)
		}
	}
	slices.SortStableFunc(attempts, func(a, b *connection) int { return a.start().real.Compare(b.start().real) })
	last := e.closed // when the device's previous attempt ended (the close, then each refusal)
	for _, c := range attempts {
		at := c.start().real
		e.attempts++
		e.waits = append(e.waits, max(at.Sub(last), 0))
		e.span = at.Sub(e.closed)
		if c.accepted() {
			return
		}
		switch {
		case c.connack != nil:
			e.refused++
			last = c.connack.real
			if e.example == nil {
				e.example = c.connack
			}
		case c.close != nil:
			last = c.close.real
		}
	}
}

func (e episode) summary() string {
	return fmt.Sprintf("episode %d: %d attempt(s), %d refused, over %s; waits %s", e.n, e.attempts, e.refused, dur(e.span), durs(e.waits))
}

// grows reports whether the waits grow: the mean of the later half is at least 1.3 × the
// mean of the earlier half (the middle wait of an odd count in the later half). Means, not
// the extremes, so that one wait stretched by scheduling noise does not pass a constant
// back-off, and a jittered exponential one still passes (1.3 < 2 × the narrowest jitter).
// The middle wait counts so that, of three, the last alone does not decide: a constant
// pause whose last wait a slow process start stretched by half (a supervisor restarting a
// sample, each start taking 0.1-2 s on a loaded machine) is not a back-off.
func grows(w []time.Duration) bool {
	k := len(w)
	if k < 2 {
		return false
	}
	return float64(meanDur(w[k/2:])) >= 1.3*float64(meanDur(w[:k/2]))
}

func meanDur(ds []time.Duration) time.Duration {
	var sum time.Duration
	for _, d := range ds {
		sum += d
	}
	return sum / time.Duration(len(ds))
}

func caseBackoff(ctx context.Context, g *grader) result {
	var r result
	var eps []episode
	// episode runs refusal episode n and appends it; a non-nil result ends the case.
	episode := func(n int) *result {
		e, back, err := g.refusalEpisode(ctx, n)
		if err != nil {
			return &result{verdict: iothub.GradeNotExercised, reason: "the hub could not close the connection: " + err.Error(), evidence: r.evidence}
		}
		r.evidence = append(r.evidence, g.now(e.summary()))
		if e.example != nil && n == 1 {
			r.evidence = append(r.evidence, g.ev(*e.example, describe(*e.example)))
		}
		if v := g.judgeEpisode(e); v.verdict != "" {
			v.evidence = r.evidence
			return &v
		}
		eps = append(eps, e)
		if !back {
			return &result{verdict: iothub.GradeFail, reason: fmt.Sprintf("the device did not reconnect within %s once the hub accepted connections again", g.t.Reconnect), evidence: r.evidence}
		}
		if ctx.Err() != nil {
			return &r
		}
		g.settle(ctx)
		return nil
	}
	for n := 1; n <= 2; n++ {
		if v := episode(n); v != nil {
			return *v
		}
	}
	// A device whose back-off had not reset since an earlier disruption may start an
	// episode at its cap: growth in either episode is a back-off.
	if !grows(eps[0].afterRefusals()) && !grows(eps[1].afterRefusals()) {
		return result{verdict: iothub.GradeFail, evidence: r.evidence, reason: fmt.Sprintf("the waits after each refusal do not grow in either episode (%s / %s): no exponential back-off",
			durs(eps[0].afterRefusals()), durs(eps[1].afterRefusals()))}
	}
	v := g.judgeJitter(eps, r.evidence)
	if v.verdict != iothub.GradeFail {
		return v
	}
	// Two episodes of a jittered back-off can land within noise of each other at every
	// position by chance (for the model device's uniform jitter between w and 2w, about
	// once in 3,000 grades); a third episode, compared with both, makes a false FAIL about
	// that squared. A device without jitter matches the third too.
	if v := episode(3); v != nil {
		return *v
	}
	return g.judgeJitter(eps, r.evidence)
}

// judgeEpisode fails a tight loop or a device that does not retry, and gives up on an
// episode with too few waits to judge; "" means the episode can be judged for growth.
func (g *grader) judgeEpisode(e episode) result {
	w := e.afterRefusals()
	switch {
	case e.attempts == 0:
		return result{verdict: iothub.GradeFail, reason: fmt.Sprintf("episode %d: no reconnect attempt within %s of the close", e.n, g.t.BackoffMax)}
	case len(w) >= 3 && median(w) < g.t.TightLoop:
		return result{verdict: iothub.GradeFail, reason: fmt.Sprintf("a tight loop: %d attempts in %s, waiting %s (median) after each refusal", e.attempts, dur(e.span), dur(median(w)))}
	case len(w) < 2:
		return result{verdict: iothub.GradeNotExercised, reason: fmt.Sprintf("episode %d: only %d attempt(s) refused in %s: too few waits to see a back-off grow", e.n, e.refused, dur(g.t.BackoffMax))}
	}
	return result{}
}

// judgeJitter compares the episodes' waits, position by position, each pair of episodes:
// jitter shows as a difference above noise (Timing.JitterMin, and 4 %) between waits of
// at least Timing.JitterFloor.
func (g *grader) judgeJitter(eps []episode, ev []iothub.GradeEvidence) result {
	compared, differ := 0, 0
	for i, a := range eps {
		for _, b := range eps[i+1:] {
			for k := 0; k < min(len(a.waits), len(b.waits)); k++ {
				x, y := a.waits[k], b.waits[k]
				if x < g.t.JitterFloor || y < g.t.JitterFloor {
					continue
				}
				compared++
				diff := max(x-y, y-x)
				if diff > max(g.t.JitterMin, time.Duration(0.04*float64(max(x, y)))) {
					differ++
				}
			}
		}
	}
	switch {
	case compared == 0:
		return result{verdict: iothub.GradeNotExercised, reason: fmt.Sprintf("the back-off grows, but no two waits of %s or more could be compared for jitter", dur(g.t.JitterFloor)), evidence: ev}
	case differ == 0:
		waits := make([]string, len(eps))
		for i, e := range eps {
			waits[i] = durs(e.waits)
		}
		return result{verdict: iothub.GradeFail, reason: fmt.Sprintf("no jitter: the waits of %d episodes were the same within %s or 4 %% (%s); devices that back off in step reconnect in waves", len(eps), dur(g.t.JitterMin), strings.Join(waits, " / ")), evidence: ev}
	}
	return result{verdict: iothub.GradePass, reason: fmt.Sprintf("the waits grow after each refusal, and %d of %d compared waits differ between %d episodes (jitter)", differ, compared, len(eps)), evidence: ev}
}
