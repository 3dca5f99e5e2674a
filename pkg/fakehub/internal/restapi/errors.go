package restapi

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
)

// Error is an IoT Hub service error: an HTTP status and IoT Hub's error code
// name (sent as "ErrorCode:<Code>;..." in the body and in the
// iothub-errorcode header). The sentinels below are *Error values; backends
// wrap them with context (fmt.Errorf("%w: device %q", ErrDeviceNotFound, id))
// and the handler answers with their status and code and the whole error
// text as the message.
type Error struct {
	Status int    // HTTP status
	Code   string // IoT Hub error code name, e.g. "DeviceNotFound"
	Number int    // IoT Hub's numeric code, e.g. 404001 (0 for hubkit-only codes)
	Text   string // default message
}

func (e *Error) Error() string { return e.Text }

// Sentinel errors, with IoT Hub's status codes and error code names
// (learn.microsoft.com/rest/api/iothub/common-error-codes and the
// IotHubServiceErrorCode enum of the .NET service SDK).
var (
	ErrInvalidProtocolVersion = &Error{http.StatusBadRequest, "InvalidProtocolVersion", 400001, "missing or invalid api-version query parameter"}
	ErrInvalid                = &Error{http.StatusBadRequest, "ArgumentInvalid", 400004, "invalid argument"}
	ErrFormat                 = &Error{http.StatusBadRequest, "IotHubFormatError", 400006, "malformed JSON body"}
	ErrUnauthorized           = &Error{http.StatusUnauthorized, "IotHubUnauthorizedAccess", 401002, "Unauthorized"}
	ErrQueueFull              = &Error{http.StatusForbidden, "DeviceMaximumQueueDepthExceeded", 403004, "the device's cloud-to-device queue is full"}
	ErrDeviceNotFound         = &Error{http.StatusNotFound, "DeviceNotFound", 404001, "device not found"}
	ErrModuleNotFound         = &Error{http.StatusNotFound, "ModuleNotFound", 404010, "module not found"}
	ErrDeviceNotOnline        = &Error{http.StatusNotFound, "DeviceNotOnline", 404103, "device is not online"}
	ErrMessageNotFound        = &Error{http.StatusNotFound, "MessageNotFound", 0, "message not found"}
	ErrRouteNotFound          = &Error{http.StatusNotFound, "NotFound", 0, "no such route"}
	ErrMethodNotAllowed       = &Error{http.StatusMethodNotAllowed, "MethodNotAllowed", 0, "method not allowed on this route"}
	ErrDeviceAlreadyExists    = &Error{http.StatusConflict, "DeviceAlreadyExists", 409001, "device already exists"}
	ErrModuleAlreadyExists    = &Error{http.StatusConflict, "ModuleAlreadyExistsOnDevice", 409301, "module already exists on device"}
	ErrPreconditionFailed     = &Error{http.StatusPreconditionFailed, "PreconditionFailed", 412001, "etag does not match (If-Match)"}
	ErrMessageTooLarge        = &Error{http.StatusRequestEntityTooLarge, "MessageTooLarge", 413001, "message too large"}
	ErrGatewayTimeout         = &Error{http.StatusGatewayTimeout, "GatewayTimeout", 504101, "timed out waiting for the device to respond"}
	ErrInternal               = &Error{http.StatusInternalServerError, "ServerError", 500001, "internal error"}
)

// errorBody is IoT Hub's error body:
//
//	{"Message":"ErrorCode:DeviceNotFound;dev1","ExceptionMessage":"Tracking ID:...-G:0-TimeStamp:10/18/2022 20:50:39"}
type errorBody struct {
	Message          string `json:"Message"`
	ExceptionMessage string `json:"ExceptionMessage"`
}

// Header names of the hubkit additions to error responses.
const (
	HeaderReason    = "X-Hubkit-Reason" // the pkg/sas reason code of a 401
	HeaderHint      = "X-Hubkit-Hint"   // one per hint, most likely first
	HeaderErrorCode = "iothub-errorcode"
)

// writeError answers with err's status and code. Errors that are not
// *Error are 500s and their text is not sent (it may hold internals).
func (h *handler) writeError(w http.ResponseWriter, err error) {
	var e *Error
	msg := err.Error()
	if !errors.As(err, &e) {
		h.log.Error("service API backend error", "err", err)
		e, msg = ErrInternal, ErrInternal.Text
	}
	h.writeErrorCode(w, e, msg)
}

func (h *handler) writeErrorCode(w http.ResponseWriter, e *Error, msg string) {
	w.Header().Set(HeaderErrorCode, e.Code)
	body := errorBody{
		Message:          "ErrorCode:" + e.Code + ";" + oneLine(msg),
		ExceptionMessage: "Tracking ID:" + h.trackingID() + "-G:0-TimeStamp:" + h.now().UTC().Format("01/02/2006 15:04:05"),
	}
	writeJSON(w, e.Status, body)
}

func (h *handler) trackingID() string {
	var b [16]byte
	if _, err := io.ReadFull(h.rand, b[:]); err != nil {
		return "00000000000000000000000000000000"
	}
	return hex.EncodeToString(b[:])
}

func oneLine(s string) string { return strings.Join(strings.Fields(s), " ") }

func writeJSON(w http.ResponseWriter, status int, v any) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false) // keep '&' in messages readable
	err := enc.Encode(v)
	b := bytes.TrimSuffix(buf.Bytes(), []byte("\n"))
	if err != nil {
		status = http.StatusInternalServerError
		b = []byte(`{"Message":"ErrorCode:ServerError;cannot encode response","ExceptionMessage":""}`)
	}
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	_, _ = w.Write(b)
}

// sentinels lists the *Error values FromCode searches.
var sentinels = []*Error{
	ErrInvalidProtocolVersion, ErrInvalid, ErrFormat, ErrUnauthorized, ErrQueueFull, ErrDeviceNotFound,
	ErrModuleNotFound, ErrDeviceNotOnline, ErrDeviceAlreadyExists, ErrModuleAlreadyExists,
	ErrPreconditionFailed, ErrMessageTooLarge, ErrGatewayTimeout, ErrInternal,
}

// FromCode wraps the sentinel for an IoT Hub numeric error code (as the
// cloud-side packages report them, e.g. iothub.ErrorDeviceNotOnline) around
// cause, so a backend can pass their errors through: FromCode(404103, err).
// 412002 is taken as PreconditionFailed too (the common-error-codes page
// lists 412001 PreconditionFailed and 412002 DeviceMessageLockLost). An
// unknown code becomes an *Error with the code's HTTP status (its first three
// digits) and no name.
func FromCode(code int, cause error) error {
	if code == 412002 {
		code = ErrPreconditionFailed.Number
	}
	for _, e := range sentinels {
		if e.Number == code {
			return fmt.Errorf("%w: %w", e, cause)
		}
	}
	status := code / 1000
	if status < 400 || status > 599 {
		status = http.StatusInternalServerError
	}
	return fmt.Errorf("%w: %w", &Error{Status: status, Code: strconv.Itoa(code), Number: code, Text: cause.Error()}, cause)
}
