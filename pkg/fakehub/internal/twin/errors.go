package twin

import (
	"fmt"

	"github.com/hubkit/hubkit/pkg/iothub"
)

// IoT Hub error codes this package reports (learn.microsoft.com, "IoT Hub API common error
// codes").
const (
	CodeArgumentInvalid    iothub.ErrorCode = 400004 // malformed JSON, not an object, or a broken limit
	CodePreconditionFailed iothub.ErrorCode = 412001 // the etag does not match the twin's
)

// Error is a refused twin operation: the status the hub answers with (on MQTT, the status in
// $iothub/twin/res/{status}/?$rid=...), IoT Hub's six-digit error code and a message.
type Error struct {
	Status  int              // 400 or 412
	Code    iothub.ErrorCode // 400004 or 412001
	Message string           // one human sentence naming the property and the limit
}

func (e *Error) Error() string { return fmt.Sprintf("twin: %d: %s", e.Code, e.Message) }

func newError(code iothub.ErrorCode, format string, args ...any) *Error {
	return &Error{Status: code.HTTPStatus(), Code: code, Message: fmt.Sprintf(format, args...)}
}
