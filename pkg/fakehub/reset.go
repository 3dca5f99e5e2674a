package fakehub

import (
	"fmt"
	"strings"
)

// ResetPart names one kind of state Server.Reset clears.
type ResetPart string

// The parts of the hub's run-time state that Reset clears. The registry (devices, keys,
// policies) and open connections are never touched.
const (
	ResetTelemetry  ResetPart = "telemetry"  // captured telemetry (sequence numbers go on)
	ResetRejections ResetPart = "rejections" // the rejection log
	ResetC2D        ResetPart = "c2d"        // queued and in-flight C2D messages, their states and the feedback
	ResetTwins      ResetPart = "twins"      // every twin back to a new one (tags, desired, reported; versions 1)
)

// ResetParts lists every part, in the order Reset clears them.
var ResetParts = []ResetPart{ResetTelemetry, ResetRejections, ResetC2D, ResetTwins}

// ParseResetParts reads a comma-separated list of part names ("" = every part).
func ParseResetParts(s string) ([]ResetPart, error) {
	if strings.TrimSpace(s) == "" {
		return nil, nil
	}
	var out []ResetPart
	for f := range strings.SplitSeq(s, ",") {
		p := ResetPart(strings.ToLower(strings.TrimSpace(f)))
		ok := false
		for _, known := range ResetParts {
			ok = ok || p == known
		}
		if !ok {
			return nil, fmt.Errorf("unknown reset part %q (want telemetry, rejections, c2d or twins)", f)
		}
		out = append(out, p)
	}
	return out, nil
}

// Reset clears the hub's run-time state between tests: the given parts, or all of them when
// none is given. Devices, keys, policies and open connections stay; a connected device keeps
// its subscriptions, and a stream from Telemetry() keeps reading new messages.
func (s *Server) Reset(parts ...ResetPart) {
	if len(parts) == 0 {
		parts = ResetParts
	}
	for _, p := range parts {
		switch p {
		case ResetTelemetry:
			s.telemetry.reset()
		case ResetRejections:
			s.rejections.reset()
		case ResetC2D:
			s.cloud.resetC2D()
		case ResetTwins:
			s.cloud.twins.Reset()
		}
	}
	s.log.Info("state reset", "parts", fmt.Sprint(parts))
}

func (r *ring) reset() {
	r.mu.Lock()
	defer r.mu.Unlock()
	clear(r.buf)
	r.buf, r.head, r.n, r.bytes, r.dropped = nil, 0, 0, 0, 0
}

// reset forgets every entry; waiters count them as dropped, so they never see them.
func (l *rejectionLog) reset() {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.dropped += len(l.list)
	l.list, l.bytes = nil, 0
}

func (c *cloud) resetC2D() {
	c.c2d.Reset()
	c.mu.Lock()
	clear(c.sent)
	c.mu.Unlock()
	c.notify()
}
