package certs

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net"
	"strings"
	"time"
)

// File names of a CA stored in a directory.
const (
	CertFile = "ca.pem"     // the CA certificate, PEM "CERTIFICATE"
	KeyFile  = "ca-key.pem" // the CA private key, PEM "PRIVATE KEY" (PKCS #8)
)

// Defaults used by LoadOrCreateCA and cmd/mkca.
const (
	DefaultCommonName = "hubkit test CA (PUBLIC KEY MATERIAL, TESTS ONLY)"
	DefaultCAValidity = 100 * 365 * 24 * time.Hour // ~100 years
	// backdate is how far NotBefore is set in the past, so that certificates
	// are valid on machines whose clock is a little behind.
	backdate = time.Hour
)

// CA is a certificate authority able to issue server certificates.
type CA struct {
	Cert    *x509.Certificate
	Key     crypto.Signer
	CertPEM []byte // Cert, PEM-encoded
	// Rand is the source of serial numbers for Issue; nil means crypto/rand.
	Rand io.Reader
	// Parents are the CA certificates above an intermediate CA, up to but not including
	// its self-signed root (NewIntermediate sets them); leaves present them after the CA.
	Parents []*x509.Certificate
}

// NewCA creates a self-signed CA with an ECDSA P-256 key, valid from
// now (minus one hour) for validity. rand supplies serial numbers;
// nil means crypto/rand.Reader.
func NewCA(commonName string, validity time.Duration, now time.Time, rand io.Reader) (*CA, error) {
	if validity <= 0 {
		return nil, fmt.Errorf("certs: CA validity must be positive, got %v", validity)
	}
	return NewCAWith(CAOptions{CommonName: commonName, Validity: validity}, now, rand) // P-256, issues leaves only
}

// Issue mints a server certificate for hosts, signed by the CA. Each host
// that parses as an IP address becomes an IP SAN, any other a DNS SAN; the
// first host is also the subject common name. The leaf has an ECDSA P-256
// key and ExtKeyUsageServerAuth, works with TLS 1.2 and 1.3, is valid from
// now (minus one hour) for validity, and never outlives the CA.
func (ca *CA) Issue(hosts []string, validity time.Duration, now time.Time) (tls.Certificate, error) {
	if len(hosts) == 0 {
		return tls.Certificate{}, errors.New("certs: Issue needs at least one host name or IP address")
	}
	if validity <= 0 {
		return tls.Certificate{}, fmt.Errorf("certs: leaf validity must be positive, got %v", validity)
	}
	rand := orCryptoRand(ca.Rand)
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("certs: generating leaf key: %w", err)
	}
	serial, err := newSerial(rand)
	if err != nil {
		return tls.Certificate{}, err
	}
	notAfter := now.Add(validity)
	if notAfter.After(ca.Cert.NotAfter) {
		notAfter = ca.Cert.NotAfter
	}
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		Subject:      pkix.Name{CommonName: hosts[0], Organization: []string{"hubkit"}},
		NotBefore:    now.Add(-backdate).UTC(),
		NotAfter:     notAfter.UTC(),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	if err := addHosts(tmpl, hosts); err != nil {
		return tls.Certificate{}, err
	}
	der, err := x509.CreateCertificate(rand, tmpl, ca.Cert, key.Public(), ca.Key)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("certs: creating leaf certificate: %w", err)
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("certs: parsing new leaf certificate: %w", err)
	}
	tc := tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: leaf}
	for _, c := range ca.chain() {
		tc.Certificate = append(tc.Certificate, c.Raw)
	}
	return tc, nil
}

// addHosts adds each host as an IP SAN (when it parses as an IP address) or a DNS SAN.
func addHosts(tmpl *x509.Certificate, hosts []string) error {
	for _, h := range hosts {
		h = strings.TrimSpace(h)
		if h == "" {
			return errors.New("certs: empty host name")
		}
		if ip := net.ParseIP(h); ip != nil {
			tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
		} else {
			tmpl.DNSNames = append(tmpl.DNSNames, h)
		}
	}
	return nil
}

// Pool returns a new pool holding only the CA certificate.
func (ca *CA) Pool() *x509.CertPool {
	p := x509.NewCertPool()
	p.AddCert(ca.Cert)
	return p
}

// ClientTLS returns a client configuration that trusts only this CA and
// verifies the server as serverName (a DNS name or an IP address).
func (ca *CA) ClientTLS(serverName string) *tls.Config {
	return &tls.Config{RootCAs: ca.Pool(), ServerName: serverName, MinVersion: tls.VersionTLS12}
}

// ServerTLS issues a leaf for hosts (see Issue) and returns a server
// configuration (TLS 1.2 or later) presenting it.
func (ca *CA) ServerTLS(hosts []string, validity time.Duration, now time.Time) (*tls.Config, error) {
	leaf, err := ca.Issue(hosts, validity, now)
	if err != nil {
		return nil, err
	}
	return &tls.Config{Certificates: []tls.Certificate{leaf}, MinVersion: tls.VersionTLS12}, nil
}

func orCryptoRand(r io.Reader) io.Reader {
	if r == nil {
		return rand.Reader
	}
	return r
}

// newSerial returns a random positive 128-bit serial number.
func newSerial(r io.Reader) (*big.Int, error) {
	b := make([]byte, 16)
	if _, err := io.ReadFull(r, b); err != nil {
		return nil, fmt.Errorf("certs: reading random serial number: %w", err)
	}
	b[0] &= 0x7f // keep it positive and at most 127 bits after the sign
	b[0] |= 0x40 // and never short, so DER length is stable
	return new(big.Int).SetBytes(b), nil
}

func encodePEM(typ string, der []byte) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der})
}
