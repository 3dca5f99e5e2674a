package certs

import (
	"crypto/ecdsa"
	"crypto/rsa"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestParseKeyType(t *testing.T) {
	for in, want := range map[string]KeyType{"": ECDSAP256, "ECDSA": ECDSAP256, "rsa": RSA2048, "rsa-4096": RSA4096, "p384": ECDSAP384} {
		if got, err := ParseKeyType(in); err != nil || got != want {
			t.Errorf("ParseKeyType(%q) = %q, %v, want %q", in, got, err, want)
		}
	}
	if _, err := ParseKeyType("dsa"); err == nil || !strings.Contains(err.Error(), "ecdsa-p256, ecdsa-p384, rsa-2048, rsa-4096") {
		t.Errorf("ParseKeyType(dsa) error = %v, want the list of key types", err)
	}
}

// TestDeviceChain: a device certificate issued by an intermediate verifies against the root
// alone when the device presents the intermediate (what IoT Hub's CA authentication needs).
func TestDeviceChain(t *testing.T) {
	now := time.Now()
	root, err := NewCAWith(CAOptions{CommonName: "root", MaxPathLen: 1}, now, nil)
	if err != nil {
		t.Fatal(err)
	}
	inter, err := root.NewIntermediate(CAOptions{CommonName: "inter"}, now)
	if err != nil {
		t.Fatal(err)
	}
	for _, kt := range []KeyType{ECDSAP256, RSA2048} {
		l, err := inter.IssueDevice("dev1/mod1", 0, kt, now)
		if err != nil {
			t.Fatal(err)
		}
		if l.Cert.Subject.CommonName != "dev1/mod1" || len(l.Chain) != 1 || l.Chain[0] != inter.Cert {
			t.Fatalf("%s: leaf CN %q chain %d", kt, l.Cert.Subject.CommonName, len(l.Chain))
		}
		switch l.Key.(type) {
		case *ecdsa.PrivateKey:
			if kt != ECDSAP256 {
				t.Errorf("%s: got an ECDSA key", kt)
			}
		case *rsa.PrivateKey:
			if kt != RSA2048 {
				t.Errorf("%s: got an RSA key", kt)
			}
		}
		inters := x509.NewCertPool()
		for _, c := range l.Chain {
			inters.AddCert(c)
		}
		if _, err := l.Cert.Verify(x509.VerifyOptions{Roots: root.Pool(), Intermediates: inters, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}); err != nil {
			t.Errorf("%s: verify: %v", kt, err)
		}
		if _, err := l.Cert.Verify(x509.VerifyOptions{Roots: root.Pool(), KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}); err == nil {
			t.Errorf("%s: verified without the intermediate", kt)
		}
	}
}

func TestSelfSignedAndVerification(t *testing.T) {
	now := time.Now()
	l, err := SelfSignedLeaf(LeafOptions{CommonName: "dev2", Validity: time.Hour}, now, nil)
	if err != nil {
		t.Fatal(err)
	}
	if l.Cert.CheckSignature(l.Cert.SignatureAlgorithm, l.Cert.RawTBSCertificate, l.Cert.Signature) != nil || l.Cert.IsCA || len(l.Chain) != 0 {
		t.Errorf("self-signed leaf: IsCA %v, chain %d", l.Cert.IsCA, len(l.Chain))
	}
	ca, _ := NewCA("ca", time.Hour, now, nil)
	v, err := ca.IssueVerification("47292AB6260DB02CCD2D07C601B7303DD49858B6", now)
	if err != nil || v.Cert.Subject.CommonName != "47292AB6260DB02CCD2D07C601B7303DD49858B6" || v.Cert.CheckSignatureFrom(ca.Cert) != nil {
		t.Errorf("verification cert %v: %v", v, err)
	}
	if _, err := ca.IssueVerification("", now); err == nil {
		t.Error("empty verification code accepted")
	}
}

func TestLeafSaveAndLoad(t *testing.T) {
	now := time.Now()
	ca, _ := NewCA("ca", time.Hour, now, nil)
	l, err := ca.IssueDevice("dev3", time.Hour, ECDSAP256, now)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	certPath, keyPath, err := l.Save(dir, "dev3")
	if err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat(keyPath); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("key file mode %v, %v, want 0600", fi.Mode(), err)
	}
	tc, err := LoadLeaf(certPath, keyPath)
	if err != nil || len(tc.Certificate) != 1 {
		t.Fatalf("LoadLeaf: %d certs, %v", len(tc.Certificate), err)
	}
	if _, err := LoadLeaf(filepath.Join(dir, "nope.pem"), keyPath); !errors.Is(err, fs.ErrNotExist) || !strings.Contains(err.Error(), "nope.pem") {
		t.Errorf("LoadLeaf(missing) = %v, want a not-exist error naming the file", err)
	}
	if _, err := LoadLeaf(certPath, certPath); err == nil {
		t.Error("LoadLeaf with the certificate as key accepted")
	}
	var _ tls.Certificate = tc
}
