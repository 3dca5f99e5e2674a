package methods

import (
	"errors"
	"fmt"

	"github.com/hubkit/hubkit/pkg/iothub"
)

// IoT Hub error codes used by this package (learn.microsoft.com, "IoT Hub API common error
// codes"). The HTTP status is the code divided by 1000.
const (
	CodeArgumentInvalid    iothub.ErrorCode = 400004                                     // invalid method name, payload or timeout
	CodeMessageTooLarge                     = iothub.ErrorMessageTooLarge                // 413001: the device's response exceeds MaxPayloadSize
	CodeDeviceNotOnline                     = iothub.ErrorDeviceNotOnline                // 404103: offline or not subscribed to methods
	CodeConnectionClosed                    = iothub.ErrorDeviceConnectionClosedRemotely // 404104: the device left mid-call
	CodeServiceUnavailable                  = iothub.ErrorServiceUnavailable             // 503001: the registry was closed
	CodeGatewayTimeout                      = iothub.ErrorGatewayTimeout                 // 504101: no response in time
)

// ErrClosed is returned by Invoke after Close (wrapped in an *Error with status 503).
var ErrClosed = errors.New("methods: registry closed")

// Error is a failed invocation as the service caller sees it: an HTTP status, IoT Hub's
// six-digit error code and a message. Err, when set, is the underlying cause (for example the
// error the Send function returned) and is what Unwrap returns.
type Error struct {
	Status  int              // HTTP status: 400, 404, 413, 503, 504
	Code    iothub.ErrorCode // IoT Hub error code, e.g. 404103; String() adds the name
	Message string           // one human sentence
	Err     error            // the cause, if any
}

func (e *Error) Error() string {
	if e.Err != nil {
		return fmt.Sprintf("methods: %v: %s: %v", e.Code, e.Message, e.Err)
	}
	return fmt.Sprintf("methods: %v: %s", e.Code, e.Message)
}

// Unwrap returns the cause, if any.
func (e *Error) Unwrap() error { return e.Err }

func newError(code iothub.ErrorCode, cause error, format string, args ...any) *Error {
	return &Error{Status: code.HTTPStatus(), Code: code, Message: fmt.Sprintf(format, args...), Err: cause}
}
