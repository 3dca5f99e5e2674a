package device

import (
	"errors"
	"fmt"
)

// ErrNotConnected is returned by operations on a client that is not connected: Connect was
// never called or failed, or the connection was lost and ctx ended before it came back.
var ErrNotConnected = errors.New("device: not connected")

// ErrClosed is returned by operations on a client after Close.
var ErrClosed = errors.New("device: client closed")

// ErrConnectionLost is returned by twin operations whose connection dropped before the hub
// answered. The hub may or may not have applied a reported-properties patch.
var ErrConnectionLost = errors.New("device: connection lost before the hub answered")

// ErrTokenRenewal is the reason passed to OnConnectionChange when the client disconnects on
// purpose to present a fresh SAS token.
var ErrTokenRenewal = errors.New("device: reconnecting to renew the SAS token")

// ErrReplaced is the cause OnConnectionChange (and the log) gives when the hub closed a healthy
// connection without a reason: on MQTT 3.1.1 that is how IoT Hub closes the older of two
// connections with the same identity. The client cannot be sure (it wraps the network error,
// usually io.EOF); a fake hub's own records have the truth (fakehub's reason
// connection-replaced). After it the client waits before reconnecting, longer each time it
// repeats, so two clients with the same identity do not take over from each other in a loop.
var ErrReplaced = errors.New("device: the hub closed the connection: most likely replaced by another connection with the same identity")

// ErrTooLarge is returned by SendEvent for a message over iothub.MaxTelemetrySize (body plus
// properties): the hub would close the connection instead of answering.
var ErrTooLarge = errors.New("device: message too large")

// ErrInvalidConfig is wrapped by every configuration error from New and FromConnectionString.
var ErrInvalidConfig = errors.New("device: invalid configuration")

// Sentinels for the MQTT 3.1.1 CONNACK refusal codes. A *ConnectError unwraps to one of them.
// IoT Hub answers every authentication or authorization failure with ErrNotAuthorized (5).
var (
	ErrBadProtocolVersion    = errors.New("device: connection refused: unacceptable protocol version") // CONNACK 1
	ErrIdentifierRejected    = errors.New("device: connection refused: identifier rejected")           // CONNACK 2
	ErrServerUnavailable     = errors.New("device: connection refused: server unavailable")            // CONNACK 3
	ErrBadUserNameOrPassword = errors.New("device: connection refused: bad user name or password")     // CONNACK 4
	ErrNotAuthorized         = errors.New("device: connection refused: not authorized")                // CONNACK 5
	ErrRefused               = errors.New("device: connection refused with an unknown CONNACK code")   // anything else
)

// ConnectError reports a CONNACK with a non-zero return code. It unwraps to the sentinel for
// Code (ErrNotAuthorized for 5 ...).
type ConnectError struct {
	Addr string // the address dialled
	Code byte   // the CONNACK return code
}

func (e *ConnectError) Error() string {
	return fmt.Sprintf("%v (CONNACK %d from %s)", e.Unwrap(), e.Code, e.Addr)
}

// Unwrap returns the sentinel for Code.
func (e *ConnectError) Unwrap() error {
	switch e.Code {
	case 1:
		return ErrBadProtocolVersion
	case 2:
		return ErrIdentifierRejected
	case 3:
		return ErrServerUnavailable
	case 4:
		return ErrBadUserNameOrPassword
	case 5:
		return ErrNotAuthorized
	}
	return ErrRefused
}

// StatusError reports a hub answer with a non-success status: a twin GET or PATCH answered 400,
// 429 or 5xx. Body is the hub's answer (often a JSON error object), possibly empty.
type StatusError struct {
	Op     string // "twin get", "twin update reported"
	Status int
	Body   []byte
}

func (e *StatusError) Error() string {
	msg := fmt.Sprintf("device: %s: hub answered status %d", e.Op, e.Status)
	if len(e.Body) > 0 {
		b := e.Body
		if len(b) > 200 {
			b = b[:200]
		}
		msg += ": " + string(b)
	}
	return msg
}

func configError(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrInvalidConfig, fmt.Sprintf(format, args...))
}
