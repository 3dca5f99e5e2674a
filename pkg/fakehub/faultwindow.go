package fakehub

import (
	"fmt"
	"time"

	"github.com/hubkit/hubkit/pkg/iothub"
)

// OpenFaultWindow opens, from the service side, the window one of the SDKs' Invoke* fault
// types opens when a device asks for it in a telemetry message (faultinjection.go,
// docs/iothub-behavior.md §14.1): from delay for duration by the hub's clock, id's
// telemetry is refused as the real limit refuses it (FaultInvokeThrottling: 429001,
// FaultInvokeMaxMessageQuota: 403002, FaultInvokeAuthError: 401003 and its CONNECTs
// refused with CONNACK 5), the connection closed each time. duration <= 0 closes an open
// window. Other fault types close a connection: use Drop for them.
func (s *Server) OpenFaultWindow(id iothub.Identity, faultType string, delay, duration time.Duration) error {
	if faultKinds[faultType] != "window" {
		return iothub.Errorf(iothub.CodeArgumentInvalid, "fault type %q opens no window: want %s, %s or %s (Drop closes a connection)",
			faultType, FaultInvokeThrottling, FaultInvokeMaxMessageQuota, FaultInvokeAuthError)
	}
	if err := s.opts.Registry.Exists(id); err != nil {
		return err
	}
	now := s.opts.Now()
	s.faults.mu.Lock()
	if duration <= 0 {
		delete(s.faults.windows, id)
		s.faults.mu.Unlock()
		return nil
	}
	w := faultWindow{kind: faultType, code: faultWindowCodes[faultType], from: now.Add(delay), until: now.Add(delay + duration)}
	s.faults.windows[id] = w
	s.faults.mu.Unlock()
	s.reject(iothub.Rejection{DeviceID: id.DeviceID, ModuleID: id.ModuleID, Reason: ReasonFaultInjection, ErrorCode: w.code, Warning: true,
		Detail: fmt.Sprintf("%s opened by the service: from %s for %s the identity's telemetry is refused with %s",
			faultType, w.from.UTC().Format(time.RFC3339), duration, w.code)})
	return nil
}
