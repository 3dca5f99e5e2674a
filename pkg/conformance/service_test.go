package conformance_test

import (
	"context"
	"errors"
	"github.com/hubkit/hubkit/pkg/iothub"
	"sync"
	"time"

	"github.com/hubkit/hubkit/pkg/serviceclient"
)

// serviceCaps implements the service-side capabilities over IoT Hub's REST
// API (which fakehub's service API mirrors), through serviceclient.
type serviceCaps struct {
	svc *serviceclient.Client
}

func (s serviceCaps) InvokeMethod(ctx context.Context, deviceID, name string, payload []byte, timeout time.Duration) (int, []byte, error) {
	res, err := s.svc.InvokeMethod(ctx, deviceID, iothub.NewMethodRequest(name, payload, timeout, 0))
	return res.Status, res.Payload, err
}

func (s serviceCaps) UpdateDesired(ctx context.Context, deviceID string, patch []byte) error {
	_, err := s.svc.UpdateTwin(ctx, deviceID, iothub.TwinUpdate{Desired: patch})
	return err
}

// c2dCaps adds cloud-to-device sends, which only fakehub's service API
// offers over HTTPS (IoT Hub takes them over AMQP).
type c2dCaps struct {
	svc *serviceclient.Client
}

func (s c2dCaps) SendC2D(ctx context.Context, deviceID string, m iothub.C2DMessage) error {
	_, err := s.svc.SendC2D(ctx, deviceID, m)
	return err
}

// hubkitReaders reads captured telemetry and refusals through fakehub's
// service API (GET /hubkit/telemetry, /hubkit/rejections).
type hubkitReaders struct {
	svc  *serviceclient.Client
	mu   sync.Mutex
	read map[string]int // messages already returned, per device
}

func (h *hubkitReaders) NextTelemetry(ctx context.Context, deviceID string) (iothub.Event, error) {
	h.mu.Lock()
	skip := h.read[deviceID]
	h.mu.Unlock()
	var got *iothub.Event
	n := 0
	err := h.svc.Events(ctx, serviceclient.EventQuery{DeviceID: deviceID, Follow: true, Count: skip + 1,
		Since: time.Unix(0, 0)}, func(ev iothub.Event) error {
		if n++; n > skip {
			got = &ev
			return serviceclient.ErrStop
		}
		return nil
	})
	if got == nil {
		if err == nil {
			err = errors.New("telemetry stream ended")
		}
		return iothub.Event{}, err
	}
	h.mu.Lock()
	h.read[deviceID] = skip + 1
	h.mu.Unlock()
	return *got, nil
}

func (h *hubkitReaders) Rejection(ctx context.Context, clientID string) (iothub.Rejection, error) {
	for {
		rs, err := h.svc.Rejections(ctx)
		if err != nil {
			return iothub.Rejection{}, err
		}
		for _, r := range rs {
			if r.ClientID == clientID {
				return r, nil
			}
		}
		select {
		case <-ctx.Done():
			return iothub.Rejection{}, ctx.Err()
		case <-time.After(50 * time.Millisecond): // polling the hub's record
		}
	}
}
