package conformance

import (
	"crypto/tls"
	"crypto/x509"
	"testing"
)

// DPSEndpoint says how to reach the Device Provisioning Service linked to the hub under
// test.
type DPSEndpoint struct {
	// Addr is the MQTT host:port to dial ("global.azure-devices-provisioning.net:8883").
	Addr string
	// HTTPSAddr is the HTTPS host:port of the registration API ("" skips the HTTPS case).
	HTTPSAddr string
	// HostName is the DPS host name: the TLS server name (global.azure-devices-provisioning.net).
	HostName string
	IDScope  string
	// TLS is the client TLS configuration (RootCAs nil: the system roots).
	TLS *tls.Config
}

// DPSEnrollment is an individual symmetric-key enrollment, or a device of a symmetric-key
// enrollment group (GroupID set; Key is then the device's derived key).
type DPSEnrollment struct {
	RegistrationID string
	Key            string // the device's key, base64
	GroupID        string
}

// Provisioning is the capability of a target with a DPS whose enrollments assign devices to
// the hub under test (Endpoint().HostName). NewEnrollment creates a fresh individual
// enrollment (disabled when asked); NewGroupDevice a fresh group and one device's
// registration ID and derived key. Both clean up after the case; either may t.Skip.
type Provisioning interface {
	DPS() DPSEndpoint
	NewEnrollment(t testing.TB, disabled bool) DPSEnrollment
	NewGroupDevice(t testing.TB) DPSEnrollment
}

// NeedProvisioning names the Provisioning capability in Case.Needs.
const NeedProvisioning = "Provisioning"

// X509Provisioning is the capability of a Provisioning target whose DPS takes X.509
// enrollments (docs/iothub-behavior.md §7.14–§7.16). The suite mints every certificate
// itself: the device's for an individual enrollment, a CA of its own for a group.
type X509Provisioning interface {
	// NewX509Enrollment creates an individual enrollment whose primary client certificate
	// is cert (its subject CN is the registration ID) and cleans it up after the case.
	NewX509Enrollment(t testing.TB, cert *x509.Certificate)
	// NewX509Group creates an enrollment group whose signing certificate is ca and returns
	// its ID; it is cleaned up after the case.
	NewX509Group(t testing.TB, ca *x509.Certificate) string
}

// NeedX509Provisioning names the X509Provisioning capability in Case.Needs.
const NeedX509Provisioning = "X509Provisioning"
