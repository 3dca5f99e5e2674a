package conformance

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"time"

	"github.com/hubkit/hubkit/internal/certs"
	"github.com/hubkit/hubkit/internal/mqttraw"
	"github.com/hubkit/hubkit/pkg/device"
	"github.com/hubkit/hubkit/pkg/iothub"
	"github.com/hubkit/hubkit/pkg/iothub/dps"
)

const docDPSX509 = "learn.microsoft.com/azure/iot-dps/concepts-x509-attestation"

// dpsX509Cases check X.509 attestation at the Device Provisioning Service
// (docs/iothub-behavior.md §7.14–§7.16): the certificate in the TLS handshake is the
// credential, its subject CN the registration ID, and the assigned device connects to the
// hub with the same certificate.
var dpsX509Cases = []Case{
	{
		ID:          "dps/x509/individual",
		Requirement: "A device of an individual X.509 enrollment registers over MQTT with its certificate and no password, is assigned to the hub under test, and then connects to it with the same certificate.",
		Section:     "docs/iothub-behavior.md §7.14, §7.15; " + docDPSX509,
		Certainty:   "C",
		Needs:       []string{NeedProvisioning, NeedX509Provisioning},
		Timeout:     40 * time.Second,
		run: func(e *env) {
			l := e.selfSigned(certs.LeafOptions{CommonName: randomID("conf-x509-reg-")})
			e.target.(X509Provisioning).NewX509Enrollment(e.t, l.Cert)
			cert := l.TLSCertificate()
			p := e.provisionX509(&cert, device.ProvisionMQTT)
			if p.State.X509 == nil {
				e.Errorf("the registration state has no x509 member: %+v", p.State)
			}
			e.connectX509(DeviceIdentity{DeviceID: p.DeviceID}, cert)
		},
	},
	{
		ID:          "dps/x509/group",
		Requirement: "A device whose certificate is signed by the signing certificate of an X.509 enrollment group registers over HTTPS with it, is assigned with its certificate's CN as device ID and the group's ID in the registration state, and connects to the hub with the same certificate.",
		Section:     "docs/iothub-behavior.md §7.14, §7.16; " + docDPSX509,
		Certainty:   "C",
		Needs:       []string{NeedProvisioning, NeedX509Provisioning},
		Timeout:     40 * time.Second,
		run: func(e *env) {
			if e.provisioning().DPS().HTTPSAddr == "" {
				e.Skipf("the target gives no HTTPS address for its DPS")
			}
			ca := e.newCA("conformance DPS group CA")
			group := e.target.(X509Provisioning).NewX509Group(e.t, ca.Cert)
			regID := randomID("conf-x509-member-")
			cert := e.issueDevice(ca, regID)
			p := e.provisionX509(&cert, device.ProvisionHTTPS)
			if p.DeviceID != regID {
				e.Errorf("group device assigned as %q, want its certificate's CN %q", p.DeviceID, regID)
			}
			if p.State.X509 == nil || p.State.X509.EnrollmentGroupID != group {
				e.Errorf("registration state x509 = %+v, want enrollmentGroupId %q", p.State.X509, group)
			}
			e.connectX509(DeviceIdentity{DeviceID: p.DeviceID}, cert)
		},
	},
	{
		ID:          "dps/x509/refused/untrusted-chain",
		Requirement: "A certificate signed by a CA that no enrollment group holds, for a registration ID no individual enrollment admits, is refused: CONNACK 5, or a 401 answer to the register request.",
		Section:     "docs/iothub-behavior.md §7.6, §7.16, §11.15",
		Certainty:   "O/I",
		Needs:       []string{NeedProvisioning, NeedX509Provisioning},
		run: func(e *env) {
			regID := randomID("conf-x509-stranger-")
			cert := e.issueDevice(e.newCA("conformance CA nobody enrolled"), regID)
			e.expectDPSRefusedWith(regID, e.dpsX509Packet(regID), &cert, "x509-untrusted-chain")
		},
	},
	{
		ID:          "dps/x509/refused/cn-mismatch",
		Requirement: "A registration whose ID is not its certificate's subject CN is refused, even when the certificate is that of an individual enrollment: CONNACK 5, or a 401 answer to the register request.",
		Section:     "docs/iothub-behavior.md §7.14, §11.15; " + docDPSX509,
		Certainty:   "C/O",
		Needs:       []string{NeedProvisioning, NeedX509Provisioning},
		run: func(e *env) {
			l := e.selfSigned(certs.LeafOptions{CommonName: randomID("conf-x509-reg-")})
			e.target.(X509Provisioning).NewX509Enrollment(e.t, l.Cert)
			cert := l.TLSCertificate()
			other := randomID("conf-x509-other-")
			e.expectDPSRefusedWith(other, e.dpsX509Packet(other), &cert, "x509-cn-mismatch")
		},
	},
}

// newCA mints a root CA of the suite's own.
func (e *env) newCA(cn string) *certs.CA {
	e.t.Helper()
	ca, err := certs.NewCAWith(certs.CAOptions{CommonName: cn}, e.now(), nil)
	if err != nil {
		e.Fatalf("minting a CA: %v", err)
	}
	return ca
}

// issueDevice mints a device certificate with subject CN=id signed by ca.
func (e *env) issueDevice(ca *certs.CA, id string) tls.Certificate {
	e.t.Helper()
	l, err := ca.IssueDevice(id, 24*time.Hour, certs.ECDSAP256, e.now())
	if err != nil {
		e.Fatalf("minting a device certificate: %v", err)
	}
	return l.TLSCertificate()
}

// provisionX509 runs the reference client's registration with cert (whose CN is the
// registration ID) and checks the assignment.
func (e *env) provisionX509(cert *tls.Certificate, tr device.ProvisionTransport) device.Provisioned {
	e.t.Helper()
	l, err := leafOf(cert)
	if err != nil {
		e.Fatalf("%v", err)
	}
	return e.provision(DPSEnrollment{RegistrationID: l.Subject.CommonName}, tr, func(c *device.ProvisionConfig) { c.Certificate = cert })
}

// dpsX509Packet is the DPS CONNECT of an X.509 device: the documented user name and no
// password.
func (e *env) dpsX509Packet(regID string) mqttraw.ConnectPacket {
	return mqttraw.ConnectPacket{ClientID: regID, CleanSession: true, KeepAlive: 60,
		UserName: mqttraw.String(iothub.DPSUserName{IDScope: e.provisioning().DPS().IDScope, RegistrationID: regID, APIVersion: dps.APIVersion}.String())}
}

// leafOf parses the leaf of cert.
func leafOf(cert *tls.Certificate) (*x509.Certificate, error) {
	if len(cert.Certificate) == 0 {
		return nil, errors.New("the certificate chain is empty")
	}
	return x509.ParseCertificate(cert.Certificate[0])
}
