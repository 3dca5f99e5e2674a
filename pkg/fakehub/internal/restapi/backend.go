package restapi

import (
	"context"
	"time"

	"github.com/hubkit/hubkit/pkg/iothub"
)

// Backend is what the service API needs from the hub; fakehub's Server provides it. It
// speaks the shared service vocabulary of pkg/iothub. Methods return *iothub.Error for the
// conditions IoT Hub reports with a specific code (iothub.ErrDeviceNotFound,
// iothub.ErrModuleNotFound, iothub.ErrDeviceAlreadyExists, iothub.ErrPreconditionFailed,
// iothub.ErrInvalidArgument, iothub.ErrDeviceNotOnline, iothub.ErrGatewayTimeout,
// iothub.ErrQueueFull, iothub.ErrNotFound, ...); any other error is a 500 whose text is not
// sent.
type Backend interface {
	// Policy returns the shared access policy named name (case-sensitive, as in IoT Hub),
	// or false if there is none.
	Policy(name string) (iothub.AccessPolicy, bool)

	// Devices lists the device identities (modules excluded).
	Devices(ctx context.Context) ([]iothub.Device, error)
	// Modules lists the modules of a device.
	Modules(ctx context.Context, deviceID string) ([]iothub.Device, error)
	// Device returns one device or module identity.
	Device(ctx context.Context, id iothub.Identity) (iothub.Device, error)
	// PutDevice creates or updates an identity (d.DeviceID, d.ModuleID say which) with IoT
	// Hub's If-Match rules ("" create, "*" create or update, an etag: update that version)
	// and returns the stored record.
	PutDevice(ctx context.Context, d iothub.Device, ifMatch string) (iothub.Device, error)
	// DeleteDevice removes an identity (a device: with its modules), with the same ifMatch
	// rule ("" or "*" = unconditional).
	DeleteDevice(ctx context.Context, id iothub.Identity, ifMatch string) error

	// Twins returns every device twin (modules: every module twin), sorted by device ID then
	// module ID, for the query endpoint.
	Twins(ctx context.Context, modules bool) ([]iothub.Twin, error)
	// MeterQuery charges a query's result of size bytes (its JSON) to the daily quota: nil,
	// or iothub.ErrQuotaExceeded when the quota cannot hold it.
	MeterQuery(ctx context.Context, size int) error
	// Twin returns the identity's twin in the service's view.
	Twin(ctx context.Context, id iothub.Identity) (iothub.Twin, error)
	// UpdateTwin applies u and returns the new twin.
	UpdateTwin(ctx context.Context, id iothub.Identity, u iothub.TwinUpdate) (iothub.Twin, error)

	// InvokeMethod calls a direct method (its request already checked:
	// iothub.MethodRequest.Timeouts) and waits for the answer. payload is JSON or empty;
	// connect is how long to wait for the device to be online (0: it must be now).
	InvokeMethod(ctx context.Context, id iothub.Identity, name string, payload []byte, response, connect time.Duration) (iothub.MethodResult, error)

	// SendC2D enqueues a cloud-to-device message and returns its status.
	SendC2D(ctx context.Context, id iothub.Identity, m iothub.C2DMessage) (iothub.C2DStatus, error)
	// C2DStatus returns the state of one message sent to id (iothub.ErrNotFound).
	C2DStatus(ctx context.Context, id iothub.Identity, messageID string) (iothub.C2DStatus, error)
	// WaitC2DStatus is C2DStatus once the message is in a final state, or after wait with the
	// state it is in then (or when ctx ends, with ctx's error).
	WaitC2DStatus(ctx context.Context, id iothub.Identity, messageID string, wait time.Duration) (iothub.C2DStatus, error)
	// C2DStatuses lists the messages sent to id, oldest first.
	C2DStatuses(ctx context.Context, id iothub.Identity) ([]iothub.C2DStatus, error)
	// PurgeC2D removes the messages waiting for id and returns how many there were.
	PurgeC2D(ctx context.Context, id iothub.Identity) (int, error)
	// C2DFeedback lists the delivery feedback records, oldest first.
	C2DFeedback(ctx context.Context) ([]iothub.C2DFeedback, error)

	// Telemetry opens a reader over captured device-to-cloud messages that match q, oldest
	// first. Without q.Follow, Next returns io.EOF once the messages captured so far are
	// consumed; with it, the reader starts where it is opened (or at q.Since) and Next waits
	// for new ones until its context ends. An unknown device that sent nothing is
	// iothub.ErrDeviceNotFound.
	Telemetry(ctx context.Context, q TelemetryQuery) (TelemetryReader, error)

	// Reset clears run-time state between tests: the parts named ("telemetry",
	// "rejections", "c2d", "twins"; none = all). An unknown name is iothub.ErrInvalidArgument.
	Reset(ctx context.Context, parts []string) error

	// Rejections opens a reader over the rejection log (refusals and hub-initiated closes)
	// that match q, under the rule of Telemetry: without q.Follow, Next returns io.EOF once
	// the records held are consumed; with it, the reader starts where it is opened (or at
	// q.Since) and waits for new ones. A q.DeviceID the registry does not know is no error:
	// unknown identities are what many rejections are about.
	Rejections(ctx context.Context, q StreamQuery) (RejectionReader, error)

	// Clock reads the hub's movable clock; MoveClock moves it (iothub.ErrInvalidArgument for
	// a change that is not exactly one of advance, set, reset).
	Clock(ctx context.Context) iothub.ClockReading
	MoveClock(ctx context.Context, c iothub.ClockChange) (iothub.ClockReading, error)
	// Fault injects a service-side fault (iothub.ErrInvalidArgument for a bad request,
	// iothub.ErrDeviceNotOnline when the identity to drop is not connected).
	Fault(ctx context.Context, f iothub.FaultRequest) (iothub.FaultResult, error)
	// Limits reads the hub's throttles, quota and the quota used today; SetLimits replaces
	// them (iothub.ErrInvalidArgument for limits that fail iothub.Limits.Validate).
	Limits(ctx context.Context) iothub.LimitsStatus
	SetLimits(ctx context.Context, l iothub.Limits) (iothub.LimitsStatus, error)
}

// StreamQuery selects records of a stream route: captured telemetry, the rejection log.
type StreamQuery struct {
	DeviceID string    // "" = every device
	Since    time.Time // zero = from the oldest record kept
	Follow   bool      // wait for new records instead of ending at the newest
}

// TelemetryQuery selects captured telemetry.
type TelemetryQuery = StreamQuery

// Reader yields records one at a time. Next returns io.EOF at the end (never with Follow)
// and ctx.Err() when ctx ends.
type Reader[T any] interface {
	Next(ctx context.Context) (T, error)
	Close() error
}

// TelemetryReader yields captured messages.
type TelemetryReader = Reader[iothub.Event]

// RejectionReader yields rejection records.
type RejectionReader = Reader[iothub.Rejection]
