package conformance_test

import (
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"testing"

	"github.com/hubkit/hubkit/pkg/conformance"
	"github.com/hubkit/hubkit/pkg/iothub/dps"
	"github.com/hubkit/hubkit/pkg/sas"
)

// The in-process fakehub's DPS (fakehub.Options.DPS) as the suite's Provisioning target.

func (f *fakeTarget) DPS() conformance.DPSEndpoint {
	d := f.hub.DPS()
	if d == nil {
		return conformance.DPSEndpoint{}
	}
	return conformance.DPSEndpoint{Addr: d.Addr(), HTTPSAddr: d.HTTPAddr(), HostName: f.hub.HostName(), IDScope: d.IDScope(), TLS: f.hub.ClientTLS()}
}

func (f *fakeTarget) dpsOrSkip(t testing.TB) {
	t.Helper()
	if f.hub.DPS() == nil {
		t.Skip("this fakehub runs without a DPS (fakehub.Options.DPS)")
	}
}

func (f *fakeTarget) NewEnrollment(t testing.TB, disabled bool) conformance.DPSEnrollment {
	t.Helper()
	f.dpsOrSkip(t)
	st := dps.ProvisioningEnabled
	if disabled {
		st = dps.ProvisioningDisabled
	}
	en, err := f.hub.DPS().SetEnrollment(dps.Enrollment{RegistrationID: randomHex6("conf-reg-"), Attestation: dps.SymmetricKeyAttestation("", ""), ProvisioningStatus: st})
	if err != nil {
		t.Fatalf("fakehub DPS: %v", err)
	}
	return conformance.DPSEnrollment{RegistrationID: en.RegistrationID, Key: en.Attestation.SymmetricKey.PrimaryKey}
}

func (f *fakeTarget) NewGroupDevice(t testing.TB) conformance.DPSEnrollment {
	t.Helper()
	f.dpsOrSkip(t)
	g, err := f.hub.DPS().SetGroup(dps.EnrollmentGroup{EnrollmentGroupID: randomHex6("conf-group-"), Attestation: dps.SymmetricKeyAttestation("", "")})
	if err != nil {
		t.Fatalf("fakehub DPS: %v", err)
	}
	gk, _ := sas.DecodeKey(g.Attestation.SymmetricKey.PrimaryKey)
	regID := randomHex6("conf-member-")
	return conformance.DPSEnrollment{RegistrationID: regID, GroupID: g.EnrollmentGroupID, Key: base64.StdEncoding.EncodeToString(sas.DeriveDeviceKey(gk, regID))}
}

func randomHex6(prefix string) string { return prefix + randomHex(6) }

// x509Attestation is an X.509 attestation holding cert as primary: client certificate or
// signing certificate.
func x509Attestation(cert *x509.Certificate, signing bool) dps.Attestation {
	set := &dps.X509Certificates{Primary: &dps.X509CertificateWithInfo{Certificate: string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: cert.Raw}))}}
	if signing {
		return dps.Attestation{Type: dps.AttestationX509, X509: &dps.X509Attestation{SigningCertificates: set}}
	}
	return dps.Attestation{Type: dps.AttestationX509, X509: &dps.X509Attestation{ClientCertificates: set}}
}

func (f *fakeTarget) NewX509Enrollment(t testing.TB, cert *x509.Certificate) {
	t.Helper()
	f.dpsOrSkip(t)
	en, err := f.hub.DPS().SetEnrollment(dps.Enrollment{RegistrationID: cert.Subject.CommonName, Attestation: x509Attestation(cert, false)})
	if err != nil {
		t.Fatalf("fakehub DPS: %v", err)
	}
	t.Cleanup(func() { _ = f.hub.DPS().DeleteEnrollment(en.RegistrationID) })
}

func (f *fakeTarget) NewX509Group(t testing.TB, ca *x509.Certificate) string {
	t.Helper()
	f.dpsOrSkip(t)
	g, err := f.hub.DPS().SetGroup(dps.EnrollmentGroup{EnrollmentGroupID: randomHex6("conf-x509-group-"), Attestation: x509Attestation(ca, true)})
	if err != nil {
		t.Fatalf("fakehub DPS: %v", err)
	}
	t.Cleanup(func() { _ = f.hub.DPS().DeleteGroup(g.EnrollmentGroupID) })
	return g.EnrollmentGroupID
}
