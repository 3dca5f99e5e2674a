package grade

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/hubkit/hubkit/pkg/iothub"
)

// held returns the kinds of subscription the device holds now, with their filters and QoS.
func (g *grader) held() map[iothub.TopicKind]iothub.PacketFilter {
	subs, _ := g.hub.Subscriptions(g.id)
	out := map[iothub.TopicKind]iothub.PacketFilter{}
	for f, q := range subs {
		if k, err := iothub.ClassifySubscribe(g.id, f); err == nil {
			out[k] = iothub.PacketFilter{Filter: f, QoS: q}
		}
	}
	return out
}

func filterList(m map[iothub.TopicKind]iothub.PacketFilter) string {
	var fs []string
	for _, f := range m {
		fs = append(fs, f.Filter)
	}
	slices.Sort(fs)
	return strings.Join(fs, ", ")
}

func caseC2DAcks(ctx context.Context, g *grader) result {
	sub, ok := g.held()[iothub.FilterC2D]
	if !ok {
		return result{verdict: iothub.GradeNotExercised, reason: "the device holds no subscription to " + iothub.C2DFilter(g.id) + " (it does not receive cloud-to-device messages)"}
	}
	if sub.QoS == 0 {
		return result{verdict: iothub.GradeNotExercised, reason: sub.Filter + " is subscribed at QoS 0: messages are delivered at most once and completed when sent, so there is nothing to acknowledge"}
	}
	g.c2dSeq++
	mark := g.rec.mark()
	msgID, err := g.hub.SendC2D(ctx, g.id, iothub.C2DMessage{MessageID: fmt.Sprintf("hubkit-grade-%d", g.c2dSeq), Payload: []byte(`{"hubkit":"grade"}`),
		ContentType: "application/json", Properties: iothub.Properties{{Key: "hubkit-grade", Value: "c2d"}}})
	if err != nil {
		return result{verdict: iothub.GradeNotExercised, reason: "the hub could not send a C2D message: " + err.Error()}
	}
	wctx, cancel := context.WithTimeout(ctx, g.t.Answer)
	st, _ := g.hub.WaitC2D(wctx, msgID)
	cancel()
	// The hub may complete the message (its PUBACK hook) a moment before the observers have
	// recorded the delivery and the PUBACK: wait briefly for both, so a pass has its evidence.
	// The PUBACK may be recorded before the delivery: the hub records a PUBLISH once written,
	// and a quick device's PUBACK can be read and recorded first.
	var deliveredAt, ack *obs
	scan := func(ev []obs) bool {
		deliveredAt, ack = nil, nil
		ev = ev[min(mark, len(ev)):]
		for _, o := range ev {
			if isHub(o) && o.Type == iothub.PacketPublish && !o.FromDevice {
				if _, _, err := iothub.ParseC2DTopic(o.Topic); err == nil {
					oo := o
					deliveredAt = &oo
					break
				}
			}
		}
		if deliveredAt == nil {
			return false
		}
		for _, o := range ev {
			if isHub(o) && o.Type == iothub.PacketPuback && o.FromDevice && o.Conn == deliveredAt.Conn && o.PacketID == deliveredAt.PacketID {
				oo := o
				ack = &oo
				return true
			}
		}
		return false
	}
	if st.State == iothub.C2DCompleted {
		g.rec.waitUntil(ctx, 2*time.Second, scan)
	} else {
		scan(g.rec.events(0))
	}
	var r result
	if deliveredAt != nil {
		r.evidence = append(r.evidence, g.ev(*deliveredAt, describe(*deliveredAt)))
	}
	if ack != nil {
		r.evidence = append(r.evidence, g.ev(*ack, fmt.Sprintf("%s, %s after the delivery", describe(*ack), dur(ack.real.Sub(deliveredAt.real)))))
	}
	switch {
	case st.State == iothub.C2DCompleted:
		r.verdict, r.reason = iothub.GradePass, "the device acknowledged the message (PUBACK) and the hub completed it"
	case deliveredAt == nil:
		r.verdict, r.reason = iothub.GradeNotExercised, fmt.Sprintf("the message was not delivered within %s (state %s)", g.t.Answer, st.State)
	default:
		r.verdict = iothub.GradeFail
		r.reason = fmt.Sprintf("no PUBACK for packet ID %d within %s: the message stays %s and the hub will deliver it again", deliveredAt.PacketID, g.t.Answer, st.State)
	}
	return r
}

func caseMethods(ctx context.Context, g *grader) result {
	if g.opts.Method == "" {
		return result{verdict: iothub.GradeNotExercised, reason: "no direct method to call: name one the device implements (fakehub grade --method NAME)"}
	}
	if _, ok := g.held()[iothub.FilterMethods]; !ok {
		return result{verdict: iothub.GradeNotExercised, reason: "the device holds no subscription to " + iothub.MethodsFilter + " (it takes no direct methods)"}
	}
	mark := g.rec.mark()
	res, err := g.hub.InvokeMethod(ctx, g.id, g.opts.Method, g.opts.MethodPayload, g.t.Answer)
	var r result
	for _, o := range g.rec.events(mark) {
		if isHub(o) && o.Type == iothub.PacketPublish && (strings.HasPrefix(o.Topic, "$iothub/methods/POST/") || strings.HasPrefix(o.Topic, "$iothub/methods/res/")) {
			r.evidence = append(r.evidence, g.ev(o, describe(o)))
		}
	}
	switch {
	case err == nil:
		r.verdict, r.reason = iothub.GradePass, fmt.Sprintf("%s answered with status %d within the %s timeout", g.opts.Method, res.Status, g.t.Answer)
	case errors.Is(err, iothub.ErrGatewayTimeout):
		r.verdict, r.reason = iothub.GradeFail, fmt.Sprintf("no answer to %s within %s: the caller got 504101 GatewayTimeout", g.opts.Method, g.t.Answer)
	case errors.Is(err, iothub.ErrDeviceNotOnline):
		r.verdict, r.reason = iothub.GradeNotExercised, "the hub could not call the method: "+err.Error()
	default:
		r.verdict, r.reason = iothub.GradeFail, fmt.Sprintf("calling %s failed: %v", g.opts.Method, err)
	}
	return r
}

// recovery watches the device come back after the hub closed its connection at mark: a
// new connection accepted within Timing.Reconnect that holds every kind of subscription of
// before. It returns the verdict (fail when it does not come back) and the evidence.
func (g *grader) recovery(ctx context.Context, mark int, before map[iothub.TopicKind]iothub.PacketFilter, what string) result {
	var r result
	from := g.opts.Now()
	if o, ok := g.rec.waitFor(ctx, mark, g.t.Answer, isClose); ok {
		r.evidence = append(r.evidence, g.ev(o, describe(o)))
		from = o.real
	}
	ack, ok := g.rec.waitFor(ctx, mark, g.t.Reconnect, isConnackOK)
	if !ok {
		r.verdict, r.reason = iothub.GradeFail, fmt.Sprintf("the device did not reconnect within %s after %s", g.t.Reconnect, what)
		return r
	}
	delay := ack.real.Sub(from)
	r.evidence = append(r.evidence, g.ev(ack, describe(ack)))
	var missing map[iothub.TopicKind]iothub.PacketFilter
	g.rec.waitUntil(ctx, g.t.Answer, func([]obs) bool {
		now := g.held()
		missing = maps.Clone(before)
		for k := range now {
			delete(missing, k)
		}
		return len(missing) == 0
	})
	if len(missing) > 0 {
		how := "subscribe again"
		if ack.SessionPresent {
			how = "keep its session"
		}
		r.verdict = iothub.GradeFail
		r.reason = fmt.Sprintf("it reconnected %s after %s but no longer holds %s (session present %t: it must %s)", dur(delay), what, filterList(missing), ack.SessionPresent, how)
		return r
	}
	r.verdict = iothub.GradePass
	r.reason = fmt.Sprintf("it reconnected %s after %s (session present %t)", dur(delay), what, ack.SessionPresent)
	if len(before) > 0 {
		r.reason += " and holds its subscriptions again: " + filterList(before)
	}
	return r
}

func caseTakeover(ctx context.Context, g *grader) result {
	before := g.held()
	mark := g.rec.mark()
	start := g.now("the hub closes the connection as a newer connection of the identity would (400027 ConnectionForcefullyClosedOnNewConnection)")
	if err := g.hub.Drop(g.id, "another connection took the identity over (the grader)", iothub.CodeConnectionForcefullyClosedOnNewConnection); err != nil {
		return result{verdict: iothub.GradeNotExercised, reason: "the hub could not close the connection: " + err.Error()}
	}
	if _, ok := before[iothub.FilterTwinDesired]; ok {
		// A change the device misses while it is away (device/twin/resyncs-after-reconnect).
		_ = g.hub.UpdateDesired(ctx, g.id, []byte(fmt.Sprintf(`{"hubkitGrade":{"takeover":%d}}`, g.opts.Now().UnixMilli())))
	}
	r := g.recovery(ctx, mark, before, "the takeover")
	r.evidence = append([]iothub.GradeEvidence{start}, r.evidence...)
	return r
}

func caseRestart(ctx context.Context, g *grader) result {
	before := g.held()
	mark := g.rec.mark()
	start := g.now("the hub restarts in place: every connection closed, stored MQTT sessions forgotten, cloud state kept")
	g.hub.Restart(true)
	r := g.recovery(ctx, mark, before, "the restart")
	r.evidence = append([]iothub.GradeEvidence{start}, r.evidence...)
	return r
}
