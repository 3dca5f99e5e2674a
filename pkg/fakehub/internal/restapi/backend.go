package restapi

import (
	"context"
	"encoding/json"
	"time"

	"github.com/hubkit/hubkit/pkg/iothub"
)

// Backend is what the service API needs from the hub. fakehub's Server
// implements it. Methods return the sentinel errors of this package (wrapped
// with context as needed) for the conditions IoT Hub reports with a specific
// status code: ErrDeviceNotFound, ErrModuleNotFound, ErrDeviceAlreadyExists,
// ErrModuleAlreadyExists, ErrPreconditionFailed, ErrInvalid,
// ErrDeviceNotOnline, ErrGatewayTimeout, ErrQueueFull, ErrMessageNotFound.
// Any other error is a 500.
type Backend interface {
	// Policy returns the shared access policy named name (case-sensitive,
	// as in IoT Hub), or false if there is none.
	Policy(name string) (Policy, bool)

	// Devices lists the device identities (modules excluded).
	Devices(ctx context.Context) ([]Device, error)
	// Modules lists the modules of a device (ErrDeviceNotFound if none).
	Modules(ctx context.Context, deviceID string) ([]Device, error)
	// Device returns one device or module identity.
	Device(ctx context.Context, id iothub.Identity) (Device, error)
	// PutDevice creates or updates an identity (d.Identity says which),
	// following IoT Hub's If-Match rules:
	//   ifMatch == ""  create; ErrDeviceAlreadyExists (ErrModuleAlreadyExists) if it exists;
	//   ifMatch == "*" create or update;
	//   otherwise      update only if the stored ETag equals ifMatch
	//                  (ErrPreconditionFailed; ErrDeviceNotFound if absent).
	// d always carries both keys (the handler generates missing ones).
	// The backend assigns GenerationID and ETag and returns the stored
	// identity; created reports whether it was new.
	PutDevice(ctx context.Context, d Device, ifMatch string) (stored Device, created bool, err error)
	// DeleteDevice removes an identity (a device: with its modules), with the
	// same ifMatch rule as updates ("" or "*" = unconditional).
	DeleteDevice(ctx context.Context, id iothub.Identity, ifMatch string) error

	// Twin returns the identity's twin.
	Twin(ctx context.Context, id iothub.Identity) (Twin, error)
	// UpdateTwin applies u (JSON merge patch of tags and desired properties,
	// or replacement when u.Replace) and returns the new twin. A changed
	// desired section bumps the desired $version and is pushed to the device.
	UpdateTwin(ctx context.Context, id iothub.Identity, u TwinUpdate) (Twin, error)

	// InvokeMethod calls a direct method and waits for the device's answer
	// (ErrDeviceNotOnline, ErrGatewayTimeout).
	InvokeMethod(ctx context.Context, id iothub.Identity, req MethodRequest) (MethodResult, error)

	// SendC2D enqueues a cloud-to-device message (ErrQueueFull when the
	// device queue already holds the maximum). m.MessageID is set (the
	// handler generates one when the caller gave none).
	SendC2D(ctx context.Context, id iothub.Identity, m C2DMessage) (C2DStatus, error)
	// C2DStatus returns the state of one message sent to id
	// (ErrMessageNotFound).
	C2DStatus(ctx context.Context, id iothub.Identity, messageID string) (C2DStatus, error)
	// C2DStatuses lists the messages sent to id, oldest first.
	C2DStatuses(ctx context.Context, id iothub.Identity) ([]C2DStatus, error)
	// PurgeC2D removes the messages waiting for id (state purged) and
	// returns how many there were (ErrDeviceNotFound).
	PurgeC2D(ctx context.Context, id iothub.Identity) (int, error)
	// C2DFeedback lists the delivery feedback records produced for messages
	// sent with an iothub-ack other than none, oldest first.
	C2DFeedback(ctx context.Context) ([]C2DFeedback, error)

	// Telemetry opens a reader over captured device-to-cloud messages that
	// match q, oldest first. Without q.Follow, Next returns io.EOF once the
	// messages captured so far are consumed; with it, Next waits for new ones
	// until its context ends.
	Telemetry(ctx context.Context, q TelemetryQuery) (TelemetryReader, error)

	// Rejections lists refused connections, oldest first.
	Rejections(ctx context.Context) ([]Rejection, error)
}

// Rights is a set of shared access policy permissions.
type Rights uint8

// The IoT Hub policy permissions.
const (
	RegistryRead Rights = 1 << iota
	RegistryWrite
	ServiceConnect
	DeviceConnect
)

// The rights of IoT Hub's built-in policies.
const (
	RightsIoTHubOwner       = RegistryRead | RegistryWrite | ServiceConnect | DeviceConnect
	RightsService           = ServiceConnect
	RightsDevice            = DeviceConnect
	RightsRegistryRead      = RegistryRead
	RightsRegistryReadWrite = RegistryRead | RegistryWrite
)

// String lists the rights the way the Azure portal names them:
// "RegistryRead, RegistryWrite".
func (r Rights) String() string {
	names := []string{"RegistryRead", "RegistryWrite", "ServiceConnect", "DeviceConnect"}
	s := ""
	for i, n := range names {
		if r&(1<<i) != 0 {
			if s != "" {
				s += ", "
			}
			s += n
		}
	}
	if s == "" {
		return "none"
	}
	return s
}

// Policy is a shared access policy: a name, two keys (decoded bytes) and
// rights.
type Policy struct {
	Name         string
	PrimaryKey   []byte
	SecondaryKey []byte
	Rights       Rights
}

// Device statuses and connection states, as IoT Hub spells them.
const (
	StatusEnabled      = "enabled"
	StatusDisabled     = "disabled"
	StateConnected     = "Connected"
	StateDisconnected  = "Disconnected"
	AuthenticationSAS  = "sas"
	AuthenticationNone = "none"
)

// Device is a device or module identity in the registry (Identity.ModuleID
// set for a module). Zero times are rendered as IoT Hub does:
// "0001-01-01T00:00:00Z".
type Device struct {
	Identity                   iothub.Identity
	GenerationID               string
	ETag                       string
	Status                     string // StatusEnabled or StatusDisabled (devices only)
	StatusReason               string
	StatusUpdatedTime          time.Time
	ConnectionState            string // StateConnected or StateDisconnected
	ConnectionStateUpdatedTime time.Time
	LastActivityTime           time.Time
	CloudToDeviceMessageCount  int
	PrimaryKey                 string // base64, as in the registry JSON
	SecondaryKey               string
	ManagedBy                  string // modules only
}

// Twin is a device or module twin in the service's view. Either View is the
// whole twin as IoT Hub's REST API renders it (fakehub's twin store
// ServiceView, sent as is), or the handler renders it from Tags, Desired and
// Reported (JSON objects; Desired and Reported include "$version") and the
// identity's registry fields.
type Twin struct {
	Identity iothub.Identity
	ETag     string
	Version  int64
	View     json.RawMessage
	Tags     json.RawMessage
	Desired  json.RawMessage
	Reported json.RawMessage
}

// TwinUpdate is a change to a twin's tags and desired properties. A nil
// field is left alone. With Replace, Tags and Desired replace the stored
// sections (nil = empty); otherwise they are JSON merge patches (null
// deletes). IfMatch is "" or "*" (unconditional) or the twin ETag the caller
// saw (ErrPreconditionFailed when it differs).
type TwinUpdate struct {
	Tags    json.RawMessage
	Desired json.RawMessage
	Replace bool
	IfMatch string
}

// MethodRequest is a direct method call.
type MethodRequest struct {
	Name            string
	Payload         json.RawMessage // JSON; "null" when the caller sent none
	ResponseTimeout time.Duration   // 5s..300s, default 30s
	ConnectTimeout  time.Duration   // 0..300s, 0 = the device must be online now
}

// MethodResult is the device's answer.
type MethodResult struct {
	Status  int
	Payload json.RawMessage // JSON; "null" when the device sent an empty body
}

// C2D acknowledgement modes (iothub-ack).
const (
	AckNone     = "none"
	AckPositive = "positive"
	AckNegative = "negative"
	AckFull     = "full"
)

// C2DMessage is a cloud-to-device message.
type C2DMessage struct {
	MessageID       string
	CorrelationID   string
	UserID          string
	To              string    // "" = the backend's default ("/devices/{id}/messages/deviceBound")
	Ack             string    // AckNone (default), AckPositive, AckNegative, AckFull
	ExpiryTime      time.Time // zero = the hub's default TTL
	ContentType     string
	ContentEncoding string
	Properties      iothub.Properties // application properties, in order (no system keys)
	Body            []byte
}

// C2D message states.
const (
	C2DQueued    = "queued"    // waiting for the device (or its subscription)
	C2DDelivered = "delivered" // published to the device, not yet acknowledged
	C2DCompleted = "completed" // acknowledged (PUBACK, or sent at QoS 0)
	C2DRejected  = "rejected"  // e.g. device connected without a C2D subscription
	C2DExpired   = "expired"
	C2DPurged    = "purged"
)

// C2DStatus is what the hub knows about a message it was given.
type C2DStatus struct {
	Identity     iothub.Identity
	MessageID    string
	State        string // C2DQueued ... C2DPurged
	EnqueuedTime time.Time
	UpdatedTime  time.Time
	Detail       string // why it is in this state, if not obvious
}

// C2DFeedback is one feedback record, as the hub's feedback messages report
// it ("Success", "Expired", "Rejected", "Purged", "DeliveryCountExceeded").
type C2DFeedback struct {
	OriginalMessageID string
	Identity          iothub.Identity
	Status            string
	Description       string
	EnqueuedTime      time.Time
}

// TelemetryQuery selects captured telemetry.
type TelemetryQuery struct {
	DeviceID string    // "" = every device
	Since    time.Time // zero = from the oldest message kept
	Follow   bool      // wait for new messages instead of ending at the newest
}

// TelemetryReader yields telemetry records one at a time. Next returns io.EOF
// at the end (never with Follow) and ctx.Err() when ctx ends.
type TelemetryReader interface {
	Next(ctx context.Context) (TelemetryRecord, error)
	Close() error
}

// TelemetryRecord is one device-to-cloud message as the hub captured it.
type TelemetryRecord struct {
	Identity         iothub.Identity
	EnqueuedTime     time.Time
	Topic            string
	SystemProperties map[string]string // "$.mid" ... as on the wire
	Properties       map[string]string // application properties
	Annotations      map[string]string // what the hub stamps: iothub-connection-device-id, iothub-enqueuedtime, ...
	Body             []byte
}

// Rejection is a connection the hub refused, with the pkg/sas verdict.
type Rejection struct {
	Time       time.Time
	RemoteAddr string
	ClientID   string
	Identity   iothub.Identity
	Reason     string
	Detail     string
	Hints      []string
}
