package grade

import (
	"context"
	"fmt"
	"time"

	"github.com/hubkit/hubkit/pkg/iothub"
)

// current returns the device's live connection as the events show it.
func (g *grader) current() *connection {
	conns := connections(g.rec.events(0))
	for i := len(conns) - 1; i >= 0; i-- {
		if c := conns[i]; c.accepted() && c.close == nil && c.connect != nil {
			return c
		}
	}
	return nil
}

// renewal returns the first connection after mark accepted with a token that expires
// after se.
func (g *grader) renewal(ev []obs, se time.Time) *connection {
	for _, c := range connections(ev) {
		if c.accepted() && c.connect != nil && c.connect.TokenExpiry.After(se) {
			return c
		}
	}
	return nil
}

func (g *grader) waitRenewal(ctx context.Context, mark int, se time.Time, d time.Duration) *connection {
	var got *connection
	g.rec.waitUntil(ctx, d, func(ev []obs) bool {
		got = g.renewal(ev[min(mark, len(ev)):], se)
		return got != nil
	})
	return got
}

// caseToken moves the hub's clock (or, for a device on its own clock, waits in real time)
// towards the expiry of the device's token and watches for a connection with a newer
// token. The clock stops at 90 % of the token's lifetime (after the 75-85 % at which the
// SDKs renew) and 30 s before its expiry (after Python's 120 s); a device that renewed at
// neither is then driven past expiry + grace, and what it does after the hub cuts it is
// told in the reason.
func caseToken(ctx context.Context, g *grader) result {
	c := g.current()
	if c == nil {
		return result{verdict: iothub.GradeNotExercised, reason: "the device's live connection was not observed"}
	}
	se := c.connect.TokenExpiry
	if se.IsZero() {
		return result{verdict: iothub.GradeNotExercised, reason: "the device's CONNECT carried no SAS token the hub could read (X.509?)"}
	}
	issued := c.connect.Time
	life := se.Sub(issued)
	r := result{evidence: []iothub.GradeEvidence{g.ev(*c.connect, fmt.Sprintf("%s (a lifetime of about %s)", describe(*c.connect), dur(life)))}}
	mark := g.rec.mark()
	renewed := func(n *connection, how string) result {
		r.evidence = append(r.evidence, g.ev(*n.connect, describe(*n.connect)), g.ev(*n.connack, describe(*n.connack)))
		r.verdict = iothub.GradePass
		r.reason = fmt.Sprintf("it reconnected with a new token (se %s, was %s) %s before the old one expired%s",
			n.connect.TokenExpiry.UTC().Format(time.RFC3339), se.UTC().Format(time.RFC3339), dur(se.Sub(n.connect.Time)), how)
		return r
	}

	if g.opts.DeviceClock == iothub.GradeClockOwn {
		left := se.Sub(g.opts.Now())
		if left > g.t.RealTimeBudget {
			return result{verdict: iothub.GradeNotExercised, evidence: r.evidence, reason: fmt.Sprintf(
				"the token expires in %s: on its own clock the device is graded in real time only up to %s; let it read the hub's clock (GET /hubkit/clock) and grade with --device-clock hub, or give it a shorter token", dur(left), dur(g.t.RealTimeBudget))}
		}
		r.evidence = append(r.evidence, g.now(fmt.Sprintf("waiting in real time for the token's expiry, %s from now", dur(left))))
		if n := g.waitRenewal(ctx, mark, se, max(left, 0)+g.t.Answer); n != nil && n.connect.Time.Before(se) {
			return renewed(n, " (real time)")
		}
		r.verdict, r.reason = iothub.GradeFail, "no connection with a new token before the old one expired (real time)"
		return r
	}

	var steps []time.Time
	for _, at := range []time.Time{issued.Add(life * 9 / 10), se.Add(-30 * time.Second)} {
		if at.After(g.hub.Now()) && at.Before(se) && (len(steps) == 0 || at.After(steps[len(steps)-1])) {
			steps = append(steps, at)
		}
	}
	for _, at := range steps {
		g.hub.SetClock(at)
		r.evidence = append(r.evidence, g.now(fmt.Sprintf("the hub's clock moves to %s, %s before the token expires", at.UTC().Format(time.RFC3339), dur(se.Sub(at)))))
		if n := g.waitRenewal(ctx, mark, se, g.t.Answer); n != nil {
			return renewed(n, "")
		}
		if ctx.Err() != nil {
			return r
		}
	}
	cut := se.Add(g.hub.TokenGrace() + time.Second)
	cutMark := g.rec.mark()
	g.hub.SetClock(cut)
	r.evidence = append(r.evidence, g.now(fmt.Sprintf("not renewed: the hub's clock moves past the expiry and the %s grace (%s): the hub cuts the connection (401003, then 404104)",
		dur(g.hub.TokenGrace()), cut.UTC().Format(time.RFC3339))))
	r.verdict = iothub.GradeFail
	r.reason = fmt.Sprintf("it did not reconnect with a new token before its token expired (se %s), though the hub's clock stopped at %s: ", se.UTC().Format(time.RFC3339), times(steps)) +
		g.afterCut(ctx, cutMark, se, &r)
	return r
}

// afterCut says what the device did once the hub cut it for its expired token.
func (g *grader) afterCut(ctx context.Context, mark int, se time.Time, r *result) string {
	var next *connection
	g.rec.waitUntil(ctx, g.t.Reconnect, func(ev []obs) bool {
		for _, c := range connections(ev[min(mark, len(ev)):]) {
			if c.connect != nil && c.connack != nil {
				next = c
				return true
			}
		}
		return false
	})
	if next == nil {
		return fmt.Sprintf("after the hub cut it, it did not come back within %s", g.t.Reconnect)
	}
	r.evidence = append(r.evidence, g.ev(*next.connect, describe(*next.connect)), g.ev(*next.connack, describe(*next.connack)))
	tok := next.connect.TokenExpiry
	switch {
	case next.accepted():
		return "it made a new token only after the hub had cut the connection"
	case tok.Equal(se):
		return fmt.Sprintf("after the hub cut it, it reconnected with the same token (se %s), refused with CONNACK %d: it never makes a new one", se.UTC().Format(time.RFC3339), next.connack.ReturnCode)
	case tok.After(se) && !tok.After(next.connect.Time):
		return fmt.Sprintf("after the hub cut it, it made a new token that had already expired by the hub's clock (se %s, hub %s): its clock does not follow the hub's; let it read GET /hubkit/clock, or grade it with --device-clock own",
			tok.UTC().Format(time.RFC3339), next.connect.Time.UTC().Format(time.RFC3339))
	}
	return fmt.Sprintf("after the hub cut it, its next CONNECT was refused with CONNACK %d (%s)", next.connack.ReturnCode, connackName(next.connack.ReturnCode))
}

func times(ts []time.Time) string {
	if len(ts) == 0 {
		return "no point before the expiry"
	}
	s := ts[0].UTC().Format(time.RFC3339)
	for _, t := range ts[1:] {
		s += " and " + t.UTC().Format(time.RFC3339)
	}
	return s
}
