package fakehub

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/hubkit/hubkit/pkg/iothub"
)

// What the device sees at each limit and fault is decided here, one gate per surface
// (docs/iothub-behavior.md §6.2, §14): telemetry (the PUBACK late, withheld, or the
// connection closed), CONNECT (CONNACK late, or refused), twin requests (res/429, or no
// answer) and the service API (late, or 429 with Retry-After).

// telemetryPlan is what telemetryGate decided for an accepted message: when it may be
// captured (zero: now; later: queued by the D2C throttle, the PUBACK late), when its PUBACK
// may go out (zero: right after), or no PUBACK at all.
type telemetryPlan struct {
	admitAt  time.Time
	pubackAt time.Time
	noPuback bool
	quotaDay string // the quota day it was charged on, and its size: refunded if never captured
	size     int
}

// telemetryGate runs before a telemetry message is captured. It returns the plan for it,
// or errFaultClosed when the message was refused and the connection closed (nothing
// captured, no PUBACK).
func (s *Server) telemetryGate(ss *session, windows bool, size int) (telemetryPlan, error) {
	var plan telemetryPlan
	if w, ok := s.faultWindowFor(ss.id); ok && windows {
		s.hubCloseCode(ss, ReasonFaultInjection, w.code, fmt.Sprintf("%s=%s is in force until %s: telemetry is refused with %s and, MQTT 3.1.1 having no negative PUBACK, the connection is closed",
			PropFaultOperationType, w.kind, w.until.UTC().Format(time.RFC3339), w.code))
		return plan, errFaultClosed
	}
	at, err := s.limits.reserve(opD2C, 1)
	if err != nil {
		s.closeForLimit(ss, err, "telemetry")
		return plan, errFaultClosed
	}
	// Only messages the hub accepts count against the quota: one the throttle refused does
	// not (docs/iothub-behavior.md §14.9).
	day, err := s.limits.chargeDay("telemetry", size)
	if err != nil {
		s.closeForLimit(ss, err, "telemetry")
		return plan, errFaultClosed
	}
	plan.admitAt, plan.quotaDay, plan.size = at, day, size
	if d, ok := lookupFault(&s.faults, s.faults.pubackDelay, ss.id); ok && d > 0 {
		rj := ss.rejection(ReasonFaultPuback, fmt.Sprintf("PUBACK held for %s (Server.DelayPubacks)", d))
		rj.Warning = true
		s.reject(rj)
		plan.pubackAt = s.opts.Now().Add(d)
	}
	if drop, _ := lookupFault(&s.faults, s.faults.pubackDrop, ss.id); drop {
		rj := ss.rejection(ReasonFaultPuback, "telemetry captured but its PUBACK withheld (Server.DropPubacks)")
		rj.Warning = true
		s.reject(rj)
		plan.noPuback = true
	}
	return plan, nil
}

// closeForLimit closes a connection whose message a limit refused (429002 or 403002,
// docs/iothub-behavior.md §6.2: MQTT 3.1.1 has no negative PUBACK).
func (s *Server) closeForLimit(ss *session, err error, what string) {
	var e *iothub.Error
	if !errors.As(err, &e) {
		s.hubClose(ss, ReasonThrottled, err.Error())
		return
	}
	reason := ReasonThrottled
	if e.Code == iothub.CodeIotHubQuotaExceeded {
		reason = ReasonQuotaExceeded
	}
	s.hubCloseCode(ss, reason, e.Code, fmt.Sprintf("%s refused: %s; MQTT 3.1.1 has no negative PUBACK, so the hub closes the connection", what, e))
}

// connectGate runs for an authenticated CONNECT before the CONNACK: the refusal faults,
// an InvokeAuthError window, and the new-connections throttle (a late CONNACK, then a
// refusal). It returns the refusal with its CONNACK code, or nil.
func (s *Server) connectGate(ss *session) (*iothub.Rejection, byte) {
	now := s.opts.Now()
	if until, ok := s.faults.refused(ss.id, now); ok {
		rj := ss.rejection(ReasonFaultRefused, fmt.Sprintf("connections are refused until %s (Server.RefuseConnections); CONNACK 3 server unavailable", until.UTC().Format(time.RFC3339)))
		rj.ErrorCode = iothub.CodeConnectionRejectedOnFaultInjection
		return &rj, 3
	}
	if w, ok := s.faultWindowFor(ss.id); ok && w.kind == FaultInvokeAuthError {
		rj := ss.rejection(ReasonFaultInjection, fmt.Sprintf("%s=%s is in force until %s: CONNECT refused as unauthorized", PropFaultOperationType, w.kind, w.until.UTC().Format(time.RFC3339)))
		rj.ErrorCode = iothub.CodeIotHubUnauthorized
		return &rj, 5
	}
	if err := s.limits.admit(nil, opConnect, 1); err != nil {
		// MQTT 3.1.1 has no code for a connection-rate throttle (the MQTT 5 preview used 0x9F,
		// docs/iothub-behavior.md §11.1): fakehub answers 3, server unavailable.
		rj := ss.rejection(ReasonThrottled, err.Error()+"; CONNACK 3 server unavailable")
		rj.ErrorCode = iothub.CodeThrottleBacklogLimitExceeded
		return &rj, 3
	}
	return nil, 0
}

// twinGate runs for a device's twin GET or reported PATCH: it reports whether to answer at
// all (SilenceTwin), and the status to answer instead of serving it (429 from the throttle).
func (s *Server) twinGate(ss *session, op string) (answer bool, status int) {
	if silent, _ := lookupFault(&s.faults, s.faults.twinSilent, ss.id); silent {
		rj := ss.rejection(ReasonFaultTwin, op+" left unanswered (Server.SilenceTwin)")
		rj.Warning = true
		s.reject(rj)
		return false, 0
	}
	if err := s.limits.admit(ss.done, op, 1); err != nil {
		if errors.Is(err, errWaitEnded) {
			return false, 0
		}
		rj := ss.rejection(ReasonThrottled, err.Error()+"; answered with status 429 on $iothub/twin/res/429/")
		rj.ErrorCode, rj.Warning = iothub.CodeThrottleBacklogLimitExceeded, true
		s.reject(rj)
		return true, 429
	}
	return true, 0
}

// serviceGate applies a throttle (cost in its units) and, when what is not "", the daily
// quota (size bytes) to a service-side operation: it waits its turn or returns the
// *iothub.Error (429002 with RetryAfter, or 403002).
func (s *Server) serviceGate(ctx context.Context, op string, cost float64, what string, size int) error {
	var done <-chan struct{}
	if ctx != nil {
		done = ctx.Done()
	}
	if err := s.limits.admit(done, op, cost); err != nil {
		if errors.Is(err, errWaitEnded) {
			return ctx.Err()
		}
		return err
	}
	if what != "" {
		return s.limits.charge(what, size)
	}
	return nil
}
