package certs

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"net"
	"testing"
	"time"
)

var testNow = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)

func newTestCA(t *testing.T) *CA {
	t.Helper()
	ca, err := NewCA("test CA", 24*time.Hour, testNow, nil)
	if err != nil {
		t.Fatalf("NewCA: %v", err)
	}
	return ca
}

// clientAt is ca.ClientTLS(name) verifying at testNow.
func clientAt(ca *CA, name string) *tls.Config {
	c := ca.ClientTLS(name)
	c.Time = func() time.Time { return testNow }
	return c
}

// handshake runs a TLS handshake over a loopback TCP connection on network
// address addr ("127.0.0.1:0", "[::1]:0") and returns the client's error.
func handshake(t *testing.T, addr string, server, client *tls.Config) error {
	t.Helper()
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		t.Skipf("cannot listen on %s: %v", addr, err)
	}
	defer ln.Close()
	done := make(chan struct{})
	go func() {
		defer close(done)
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		// The server's own error is the mirror of the client's; ignore it.
		_ = tls.Server(c, server).Handshake()
	}()
	defer func() { <-done }()
	conn, err := net.DialTimeout("tcp", ln.Addr().String(), 5*time.Second)
	if err != nil {
		return err
	}
	defer conn.Close()
	if err := conn.SetDeadline(time.Now().Add(10 * time.Second)); err != nil {
		return err
	}
	return tls.Client(conn, client).Handshake()
}

func TestTLSHandshake(t *testing.T) {
	ca := newTestCA(t)
	hosts := []string{"localhost", "127.0.0.1", "::1", "myhub.azure-devices.net"}
	server, err := ca.ServerTLS(hosts, time.Hour, testNow)
	if err != nil {
		t.Fatalf("ServerTLS: %v", err)
	}
	for _, addr := range []string{"127.0.0.1:0", "[::1]:0"} {
		for _, name := range hosts {
			for _, version := range []uint16{tls.VersionTLS12, tls.VersionTLS13} {
				t.Run(addr+"-"+name+"-"+tls.VersionName(version), func(t *testing.T) {
					client := clientAt(ca, name)
					client.MinVersion, client.MaxVersion = version, version
					if err := handshake(t, addr, server, client); err != nil {
						t.Errorf("handshake with ServerName %q: %v", name, err)
					}
				})
			}
		}
	}
}

func TestTLSHandshakeRejects(t *testing.T) {
	ca := newTestCA(t)
	server, err := ca.ServerTLS([]string{"localhost", "127.0.0.1"}, time.Hour, testNow)
	if err != nil {
		t.Fatalf("ServerTLS: %v", err)
	}
	t.Run("wrong-server-name", func(t *testing.T) {
		err := handshake(t, "127.0.0.1:0", server, clientAt(ca, "myhub.azure-devices.net"))
		var hostErr x509.HostnameError
		if !errors.As(err, &hostErr) {
			t.Errorf("handshake = %v, want an x509.HostnameError", err)
		}
	})
	t.Run("wrong-ip", func(t *testing.T) {
		err := handshake(t, "127.0.0.1:0", server, clientAt(ca, "127.0.0.2"))
		var hostErr x509.HostnameError
		if !errors.As(err, &hostErr) {
			t.Errorf("handshake = %v, want an x509.HostnameError", err)
		}
	})
	t.Run("other-ca", func(t *testing.T) {
		err := handshake(t, "127.0.0.1:0", server, clientAt(newTestCA(t), "localhost"))
		var authErr x509.UnknownAuthorityError
		if !errors.As(err, &authErr) {
			t.Errorf("handshake = %v, want an x509.UnknownAuthorityError", err)
		}
	})
}

func TestIssue(t *testing.T) {
	ca := newTestCA(t)
	leaf, err := ca.Issue([]string{"localhost", "127.0.0.1", "::1", "myhub.azure-devices.net"}, 7*24*time.Hour, testNow)
	if err != nil {
		t.Fatalf("Issue: %v", err)
	}
	c := leaf.Leaf
	if got, want := c.DNSNames, []string{"localhost", "myhub.azure-devices.net"}; !equalStrings(got, want) {
		t.Errorf("DNSNames = %q, want %q", got, want)
	}
	if len(c.IPAddresses) != 2 || !c.IPAddresses[0].Equal(net.ParseIP("127.0.0.1")) || !c.IPAddresses[1].Equal(net.IPv6loopback) {
		t.Errorf("IPAddresses = %v, want [127.0.0.1 ::1]", c.IPAddresses)
	}
	if len(c.ExtKeyUsage) != 1 || c.ExtKeyUsage[0] != x509.ExtKeyUsageServerAuth {
		t.Errorf("ExtKeyUsage = %v, want [ServerAuth]", c.ExtKeyUsage)
	}
	if c.IsCA {
		t.Error("leaf is a CA")
	}
	// The CA lives 24h; the leaf asked for 7 days and must be capped.
	if !c.NotAfter.Equal(ca.Cert.NotAfter) {
		t.Errorf("NotAfter = %v, want the CA's %v", c.NotAfter, ca.Cert.NotAfter)
	}
	if !c.NotBefore.Equal(testNow.Add(-time.Hour)) {
		t.Errorf("NotBefore = %v, want %v", c.NotBefore, testNow.Add(-time.Hour))
	}
	if _, err := c.Verify(x509.VerifyOptions{Roots: ca.Pool(), DNSName: "myhub.azure-devices.net", CurrentTime: testNow}); err != nil {
		t.Errorf("Verify: %v", err)
	}

	for _, tc := range []struct {
		name     string
		hosts    []string
		validity time.Duration
	}{
		{"no-hosts", nil, time.Hour},
		{"empty-host", []string{"localhost", " "}, time.Hour},
		{"zero-validity", []string{"localhost"}, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := ca.Issue(tc.hosts, tc.validity, testNow); err == nil {
				t.Errorf("Issue(%q, %v) succeeded, want an error", tc.hosts, tc.validity)
			}
		})
	}
}

func TestNewCA(t *testing.T) {
	// Serial numbers come from the reader given.
	ca, err := NewCA("x", DefaultCAValidity, testNow, bytes.NewReader(bytes.Repeat([]byte{0xff}, 64)))
	if err != nil {
		t.Fatalf("NewCA: %v", err)
	}
	c := ca.Cert
	if want := "7fffffffffffffffffffffffffffffff"; c.SerialNumber.Text(16) != want {
		t.Errorf("serial = %x, want %s", c.SerialNumber, want)
	}
	if !c.IsCA || !c.BasicConstraintsValid || c.KeyUsage&x509.KeyUsageCertSign == 0 {
		t.Errorf("IsCA=%v BasicConstraintsValid=%v KeyUsage=%v, want a CA with CertSign", c.IsCA, c.BasicConstraintsValid, c.KeyUsage)
	}
	if years := c.NotAfter.Sub(c.NotBefore).Hours() / 24 / 365; years < 99 {
		t.Errorf("validity = %.1f years, want ~100", years)
	}
	if c.PublicKeyAlgorithm != x509.ECDSA {
		t.Errorf("PublicKeyAlgorithm = %v, want ECDSA", c.PublicKeyAlgorithm)
	}
	if _, err := NewCA("x", 0, testNow, nil); err == nil {
		t.Error("NewCA with zero validity succeeded")
	}
	if _, err := NewCA("x", time.Hour, testNow, bytes.NewReader(nil)); err == nil {
		t.Error("NewCA with an empty random source succeeded")
	}
}

func equalStrings(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}
