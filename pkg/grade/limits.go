package grade

import (
	"context"
	"fmt"
	"time"

	"github.com/hubkit/hubkit/pkg/iothub"
)

// refusal is a telemetry message that the hub answered by closing the connection (MQTT
// 3.1.1 has no negative PUBACK: docs/iothub-behavior.md §6.2).
type refusal struct {
	publish, close obs
}

// telemetryOutcome reads the device's telemetry from the events: the refused messages (a
// PUBLISH whose connection closed before its PUBACK, the message being the device's last)
// and the accepted ones (PUBACKed, or QoS 0 on a connection that stayed open).
func (g *grader) telemetryOutcome(ev []obs) (refused []refusal, accepted []obs) {
	for _, c := range connections(ev) {
		var pending []obs // telemetry not acknowledged yet
		for _, o := range c.events {
			switch {
			case g.isTelemetry(o):
				if o.QoS == 0 {
					accepted = append(accepted, o) // corrected below if the connection closes on it
				}
				pending = append(pending, o)
			case o.Type == iothub.PacketPuback && !o.FromDevice:
				for i, p := range pending {
					if p.QoS > 0 && p.PacketID == o.PacketID {
						accepted = append(accepted, p)
						pending = append(pending[:i:i], pending[i+1:]...)
						break
					}
				}
			case o.Type == iothub.PacketClose && len(pending) > 0 && o.Reason != "" && o.Reason != "keepalive-timeout":
				last := pending[len(pending)-1]
				refused = append(refused, refusal{publish: last, close: o})
				if last.QoS == 0 && len(accepted) > 0 && accepted[len(accepted)-1].real.Equal(last.real) {
					accepted = accepted[:len(accepted)-1]
				}
				pending = nil
			}
		}
	}
	return refused, accepted
}

// telemetryInterval is the median gap between the device's telemetry messages so far
// (0: fewer than three seen).
func (g *grader) telemetryInterval(ev []obs) time.Duration {
	var last time.Time
	var gaps []time.Duration
	for _, o := range ev {
		if g.isTelemetry(o) && !o.Dup {
			if !last.IsZero() {
				gaps = append(gaps, o.real.Sub(last))
			}
			last = o.real
		}
	}
	if len(gaps) < 2 {
		return 0
	}
	return median(gaps)
}

// waitTelemetry waits up to d for a telemetry message after mark.
func (g *grader) waitTelemetry(ctx context.Context, mark int, d time.Duration) (obs, bool) {
	return g.rec.waitFor(ctx, mark, d, g.isTelemetry)
}

// waitAccepted waits up to d for an accepted telemetry message after mark.
func (g *grader) waitAccepted(ctx context.Context, mark int, d time.Duration) (obs, bool) {
	var got obs
	ok := g.rec.waitTick(ctx, d, 50*time.Millisecond, func(ev []obs) bool {
		_, acc := g.telemetryOutcome(ev[min(mark, len(ev)):])
		for _, a := range acc {
			if a.QoS > 0 || g.opts.Now().Sub(a.real) >= g.t.Settle { // QoS 0: the connection stayed open a while
				got = a
				return true
			}
		}
		return false
	})
	return got, ok
}

func caseThrottle(ctx context.Context, g *grader) result {
	normal := g.telemetryInterval(g.rec.events(0))
	if _, ok := g.waitTelemetry(ctx, g.rec.mark(), g.t.Telemetry); !ok {
		return result{verdict: iothub.GradeNotExercised, reason: fmt.Sprintf("the device sent no telemetry within %s: there is nothing to throttle", g.t.Telemetry)}
	}
	mark := g.rec.mark()
	if err := g.hub.Throttle(g.id, g.t.Throttle); err != nil {
		return result{verdict: iothub.GradeNotExercised, reason: "the hub could not throttle: " + err.Error()}
	}
	r := result{evidence: []iothub.GradeEvidence{g.now(fmt.Sprintf("the hub throttles the device's telemetry for %s (429001 ThrottlingException: the connection is closed at each message)", g.t.Throttle))}}
	sleep(ctx, g.t.Throttle)
	_ = g.hub.Throttle(g.id, 0)
	endMark := g.rec.mark()
	r.evidence = append(r.evidence, g.now("the throttling ends"))
	acc, recovered := g.waitAccepted(ctx, endMark, g.t.Reconnect)

	refused, _ := g.telemetryOutcome(g.rec.events(mark)[:endMark-mark])
	all := g.rec.events(mark)
	var waits []time.Duration
	for _, rf := range refused {
		for _, o := range all {
			if g.isTelemetry(o) && o.real.After(rf.close.real) {
				waits = append(waits, o.real.Sub(rf.close.real))
				break
			}
		}
	}
	if len(refused) > 0 {
		r.evidence = append(r.evidence, g.ev(refused[0].publish, describe(refused[0].publish)), g.ev(refused[0].close, describe(refused[0].close)))
	}
	summary := fmt.Sprintf("%d message(s) refused in %s; waits from each close to the next message: %s", len(refused), g.t.Throttle, durs(waits))
	if normal > 0 {
		summary += fmt.Sprintf(" (its usual interval: %s)", dur(normal))
	}
	r.evidence = append(r.evidence, g.now(summary))
	if recovered {
		r.evidence = append(r.evidence, g.ev(acc, describe(acc)+" (accepted)"))
	}
	switch {
	case len(refused) == 0:
		r.verdict, r.reason = iothub.GradeNotExercised, fmt.Sprintf("the device sent no telemetry in the %s it was throttled", g.t.Throttle)
	case len(waits) >= 3 && median(waits) < g.t.TightLoop:
		r.verdict, r.reason = iothub.GradeFail, "a tight loop: "+summary
	case !recovered:
		r.verdict, r.reason = iothub.GradeFail, fmt.Sprintf("no accepted telemetry within %s after the throttling ended: it did not recover", g.t.Reconnect)
	case len(waits) >= 2 && grows(waits):
		r.verdict, r.reason = iothub.GradePass, "it backed off (the waits grow) and sent again after the throttling: "+summary
	case normal > 0 && len(waits) >= 1 && minDur(waits) >= 2*normal:
		r.verdict, r.reason = iothub.GradePass, "it slowed down (each wait at least twice its usual interval) and sent again after the throttling: "+summary
	case len(waits) < 2:
		r.verdict, r.reason = iothub.GradeNotExercised, "too few messages refused to see a back-off: "+summary
	default:
		// Not only a device that keeps its usual pace: one that resends each refused message
		// after a short retry (the Node SDK: 100 ms and more) sends faster than usual.
		how := "it kept sending at its usual pace while throttled"
		if normal > 0 && median(waits) < normal/2 {
			how = fmt.Sprintf("it sent faster while throttled than it usually does (median wait %s, its usual interval %s): it retries each refused message instead of slowing down", dur(median(waits)), dur(normal))
		}
		r.verdict, r.reason = iothub.GradeFail, how+": "+summary
	}
	return r
}

func minDur(ds []time.Duration) time.Duration {
	m := ds[0]
	for _, d := range ds[1:] {
		m = min(m, d)
	}
	return m
}

// caseQuota exhausts the daily quota just after the hub's clock was set back to 23:00 UTC
// of the day before (a move backwards: the device's token stays valid whatever clock it
// keeps), holds it, then moves the clock past 00:00 UTC and waits for accepted telemetry.
//
// At the reset the hub's usual quota comes back with the new day. A quota of 1 kept past
// midnight would be used up at once by the twin GET and reported-properties PATCH that a
// well-behaved device sends on reconnecting, because twin operations count against the quota
// like messages (docs/iothub-behavior.md §14.9). Its telemetry would then be refused until
// the next midnight, and the case would fail the very devices it should pass.
func caseQuota(ctx context.Context, g *grader) result {
	if _, ok := g.waitTelemetry(ctx, g.rec.mark(), g.t.Telemetry); !ok {
		return result{verdict: iothub.GradeNotExercised, reason: fmt.Sprintf("the device sent no telemetry within %s: the quota has nothing to refuse", g.t.Telemetry)}
	}
	midnight := g.hub.Now().UTC().Truncate(24 * time.Hour)
	g.hub.SetClock(midnight.Add(-time.Hour))
	restore := g.hub.SetDailyQuota(1)
	restored := false
	defer func() {
		if !restored {
			restore()
		}
	}()
	r := result{evidence: []iothub.GradeEvidence{g.now("the hub's clock is set back to 23:00 UTC and the daily quota to 1 message: the next message after one is refused (403002 IotHubQuotaExceeded)")}}
	mark := g.rec.mark()
	found := g.rec.waitUntil(ctx, 2*g.t.Telemetry, func(ev []obs) bool {
		refused, _ := g.telemetryOutcome(ev[min(mark, len(ev)):])
		return len(refused) > 0
	})
	if !found {
		return result{verdict: iothub.GradeNotExercised, reason: fmt.Sprintf("no message of the device was refused for the quota within %s", 2*g.t.Telemetry), evidence: r.evidence}
	}
	refused, _ := g.telemetryOutcome(g.rec.events(mark))
	r.evidence = append(r.evidence, g.ev(refused[0].publish, describe(refused[0].publish)), g.ev(refused[0].close, describe(refused[0].close)))
	sleep(ctx, g.t.QuotaHold)
	g.hub.SetClock(midnight.Add(5 * time.Second))
	restore()
	restored = true
	resetMark, resetAt := g.rec.mark(), g.opts.Now()
	r.evidence = append(r.evidence, g.now(fmt.Sprintf("the hub's clock passes 00:00 UTC: the quota resets, with the hub's usual quota for the new day (%d refusal(s) while it was used up)", len(refused))))
	acc, ok := g.waitAccepted(ctx, resetMark, g.t.Reconnect)
	if !ok {
		r.verdict = iothub.GradeFail
		r.reason = fmt.Sprintf("no accepted telemetry within %s after the quota reset at 00:00 UTC: the device gave up after 403002", g.t.Reconnect)
		return r
	}
	r.evidence = append(r.evidence, g.ev(acc, describe(acc)+" (accepted)"))
	r.verdict = iothub.GradePass
	r.reason = fmt.Sprintf("refused for the quota, it kept trying and sent again %s after the reset", dur(acc.real.Sub(resetAt)))
	return r
}
