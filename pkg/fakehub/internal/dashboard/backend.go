package dashboard

import (
	"context"
	"html/template"
	"net/http"
	"time"

	"github.com/hubkit/hubkit/pkg/iothub"
	"github.com/hubkit/hubkit/pkg/iothub/dps"
)

// Backend is what the dashboard shows and does; pkg/fakehub implements it
// over its Server, in the pkg/iothub vocabulary. Methods must be safe for
// concurrent use.
type Backend interface {
	// Policy returns a shared access policy, for logging in with a
	// service connection string.
	Policy(name string) (iothub.AccessPolicy, bool)
	// Overview returns the hub's counts for the home page.
	Overview() Overview
	// Devices returns one page of devices matching q, sorted by ID, and how
	// many match in all.
	Devices(q DeviceQuery) (rows []DeviceRow, total int)
	// Device returns an identity and, for a device, its modules
	// (iothub.ErrDeviceNotFound, iothub.ErrModuleNotFound).
	Device(id iothub.Identity) (DeviceRow, []DeviceRow, error)
	Twin(id iothub.Identity) (iothub.Twin, error)
	// UpdateDesired applies a JSON merge patch to the desired properties.
	UpdateDesired(ctx context.Context, id iothub.Identity, patch []byte) (iothub.Twin, error)
	SendC2D(ctx context.Context, id iothub.Identity, m iothub.C2DMessage) (iothub.C2DStatus, error)
	// C2DMessages returns the messages sent to id, oldest first.
	C2DMessages(id iothub.Identity) []iothub.C2DStatus
	C2DFeedback() []iothub.C2DFeedback
	InvokeMethod(ctx context.Context, id iothub.Identity, name string, payload []byte, timeout time.Duration) (iothub.MethodResult, error)
	// Rejections returns the refusals and hub-initiated closes, oldest first.
	Rejections() []iothub.Rejection
	// Telemetry returns at most max of the messages captured from sequence
	// number since on (of deviceID only, when it is not ""), the newest ones
	// when there are more, with how many matching messages it left out and
	// the sequence number to ask for next.
	Telemetry(since uint64, deviceID string, max int) TelemetryBatch
	// Changes returns a channel closed by the next change of what the pages
	// show besides telemetry: connections, rejections, C2D states, twins.
	Changes() <-chan struct{}

	// Controls returns the hub's test controls: profile, clock, faults in
	// force, throttles and quota.
	Controls() Controls
	// MoveClock moves the hub's clock (exactly one of Advance, Set, Reset).
	MoveClock(ctx context.Context, c iothub.ClockChange) (iothub.ClockReading, error)
	// ClearFaults ends every fault in force.
	ClearFaults()
	// Reset clears the named parts of the hub's run-time state (ResetParts
	// in Controls; none: every part).
	Reset(parts []string) error
	// DPS returns the Device Provisioning Service's enrollments and
	// registrations, without their keys; false when the hub runs none.
	DPS() (DPSState, bool)
	// HasDPS reports whether the hub runs a Device Provisioning Service.
	HasDPS() bool

	// The device grader (pkg/grade, docs/iothub-behavior.md §15), as the
	// service API's /hubkit/grade routes run it.

	// GradeCases lists the grader's cases.
	GradeCases() []iothub.GradeCase
	// StartGrade starts a grade in the background and returns its first
	// report (State running), or the error POST /hubkit/grade answers
	// (*iothub.Error: 400004 for a bad request, 404 for an unknown identity,
	// 409000 while another grade runs).
	StartGrade(req iothub.GradeRequest) (iothub.GradeReport, error)
	// GradeReport returns a grade's report (running or finished), or false.
	GradeReport(id string) (iothub.GradeReport, bool)
	// GradeReports returns the reports the hub keeps, newest first.
	GradeReports() []iothub.GradeReport
	// CancelGrade stops a running grade; false when there is no such grade.
	CancelGrade(id string) bool
}

// Controls are the hub's test controls (the /hubkit service routes).
type Controls struct {
	Profile    string
	Quirks     []string // the Quirks switched on (by the profile or one by one), by field name
	Clock      iothub.ClockReading
	Faults     []Fault
	Limits     []Limit // every throttled operation, on or off
	Quota      Quota
	ResetParts []string // what Reset can clear
}

// Fault is one fault in force.
type Fault struct {
	Target string    // the identity, or "every identity"
	Kind   string    // "refuse connections", "delay PUBACKs", "InvokeAuthError", ...
	Detail string    // e.g. the delay or the error code
	Until  time.Time // zero: until cleared
}

// Limit is one operation's throttle.
type Limit struct {
	Operation string // "device-to-cloud sends", ...
	PerSecond float64
	Burst     int
	Backlog   int // negative: none
	Throttled uint64
}

// Quota is the daily message quota.
type Quota struct {
	Day       string // UTC date of the quota day ("" before the first charge)
	Used      int64
	Limit     int64 // 0: unbounded
	MeterSize int
}

// DPSState is the Device Provisioning Service at a glance.
type DPSState struct {
	IDScope       string
	HostName      string
	MQTTAddr      string                // host:port of its MQTT over TLS listener
	URL           string                // its HTTPS registration and service API
	Enrollments   []dps.Enrollment      // sorted by registration ID, keys removed
	Groups        []dps.EnrollmentGroup // sorted by ID, keys removed
	Registrations []dps.RegistrationState
}

// Overview is the hub at a glance.
type Overview struct {
	HostName     string
	MQTTAddr     string // host:port of the device endpoint
	ServiceURL   string
	Devices      int
	Connected    int
	Telemetry    uint64 // messages captured so far
	Rejections   int
	C2DQueued    int
	MetricsPath  string // "" when metrics are not served
	LoopbackOnly bool   // /metrics answers only loopback clients without a login
}

// DeviceQuery selects a page of devices.
type DeviceQuery struct {
	Search string // case-insensitive substring of the device ID; "" matches all
	State  string // "", "connected" or "disconnected"
	Offset int
	Limit  int
}

// DeviceRow is an identity with what the hub knows of it at run time.
type DeviceRow struct {
	// Device is the registry record with its live fields filled
	// (ConnectionState, CloudToDeviceMessageCount). Its keys are shown only
	// on request.
	Device       iothub.Device
	Modules      int         // devices: how many modules it has
	Conn         *Connection // nil while not connected
	LastActivity time.Time   // the last connect, telemetry or disconnect (zero: never)
}

// Connection describes a live MQTT connection.
type Connection struct {
	Transport     string // "MQTT over TLS", "MQTT (plaintext)", ...
	Auth          string // how it authenticated: "SAS, device key", "SAS, policy token", ...
	RemoteAddr    string
	ConnectedAt   time.Time
	TokenExpiry   time.Time
	Subscriptions []string
	ModelID       string
}

// TelemetryBatch is what Backend.Telemetry returns.
type TelemetryBatch struct {
	Events  []iothub.Event
	Skipped uint64 // matching messages left out (the view samples a fast stream)
	Next    uint64
}

// Section is a page contributed by another part of the hub: the navigation links
// to /ui/x/{ID}, and Render returns its body, already escaped (render it
// with html/template).
type Section struct {
	ID     string
	Title  string
	Render func(r *http.Request) (template.HTML, error)
}
