package methods

import (
	"errors"
	"fmt"
)

// IoT Hub error codes used by this package (learn.microsoft.com, "IoT Hub API common error
// codes"). The HTTP status is the code divided by 1000.
const (
	CodeArgumentInvalid    = 400004 // invalid method name, payload or timeout
	CodeMessageTooLarge    = 413001 // the device's response payload exceeds MaxPayloadSize
	CodeDeviceNotOnline    = 404103 // the device is offline or not subscribed to methods
	CodeConnectionClosed   = 404104 // DeviceConnectionClosedRemotely: the device left mid-call
	CodeServiceUnavailable = 503001 // the registry was closed while the call was waiting
	CodeGatewayTimeout     = 504101 // no response within the response timeout
)

// ErrClosed is returned by Invoke after Close (wrapped in an *Error with status 503).
var ErrClosed = errors.New("methods: registry closed")

// Error is a failed invocation as the service caller sees it: an HTTP status, IoT Hub's
// six-digit error code and a message. Err, when set, is the underlying cause (for example the
// error the Send function returned) and is what Unwrap returns.
type Error struct {
	Status  int    // HTTP status: 400, 404, 413, 503, 504
	Code    int    // IoT Hub error code, e.g. 404103
	Message string // one human sentence
	Err     error  // the cause, if any
}

func (e *Error) Error() string {
	if e.Err != nil {
		return fmt.Sprintf("methods: %d %s: %v", e.Code, e.Message, e.Err)
	}
	return fmt.Sprintf("methods: %d %s", e.Code, e.Message)
}

// Unwrap returns the cause, if any.
func (e *Error) Unwrap() error { return e.Err }

func newError(code int, cause error, format string, args ...any) *Error {
	return &Error{Status: code / 1000, Code: code, Message: fmt.Sprintf(format, args...), Err: cause}
}
