package main

import (
	"crypto/x509"
	"encoding/pem"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/hubkit/hubkit/internal/certs"
)

// TestGradeDrills: the chains fakehub --ca gives the grader's TLS cases. wrong-san's
// leaf does not name the hub; root-change's is the new (G2-shaped) chain, and building it
// writes DIR/drills/root-change-trust.pem with the hub's CA and both roots (what a graded
// device trusts); an unknown drill is an error naming it.
func TestGradeDrills(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	now := time.Now()
	ca, _, err := certs.LoadOrCreateCA(dir, now, true)
	if err != nil {
		t.Fatal(err)
	}
	hosts := []string{"localhost", "127.0.0.1"}
	drills := gradeDrills(dir, hosts, ca, certs.DirStore(filepath.Join(dir, "drills"), now), now)

	c, err := drills(certs.DrillWrongSAN)
	if err != nil {
		t.Fatal(err)
	}
	if leaf, _ := x509.ParseCertificate(c.Certificate[0]); slices.Contains(leaf.DNSNames, "localhost") {
		t.Errorf("wrong-san leaf names %v, want no hub host", leaf.DNSNames)
	}

	c, err = drills(certs.DrillRootChange)
	if err != nil {
		t.Fatal(err)
	}
	leaf, _ := x509.ParseCertificate(c.Certificate[0])
	if !strings.Contains(leaf.Issuer.CommonName, "Microsoft Azure RSA TLS Issuing CA 04") {
		t.Errorf("root-change leaf issued by %q, want the G2-shaped issuing CA", leaf.Issuer.CommonName)
	}
	b, err := os.ReadFile(filepath.Join(dir, "drills", "root-change-trust.pem"))
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	var names []string
	for rest := b; ; {
		var blk *pem.Block
		if blk, rest = pem.Decode(rest); blk == nil {
			break
		}
		cert, err := x509.ParseCertificate(blk.Bytes)
		if err != nil {
			t.Fatal(err)
		}
		pool.AddCert(cert)
		names = append(names, cert.Subject.CommonName)
	}
	if !slices.Contains(names, ca.Cert.Subject.CommonName) || len(names) != 3 {
		t.Errorf("root-change-trust.pem holds %v, want the hub's CA and both roots", names)
	}
	inter := x509.NewCertPool()
	for _, der := range c.Certificate[1:] {
		ic, _ := x509.ParseCertificate(der)
		inter.AddCert(ic)
	}
	if _, err := leaf.Verify(x509.VerifyOptions{Roots: pool, Intermediates: inter, DNSName: "localhost", CurrentTime: now}); err != nil {
		t.Errorf("the new chain does not verify against the trust file: %v", err)
	}

	if _, err := drills("no-such-drill"); err == nil || !strings.Contains(err.Error(), "no-such-drill") {
		t.Errorf("drills(no-such-drill) = %v, want an error naming it", err)
	}
}
