package conformance

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"github.com/hubkit/hubkit/pkg/iothub"
	"time"
)

const docMethods = "learn.microsoft.com/azure/iot-hub/iot-hub-devguide-direct-methods"

var methodCases = []Case{
	{
		ID:          "method/invoke/roundtrip",
		Requirement: "A direct method reaches the subscribed device on $iothub/methods/POST/{name}/?$rid=..., and the device's answer on $iothub/methods/res/{status}/?$rid=... is returned to the caller with its status and payload.",
		Section:     "docs/iothub-behavior.md §4.4, §10.14; " + docMethods,
		Certainty:   "C",
		Needs:       []string{NeedMethodInvoker, NeedMethods},
		run: func(e *env) {
			cl := e.newClient(e.dev, nil)
			received := make(chan []byte, 1)
			cl.OnMethod("echo", func(_ context.Context, payload []byte) (int, any, error) {
				received <- payload
				return 201, json.RawMessage(`{"echo":true}`), nil
			})
			e.connectClient(cl, "reference client subscribed to methods")
			status, resp, err := e.target.(MethodInvoker).InvokeMethod(e.ctx, e.dev.DeviceID, "echo", []byte(`{"n":1}`), 10*time.Second)
			if err != nil {
				e.Fatalf("invoking echo: %v, want the device's answer", err)
			}
			if status != 201 {
				e.Errorf("method status = %d, want 201 (the device's)", status)
			}
			if !jsonEqual(resp, []byte(`{"echo":true}`)) {
				e.Errorf("method response = %s, want {\"echo\":true}", resp)
			}
			select {
			case p := <-received:
				if !jsonEqual(p, []byte(`{"n":1}`)) {
					e.Errorf("the device got payload %s, want {\"n\":1}", p)
				}
			default:
				e.Errorf("the device's handler was not called")
			}
		},
	},
	{
		ID:          "method/device-offline-404",
		Requirement: "Invoking a method on a device that is not connected answers 404 (404103 DeviceNotOnline).",
		Section:     "docs/iothub-behavior.md §4.4, §10.14; " + docMethods,
		Certainty:   "C",
		Needs:       []string{NeedMethodInvoker, NeedMethods},
		run: func(e *env) {
			_, _, err := e.target.(MethodInvoker).InvokeMethod(e.ctx, e.dev.DeviceID, "reboot", nil, 5*time.Second)
			e.expectServiceStatus(err, 404, "invoking a method on an offline device")
		},
	},
	{
		ID:          "method/timeout-504",
		Requirement: "A method the device does not answer within the response timeout (5 s) answers 504 (504101 GatewayTimeout).",
		Section:     "docs/iothub-behavior.md §4.4, §10.14; " + docMethods,
		Certainty:   "C",
		Needs:       []string{NeedMethodInvoker, NeedMethods},
		Timeout:     30 * time.Second,
		run: func(e *env) {
			cl := e.newClient(e.dev, nil)
			cl.OnMethod("slow", func(ctx context.Context, _ []byte) (int, any, error) {
				<-ctx.Done() // never answers while the case runs
				return 200, nil, nil
			})
			e.connectClient(cl, "reference client subscribed to methods")
			_, _, err := e.target.(MethodInvoker).InvokeMethod(e.ctx, e.dev.DeviceID, "slow", nil, 5*time.Second)
			e.expectServiceStatus(err, 504, "invoking a method the device never answers (timeout 5 s)")
		},
	},
}

func (e *env) expectServiceStatus(err error, want int, what string) {
	e.t.Helper()
	var se *iothub.Error
	if !errors.As(err, &se) || se.Status() != want {
		e.Errorf("%s: %v, want a %d answer", what, errOrNil(err), want)
	}
}

func jsonEqual(a, b []byte) bool {
	var x, y any
	if json.Unmarshal(a, &x) != nil || json.Unmarshal(b, &y) != nil {
		return bytes.Equal(a, b)
	}
	xa, _ := json.Marshal(x)
	ya, _ := json.Marshal(y)
	return bytes.Equal(xa, ya)
}
