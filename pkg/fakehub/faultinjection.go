package fakehub

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/hubkit/hubkit/pkg/iothub"
)

// The telemetry application properties by which the Azure IoT SDKs' end-to-end suites ask
// the real hub for a fault (docs/iothub-behavior.md §14.1). Sources: azure-iot-sdk-csharp
// e2e/test/helpers/templates/FaultInjection.cs (ComposeErrorInjectionProperties) and
// azure-iot-sdk-node e2etests/test/d2c_disconnect.js, throttle_disconnect.js.
const (
	PropFaultOperationType   = "AzIoTHub_FaultOperationType"
	PropFaultCloseReason     = "AzIoTHub_FaultOperationCloseReason"
	PropFaultDelayInSecs     = "AzIoTHub_FaultOperationDelayInSecs"
	PropFaultDurationInSecs  = "AzIoTHub_FaultOperationDurationInSecs"
	faultCloseReasonGraceful = "byebye" // the C# suite's FaultCloseReason_Bye ("Graceful dc")
	faultCloseReasonAbort    = "boom"   // FaultCloseReason_Boom ("Ungraceful dc")
)

// The fault types of the SDKs' suites (their FaultType_* constants), as the hub maps them
// to MQTT.
const (
	FaultKillTcp               = "KillTcp"
	FaultShutDownMqtt          = "ShutDownMqtt"
	FaultKillAmqpConnection    = "KillAmqpConnection"
	FaultKillAmqpSession       = "KillAmqpSession"
	FaultInvokeThrottling      = "InvokeThrottling"
	FaultInvokeMaxMessageQuota = "InvokeMaxMessageQuota"
	FaultInvokeAuthError       = "InvokeAuthError"
)

// faultKinds maps every fault type of the suites to what fakehub does with it on MQTT.
var faultKinds = map[string]string{
	FaultKillTcp:               "abort",
	FaultShutDownMqtt:          "close",
	FaultKillAmqpConnection:    "close", // the AMQP connection is the transport connection: closed like ShutDownMqtt
	FaultKillAmqpSession:       "close", // an MQTT connection has exactly one session
	"KillAmqpCBSLinkReq":       "n/a",
	"KillAmqpCBSLinkResp":      "n/a",
	"KillAmqpD2CLink":          "n/a",
	"KillAmqpC2DLink":          "n/a",
	"KillAmqpTwinLinkReq":      "n/a",
	"KillAmqpTwinLinkResp":     "n/a",
	"KillAmqpMethodReqLink":    "n/a",
	"KillAmqpMethodRespLink":   "n/a",
	"ShutDownAmqp":             "n/a",
	FaultInvokeThrottling:      "window",
	FaultInvokeMaxMessageQuota: "window",
	FaultInvokeAuthError:       "window",
}

var faultWindowCodes = map[string]iothub.ErrorCode{
	FaultInvokeThrottling:      iothub.CodeThrottlingException,
	FaultInvokeMaxMessageQuota: iothub.CodeIotHubQuotaExceeded,
	FaultInvokeAuthError:       iothub.CodeIotHubUnauthorized,
}

// faultSeconds reads a DelayInSecs or DurationInSecs value ("5", "5.0"); absent: def.
func faultSeconds(props iothub.Properties, key string, def time.Duration) (time.Duration, error) {
	v, ok := props.Get(key)
	if !ok || strings.TrimSpace(v) == "" {
		return def, nil
	}
	f, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
	if err != nil || f < 0 || f > 86400 {
		return 0, fmt.Errorf("%s=%q is not a number of seconds from 0 to 86400", key, v)
	}
	return time.Duration(f * float64(time.Second)), nil
}

// injectFault honours the fault-injection properties of a telemetry message. It reports
// whether the message asked for a fault that closes the connection: then no PUBACK is sent
// (the real hub "will terminate the connection prior to a PUBACK", the C# suite's comment,
// so SDKs send it with a short operation time-out), and after DelayInSecs (by the hub's
// clock) the connection is reset (KillTcp, or any type with CloseReason "boom") or closed
// cleanly (ShutDownMqtt, KillAmqpConnection, KillAmqpSession, or CloseReason "byebye"). An
// Invoke* type is acknowledged and opens a window: from DelayInSecs for DurationInSecs the
// device's telemetry is refused as the real limits refuse it (the connection closed with
// 429001, 403002 or 401003 recorded) and, for InvokeAuthError, its CONNECTs with CONNACK 5.
// Types that only exist on AMQP links are acknowledged and recorded as not applicable.
func (s *Server) injectFault(ss *session, props iothub.Properties) (closes, opened bool) {
	typ, ok := props.Get(PropFaultOperationType)
	if !ok {
		return false, false
	}
	reason, _ := props.Get(PropFaultCloseReason)
	record := func(code iothub.ErrorCode, warning bool, detail string) {
		rj := ss.rejection(ReasonFaultInjection, detail)
		rj.ErrorCode, rj.Warning = code, warning
		s.reject(rj)
	}
	delay, err := faultSeconds(props, PropFaultDelayInSecs, 0)
	if err == nil {
		var dur time.Duration
		dur, err = faultSeconds(props, PropFaultDurationInSecs, 5*time.Second) // the suites' DefaultDurationInSec
		if err == nil && faultKinds[typ] == "window" {
			now := s.opts.Now()
			w := faultWindow{kind: typ, code: faultWindowCodes[typ], from: now.Add(delay), until: now.Add(delay + dur)}
			s.faults.mu.Lock()
			s.faults.windows[ss.id] = w
			s.faults.mu.Unlock()
			record(w.code, true, fmt.Sprintf("%s=%s: from %s for %s the device's telemetry is refused with %s (close reason %q)",
				PropFaultOperationType, typ, w.from.UTC().Format(time.RFC3339), dur, w.code, reason))
			return false, true // the fault message itself is acknowledged
		}
	}
	if err != nil {
		record(0, true, "fault injection ignored: "+err.Error())
		return false, false
	}
	kind, known := faultKinds[typ]
	switch {
	case !known:
		record(0, true, fmt.Sprintf("%s=%q is not a fault type of the Azure IoT SDKs' suites; the message is ordinary telemetry", PropFaultOperationType, typ))
		return false, false
	case kind == "n/a":
		record(0, true, fmt.Sprintf("%s=%s kills an AMQP link, which MQTT does not have; the message is ordinary telemetry", PropFaultOperationType, typ))
		return false, false
	}
	abort := kind == "abort"
	switch strings.ToLower(strings.TrimSpace(reason)) {
	case faultCloseReasonAbort:
		abort = true
	case faultCloseReasonGraceful:
		abort = false
	}
	go func() {
		defer s.recoverHook("fault injection", ss.cl, nil)
		if !s.limits.waitUntil(ss.done, s.opts.Now().Add(delay)) {
			return
		}
		s.dropSession(ss, ReasonFaultInjection, DropOptions{Abort: abort,
			Reason: fmt.Sprintf("%s=%s asked for by the device (close reason %q, delay %s)", PropFaultOperationType, typ, reason, delay)})
	}()
	return true, false
}

// faultWindowFor returns the Invoke* window in force for id now, if any.
func (s *Server) faultWindowFor(id iothub.Identity) (faultWindow, bool) {
	s.faults.mu.Lock()
	w, ok := s.faults.windows[id]
	s.faults.mu.Unlock()
	return w, ok && w.active(s.opts.Now())
}
