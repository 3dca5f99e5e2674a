package c2d

import (
	"errors"
	"fmt"

	"github.com/hubkit/hubkit/pkg/iothub"
)

// IoT Hub error codes Enqueue reports (learn.microsoft.com, "IoT Hub API common error codes").
const (
	CodeArgumentInvalid    iothub.ErrorCode = 400004                                      // bad TTL, Ack, ID or property
	CodeQueueDepthExceeded                  = iothub.ErrorDeviceMaximumQueueDepthExceeded // 403004: 50 messages already queued
	CodeMessageTooLarge                     = iothub.ErrorMessageTooLarge                 // 413001: over 64 KB
)

// ErrNotFound is returned when an operation names a message that is not queued or in flight
// for the identity.
var ErrNotFound = errors.New("c2d: no such message")

// Error is a refused Enqueue as the sender sees it: an HTTP status, IoT Hub's six-digit error
// code and a message.
type Error struct {
	Status  int              // HTTP status: 400, 403, 413
	Code    iothub.ErrorCode // e.g. 403004; String() adds the name
	Message string           // one human sentence
}

func (e *Error) Error() string { return fmt.Sprintf("c2d: %v: %s", e.Code, e.Message) }

func newError(code iothub.ErrorCode, format string, args ...any) *Error {
	return &Error{Status: code.HTTPStatus(), Code: code, Message: fmt.Sprintf(format, args...)}
}
