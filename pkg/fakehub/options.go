package fakehub

import (
	"crypto/tls"
	"io"
	"log/slog"
	"time"

	"github.com/hubkit/hubkit/pkg/sas"
)

// Options configures a Server. The zero value of each field is a sensible
// default; TLS (or InsecureAddr) is required.
type Options struct {
	// HostName is the hub host name devices must name in their user name and
	// token (compared case-insensitively, ":port" suffixes accepted).
	// Default "localhost".
	HostName string
	// Aliases are further host names accepted like HostName.
	Aliases []string
	// Addr is the TLS listen address, default "127.0.0.1:0".
	Addr string
	// TLS is the server TLS configuration (a certificate is required). It may
	// be nil only when InsecureAddr is set: then only the plaintext listener runs.
	TLS *tls.Config
	// InsecureAddr, when set, adds a plaintext MQTT listener (IoT Hub has none;
	// for debugging with tools that cannot do TLS). A WARN is logged.
	InsecureAddr string
	// Registry holds devices and policies; nil: NewRegistry(Rand).
	Registry *Registry
	// Logger receives the hub's logs (nil: discarded). mochi's own logs go to
	// it at Debug, except its errors.
	Logger *slog.Logger
	// Now is the clock used for token checks and timestamps (default time.Now).
	Now func() time.Time
	// Rand is the randomness for generated keys (default crypto/rand).
	Rand io.Reader
	// ConnectTimeout closes connections that have not completed the TLS
	// handshake and sent CONNECT within this time. Default 10 s.
	ConnectTimeout time.Duration
	// TelemetryBuffer is how many telemetry messages are kept (oldest
	// dropped first). Default 10000.
	TelemetryBuffer int
	// TelemetryBufferBytes bounds the memory of those messages (payloads,
	// properties and a per-message overhead; oldest dropped first). Default
	// 64 MiB.
	TelemetryBufferBytes int
	// TokenExpiryGrace is both the clock-skew allowance when a token is
	// checked at CONNECT and the delay after the token's expiry before a
	// connected device is dropped. 0 means sas.DefaultSkew (5 min); a
	// negative value means none.
	TokenExpiryGrace time.Duration
	// ServiceAddr, when set, is the listen address of the service REST API
	// (ServiceHandler): HTTPS with the TLS certificate of the MQTT listener.
	// Without TLS, NewServer refuses it unless InsecureService is set. Close
	// shuts it down and ends open telemetry streams.
	ServiceAddr string
	// InsecureService allows ServiceAddr without TLS: the service API is
	// then plain HTTP, and policy tokens and device keys cross the network
	// in the clear (a WARN is logged). For debugging only.
	InsecureService bool
	// C2DDefaultTTL is how long a C2D message without its own expiry waits
	// for its device. Default 1 h, as IoT Hub; 1 min to 48 h.
	C2DDefaultTTL time.Duration
	// Quirks switch the behaviours that are inferred, not documented.
	Quirks Quirks
	// Limits are the throttles and the daily message quota (TierLimits gives IoT Hub's for
	// a tier); the zero value has none, so a hub without them never throttles.
	Limits Limits
	// Profile picks the rules where the anchors disagree: ProfileAzure (the default, what
	// IoT Hub accepts), ProfileEdgeHub (IoT Edge hub's audience, case and re-authentication
	// rules) or ProfileStrict (azure, plus a warning record for what Microsoft's docs call
	// wrong). Its quirks are added to Quirks (see Profile.Quirks).
	Profile Profile
	// DPS, when set, also runs a Device Provisioning Service that assigns devices to this
	// hub (Server.DPS; it needs TLS).
	DPS *DPSOptions

	// WebSocketAddr, when set, is the listen address of MQTT over WebSockets: TLS with the
	// same configuration as Addr, answering only on path /$iothub/websocket with
	// sub-protocol mqtt (docs/iothub-behavior.md §1.2, §1.3); IoT Hub listens on 443. Any
	// other request is answered 400 and recorded as a rejection. Requires TLS.
	WebSocketAddr string
	// DeviceHostName is the hub's device host name ("{hub}.device.azure-devices.net"), the
	// newer endpoint that offers TLS 1.3 (docs/iothub-behavior.md §1.4, §1.26). When set it
	// is accepted like HostName in user names and token resources, and a client that names
	// it in SNI may negotiate TLS 1.3; the server certificate must name it too.
	DeviceHostName string
	// ClassicTLSMaxVersion is the highest TLS version offered to clients that do not name
	// DeviceHostName in SNI (the classic host names, and clients dialling an IP address),
	// and by the service API on ServiceAddr. 0 means TLS 1.2, as IoT Hub's classic
	// endpoints (docs/iothub-behavior.md §1.4); tls.VersionTLS13 offers TLS 1.3 there too.
	ClassicTLSMaxVersion uint16
	// TLSDrills, when set, returns the server chain of a TLS drill by name (the names of
	// internal/certs: "root-change" gives its new chain, "wrong-san" a certificate that does
	// not name the hub) for Server.PresentTLSDrill, the device grader's TLS cases
	// (docs/iothub-behavior.md §8.5, §15.17). It is called once per name, on first use.
	// fakehubtest.Start and fakehub --ca set it.
	TLSDrills func(name string) (tls.Certificate, error)

	// WriteTimeout bounds each write to a device (0: DefaultWriteTimeout, 30
	// s; negative: none). A device that stops reading is disconnected when a
	// write to it has not finished in this time (ReasonWriteTimeout).
	WriteTimeout time.Duration
	// OutboxSize is how many packets (C2D messages, twin answers and
	// notifications, method requests) may wait for one device's connection
	// (0: DefaultOutboxSize, 256). Each device has its own outbox and writer,
	// so a slow device never delays another one or the service API; when
	// its outbox is full it is disconnected (ReasonWriteBacklog).
	OutboxSize int

	// MaxIdentities is how many identities (devices plus modules) the
	// registry may hold: 0 means IoT Hub's 1,000,000 (DefaultMaxIdentities),
	// a negative value no limit. One more is refused with 413002
	// TooManyDevices (Registry.SetMaxIdentities).
	MaxIdentities int
	// MaxModulesPerDevice is how many modules one device may have: 0 means
	// IoT Hub's 50 (DefaultMaxModulesPerDevice), a negative value no limit.
	// One more is refused with 413003 TooManyModulesOnDevice
	// (Registry.SetMaxModulesPerDevice).
	MaxModulesPerDevice int
	// ServiceReadTimeout bounds reading a whole service API request,
	// headers and body (0: 10 s): a client that declares a body and sends
	// one byte is cut off then.
	ServiceReadTimeout time.Duration
	// ServiceWriteTimeout bounds writing a service API answer (0: 30 s);
	// direct methods get their response and connect time-outs on top, and
	// telemetry follow streams none.
	ServiceWriteTimeout time.Duration
	// ServiceIdleTimeout closes idle keep-alive connections of the service
	// API (0: 2 min).
	ServiceIdleTimeout time.Duration
	// ServiceMaxBody bounds a service API request body (0: 1 MiB + 64 KiB:
	// the largest JSON document the API takes, or a 64 KB C2D message);
	// larger bodies are refused with 413.
	ServiceMaxBody int64
	// NoDashboard turns off the web dashboard the service listener serves at
	// "/" and "/ui/" (DashboardHandler).
	NoDashboard bool
	// MetricsPublic serves /metrics (MetricsHandler) on the service
	// listener to every client; by default only loopback clients and
	// logged-in dashboard browsers get it.
	MetricsPublic bool
	// DashboardSections are pages other parts of the hub add to the
	// dashboard (see DashboardSection).
	DashboardSections []DashboardSection

	// cloudEvents, when set (tests in this package), replaces what the hooks
	// tell the cloud side.
	cloudEvents func(*Server) cloudSide
}

// Quirks are IoT Hub behaviours that the reference material marks as
// inferred or undocumented ([I] in docs/iothub-behavior.md). The zero value is
// fakehub's best guess of IoT Hub; each field switches one behaviour, the
// way mochi's Compatibilities do.
type Quirks struct {
	// DisabledDeviceCode is the CONNACK return code for a disabled device:
	// 0 means 5 (the C SDK docs: the hub "always" returns 5); 3 is what the
	// C SDK maps to DEVICE_DISABLED (docs/iothub-behavior.md §3, §11.1). A disabled
	// device is refused before its token's signature is checked, so with a
	// code other than 5 a client without any key can tell which device IDs
	// exist and are disabled.
	DisabledDeviceCode byte
	// SubackOnForbiddenSubscribe answers a forbidden SUBSCRIBE filter with
	// SUBACK 0x80 instead of closing the connection, which IoT Hub does
	// (docs/iothub-behavior.md §4.5, observed).
	SubackOnForbiddenSubscribe bool
	// IgnoreForbiddenPublish PUBACKs and drops a PUBLISH to a forbidden topic
	// instead of closing the connection (IoT Hub closes, inferred from the
	// protocol gateway, docs/iothub-behavior.md §4.5).
	IgnoreForbiddenPublish bool
	// AllowDeviceKeyForModule lets a module connect with a token signed by
	// its device's key over the device resource, like IoT Edge hub's opt-in
	// allowDeviceAuthForModule (docs/iothub-behavior.md §11.4; IoT Hub: unknown).
	AllowDeviceKeyForModule bool
	// ExactDeviceKeyScope requires a token signed with a device's (or
	// module's) own key to name exactly "{host}/devices/{id}" (or the
	// module's resource), as IoT Edge hub does, and refuses a broader sr
	// ("{host}", "{host}/devices") with sas.ReasonScopeMismatch. IoT Hub
	// applies its prefix rule to these tokens too (the key already binds the
	// identity): github.com/amenzhinsky/iothub signs sr={host} with the
	// device key and its end-to-end suite passes against real hubs
	// (docs/iothub-behavior.md §2.4, §11.4), so by default fakehub accepts
	// them.
	ExactDeviceKeyScope bool
	// CaseInsensitiveIDsInSR compares device and module IDs in the token's
	// sr without regard to case, as IoT Edge hub does (docs/iothub-behavior.md §2.4,
	// §11.3; registry IDs are case-sensitive).
	CaseInsensitiveIDsInSR bool
	// AcceptLeadingQuestionMarkInBag tolerates a '?' before the telemetry
	// property bag ("devices/d/messages/events/?a=b"), as the Python SDK wiki
	// writes it (docs/iothub-behavior.md §11.9; IoT Hub: unknown).
	AcceptLeadingQuestionMarkInBag bool
	// KeepAliveCap is the longest time a silent connection stays open:
	// 1.5 × keep-alive (exactly: 1.5 s for keep-alive 1), capped at this. 0
	// means 1767 s, the Azure load balancer's idle limit (docs/iothub-behavior.md
	// §1.17). Under 1 s counts as 1 s.
	KeepAliveCap time.Duration
	// KeepAliveZeroNoTimeout makes keep-alive 0 mean "no time-out" (plain
	// MQTT) instead of the cap (the protocol gateway's rule, docs/iothub-behavior.md §1.17).
	KeepAliveZeroNoTimeout bool
	// DropInvalidWill accepts a CONNECT whose will targets something other
	// than the identity's telemetry topic and drops the will; by default such
	// a CONNECT is refused with CONNACK 5 (the docs only say "telemetry topic
	// only", docs/iothub-behavior.md §5).
	DropInvalidWill bool
	// WillOnHubClose publishes the will also when the hub itself closes the
	// connection for an administrative reason (token expiry, a newer
	// connection for the same identity, device disabled or removed). By
	// default it is published only when the connection ends without
	// DISCONNECT for any other reason (network loss, keep-alive, protocol
	// violation), as "the network connection closes" reads in docs/iothub-behavior.md §4.1.
	WillOnHubClose bool
	// TwinPatchWithoutAPIVersion accepts a reported-properties PATCH from a
	// connection whose user name carries no api-version ("{host}/{device}",
	// the form of the SAS doc and the classic Paho sample). IoT Hub answered
	// such a PATCH with 400 (observed: andriyadi/AzureIoTHubMQTTClient#5;
	// docs/iothub-behavior.md §1.11), so by default fakehub does too; a twin
	// GET is answered either way (no source shows it refused).
	TwinPatchWithoutAPIVersion bool
	// KeepC2DWithoutSubscription keeps a C2D message sent while its device
	// is connected without a C2D subscription queued (until the device
	// subscribes or the message expires). By default it is rejected (state
	// rejected, feedback Rejected), as IoT Hub does (docs/iothub-behavior.md §4.2).
	KeepC2DWithoutSubscription bool
	// CaseSensitiveHostInSR compares the host name in the token's sr with Options.HostName
	// (and Aliases) exactly, as IoT Edge hub's DeviceScopeTokenAuthenticator does; by
	// default without regard to case (docs/iothub-behavior.md §11.2). Part of ProfileEdgeHub.
	CaseSensitiveHostInSR bool
	// RequireAPIVersion refuses a user name without api-version (the bare form), as IoT Edge
	// hub's user-name parser does; IoT Hub accepts it (docs/iothub-behavior.md §1.11, §1.12).
	// Part of ProfileEdgeHub.
	RequireAPIVersion bool
	// DropOnKeyChange re-checks the tokens of an identity's live connections when its keys
	// change (Registry.Put, SetKeys, the service API's device PUT) and drops those that no
	// longer verify, as IoT Edge hub's ConnectionReauthenticator does. By default a live
	// connection stays until its token expires: IoT Hub checks a token at CONNECT and at
	// expiry, and documents nothing about key changes (docs/iothub-behavior.md §14.3).
	// Part of ProfileEdgeHub.
	DropOnKeyChange bool
	// WarnDocumentedMistakes records a warning (a Rejection with Warning set, logged at WARN)
	// for each accepted thing Microsoft's documentation calls wrong: lower-case or missing
	// escapes in sr, a hub-scoped device token, a user name without api-version or '?'.
	// Nothing is refused. Part of ProfileStrict.
	WarnDocumentedMistakes bool
}

func (q Quirks) disabledCode() byte {
	if q.DisabledDeviceCode == 0 {
		return 5
	}
	return q.DisabledDeviceCode
}

func (q Quirks) keepAliveCap() time.Duration {
	if q.KeepAliveCap <= 0 {
		return 1767 * time.Second
	}
	return q.KeepAliveCap
}

// Defaults.
const (
	DefaultConnectTimeout  = 10 * time.Second
	DefaultTelemetryBuffer = 10000
	// DefaultTelemetryBufferBytes is the default Options.TelemetryBufferBytes.
	DefaultTelemetryBufferBytes = 64 << 20
)

func (o *Options) setDefaults() {
	if o.HostName == "" {
		o.HostName = "localhost"
	}
	if o.Addr == "" {
		o.Addr = "127.0.0.1:0"
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.ConnectTimeout <= 0 {
		o.ConnectTimeout = DefaultConnectTimeout
	}
	if o.TelemetryBuffer <= 0 {
		o.TelemetryBuffer = DefaultTelemetryBuffer
	}
	if o.TelemetryBufferBytes <= 0 {
		o.TelemetryBufferBytes = DefaultTelemetryBufferBytes
	}
	switch {
	case o.TokenExpiryGrace == 0:
		o.TokenExpiryGrace = sas.DefaultSkew
	case o.TokenExpiryGrace < 0:
		o.TokenExpiryGrace = 0
	}
	if o.Registry == nil {
		o.Registry = NewRegistry(o.Rand)
	}
	switch {
	case o.WriteTimeout == 0:
		o.WriteTimeout = DefaultWriteTimeout
	case o.WriteTimeout < 0:
		o.WriteTimeout = 0
	}
	if o.OutboxSize <= 0 {
		o.OutboxSize = DefaultOutboxSize
	}
	if o.ServiceReadTimeout <= 0 {
		o.ServiceReadTimeout = 10 * time.Second
	}
	if o.ServiceWriteTimeout <= 0 {
		o.ServiceWriteTimeout = 30 * time.Second
	}
	if o.ServiceIdleTimeout <= 0 {
		o.ServiceIdleTimeout = 2 * time.Minute
	}
	if o.ServiceMaxBody <= 0 {
		o.ServiceMaxBody = 1<<20 + 64<<10
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
}
