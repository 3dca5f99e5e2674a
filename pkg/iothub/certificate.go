package iothub

import (
	"bytes"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"strings"
	"time"
)

// CertificateType is the "type" of a CA certificate resource in Azure Resource Manager.
const CertificateType = "Microsoft.Devices/IotHubs/Certificates"

// Certificate is a CA certificate registered on a hub for certificateAuthority identities,
// in the shape of Azure Resource Manager's CertificateDescription (`az iot hub certificate
// show`; REST Certificates_Get). The real hub manages them through ARM
// (management.azure.com); fakehub serves the same shapes under /hubkit/certificates, a
// hubkit extension (docs/iothub-behavior.md §1.25).
type Certificate struct {
	Name       string                `json:"name"`
	Type       string                `json:"type,omitempty"` // CertificateType
	ETag       string                `json:"etag,omitempty"`
	ID         string                `json:"id,omitempty"`
	Properties CertificateProperties `json:"properties"`
}

// CertificateProperties is ARM's CertificateProperties (and, with VerificationCode, the
// CertificatePropertiesWithNonce of Certificates_GenerateVerificationCode). Times are
// written as ARM writes them, RFC 1123 in GMT ("Thu, 12 Oct 2017 19:23:50 GMT").
type CertificateProperties struct {
	Subject    string    `json:"subject,omitempty"`    // "CN=..."
	Expiry     time.Time `json:"expiry"`               // NotAfter
	Thumbprint string    `json:"thumbprint,omitempty"` // SHA-1, upper-case hex
	IsVerified bool      `json:"isVerified"`
	Created    time.Time `json:"created"`
	Updated    time.Time `json:"updated"`
	// Certificate is the PEM (or base64 DER) text uploaded; ARM returns it on create.
	Certificate string `json:"certificate,omitempty"`
	// VerificationCode is set only in the answer to generateVerificationCode: the common name
	// of the proof-of-possession certificate to sign with the CA's key.
	VerificationCode string `json:"verificationCode,omitempty"`
}

// CertificateVerification is the body of Certificates_Verify: the PEM (or base64 DER) of a
// certificate whose subject CN is the verification code, signed by the CA's private key.
type CertificateVerification struct {
	Certificate string `json:"certificate"`
}

// CertificateList is ARM's CertificateListDescription.
type CertificateList struct {
	Value []Certificate `json:"value"`
}

// MarshalJSON writes the times as RFC 1123 GMT, as ARM does; zero times are left out.
func (p CertificateProperties) MarshalJSON() ([]byte, error) {
	type plain CertificateProperties
	out := struct {
		plain
		Expiry  *string `json:"expiry,omitempty"`
		Created *string `json:"created,omitempty"`
		Updated *string `json:"updated,omitempty"`
	}{plain: plain(p), Expiry: rfc1123(p.Expiry), Created: rfc1123(p.Created), Updated: rfc1123(p.Updated)}
	return json.Marshal(out)
}

// UnmarshalJSON reads RFC 1123 (ARM) and RFC 3339 times.
func (p *CertificateProperties) UnmarshalJSON(b []byte) error {
	type plain CertificateProperties
	in := struct {
		*plain
		Expiry  *string `json:"expiry"`
		Created *string `json:"created"`
		Updated *string `json:"updated"`
	}{plain: (*plain)(p)}
	*p = CertificateProperties{}
	if err := json.Unmarshal(b, &in); err != nil {
		return err
	}
	for _, f := range []struct {
		name string
		in   *string
		out  *time.Time
	}{{"expiry", in.Expiry, &p.Expiry}, {"created", in.Created, &p.Created}, {"updated", in.Updated, &p.Updated}} {
		if f.in == nil || *f.in == "" {
			continue
		}
		t, err := time.Parse(time.RFC1123, *f.in)
		if err != nil {
			t, err = parseTime(*f.in)
		}
		if err != nil {
			return fmt.Errorf("properties.%s: %q: want an RFC 1123 time such as \"Thu, 12 Oct 2017 19:23:50 GMT\"", f.name, *f.in)
		}
		*f.out = t.UTC()
	}
	return nil
}

// rfc1123GMT is RFC 1123 with the zone written "GMT", as ARM (and HTTP) write it.
const rfc1123GMT = "Mon, 02 Jan 2006 15:04:05 GMT"

func rfc1123(t time.Time) *string {
	if t.IsZero() {
		return nil
	}
	s := t.UTC().Format(rfc1123GMT)
	return &s
}

// ErrNoCertificate is returned by ParseCertificate for text without a certificate.
var ErrNoCertificate = errors.New("no certificate: want PEM (-----BEGIN CERTIFICATE-----) or base64 DER")

// ParseCertificate reads the certificate text a CA upload or a verification carries: PEM
// (the first CERTIFICATE block) or base64 of the DER bytes (a .cer file's content, as az
// uploads it).
func ParseCertificate(text string) (*x509.Certificate, error) {
	data := []byte(strings.TrimSpace(text))
	if bytes.Contains(data, []byte("-----BEGIN")) {
		for rest := data; ; {
			var blk *pem.Block
			blk, rest = pem.Decode(rest)
			if blk == nil {
				return nil, ErrNoCertificate
			}
			if blk.Type == "CERTIFICATE" {
				c, err := x509.ParseCertificate(blk.Bytes)
				if err != nil {
					return nil, fmt.Errorf("certificate: %w", err)
				}
				return c, nil
			}
		}
	}
	der, err := base64.StdEncoding.DecodeString(strings.Join(strings.Fields(string(data)), ""))
	if err != nil || len(der) == 0 {
		return nil, ErrNoCertificate
	}
	c, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, fmt.Errorf("%w (the text is not PEM, and as base64 it is no DER certificate: %v)", ErrNoCertificate, err)
	}
	return c, nil
}

// CertificatePEM returns the PEM text of a certificate.
func CertificatePEM(c *x509.Certificate) string {
	return string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.Raw}))
}
