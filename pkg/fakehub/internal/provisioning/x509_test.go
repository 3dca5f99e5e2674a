package provisioning

import (
	"context"
	"crypto/x509"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/hubkit/hubkit/internal/certs"
	"github.com/hubkit/hubkit/pkg/iothub"
	"github.com/hubkit/hubkit/pkg/iothub/dps"
	"github.com/hubkit/hubkit/pkg/sas"
)

func x509Cert(c *x509.Certificate) *dps.X509Certificates {
	return &dps.X509Certificates{Primary: &dps.X509CertificateWithInfo{Certificate: CertificatePEM(c)}}
}

func chain(l *certs.Leaf) []*x509.Certificate { return append([]*x509.Certificate{l.Cert}, l.Chain...) }

// TestX509Attestation: an individual enrollment admits its own certificate (the hub device
// becomes selfSigned with its thumbprint); a group admits a certificate signed by its root
// or through its intermediate (certificateAuthority); every other certificate is refused
// with a named reason (docs/iothub-behavior.md §7.14–§7.17).
func TestX509Attestation(t *testing.T) {
	e, hub, clk := newEngine(t, Options{})
	now := clk.Now()
	root, err := certs.NewCAWith(certs.CAOptions{CommonName: "dps-root", MaxPathLen: -1}, now, nil)
	if err != nil {
		t.Fatal(err)
	}
	inter, err := root.NewIntermediate(certs.CAOptions{CommonName: "dps-intermediate"}, now)
	if err != nil {
		t.Fatal(err)
	}
	other, _ := certs.NewCAWith(certs.CAOptions{CommonName: "stranger"}, now, nil)
	leaf := func(ca *certs.CA, cn string, o certs.LeafOptions) *certs.Leaf {
		o.CommonName = cn
		var l *certs.Leaf
		var err error
		if ca == nil {
			l, err = certs.SelfSignedLeaf(o, now, nil)
		} else {
			l, err = ca.IssueLeaf(o, now)
		}
		if err != nil {
			t.Fatal(err)
		}
		return l
	}
	self := leaf(nil, "cam-1", certs.LeafOptions{})
	en, err := e.PutEnrollment(dps.Enrollment{RegistrationID: "cam-1", Attestation: dps.Attestation{Type: dps.AttestationX509, X509: &dps.X509Attestation{ClientCertificates: x509Cert(self.Cert)}}}, "")
	if err != nil {
		t.Fatal(err)
	}
	info := en.Attestation.X509.ClientCertificates.Primary
	_, s256 := iothub.Thumbprints(self.Cert.Raw)
	if info.Certificate != "" || info.Info == nil || info.Info.SHA256Thumbprint != s256 || info.Info.SubjectName != "CN=cam-1" {
		t.Errorf("stored client certificate = %+v, want info only (CN=cam-1, SHA-256 %s)", info, s256)
	}
	if _, err := e.PutGroup(dps.EnrollmentGroup{EnrollmentGroupID: "factory", Attestation: dps.Attestation{Type: dps.AttestationX509, X509: &dps.X509Attestation{SigningCertificates: x509Cert(root.Cert)}}}, ""); err != nil {
		t.Fatal(err)
	}
	if _, err := e.PutGroup(dps.EnrollmentGroup{EnrollmentGroupID: "leafy", Attestation: dps.Attestation{Type: dps.AttestationX509, X509: &dps.X509Attestation{SigningCertificates: x509Cert(self.Cert)}}}, ""); err == nil || !strings.Contains(err.Error(), "not a CA certificate") {
		t.Errorf("a group with a leaf as signing certificate: %v, want refused (not a CA certificate)", err)
	}

	register := func(a *Attested) Assignment {
		t.Helper()
		op, _, f := e.Register(a, nil)
		if f != nil {
			t.Fatalf("Register = %v", f)
		}
		st, _, f := e.Poll(context.Background(), a.RegistrationID, op.OperationID)
		if f != nil || st.Status != dps.StatusAssigned || st.RegistrationState.X509 == nil || st.RegistrationState.SymmetricKey != nil {
			t.Fatalf("Poll = %+v, %v; want assigned with an x509 attestation result", st, f)
		}
		return hub.last()
	}
	a, f := e.Attest(Credential{RegistrationID: "cam-1", Certificates: chain(self)})
	if f != nil {
		t.Fatalf("individual X.509: %v", f)
	}
	if as := register(a); as.Auth.EffectiveType() != iothub.AuthSelfSigned || as.Auth.X509Thumbprint.PrimaryThumbprint != s256 || as.TrustCA != nil {
		t.Errorf("individual assignment auth = %+v, want selfSigned with %s", as.Auth, s256)
	}
	viaInter := leaf(inter, "sensor-9", certs.LeafOptions{})
	a, f = e.Attest(Credential{RegistrationID: "sensor-9", Certificates: chain(viaInter)})
	if f != nil {
		t.Fatalf("group X.509 through an intermediate: %v", f)
	}
	as := register(a)
	if as.Auth.EffectiveType() != iothub.AuthCertificateAuthority || as.TrustCA == nil || !as.TrustCA.Equal(root.Cert) || as.GroupID != "factory" {
		t.Errorf("group assignment = %+v, want certificateAuthority trusting the group's root", as)
	}

	expired := leaf(root, "old-1", certs.LeafOptions{NotBefore: now.Add(-48 * time.Hour), Validity: time.Hour})
	for _, tc := range []struct {
		name, regID string
		chain       []*x509.Certificate
		want        sas.Reason
	}{
		{"untrusted", "x-1", chain(leaf(other, "x-1", certs.LeafOptions{})), ReasonX509Untrusted},
		{"missing-intermediate", "sensor-10", []*x509.Certificate{leaf(inter, "sensor-10", certs.LeafOptions{}).Cert}, ReasonX509Untrusted},
		{"cn-not-registration-id", "sensor-11", chain(leaf(root, "sensor-12", certs.LeafOptions{})), ReasonX509CNMismatch},
		{"other-certificate-for-individual", "cam-1", chain(leaf(root, "cam-1", certs.LeafOptions{})), ReasonX509UnknownCertificate},
		{"expired", "old-1", chain(expired), ReasonX509Expired},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, f := e.Attest(Credential{RegistrationID: tc.regID, Certificates: tc.chain})
			if f == nil || f.Reason != tc.want || f.Code != dps.CodeUnauthorized {
				t.Errorf("Attest = %v, want 401 %s", f, tc.want)
			}
		})
	}
	// A SAS token for an X.509 enrollment, and a certificate for a symmetric one.
	if _, err := e.PutEnrollment(dps.Enrollment{RegistrationID: "keyed", Attestation: dps.SymmetricKeyAttestation(devKey, "")}, ""); err != nil {
		t.Fatal(err)
	}
	if _, f := e.Attest(Credential{RegistrationID: "keyed", Certificates: chain(leaf(root, "keyed", certs.LeafOptions{}))}); f == nil || f.Reason != ReasonAttestationMismatch {
		t.Errorf("certificate for a symmetric-key enrollment: %v, want %s", f, ReasonAttestationMismatch)
	}
	if _, f := e.Attest(Credential{RegistrationID: "cam-1", Token: token(t, e.IDScope(), "cam-1", devKey, "registration", now.Add(time.Hour))}); f == nil || f.Reason != ReasonAttestationMismatch {
		t.Errorf("SAS token for an X.509 enrollment: %v, want %s", f, ReasonAttestationMismatch)
	}
	b, _ := json.Marshal(en)
	if strings.Contains(string(b), "BEGIN CERTIFICATE") {
		t.Errorf("the service's enrollment carries the certificate: %s", b)
	}
}
