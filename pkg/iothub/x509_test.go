package iothub_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/json"
	"errors"
	"math/big"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/hubkit/hubkit/pkg/iothub"
)

// TestThumbprints checks the hash and the format against a value computed outside hubkit:
// the SHA-1 and SHA-256 of the empty input (FIPS 180-4 examples), upper-case as az prints.
func TestThumbprints(t *testing.T) {
	s1, s256 := iothub.Thumbprints(nil)
	if s1 != "DA39A3EE5E6B4B0D3255BFEF95601890AFD80709" {
		t.Errorf("SHA-1 = %s", s1)
	}
	if s256 != "E3B0C44298FC1C149AFBF4C8996FB92427AE41E4649B934CA495991B7852B855" {
		t.Errorf("SHA-256 = %s", s256)
	}
}

func TestNormalizeThumbprint(t *testing.T) {
	for _, tc := range []struct{ in, want, err string }{
		{"da39a3ee5e6b4b0d3255bfef95601890afd80709", "DA39A3EE5E6B4B0D3255BFEF95601890AFD80709", ""},
		{"DA:39:A3:EE:5E:6B:4B:0D:32:55:BF:EF:95:60:18:90:AF:D8:07:09", "DA39A3EE5E6B4B0D3255BFEF95601890AFD80709", ""},
		{" e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855 ", "E3B0C44298FC1C149AFBF4C8996FB92427AE41E4649B934CA495991B7852B855", ""},
		{"DA39", "", "4 hex digits, want 40 (SHA-1) or 64 (SHA-256)"},
		{"not-hex", "", "not hexadecimal"},
	} {
		got, err := iothub.NormalizeThumbprint(tc.in)
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("NormalizeThumbprint(%q) = %q, %v, want error %q", tc.in, got, err, tc.err)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("NormalizeThumbprint(%q) = %q, %v, want %q", tc.in, got, err, tc.want)
		}
	}
}

func TestEffectiveType(t *testing.T) {
	for _, tc := range []struct {
		a    iothub.Authentication
		want iothub.AuthType
	}{
		{iothub.Authentication{}, iothub.AuthSAS},
		{iothub.Authentication{Type: "SELFSIGNED"}, iothub.AuthSelfSigned},
		{iothub.Authentication{X509Thumbprint: iothub.X509Thumbprint{PrimaryThumbprint: "AB"}}, iothub.AuthSelfSigned},
		{iothub.CAAuth(), iothub.AuthCertificateAuthority},
	} {
		if got := tc.a.EffectiveType(); got != tc.want {
			t.Errorf("%+v.EffectiveType() = %q, want %q", tc.a, got, tc.want)
		}
	}
	if _, err := iothub.ParseAuthType("x509"); err == nil {
		t.Error(`ParseAuthType("x509") accepted`)
	}
}

// TestX509DeviceWire: az's output for a certificateAuthority device loads as is and is
// written back the same (deviceScope and parentScopes, IoT Edge fields, are not modelled).
func TestX509DeviceWire(t *testing.T) {
	in := readVector(t, "device_az_create_x509_ca.json")
	var d iothub.Device
	if err := json.Unmarshal(in, &d); err != nil {
		t.Fatal(err)
	}
	if d.DeviceID != "OT-105783B5AA8C" || d.Authentication.Type != iothub.AuthCertificateAuthority || !d.Authentication.IsX509() ||
		d.Authentication.SymmetricKey.PrimaryKey != "" {
		t.Errorf("decoded %+v", d)
	}
	out, err := json.Marshal(d)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(generic(t, in, "deviceScope", "parentScopes"), generic(t, out), sameTimes); diff != "" {
		t.Errorf("re-encoded (-az +hubkit):\n%s", diff)
	}
}

// TestCertificateWire decodes ARM's documented answers of Certificates_CreateOrUpdate,
// _GenerateVerificationCode and _Verify and writes them back the same.
func TestCertificateWire(t *testing.T) {
	for _, tc := range []struct {
		file     string
		verified bool
		code     string
	}{
		{"certificate_arm_create.json", false, ""},
		{"certificate_arm_verification_code.json", false, "##################################"},
		{"certificate_arm_verify.json", true, ""},
	} {
		t.Run(tc.file, func(t *testing.T) {
			in := readVector(t, tc.file)
			var c iothub.Certificate
			if err := json.Unmarshal(in, &c); err != nil {
				t.Fatal(err)
			}
			p := c.Properties
			if c.Name != "cert" || p.IsVerified != tc.verified || p.VerificationCode != tc.code ||
				!p.Expiry.Equal(time.Date(2039, 12, 31, 23, 59, 59, 0, time.UTC)) || !p.Created.Equal(time.Date(2017, 10, 12, 19, 23, 50, 0, time.UTC)) {
				t.Errorf("decoded %+v", c)
			}
			out, err := json.Marshal(c)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(generic(t, in), generic(t, out)); diff != "" {
				t.Errorf("re-encoded (-ARM +hubkit):\n%s", diff)
			}
		})
	}
}

func TestParseCertificate(t *testing.T) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "dev1"}, NotBefore: time.Now(), NotAfter: time.Now().Add(time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	pemText := iothub.CertificatePEM(cert)
	b64 := base64.StdEncoding.EncodeToString(der)
	wrapped := b64[:40] + "\r\n" + b64[40:] // as a .cer file wraps it
	for _, in := range []string{pemText, "junk before\n" + pemText, b64, wrapped} {
		c, err := iothub.ParseCertificate(in)
		if err != nil || c.Subject.CommonName != "dev1" {
			t.Errorf("ParseCertificate(%.30q) = %v, %v", in, c, err)
		}
	}
	for _, in := range []string{"", "hello", "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n"} {
		if _, err := iothub.ParseCertificate(in); !errors.Is(err, iothub.ErrNoCertificate) {
			t.Errorf("ParseCertificate(%q) = %v, want ErrNoCertificate", in, err)
		}
	}
}
