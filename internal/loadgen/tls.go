package loadgen

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"sync"
	"time"
)

// CachedVerification returns a copy of cfg that verifies the server's
// certificate chain (against cfg.RootCAs, for cfg.ServerName) once per
// distinct leaf certificate instead of on every handshake: a fleet of
// simulated devices sees the same certificate thousands of times, and the
// chain check is a large part of a client's handshake cost. Every handshake
// still proves that the server holds the leaf's private key (the
// handshake signature is checked as always) and a cached leaf is checked
// again once it has expired. cfg must have a ServerName; without one, or
// with InsecureSkipVerify already set, cfg is returned as is.
func CachedVerification(cfg *tls.Config) *tls.Config {
	if cfg == nil || cfg.ServerName == "" || cfg.InsecureSkipVerify {
		return cfg
	}
	c := cfg.Clone()
	roots, name, next := c.RootCAs, c.ServerName, c.VerifyConnection
	var mu sync.Mutex
	var good [][]byte // leaves verified so far (a handful at most)
	c.InsecureSkipVerify = true
	c.VerifyConnection = func(cs tls.ConnectionState) error {
		if len(cs.PeerCertificates) == 0 {
			return errors.New("loadgen: the server sent no certificate")
		}
		leaf := cs.PeerCertificates[0]
		mu.Lock()
		known := false
		for _, g := range good {
			if bytes.Equal(g, leaf.Raw) {
				known = true
				break
			}
		}
		mu.Unlock()
		if !known || time.Now().After(leaf.NotAfter) {
			inter := x509.NewCertPool()
			for _, ic := range cs.PeerCertificates[1:] {
				inter.AddCert(ic)
			}
			if _, err := leaf.Verify(x509.VerifyOptions{Roots: roots, DNSName: name, Intermediates: inter}); err != nil {
				return err
			}
			mu.Lock()
			if len(good) < 16 {
				good = append(good, leaf.Raw)
			}
			mu.Unlock()
		}
		if next != nil {
			return next(cs)
		}
		return nil
	}
	return c
}
