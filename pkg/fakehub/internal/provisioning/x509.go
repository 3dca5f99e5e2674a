package provisioning

import (
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/hubkit/hubkit/pkg/iothub"
	"github.com/hubkit/hubkit/pkg/iothub/dps"
	"github.com/hubkit/hubkit/pkg/sas"
)

// X.509 attestation (docs/iothub-behavior.md §7.14–§7.17): the device presents its
// certificate chain in the TLS handshake (no SAS token); the leaf's subject common name is
// its registration ID. An individual enrollment holds the device's own certificate
// (attestation.x509.clientCertificates); an enrollment group holds the root or intermediate
// CA that signed its devices (attestation.x509.signingCertificates), as the service REST API
// shapes them (learn.microsoft.com/rest/api/iot-dps/service/individual-enrollment/create-or-update,
// .../enrollment-group/create-or-update, api-version 2021-10-01: X509Attestation,
// X509Certificates, X509CertificateWithInfo, X509CAReferences).

// Reasons of X.509 refusals. The codes are the hub's for the same faults (pkg/fakehub
// x509auth.go), so one grep finds both.
const (
	// ReasonX509Untrusted: the chain leads to no signing certificate of an X.509 enrollment
	// group (or is broken: a missing intermediate, an expired CA).
	ReasonX509Untrusted sas.Reason = "x509-untrusted-chain"
	// ReasonX509UnknownCertificate: the certificate is not one of the individual
	// enrollment's client certificates.
	ReasonX509UnknownCertificate sas.Reason = "x509-unknown-thumbprint"
	// ReasonX509CNMismatch: the leaf's subject common name is not the registration ID.
	ReasonX509CNMismatch sas.Reason = "x509-cn-mismatch"
	// ReasonX509Expired and ReasonX509NotYetValid: the leaf is outside its validity.
	ReasonX509Expired     sas.Reason = "x509-expired"
	ReasonX509NotYetValid sas.Reason = "x509-not-yet-valid"
)

// ErrX509CAReferences refuses attestation.x509.caReferences: they name CA certificates
// uploaded to the DPS resource (Azure Resource Manager), which fakehub's DPS does not keep.
var ErrX509CAReferences = errors.New("fakehub: attestation.x509.caReferences name CA certificates uploaded to the DPS resource, which fakehub does not keep: put the CA in attestation.x509.signingCertificates instead")

// validateX509 checks an X.509 attestation and fills the certificates' info. group says
// which shape is allowed: signingCertificates for a group, clientCertificates for an
// individual enrollment.
func (e *Engine) validateX509(where string, att *dps.Attestation, group bool) error {
	att.TPM, att.SymmetricKey = nil, nil
	x := att.X509
	if x == nil {
		return dps.Errorf(dps.CodeBadRequest, "%s: attestation.type x509 needs attestation.x509", where)
	}
	if x.CAReferences != nil && (x.CAReferences.Primary != "" || x.CAReferences.Secondary != "") {
		return &dps.Error{Code: dps.CodeBadRequest, Message: where + ": " + ErrX509CAReferences.Error(), Reason: string(ReasonX509Unsupported)}
	}
	want, other := "clientCertificates", x.SigningCertificates
	certs := x.ClientCertificates
	if group {
		want, other, certs = "signingCertificates", x.ClientCertificates, x.SigningCertificates
	}
	if other != nil {
		return dps.Errorf(dps.CodeBadRequest, "%s: an %s takes attestation.x509.%s", where, map[bool]string{false: "individual enrollment", true: "enrollment group"}[group], want)
	}
	if certs == nil || certs.Primary == nil || certs.Primary.Certificate == "" {
		return dps.Errorf(dps.CodeBadRequest, "%s: attestation.x509.%s.primary.certificate is missing (PEM or base64 DER)", where, want)
	}
	for i, c := range []*dps.X509CertificateWithInfo{certs.Primary, certs.Secondary} {
		if c == nil {
			continue
		}
		name := fmt.Sprintf("attestation.x509.%s.%s", want, [2]string{"primary", "secondary"}[i])
		cert, err := iothub.ParseCertificate(c.Certificate)
		if err != nil {
			return dps.Errorf(dps.CodeBadRequest, "%s: %s: %v", where, name, err)
		}
		if group && (!cert.IsCA || !cert.BasicConstraintsValid) {
			return dps.Errorf(dps.CodeBadRequest, "%s: %s (CN=%s) is not a CA certificate: a group's signing certificate is the root or intermediate CA of its devices", where, name, cert.Subject.CommonName)
		}
		c.Info = certificateInfo(cert)
	}
	return nil
}

// certificateInfo is X509CertificateInfo of a certificate.
func certificateInfo(c *x509.Certificate) *dps.X509CertificateInfo {
	s1, s256 := iothub.Thumbprints(c.Raw)
	return &dps.X509CertificateInfo{SubjectName: "CN=" + c.Subject.CommonName, SHA1Thumbprint: s1, SHA256Thumbprint: s256,
		IssuerName: "CN=" + c.Issuer.CommonName, NotBeforeUTC: c.NotBefore.UTC(), NotAfterUTC: c.NotAfter.UTC(),
		SerialNumber: strings.ToUpper(c.SerialNumber.Text(16)), Version: c.Version}
}

// x509Certs returns the parsed certificates of an X.509 attestation (primary first).
func x509Certs(att dps.Attestation) []*x509.Certificate {
	if att.Type != dps.AttestationX509 || att.X509 == nil {
		return nil
	}
	var out []*x509.Certificate
	for _, set := range []*dps.X509Certificates{att.X509.ClientCertificates, att.X509.SigningCertificates} {
		if set == nil {
			continue
		}
		for _, c := range []*dps.X509CertificateWithInfo{set.Primary, set.Secondary} {
			if c == nil {
				continue
			}
			if cert, err := iothub.ParseCertificate(c.Certificate); err == nil {
				out = append(out, cert)
			}
		}
	}
	return out
}

// attestX509 admits a device by its TLS client certificate chain (leaf first).
func (e *Engine) attestX509(c Credential, enr *dps.Enrollment, groups []*dps.EnrollmentGroup) (*Attested, *Refusal) {
	leaf := c.Certificates[0]
	now := e.opts.Now()
	cn := leaf.Subject.CommonName
	switch {
	case now.Before(leaf.NotBefore):
		return nil, unauthorized(ReasonX509NotYetValid, fmt.Sprintf("client certificate (CN=%s) is not valid before %s", cn, leaf.NotBefore.UTC().Format(time.RFC3339)),
			"check the device's clock", "or issue the certificate with an earlier NotBefore")
	case now.After(leaf.NotAfter):
		return nil, unauthorized(ReasonX509Expired, fmt.Sprintf("client certificate (CN=%s) expired at %s", cn, leaf.NotAfter.UTC().Format(time.RFC3339)),
			"renew the device certificate (and update the enrollment's certificate for an individual enrollment)")
	case cn != c.RegistrationID:
		return nil, unauthorized(ReasonX509CNMismatch, fmt.Sprintf("client certificate CN is %q but the registration ID is %q: DPS takes the registration ID of an X.509 device from its certificate's common name", cn, c.RegistrationID),
			"register with the certificate's CN as registration ID (and MQTT client ID), or issue the certificate with CN="+c.RegistrationID+" (sastool cert device --ca CA_DIR --device "+c.RegistrationID+")")
	}
	s1, s256 := iothub.Thumbprints(leaf.Raw)
	if enr != nil {
		switch enr.Attestation.Type {
		case dps.AttestationX509:
		case dps.AttestationTPM:
			return nil, refuse(dps.CodeUnauthorized, ReasonTPMUnsupported, "individual enrollment "+enr.RegistrationID+" uses TPM attestation: "+ErrTPMUnsupported.Error())
		default:
			return nil, unauthorized(ReasonAttestationMismatch, fmt.Sprintf("individual enrollment %s uses %s attestation, but the device presented a client certificate and no SAS token", enr.RegistrationID, enr.Attestation.Type),
				"a symmetric-key device sends a SAS token (skn=registration) as its password or Authorization header")
		}
		var tps []string
		for _, want := range x509Certs(enr.Attestation) {
			if want.Equal(leaf) {
				a := &Attested{RegistrationID: c.RegistrationID, Type: dps.AttestationX509, Enrollment: enr, Certificate: leaf}
				for _, cert := range x509Certs(enr.Attestation) {
					_, t := iothub.Thumbprints(cert.Raw)
					tps = append(tps, t)
				}
				a.Thumbprints = iothub.X509Thumbprint{PrimaryThumbprint: tps[0]}
				if len(tps) > 1 {
					a.Thumbprints.SecondaryThumbprint = tps[1]
				}
				return a, nil
			}
		}
		return nil, unauthorized(ReasonX509UnknownCertificate, fmt.Sprintf("client certificate (SHA-1 %s, SHA-256 %s) is neither the primary nor the secondary certificate of individual enrollment %s", s1, s256, enr.RegistrationID),
			"update the enrollment's attestation.x509.clientCertificates with this certificate, or give the device the enrolled one")
	}
	pool := x509.NewCertPool()
	inter := x509.NewCertPool()
	for _, ic := range c.Certificates[1:] {
		inter.AddCert(ic)
	}
	tried := 0
	for _, g := range groups {
		cas := x509Certs(g.Attestation)
		if len(cas) == 0 {
			continue
		}
		tried++
		for _, ca := range cas {
			pool.AddCert(ca)
			roots := x509.NewCertPool()
			roots.AddCert(ca)
			if _, err := leaf.Verify(x509.VerifyOptions{Roots: roots, Intermediates: inter, CurrentTime: now, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageAny}}); err == nil {
				return &Attested{RegistrationID: c.RegistrationID, Type: dps.AttestationX509, Group: g, Certificate: leaf, SigningCA: ca}, nil
			}
		}
	}
	hints := []string{"create an individual enrollment with this certificate, or an enrollment group whose signingCertificates hold the root or intermediate CA that signed it (fakehub dps enrollments add ID --cert DEVICE_PEM, fakehub dps groups add ID --cert CA_PEM)"}
	if len(c.Certificates) == 1 && leaf.Issuer.String() != leaf.Subject.String() {
		hints = append(hints, "a device signed by an intermediate CA sends the intermediate after its own certificate (one PEM file, leaf first)")
	}
	detail := fmt.Sprintf("no individual enrollment for registration ID %q, and the client certificate (CN=%s, issued by %q) chains to the signing certificate of none of the %d X.509 enrollment groups", c.RegistrationID, cn, leaf.Issuer.CommonName, tried)
	if tried > 0 {
		if _, err := leaf.Verify(x509.VerifyOptions{Roots: pool, Intermediates: inter, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageAny}}); err == nil {
			detail += " at this time (a certificate of the chain is expired or not yet valid)"
		}
	}
	return nil, unauthorized(ReasonX509Untrusted, detail, hints...)
}

// CertificatePEM returns PEM text of a certificate (for the hub's CA registry).
func CertificatePEM(c *x509.Certificate) string {
	return string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.Raw}))
}

// redactX509 drops the uploaded certificates, keeping their info, as the service answers.
func redactX509(att *dps.Attestation) {
	if att.X509 == nil {
		return
	}
	x := *att.X509
	for _, set := range []**dps.X509Certificates{&x.ClientCertificates, &x.SigningCertificates} {
		if *set == nil {
			continue
		}
		s := **set
		for _, c := range []**dps.X509CertificateWithInfo{&s.Primary, &s.Secondary} {
			if *c != nil {
				cc := **c
				cc.Certificate = ""
				*c = &cc
			}
		}
		*set = &s
	}
	att.X509 = &x
}
