package grade

import (
	"context"
	"fmt"
	"time"

	"github.com/hubkit/hubkit/pkg/iothub"
)

// The passive cases: judged at the end of a grade from every packet it observed.

// maxKeepAlive is the largest keep-alive whose 1.5 × fits the hub's 1767 s cap
// (docs/iothub-behavior.md §1.17).
const maxKeepAlive = 1177

func caseKeepAlive(_ context.Context, g *grader) result {
	var r result
	seen := map[uint16]bool{}
	n := 0
	for _, c := range connections(g.rec.events(0)) {
		if c.connect == nil {
			continue
		}
		n++
		ka := c.connect.KeepAlive
		switch {
		case ka == 0 && r.verdict == "":
			r = result{verdict: iothub.GradeFail, reason: "keep-alive 0 (no keep-alive): the device never pings, and the hub closes a silent connection after 1767 s"}
			r.evidence = append(r.evidence, g.ev(*c.connect, describe(*c.connect)))
		case ka > maxKeepAlive && r.verdict == "":
			r = result{verdict: iothub.GradeFail, reason: fmt.Sprintf("keep-alive %d s: above 1177 s the hub's 1767 s cap is shorter than 1.5 × keep-alive, so a late PINGREQ finds the connection closed", ka)}
			r.evidence = append(r.evidence, g.ev(*c.connect, describe(*c.connect)))
		case !seen[ka]:
			seen[ka] = true
			r.evidence = append(r.evidence, g.ev(*c.connect, describe(*c.connect)))
		}
		if c.close != nil && c.close.Reason == "keepalive-timeout" {
			r.evidence = append(r.evidence, g.ev(*c.close, describe(*c.close)))
			if r.verdict == "" {
				r = result{verdict: iothub.GradeFail, reason: fmt.Sprintf("the hub closed connection %d after 1.5 × its keep-alive (%d s) of silence", c.conn, ka), evidence: r.evidence}
			}
		}
	}
	if n == 0 {
		return result{verdict: iothub.GradeNotExercised, reason: "no CONNECT of the device was observed"}
	}
	if r.verdict != "" {
		return r
	}
	var kas []string
	for ka := range seen {
		kas = append(kas, fmt.Sprintf("%d s", ka))
	}
	r.verdict = iothub.GradePass
	r.reason = fmt.Sprintf("keep-alive %v on %d connection(s): within 1-1177 s, and no connection was closed for silence", kas, n)
	return r
}

func caseNoQoS2(_ context.Context, g *grader) result {
	n := 0
	for _, o := range g.rec.events(0) {
		if !isHub(o) || o.Type != iothub.PacketPublish || !o.FromDevice {
			continue
		}
		n++
		if o.QoS > 1 {
			return result{verdict: iothub.GradeFail, reason: "the device published at QoS 2; IoT Hub closes the connection (QoS 0 and 1 only)",
				evidence: []iothub.GradeEvidence{g.ev(o, describe(o))}}
		}
	}
	if n == 0 {
		return result{verdict: iothub.GradeNotExercised, reason: "the device published nothing while it was graded"}
	}
	return result{verdict: iothub.GradePass, reason: fmt.Sprintf("%d PUBLISH packets, none at QoS 2", n)}
}

func caseAPIVersion(_ context.Context, g *grader) result {
	var r result
	versions := map[string]bool{}
	n := 0
	for _, o := range g.rec.events(0) {
		if !isConnect(o) {
			continue
		}
		n++
		un, err := iothub.ParseUserName(o.UserName)
		switch {
		case err != nil:
			return result{verdict: iothub.GradeFail, reason: fmt.Sprintf("user name %q is not an IoT Hub user name: %v", o.UserName, err), evidence: []iothub.GradeEvidence{g.ev(o, describe(o))}}
		case un.APIVersion == "":
			return result{verdict: iothub.GradeFail, reason: fmt.Sprintf("user name %q has no api-version (want %s/%s/?api-version=%s)", o.UserName, un.Host, g.id, iothub.DefaultAPIVersion),
				evidence: []iothub.GradeEvidence{g.ev(o, describe(o))}}
		case !versions[un.APIVersion]:
			versions[un.APIVersion] = true
			r.evidence = append(r.evidence, g.ev(o, "user name "+o.UserName))
		}
	}
	if n == 0 {
		return result{verdict: iothub.GradeNotExercised, reason: "no CONNECT of the device was observed"}
	}
	r.verdict, r.reason = iothub.GradePass, fmt.Sprintf("every CONNECT's user name (%d) carries an api-version", n)
	return r
}

// twinRequests yields each twin GET or reported PATCH of connection c with its index.
func (g *grader) twinRequests(c *connection) (idx []int, pubs []iothub.DevicePublish) {
	for i, o := range c.events {
		if p, ok := g.publishKind(o); ok && (p.Kind == iothub.TopicTwinGet || p.Kind == iothub.TopicTwinPatchReported) {
			idx, pubs = append(idx, i), append(pubs, p)
		}
	}
	return idx, pubs
}

func caseSubscribeBeforeGet(_ context.Context, g *grader) result {
	var r result
	requests := 0
	for _, c := range connections(g.rec.events(0)) {
		if !c.accepted() {
			continue
		}
		idx, _ := g.twinRequests(c)
		for _, i := range idx {
			requests++
			if !g.subscribedBefore(c, i, iothub.FilterTwinResponse) && r.verdict == "" {
				o := c.events[i]
				r = result{verdict: iothub.GradeFail,
					reason:   fmt.Sprintf("a twin request on connection %d came before any subscription to %s on it: the hub drops the answer", c.conn, iothub.TwinResponseFilter),
					evidence: []iothub.GradeEvidence{g.ev(*c.connack, describe(*c.connack)), g.ev(o, describe(o))}}
			}
		}
	}
	if requests == 0 {
		return result{verdict: iothub.GradeNotExercised, reason: "the device sent no twin request (GET or reported PATCH)"}
	}
	if r.verdict != "" {
		return r
	}
	return result{verdict: iothub.GradePass, reason: fmt.Sprintf("%d twin requests, each after a subscription to %s", requests, iothub.TwinResponseFilter)}
}

func caseUniqueRID(_ context.Context, g *grader) result {
	requests, most, conns := 0, 0, 0
	for _, c := range connections(g.rec.events(0)) {
		idx, pubs := g.twinRequests(c)
		if len(idx) == 0 {
			continue
		}
		conns++
		requests += len(idx)
		most = max(most, len(idx))
		first := map[string]int{}
		for k, p := range pubs {
			if j, dup := first[p.RID]; dup {
				a, b := c.events[j], c.events[idx[k]]
				return result{verdict: iothub.GradeFail, reason: fmt.Sprintf("two twin requests on connection %d share $rid %q: their answers cannot be told apart", c.conn, p.RID),
					evidence: []iothub.GradeEvidence{g.ev(a, describe(a)), g.ev(b, describe(b))}}
			}
			first[p.RID] = idx[k]
		}
	}
	if most < 2 {
		return result{verdict: iothub.GradeNotExercised, reason: "the device never sent two twin requests on one connection"}
	}
	return result{verdict: iothub.GradePass, reason: fmt.Sprintf("%d twin requests on %d connection(s), every $rid distinct on its connection", requests, conns)}
}

func caseResync(_ context.Context, g *grader) result {
	var prev *connection
	checked := 0
	var ev []iothub.GradeEvidence
	for _, c := range connections(g.rec.events(0)) {
		if !c.accepted() || c.connect == nil {
			continue
		}
		if prev != nil && g.heldAtEnd(prev, iothub.FilterTwinDesired) {
			idx, pubs := g.twinRequests(c)
			got := -1
			for k, p := range pubs {
				if p.Kind == iothub.TopicTwinGet {
					got = idx[k]
					break
				}
			}
			end := g.opts.Now()
			if c.close != nil {
				end = c.close.real
			}
			if got < 0 && end.Sub(c.connack.real) < g.t.Settle {
				continue // a connection that ended at once, or has only just begun, proves nothing
			}
			checked++
			if got < 0 {
				return result{verdict: iothub.GradeFail,
					reason:   fmt.Sprintf("after reconnecting (connection %d) the device did not GET its twin: desired-property updates sent while it was away are lost (the hub replays none)", c.conn),
					evidence: []iothub.GradeEvidence{g.ev(*c.connack, describe(*c.connack))}}
			}
			ev = append(ev, g.ev(c.events[got], describe(c.events[got])))
		}
		prev = c
	}
	if checked == 0 {
		return result{verdict: iothub.GradeNotExercised, reason: "the device did not follow desired-property updates (no subscription to " + iothub.TwinDesiredFilter + ") before a reconnect"}
	}
	return result{verdict: iothub.GradePass, reason: fmt.Sprintf("it read its twin again after each of %d reconnects", checked), evidence: ev}
}

// caseDPS judges the device's DPS polls: each comes at least retry-after after the 202
// answer it follows (a scheduling tolerance of 5 %, and 100 ms, allowed).
func caseDPS(_ context.Context, g *grader) result {
	var ev []iothub.GradeEvidence
	var pending *obs // the last 202 with a retry-after
	var retry time.Duration
	polls := 0
	for _, o := range g.rec.events(0) {
		if o.Service != "dps" || o.Type != iothub.PacketPublish {
			continue
		}
		if !o.FromDevice {
			status, _, ra, err := iothub.ParseDPSResponseTopic(o.Topic)
			if err == nil && status == 202 && ra > 0 {
				oo := o
				pending, retry = &oo, time.Duration(ra)*time.Second
				ev = append(ev, g.ev(o, describe(o)))
			}
			continue
		}
		p, err := iothub.ClassifyDPSPublish(o.Topic)
		if err != nil || p.Kind != iothub.TopicDPSPoll || pending == nil {
			if err == nil && p.Kind == iothub.TopicDPSRegister {
				ev = append(ev, g.ev(o, describe(o)))
			}
			continue
		}
		polls++
		waited := o.real.Sub(pending.real)
		ev = append(ev, g.ev(o, fmt.Sprintf("%s, %s after the 202", describe(o), dur(waited))))
		if waited < retry-max(retry/20, 100*time.Millisecond) {
			return result{verdict: iothub.GradeFail, reason: fmt.Sprintf("the device polled %s after a 202 that said retry-after %s", dur(waited), dur(retry)), evidence: ev}
		}
		pending = nil
	}
	if polls == 0 {
		return result{verdict: iothub.GradeNotExercised, reason: fmt.Sprintf("no DPS poll of registration %q was observed (start the grade before the device registers; fakehub --dps; HTTPS registrations are not observed)", g.opts.RegistrationID)}
	}
	return result{verdict: iothub.GradePass, reason: fmt.Sprintf("%d poll(s), each at least retry-after after its 202", polls), evidence: ev}
}
