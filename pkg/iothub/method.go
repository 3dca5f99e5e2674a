package iothub

import (
	"bytes"
	"encoding/json"
	"fmt"
	"time"
)

// Direct-method timeouts of the service API (docs/iothub-behavior.md §4.4).
const (
	DefaultMethodTimeout = 30 * time.Second  // responseTimeoutInSeconds when the caller gives none
	MinMethodTimeout     = 5 * time.Second   // the smallest responseTimeoutInSeconds accepted
	MaxMethodTimeout     = 300 * time.Second // the largest response or connect timeout accepted
)

// MethodRequest is the body of a direct-method invocation (IoT Hub's CloudToDeviceMethod,
// POST /twins/{id}/methods). Payload is JSON; nil is sent as null.
type MethodRequest struct {
	MethodName               string          `json:"methodName"`
	Payload                  json.RawMessage `json:"payload"`
	ResponseTimeoutInSeconds *int            `json:"responseTimeoutInSeconds,omitempty"`
	ConnectTimeoutInSeconds  *int            `json:"connectTimeoutInSeconds,omitempty"`
}

// MarshalJSON sends a nil payload as null.
func (r MethodRequest) MarshalJSON() ([]byte, error) {
	type plain MethodRequest
	p := plain(r)
	p.Payload = orNull(p.Payload)
	return json.Marshal(p)
}

// Timeouts checks the request as the hub does and returns its response timeout (default
// 30 s, 5-300 s) and connect timeout (0-300 s; 0: the device must be online now). Errors
// wrap ErrInvalidArgument or ErrMessageTooLarge.
func (r MethodRequest) Timeouts() (response, connect time.Duration, err error) {
	if r.MethodName == "" {
		return 0, 0, Errorf(CodeArgumentInvalid, "methodName is required")
	}
	if n := len(r.Payload); n > MaxMethodPayloadSize {
		return 0, 0, Errorf(CodeMessageTooLarge, "payload is %d bytes, the limit is %d", n, MaxMethodPayloadSize)
	}
	response = DefaultMethodTimeout
	if p := r.ResponseTimeoutInSeconds; p != nil {
		response = time.Duration(*p) * time.Second
		if response < MinMethodTimeout || response > MaxMethodTimeout {
			return 0, 0, Errorf(CodeArgumentInvalid, "responseTimeoutInSeconds must be from 5 to 300, got %d", *p)
		}
	}
	if p := r.ConnectTimeoutInSeconds; p != nil {
		connect = time.Duration(*p) * time.Second
		if connect < 0 || connect > MaxMethodTimeout {
			return 0, 0, Errorf(CodeArgumentInvalid, "connectTimeoutInSeconds must be from 0 to 300, got %d", *p)
		}
	}
	return response, connect, nil
}

// MethodResult is a device's answer to a direct method (IoT Hub's CloudToDeviceMethodResult):
// the status it published on $iothub/methods/res/{status}/?$rid= and its JSON payload ("null"
// when the device sent an empty body).
type MethodResult struct {
	Status  int             `json:"status"`
	Payload json.RawMessage `json:"payload"`
}

// MarshalJSON sends a nil payload as null.
func (r MethodResult) MarshalJSON() ([]byte, error) {
	type plain MethodResult
	p := plain(r)
	p.Payload = orNull(p.Payload)
	return json.Marshal(p)
}

// String returns "200 {...}", for logs and CLIs.
func (r MethodResult) String() string { return fmt.Sprintf("%d %s", r.Status, orNull(r.Payload)) }

func orNull(m json.RawMessage) json.RawMessage {
	if len(bytes.TrimSpace(m)) == 0 {
		return json.RawMessage("null")
	}
	return m
}

// NewMethodRequest returns the request for a direct method: payload is JSON (nil: null);
// a zero response timeout leaves the hub's default (30 s), and a zero connect timeout means
// the device must be online now.
func NewMethodRequest(name string, payload json.RawMessage, response, connect time.Duration) MethodRequest {
	r := MethodRequest{MethodName: name, Payload: payload}
	if response > 0 {
		s := int(response / time.Second)
		r.ResponseTimeoutInSeconds = &s
	}
	c := int(connect / time.Second)
	r.ConnectTimeoutInSeconds = &c
	return r
}
