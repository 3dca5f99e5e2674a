package conformance_test

import (
	"context"
	"encoding/json"
	"errors"
	"sync"
	"time"

	"github.com/hubkit/hubkit/pkg/conformance"
	"github.com/hubkit/hubkit/pkg/fakehub/serviceclient"
)

// serviceCaps implements the service-side capabilities over IoT Hub's REST
// API (which fakehub's service API mirrors), through serviceclient.
type serviceCaps struct {
	svc *serviceclient.Client
}

func (s serviceCaps) InvokeMethod(ctx context.Context, deviceID, name string, payload []byte, timeout time.Duration) (int, []byte, error) {
	res, err := s.svc.InvokeMethod(ctx, deviceID, serviceclient.MethodCall{Name: name, Payload: json.RawMessage(payload), ResponseTimeout: timeout})
	if err != nil {
		return 0, nil, serviceError(err)
	}
	return res.Status, res.Payload, nil
}

func (s serviceCaps) UpdateDesired(ctx context.Context, deviceID string, patch []byte) error {
	_, err := s.svc.UpdateTwin(ctx, deviceID, serviceclient.TwinPatch{Desired: patch})
	return serviceError(err)
}

// c2dCaps adds cloud-to-device sends, which only fakehub's service API
// offers over HTTPS (IoT Hub takes them over AMQP).
type c2dCaps struct {
	svc *serviceclient.Client
}

func (s c2dCaps) SendC2D(ctx context.Context, deviceID string, m conformance.C2DMessage) error {
	_, err := s.svc.SendC2D(ctx, deviceID, serviceclient.Message{MessageID: m.MessageID, Body: m.Payload, Properties: m.Properties})
	return serviceError(err)
}

// hubkitReaders reads captured telemetry and refusals through fakehub's
// service API (GET /hubkit/telemetry, /hubkit/rejections).
type hubkitReaders struct {
	svc  *serviceclient.Client
	mu   sync.Mutex
	read map[string]int // messages already returned, per device
}

func (h *hubkitReaders) NextTelemetry(ctx context.Context, deviceID string) (conformance.Telemetry, error) {
	h.mu.Lock()
	skip := h.read[deviceID]
	h.mu.Unlock()
	var got *serviceclient.Event
	n := 0
	err := h.svc.Events(ctx, serviceclient.EventQuery{DeviceID: deviceID, Follow: true, Count: skip + 1}, func(ev serviceclient.Event) error {
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
		return conformance.Telemetry{}, err
	}
	h.mu.Lock()
	h.read[deviceID] = skip + 1
	h.mu.Unlock()
	return conformance.Telemetry{DeviceID: got.DeviceID, ModuleID: got.ModuleID, Payload: got.Body,
		SystemProperties: got.SystemProperties, Properties: got.Properties, Annotations: got.Annotations}, nil
}

func (h *hubkitReaders) Rejection(ctx context.Context, clientID string) (conformance.Rejection, error) {
	for {
		rs, err := h.svc.Rejections(ctx)
		if err != nil {
			return conformance.Rejection{}, err
		}
		for _, r := range rs {
			if r.ClientID == clientID {
				return conformance.Rejection{Reason: r.Reason, Detail: r.Detail}, nil
			}
		}
		select {
		case <-ctx.Done():
			return conformance.Rejection{}, ctx.Err()
		case <-time.After(50 * time.Millisecond): // polling the hub's record
		}
	}
}

// serviceError maps a serviceclient error answer to a conformance.ServiceError.
func serviceError(err error) error {
	var se *serviceclient.Error
	if errors.As(err, &se) {
		return &conformance.ServiceError{StatusCode: se.StatusCode, Code: se.Code, Message: se.Message}
	}
	return err
}
