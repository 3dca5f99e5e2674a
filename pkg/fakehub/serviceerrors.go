package fakehub

import (
	"errors"
	"fmt"

	"github.com/hubkit/hubkit/pkg/fakehub/internal/c2d"
	"github.com/hubkit/hubkit/pkg/fakehub/internal/methods"
	"github.com/hubkit/hubkit/pkg/fakehub/internal/twin"
	"github.com/hubkit/hubkit/pkg/iothub"
)

// ServiceError is a refused cloud-side operation (SendC2D, InvokeMethod,
// twin updates) as IoT Hub's service API reports it: an HTTP status and
// IoT Hub's six-digit error code. errors.Is matches it against the
// sentinels below by Code, so
//
//	errors.Is(err, fakehub.ErrDeviceNotOnline)
//
// holds for any 404103 error, whatever its message.
type ServiceError struct {
	Status  int              // HTTP status: 400, 403, 404, 412, 413, 503, 504
	Code    iothub.ErrorCode // e.g. 404103; String() adds the name
	Message string           // one human sentence
	Err     error            // the cause, if any
}

func (e *ServiceError) Error() string {
	if e.Message == "" {
		return fmt.Sprintf("fakehub: %v", e.Code)
	}
	return fmt.Sprintf("fakehub: %v: %s", e.Code, e.Message)
}

// Unwrap returns the cause, if any.
func (e *ServiceError) Unwrap() error { return e.Err }

// Is reports whether target is a *ServiceError with the same Code.
func (e *ServiceError) Is(target error) bool {
	t, ok := target.(*ServiceError)
	return ok && t.Code == e.Code
}

func serviceError(code iothub.ErrorCode, format string, args ...any) *ServiceError {
	return &ServiceError{Status: code.HTTPStatus(), Code: code, Message: fmt.Sprintf(format, args...)}
}

// Sentinels for the service-side outcomes callers branch on; match them with
// errors.Is.
var (
	// ErrInvalidArgument (400004): a bad method name, payload, timeout, TTL,
	// property, or twin document (invalid JSON, broken limits).
	ErrInvalidArgument = serviceError(400004, "")
	// ErrQueueFull (403004): the identity already has 50 C2D messages pending.
	ErrQueueFull = serviceError(iothub.ErrorDeviceMaximumQueueDepthExceeded, "")
	// ErrDeviceNotFound (404001): no such device in the registry.
	ErrDeviceNotFound = serviceError(iothub.ErrorDeviceNotFound, "")
	// ErrModuleNotFound (404010): no such module in the registry.
	ErrModuleNotFound = serviceError(404010, "")
	// ErrDeviceNotOnline (404103): a direct method to an identity that is not
	// connected or not subscribed to $iothub/methods/POST/#.
	ErrDeviceNotOnline = serviceError(iothub.ErrorDeviceNotOnline, "")
	// ErrDeviceDisconnected (404104): the device disconnected while a direct
	// method waited for its answer.
	ErrDeviceDisconnected = serviceError(iothub.ErrorDeviceConnectionClosedRemotely, "")
	// ErrPreconditionFailed (412001): a twin update's If-Match etag is stale.
	ErrPreconditionFailed = serviceError(412001, "")
	// ErrMessageTooLarge (413001): a C2D message over 64 KB or a method
	// payload over 128 KB.
	ErrMessageTooLarge = serviceError(iothub.ErrorMessageTooLarge, "")
	// ErrServiceUnavailable (503001): the hub is shutting down.
	ErrServiceUnavailable = serviceError(iothub.ErrorServiceUnavailable, "")
	// ErrGatewayTimeout (504101): the device did not answer a direct method
	// within the response timeout.
	ErrGatewayTimeout = serviceError(iothub.ErrorGatewayTimeout, "")
)

// asServiceError converts the errors of the cloud-side packages into
// *ServiceError; other errors (context ends) pass through.
func asServiceError(err error) error {
	var (
		ce *c2d.Error
		te *twin.Error
		me *methods.Error
	)
	switch {
	case err == nil:
		return nil
	case errors.As(err, &ce):
		return &ServiceError{Status: ce.Status, Code: ce.Code, Message: ce.Message, Err: err}
	case errors.As(err, &te):
		return &ServiceError{Status: te.Status, Code: te.Code, Message: te.Message, Err: err}
	case errors.As(err, &me):
		return &ServiceError{Status: me.Status, Code: me.Code, Message: me.Message, Err: me.Err}
	}
	return err
}

// errNotSubscribed is the cause of a 404103 for a connected identity
// without a subscription to $iothub/methods/POST/#.
var errNotSubscribed = errors.New("fakehub: device not subscribed to " + iothub.MethodsFilter)
