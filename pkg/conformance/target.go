package conformance

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"testing"
	"time"

	"github.com/hubkit/hubkit/pkg/device"
	"github.com/hubkit/hubkit/pkg/iothub"
)

// Endpoint says how to reach a hub's MQTT endpoint.
type Endpoint struct {
	// Addr is the host:port to dial, e.g. "myhub.azure-devices.net:8883" or
	// "127.0.0.1:49152" for a local fake hub.
	Addr string
	// HostName is the hub host name used in MQTT user names and in the sr of
	// SAS tokens, e.g. "myhub.azure-devices.net". It is also the TLS server
	// name unless TLS.ServerName says otherwise.
	HostName string
	// TLS is the client TLS configuration; it must trust the hub's CA
	// (RootCAs nil: the system roots, as for a real hub).
	TLS *tls.Config
	// Transport is device.TransportMQTT (the default: MQTT over TLS at Addr) or
	// device.TransportWebSocket (MQTT over WebSockets: Addr is the WebSocket listener,
	// dialled as wss://Addr/$iothub/websocket). Every device case runs over either.
	Transport device.Transport
}

// DeviceIdentity is a device (or module, when ModuleID is set) registered in
// the hub under test.
type DeviceIdentity struct {
	DeviceID string
	ModuleID string // "" for a device
	// PrimaryKey and SecondaryKey are the identity's symmetric keys, base64
	// as in connection strings and the Azure portal.
	PrimaryKey   string
	SecondaryKey string
	// ConnectionString is the identity's connection string (optional,
	// informational; cases build credentials from the keys).
	ConnectionString string
}

// Target is the hub under test. NewDevice is called once per case (at most)
// and must return a device nobody else uses: cases check initial twins,
// queues and sessions, so state must not leak between them. NewDevice may
// call t.Skip when it cannot provide one, and t.Fatal when it fails.
type Target interface {
	Endpoint() Endpoint
	NewDevice(t testing.TB) DeviceIdentity
}

// Optional capabilities, found by type assertion on the Target. A case that
// needs a capability the target lacks is skipped, never passed.

// CloudToDevice sends cloud-to-device messages (the service side of C2D):
// cases always set MessageID, Payload and perhaps application Properties.
// When the device queue is full, SendC2D returns an *iothub.Error of code
// 403004 (DeviceMaximumQueueDepthExceeded, HTTP 403).
type CloudToDevice interface {
	SendC2D(ctx context.Context, deviceID string, m iothub.C2DMessage) error
}

// TelemetryReader reads the telemetry the hub received, as its service side
// (Event Hubs endpoint) would see it. NextTelemetry returns the messages of
// deviceID in arrival order, starting with the first the device ever sent,
// waiting until ctx ends for the next one. The cases read DeviceID, ModuleID,
// Payload, SystemProperties (keyed "$.mid", "$.ct", ...), Properties
// (application properties, including the hub-added mqtt-retain and
// iothub-MessageType) and Annotations (iothub-connection-device-id, ...).
type TelemetryReader interface {
	NextTelemetry(ctx context.Context, deviceID string) (iothub.Event, error)
}

// MethodInvoker invokes direct methods. A hub error answer (404103 device
// not online, 504101 timeout) is returned as an *iothub.Error.
type MethodInvoker interface {
	InvokeMethod(ctx context.Context, deviceID, name string, payload []byte, timeout time.Duration) (status int, response []byte, err error)
}

// TwinEditor changes a device twin's desired properties (a JSON merge patch
// of the "desired" section, e.g. {"fan":true}).
type TwinEditor interface {
	UpdateDesired(ctx context.Context, deviceID string, patch []byte) error
}

// ModuleProvisioner creates a fresh device with a module. Both identities
// have their own keys.
type ModuleProvisioner interface {
	NewModule(t testing.TB) (device, module DeviceIdentity)
}

// NamedDevices creates a fresh device with a chosen ID (used to build IDs
// where one is a prefix of another).
type NamedDevices interface {
	NewDeviceWithID(t testing.TB, deviceID string) DeviceIdentity
}

// DeviceDisabler creates a device whose registry status is disabled.
type DeviceDisabler interface {
	NewDisabledDevice(t testing.TB) DeviceIdentity
}

// PolicyProvider hands out shared access policies of the hub. With
// deviceConnect true, a policy holding DeviceConnect (IoT Hub's built-in
// "device"); with false, one without it (built-in "registryRead"). ok is
// false when the target has no such policy to offer.
type PolicyProvider interface {
	Policy(t testing.TB, deviceConnect bool) (p Policy, ok bool)
}

// Policy is a shared access policy name and key (base64).
type Policy struct {
	Name string
	Key  string
}

// RejectionReader (fake hubs only) reports why the hub refused a CONNECT:
// the first refusal recorded for clientID, waiting until ctx ends. Reasons
// are pkg/sas codes ("expired", "signature-mismatch", ...). With it, a case
// checks that CONNACK 5 was sent for the right reason, not just sent.
type RejectionReader interface {
	Rejection(ctx context.Context, clientID string) (iothub.Rejection, error)
}

// TokenExpiryEnforcer is implemented by targets that say how soon after a
// connected device's token expires the hub drops the connection (fakehub:
// its TokenExpiryGrace). IoT Hub does it "when the token expires" but with
// an undocumented delay (observed: minutes), so real-hub targets leave it out
// and the case skips.
type TokenExpiryEnforcer interface {
	TokenExpiryGrace() time.Duration
}

// Limited is implemented by targets that lack a hub behaviour on the device
// side (for example a fake hub without twins yet). Lacks returns why the
// feature is missing, or "" when it is supported. Cases needing a lacking
// feature skip with that reason.
type Limited interface {
	Lacks(feature string) string
}

// Features a Limited target may lack.
const (
	FeatureTwin      = "twin"      // twin GET / reported PATCH over MQTT
	FeatureC2D       = "c2d"       // cloud-to-device delivery
	FeatureMethods   = "methods"   // direct methods
	FeatureKeepAlive = "keepalive" // closing silent connections after 1.5 × keep-alive
)

// X509Provisioner registers X.509 identities (docs/iothub-behavior.md §1.23, §1.24). The
// suite mints the certificates itself (valid, expired, not yet valid, for the wrong usage)
// except those that must come from a CA the hub trusts.
type X509Provisioner interface {
	// NewSelfSignedDevice registers a fresh device of type selfSigned whose primary
	// thumbprint is the SHA-256 thumbprint of cert.
	NewSelfSignedDevice(t testing.TB, cert *x509.Certificate) DeviceIdentity
	// NewCADevice registers a fresh device of type certificateAuthority and returns it
	// with a function that mints a certificate with subject CN=cn (and its key), signed by
	// a CA registered and verified on the hub.
	NewCADevice(t testing.TB) (DeviceIdentity, func(cn string) tls.Certificate)
}

// TLS drill names (see TLSDrills; docs/iothub-behavior.md §8.5).
const (
	DrillAzureG2       = "azure-g2"        // a chain shaped like IoT Hub's: DigiCert Global Root G2 → Azure RSA issuing CA → leaf
	DrillMSRSA2017     = "azure-msrsa2017" // under Microsoft RSA Root Certificate Authority 2017
	DrillAzureECC      = "azure-ecc"       // the ECC chain: DigiCert Global Root G3 → Azure ECC issuing CA → leaf
	DrillExpired       = "expired"         // an expired server certificate
	DrillWrongSAN      = "wrong-san"       // a server certificate for another host name
	DrillUntrustedRoot = "untrusted-root"  // a chain to a root the device does not trust
	DrillRootChange    = "root-change"     // the root alternates between two handshakes (Baltimore → G2 migration)
)

// TLSDrills (fake hubs) serve the hub behind another server certificate set-up. TLSDrill
// returns the endpoint of a hub presenting the drill, whose TLS configuration trusts what a
// correct device trusts (for root-change: the old root and the new one; for the refusal
// drills: the hub's usual CA), a device registered there, and the old root alone (for
// root-change; nil otherwise). ok is false when the drill is not offered. Each call gives a
// fresh server, so the root-change drill starts with the old root.
type TLSDrills interface {
	TLSDrill(t testing.TB, drill string) (ep Endpoint, dev DeviceIdentity, oldRoot *x509.Certificate, ok bool)
}
