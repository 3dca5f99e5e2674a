package fakehub

import (
	"context"
	"errors"
	"time"

	"github.com/hubkit/hubkit/pkg/fakehub/internal/methods"
	"github.com/hubkit/hubkit/pkg/iothub"
)

// InvokeMethod calls direct method name on a device with a JSON payload
// (empty: none) and waits for its answer: the request is published on
// $iothub/methods/POST/{name}/?$rid={rid}, the device answers on
// $iothub/methods/res/{status}/?$rid={rid}.
//
// timeout is the response timeout: 0 means 30 s; unlike the service API
// (5-300 s), any positive value up to 300 s is accepted so that tests can
// provoke a 504 quickly. Errors are *iothub.Error: iothub.ErrDeviceNotOnline
// (404: not connected, or not subscribed to $iothub/methods/POST/#),
// iothub.ErrDeviceDisconnected (it left before answering),
// iothub.ErrGatewayTimeout (504: no answer in time),
// iothub.ErrInvalidArgument; or ctx's error.
func (s *Server) InvokeMethod(ctx context.Context, deviceID, name string, payload []byte, timeout time.Duration) (iothub.MethodResult, error) {
	return s.InvokeMethodOn(ctx, iothub.Identity{DeviceID: deviceID}, name, payload, timeout)
}

// InvokeMethodOn is InvokeMethod for any identity, a device or a module.
func (s *Server) InvokeMethodOn(ctx context.Context, id iothub.Identity, name string, payload []byte, timeout time.Duration) (iothub.MethodResult, error) {
	if err := s.opts.Registry.Exists(id); err != nil {
		return iothub.MethodResult{}, err
	}
	if err := s.serviceGate(ctx, opMethods, chunks(len(payload), MethodMeterSize), "a direct method", len(payload)); err != nil {
		return iothub.MethodResult{}, err
	}
	start := s.metrics.clock()
	res, err := s.cloud.methods.Invoke(ctx, id, name, payload, timeout)
	s.metrics.methodDone(start, err)
	// The quota meters the response as more messages: the device's payload, or one message
	// for the hub's answer that the device is not online (docs/iothub-behavior.md §14.9).
	switch {
	case err == nil:
		s.limits.chargeAfter(len(res.Payload))
	case errors.Is(err, iothub.ErrDeviceNotOnline):
		s.limits.chargeAfter(0)
	}
	return res, err
}

// errNotSubscribed is the cause of a 404103 for a connected identity
// without a subscription to $iothub/methods/POST/#.
var errNotSubscribed = errors.New("fakehub: device not subscribed to " + iothub.MethodsFilter)

// sendMethod publishes a method request (QoS 0) to a connected identity
// subscribed to $iothub/methods/POST/#, else fails (-> 404103).
func (c *cloud) sendMethod(ctx context.Context, req methods.Request) error {
	ss := c.sessionFor(req.Identity)
	if ss == nil {
		return ErrOffline
	}
	// Listed (Sessions) but its CONNACK not yet out: the moment is short, and a caller
	// that saw the session listed expects the device online.
	ss.waitEstablished(ctx, time.Second)
	if _, ok := ss.subscribed(iothub.FilterMethods); !ok {
		return errNotSubscribed
	}
	if _, err := c.s.deliver(req.Identity, iothub.MethodRequestTopic(req.Name, req.RID), req.Payload, 0); err != nil {
		return err
	}
	c.s.log.Info("method request sent", append(idAttrs(req.Identity), "method", req.Name, "rid", req.RID, "bytes", len(req.Payload))...)
	return nil
}

// waitMethodsReady waits up to d (connectTimeoutInSeconds) for id to be
// connected and subscribed to direct methods; Invoke then decides.
func (c *cloud) waitMethodsReady(ctx context.Context, id iothub.Identity, d time.Duration) {
	deadline := time.NewTimer(d)
	defer deadline.Stop()
	tick := time.NewTicker(10 * time.Millisecond) // sessions have no change feed: poll
	defer tick.Stop()
	for {
		if ss := c.sessionFor(id); ss != nil {
			if _, ok := ss.subscribed(iothub.FilterMethods); ok {
				return
			}
		}
		select {
		case <-tick.C:
		case <-deadline.C:
			return
		case <-ctx.Done():
			return
		}
	}
}

// methodResponse hands a device's $iothub/methods/res/{status}/?$rid= to the
// waiting invocation.
func (c *cloud) methodResponse(ss *session, rid string, status int, payload []byte) {
	if !c.methods.Respond(ss.id, rid, status, payload) {
		c.s.log.Info("method response matches no pending call (late, or unknown $rid)", append(idAttrs(ss.id), "rid", rid, "status", status)...)
		return
	}
	c.s.log.Info("method response", append(idAttrs(ss.id), "rid", rid, "status", status, "bytes", len(payload))...)
}
