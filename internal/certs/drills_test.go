package certs

import (
	"crypto/ecdsa"
	"crypto/rsa"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"sync"
	"testing"
	"time"
)

// drillStore is shared by the tests of this file: the shaped roots have RSA 4096 keys.
var (
	drillStoreOnce sync.Once
	drillStoreV    CAStore
)

func testStore() CAStore {
	drillStoreOnce.Do(func() { drillStoreV = MemoryStore(time.Now()) })
	return drillStoreV
}

// drillHandshake runs a TLS handshake between d's server side and a client trusting roots
// (verifying "hub.example") over loopback TCP, and returns the client's error.
func drillHandshake(t *testing.T, d *Drill, roots *x509.CertPool) error {
	t.Helper()
	ln, err := tls.Listen("tcp", "127.0.0.1:0", d.ServerTLS())
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		c, err := ln.Accept()
		if err == nil {
			_ = c.(*tls.Conn).Handshake()
			c.Close()
		}
	}()
	cl, err := tls.Dial("tcp", ln.Addr().String(), &tls.Config{RootCAs: roots, ServerName: "hub.example", MinVersion: tls.VersionTLS12})
	if err == nil {
		cl.Close()
	}
	return err
}

func TestDrills(t *testing.T) {
	now := time.Now()
	hubCA, err := NewCA("hub CA", time.Hour*24, now, nil)
	if err != nil {
		t.Fatal(err)
	}
	hosts := []string{"hub.example", "127.0.0.1"}
	for _, info := range Drills {
		t.Run(info.Name, func(t *testing.T) {
			d, err := NewDrill(info.Name, hosts, hubCA, testStore(), now)
			if err != nil {
				t.Fatal(err)
			}
			err = drillHandshake(t, d, d.TrustPool())
			var inv x509.CertificateInvalidError
			var host x509.HostnameError
			var unknown x509.UnknownAuthorityError
			switch info.Name {
			case DrillExpired:
				if !errors.As(err, &inv) || inv.Reason != x509.Expired {
					t.Errorf("handshake = %v, want an expired-certificate error", err)
				}
			case DrillWrongSAN:
				if !errors.As(err, &host) {
					t.Errorf("handshake = %v, want a host name error", err)
				}
			case DrillUntrustedRoot:
				if !errors.As(err, &unknown) {
					t.Errorf("handshake = %v, want an unknown-authority error", err)
				}
			default:
				if err != nil {
					t.Errorf("handshake trusting %d root(s): %v", len(d.Trusted), err)
				}
			}
			if info.Refuse == (err == nil) {
				t.Errorf("Refuse = %v but handshake error = %v", info.Refuse, err)
			}
		})
	}
}

// TestDrillShapes pins the shapes the drills promise (depth, algorithms, key sizes).
func TestDrillShapes(t *testing.T) {
	now := time.Now()
	hubCA, _ := NewCA("hub CA", time.Hour*24, now, nil)
	for _, tc := range []struct {
		drill             string
		rootBits, midBits int // RSA modulus sizes; 0: ECDSA
		rootSig           x509.SignatureAlgorithm
	}{
		{DrillAzureG2, 2048, 4096, x509.SHA256WithRSA},
		{DrillBaltimore, 2048, 4096, x509.SHA1WithRSA},
		{DrillMSRSA2017, 4096, 2048, x509.SHA384WithRSA},
		{DrillAzureECC, 0, 0, x509.ECDSAWithSHA384},
	} {
		d, err := NewDrill(tc.drill, []string{"hub.example"}, hubCA, testStore(), now)
		if err != nil {
			t.Fatal(err)
		}
		chain := d.Certificates[0].Certificate
		if len(chain) != 2 {
			t.Errorf("%s: presents %d certificates, want leaf + intermediate", tc.drill, len(chain))
			continue
		}
		mid, _ := x509.ParseCertificate(chain[1])
		root := d.Roots[0]
		if root.SignatureAlgorithm != tc.rootSig || mid.CheckSignatureFrom(root) != nil {
			t.Errorf("%s: root signed with %v, intermediate from root: %v", tc.drill, root.SignatureAlgorithm, mid.CheckSignatureFrom(root))
		}
		bits := func(c *x509.Certificate) int {
			if k, ok := c.PublicKey.(*rsa.PublicKey); ok {
				return k.N.BitLen()
			}
			if _, ok := c.PublicKey.(*ecdsa.PublicKey); ok {
				return 0
			}
			return -1
		}
		if bits(root) != tc.rootBits || bits(mid) != tc.midBits {
			t.Errorf("%s: root %d bits, intermediate %d bits, want %d and %d", tc.drill, bits(root), bits(mid), tc.rootBits, tc.midBits)
		}
	}
}

// TestRootChange: the migration drill alternates roots per handshake, so a device trusting
// only the old root fails the second connection and one trusting both never does.
func TestRootChange(t *testing.T) {
	now := time.Now()
	hubCA, _ := NewCA("hub CA", time.Hour*24, now, nil)
	d, err := NewDrill(DrillRootChange, []string{"hub.example"}, hubCA, testStore(), now)
	if err != nil {
		t.Fatal(err)
	}
	old := x509.NewCertPool()
	old.AddCert(d.Roots[0])
	if err := drillHandshake(t, d, old); err != nil {
		t.Fatalf("first connection trusting the old root: %v", err)
	}
	var unknown x509.UnknownAuthorityError
	if err := drillHandshake(t, d, old); !errors.As(err, &unknown) {
		t.Errorf("second connection trusting only the old root = %v, want unknown authority", err)
	}
	for i := 0; i < 2; i++ {
		if err := drillHandshake(t, d, d.TrustPool()); err != nil {
			t.Errorf("connection %d trusting both: %v", i+3, err)
		}
	}
}

func TestDirStoreKeepsCAs(t *testing.T) {
	now := time.Now()
	dir := t.TempDir()
	s := DirStore(dir, now)
	root, err := s.CA("r", CAOptions{CommonName: "r", MaxPathLen: 1}, nil)
	if err != nil {
		t.Fatal(err)
	}
	mid, err := s.CA("r-mid", CAOptions{CommonName: "mid"}, root)
	if err != nil {
		t.Fatal(err)
	}
	s2 := DirStore(dir, now)
	root2, err := s2.CA("r", CAOptions{CommonName: "r"}, nil)
	if err != nil || !root2.Cert.Equal(root.Cert) {
		t.Fatalf("reloaded root differs: %v", err)
	}
	mid2, err := s2.CA("r-mid", CAOptions{CommonName: "mid"}, root2)
	if err != nil || !mid2.Cert.Equal(mid.Cert) || len(mid2.Parents) != 0 {
		t.Fatalf("reloaded intermediate differs or has parents %d: %v", len(mid2.Parents), err)
	}
	// A new root makes the stored intermediate stale: it is replaced.
	other, _ := NewCAWith(CAOptions{CommonName: "other", MaxPathLen: 1}, now, nil)
	mid3, err := s2.CA("r-mid", CAOptions{CommonName: "mid"}, other)
	if err != nil || mid3.Cert.CheckSignatureFrom(other.Cert) != nil {
		t.Errorf("intermediate not re-issued under the new parent: %v", err)
	}
	if _, err := NewDrill("nope", nil, root, s, now); err == nil {
		t.Error("unknown drill accepted")
	}
}
