package iothub

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// Error is an IoT Hub service error: an operation the hub refused (a registry, twin, direct
// method or cloud-to-device call), identified by its six-digit Code. The hub side returns
// it, the service API answers with it, and the Go service client decodes it back, so
//
//	errors.Is(err, iothub.ErrDeviceNotOnline)
//
// holds for any 404103 error on every side, whatever its message: Is compares codes only.
type Error struct {
	Code    ErrorCode // e.g. 404103; Code.HTTPStatus() is the HTTP status, Code.Name() its name
	Message string    // one human sentence naming what was wrong and what was expected
	// TrackingID is the hub's tracking ID of a service answer (for matching hub logs); empty
	// for errors that did not cross the network.
	TrackingID string
	// Reason and Hints are hubkit's diagnosis of a refused token (401): the pkg/sas reason
	// code and what most likely went wrong. Empty otherwise.
	Reason string
	Hints  []string
	// Err is the cause, if any (what Unwrap returns).
	Err error
	// RetryAfter, when positive, is how long the caller should wait before trying again (a
	// throttled request, an exhausted quota); WriteError sends it as the Retry-After header
	// in whole seconds, rounded up, and ReadError reads it back.
	RetryAfter time.Duration
}

// Errorf returns an *Error with code and a formatted message.
func Errorf(code ErrorCode, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...)}
}

// Error returns "404001 DeviceNotFound: <message>" (the code first, as the hub's logs write
// it), without the message when there is none.
func (e *Error) Error() string {
	if e.Message == "" {
		return e.Code.String()
	}
	return e.Code.String() + ": " + e.Message
}

// Status returns the HTTP status of the error (Code.HTTPStatus()).
func (e *Error) Status() int { return e.Code.HTTPStatus() }

// Unwrap returns the cause, if any.
func (e *Error) Unwrap() error { return e.Err }

// Is reports whether target is an *Error with the same Code, so that the sentinels below
// match every error of their code.
func (e *Error) Is(target error) bool {
	t, ok := target.(*Error)
	return ok && t.Code == e.Code
}

// Sentinels for the outcomes callers branch on, one per code; match them with errors.Is.
// They carry no message: the errors that match them do.
var (
	ErrInvalidProtocolVersion = &Error{Code: CodeInvalidProtocolVersion} // 400001: missing or unsupported api-version
	ErrInvalidArgument        = &Error{Code: CodeArgumentInvalid}        // 400004: a bad ID, key, TTL, method name, twin document...
	ErrFormat                 = &Error{Code: CodeIotHubFormatError}      // 400006: a body that is not the JSON expected
	ErrUnauthorized           = &Error{Code: CodeIotHubUnauthorizedAccess}
	ErrQuotaExceeded          = &Error{Code: CodeIotHubQuotaExceeded}             // 403002: the daily message quota is used up
	ErrQueueFull              = &Error{Code: CodeDeviceMaximumQueueDepthExceeded} // 403004: 50 C2D messages already queued
	ErrNotFound               = &Error{Code: CodeGenericNotFound}                 // 404000: no such route, policy or C2D message
	ErrDeviceNotFound         = &Error{Code: CodeDeviceNotFound}                  // 404001: no such device in the registry
	ErrModuleNotFound         = &Error{Code: CodeModuleNotFound}                  // 404010: no such module in the registry
	ErrDeviceNotOnline        = &Error{Code: CodeDeviceNotOnline}                 // 404103: not connected, or not subscribed to methods
	ErrDeviceDisconnected     = &Error{Code: CodeDeviceConnectionClosedRemotely}  // 404104: the device left during the call
	ErrMethodNotAllowed       = &Error{Code: CodeGenericMethodNotAllowed}         // 405000: a known path with another HTTP method
	ErrDeviceAlreadyExists    = &Error{Code: CodeDeviceAlreadyExists}             // 409001
	ErrModuleAlreadyExists    = &Error{Code: CodeModuleAlreadyExistsOnDevice}     // 409301
	ErrPreconditionFailed     = &Error{Code: CodePreconditionFailed}              // 412001: If-Match does not match the etag
	ErrMessageTooLarge        = &Error{Code: CodeMessageTooLarge}                 // 413001: a C2D message over 64 KB, a method payload over 128 KB
	ErrThrottled              = &Error{Code: CodeThrottlingException}             // 429001
	ErrThrottleBacklog        = &Error{Code: CodeThrottleBacklogLimitExceeded}    // 429002: the throttle's backlog is full
	ErrServerError            = &Error{Code: CodeServerError}                     // 500001
	ErrServiceUnavailable     = &Error{Code: CodeServiceUnavailable}              // 503001: the hub is shutting down
	ErrGatewayTimeout         = &Error{Code: CodeGatewayTimeout}                  // 504101: no answer to a direct method in time
)

// Header names of a service error answer: IoT Hub's iothub-errorcode, and hubkit's
// diagnosis of a refused token (one X-Hubkit-Hint per hint, most likely first).
const (
	HeaderErrorCode = "iothub-errorcode"
	HeaderReason    = "X-Hubkit-Reason"
	HeaderHint      = "X-Hubkit-Hint"
)

// ErrorBody is the JSON body of a service error answer, as IoT Hub's REST API writes it. Its
// Message takes one of two forms, by the kind of operation (ErrorShape):
//
//	{"Message":"ErrorCode:DeviceNotFound;device \"dev1\" is not in the registry","ExceptionMessage":"Tracking ID:…-G:0-TimeStamp:10/18/2022 20:50:39"}
//	{"Message":"{\"errorCode\":404103,\"trackingId\":\"…\",\"message\":\"…\",\"info\":{},\"timestampUtc\":\"2022-09-12T21:59:47.99936Z\"}","ExceptionMessage":""}
type ErrorBody struct {
	Message          string `json:"Message"`
	ExceptionMessage string `json:"ExceptionMessage"`
}

// MethodErrorMessage is the JSON that today's direct-method endpoint writes, escaped, into
// ErrorBody.Message (testdata/wire/error_method_devicenotonline.json).
type MethodErrorMessage struct {
	ErrorCode    ErrorCode       `json:"errorCode"`
	TrackingID   string          `json:"trackingId"`
	Message      string          `json:"message"`
	Info         json.RawMessage `json:"info"`
	TimestampUTC time.Time       `json:"timestampUtc"`
}

// ErrorShape says which form of ErrorBody.Message an error code is answered with.
type ErrorShape int

const (
	// ShapeNamed is "ErrorCode:{Name};{message}", with the tracking ID in ExceptionMessage:
	// the registry, twin and C2D answers (the .NET service SDK's tests keep such a body from
	// a real hub, PreconditionFailed; the Node SDK's Http.parseErrorBody reads only this form).
	ShapeNamed ErrorShape = iota
	// ShapeJSON is a MethodErrorMessage escaped into Message, with ExceptionMessage empty: the
	// direct-method answers (404103, 404104, 504101), as real hubs have written them since 2017
	// (Azure/azure-iot-sdk-csharp#122, Azure/iotedge#98, Azure/azure-iot-cli-extension#54, and
	// the "real-world message" of the .NET service SDK's ExceptionHandlingHelperTests, 2022).
	ShapeJSON
)

// Shape returns the form IoT Hub answers code in (docs/iothub-behavior.md §13.3).
func (c ErrorCode) Shape() ErrorShape {
	switch c {
	case CodeDeviceNotOnline, CodeDeviceConnectionClosedRemotely, CodeGatewayTimeout:
		return ShapeJSON
	}
	return ShapeNamed
}

// WriteError answers an HTTP request with e: its status, the iothub-errorcode header (the
// code's name), the hubkit headers of a refused token, and the ErrorBody in the code's Shape,
// stamped with trackingID and now. This is the one writer of service error answers.
func WriteError(w http.ResponseWriter, e *Error, trackingID string, now time.Time) {
	h := w.Header()
	h.Set(HeaderErrorCode, e.Code.Name())
	if e.Reason != "" {
		h.Set(HeaderReason, e.Reason)
	}
	msg := oneLine(e.Message)
	for _, hint := range e.Hints {
		h.Add(HeaderHint, oneLine(hint))
		msg += "; hint: " + oneLine(hint)
	}
	var body ErrorBody
	if e.Code.Shape() == ShapeJSON {
		inner, _ := json.Marshal(MethodErrorMessage{ErrorCode: e.Code, TrackingID: trackingID, Message: msg,
			Info: json.RawMessage("{}"), TimestampUTC: now.UTC()})
		body.Message = string(inner)
	} else {
		name := e.Code.Name()
		if name == "" {
			name = fmt.Sprint(int(e.Code))
		}
		body = ErrorBody{
			Message:          "ErrorCode:" + name + ";" + msg,
			ExceptionMessage: "Tracking ID:" + trackingID + "-G:0-TimeStamp:" + now.UTC().Format("01/02/2006 15:04:05"),
		}
	}
	if e.RetryAfter > 0 {
		h.Set("Retry-After", strconv.FormatInt(int64((e.RetryAfter+time.Second-1)/time.Second), 10))
	}
	b, _ := json.Marshal(body)
	h.Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(e.Code.HTTPStatus())
	_, _ = w.Write(b)
}

// ReadError decodes a service error answer (status, headers, body) into an *Error. It reads
// the "ErrorCode:Name;message" body IoT Hub's registry answers with, the
// {"errorCode":…,"trackingId":…,"message":…} JSON of newer answers (at the top level, or
// escaped inside "Message"), and hubkit's headers. An answer without a recognisable code gets
// the generic code of its status (404 → 404000).
func ReadError(status int, header http.Header, body []byte) *Error {
	e := &Error{Reason: header.Get(HeaderReason), Hints: header.Values(HeaderHint)}
	if n, err := strconv.Atoi(header.Get("Retry-After")); err == nil && n > 0 {
		e.RetryAfter = time.Duration(n) * time.Second
	}
	if c, ok := CodeByName(header.Get(HeaderErrorCode)); ok {
		e.Code = c
	}
	var top map[string]json.RawMessage
	if json.Unmarshal(body, &top) != nil {
		e.Message = oneLine(string(body))
		return e.withDefaultCode(status)
	}
	if _, ok := top["errorCode"]; ok {
		e.decodeInner(body)
		return e.withDefaultCode(status)
	}
	var msg string
	if raw, ok := top["Message"]; ok && json.Unmarshal(raw, &msg) != nil {
		e.decodeInner(raw) // {"Message":{"errorCode":...}}
		return e.withDefaultCode(status)
	}
	if t := strings.TrimSpace(msg); strings.HasPrefix(t, "{") && e.decodeInner([]byte(t)) {
		return e.withDefaultCode(status) // {"Message":"{\"errorCode\":404001,...}"}
	}
	if rest, ok := strings.CutPrefix(msg, "ErrorCode:"); ok {
		name, text, _ := strings.Cut(rest, ";")
		if c, ok := CodeByName(name); ok && e.Code == 0 {
			e.Code = c
		}
		msg = text
		if len(e.Hints) > 0 { // the hints were appended for clients that read only the body
			msg, _, _ = strings.Cut(msg, "; hint: ")
		}
	}
	e.Message = msg
	var exc string
	if raw, ok := top["ExceptionMessage"]; ok && json.Unmarshal(raw, &exc) == nil {
		if id, ok := strings.CutPrefix(exc, "Tracking ID:"); ok {
			e.TrackingID, _, _ = strings.Cut(id, "-")
		}
	}
	return e.withDefaultCode(status)
}

// decodeInner reads the {"errorCode":…,"trackingId":…,"message":…} shape into e and reports
// whether it carried a code.
func (e *Error) decodeInner(b []byte) bool {
	var in struct {
		ErrorCode  json.RawMessage `json:"errorCode"` // a number, or a number in a string
		TrackingID string          `json:"trackingId"`
		Message    string          `json:"message"`
	}
	if json.Unmarshal(b, &in) != nil {
		return false
	}
	n, err := strconv.Atoi(strings.Trim(string(in.ErrorCode), `"`))
	if err != nil || n == 0 {
		return false
	}
	e.Code, e.TrackingID, e.Message = ErrorCode(n), in.TrackingID, in.Message
	return true
}

func (e *Error) withDefaultCode(status int) *Error {
	if e.Code == 0 {
		e.Code = GenericCode(status)
	}
	return e
}

func oneLine(s string) string { return strings.Join(strings.Fields(s), " ") }
