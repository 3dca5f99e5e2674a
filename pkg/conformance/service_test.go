package conformance_test

import (
	"context"
	"encoding/json"
	"errors"
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

// serviceError maps a serviceclient error answer to a conformance.ServiceError.
func serviceError(err error) error {
	var se *serviceclient.Error
	if errors.As(err, &se) {
		return &conformance.ServiceError{StatusCode: se.StatusCode, Code: se.Code, Message: se.Message}
	}
	return err
}
