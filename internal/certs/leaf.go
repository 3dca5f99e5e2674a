package certs

import (
	"bytes"
	"crypto"
	"crypto/rsa"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"
)

// CAOptions describe a certificate authority for NewCAWith and CA.NewIntermediate.
type CAOptions struct {
	CommonName   string
	Organization string        // default "hubkit"
	Validity     time.Duration // default DefaultCAValidity (~100 years)
	NotBefore    time.Time     // default now minus one hour
	KeyType      KeyType       // default ECDSAP256
	// SignatureAlgorithm overrides Go's choice (e.g. x509.SHA1WithRSA for a root shaped
	// like Baltimore CyberTrust Root; a root's own signature is never checked).
	SignatureAlgorithm x509.SignatureAlgorithm
	// MaxPathLen is how many intermediate CAs may follow; 0 means none (the CA issues
	// leaves only), -1 means no limit.
	MaxPathLen int
}

// NewCAWith creates a self-signed CA as opts describe, valid from opts.NotBefore (default
// now minus one hour). rand supplies serial numbers and RSA keys; nil means crypto/rand.
func NewCAWith(opts CAOptions, now time.Time, rand io.Reader) (*CA, error) {
	return newCA(opts, now, orCryptoRand(rand), nil)
}

// newCA creates a CA signed by parent, or self-signed when parent is nil.
func newCA(opts CAOptions, now time.Time, rand io.Reader, parent *CA) (*CA, error) {
	key, err := NewKey(opts.KeyType, rand)
	if err != nil {
		return nil, err
	}
	tmpl, err := caTemplate(opts, now, rand)
	if err != nil {
		return nil, err
	}
	issuer, signer, what := tmpl, crypto.Signer(key), "CA"
	var parents []*x509.Certificate
	if parent != nil {
		issuer, signer, what, parents = parent.Cert, parent.Key, fmt.Sprintf("intermediate CA %q", opts.CommonName), parent.chain()
		if tmpl.NotAfter.After(parent.Cert.NotAfter) {
			tmpl.NotAfter = parent.Cert.NotAfter
		}
	}
	der, err := x509.CreateCertificate(rand, tmpl, issuer, key.Public(), signer)
	if err != nil {
		return nil, fmt.Errorf("certs: creating %s certificate: %w", what, err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, fmt.Errorf("certs: parsing new %s certificate: %w", what, err)
	}
	return &CA{Cert: cert, Key: key, CertPEM: encodePEM("CERTIFICATE", der), Rand: rand, Parents: parents}, nil
}

func caTemplate(opts CAOptions, now time.Time, rand io.Reader) (*x509.Certificate, error) {
	if opts.CommonName == "" {
		return nil, errors.New("certs: a CA needs a common name")
	}
	if opts.Validity == 0 {
		opts.Validity = DefaultCAValidity
	}
	if opts.Validity < 0 {
		return nil, fmt.Errorf("certs: CA validity must be positive, got %v", opts.Validity)
	}
	if opts.Organization == "" {
		opts.Organization = "hubkit"
	}
	nb, na := validity(opts.NotBefore, opts.Validity, now)
	serial, err := newSerial(rand)
	if err != nil {
		return nil, err
	}
	t := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: opts.CommonName, Organization: []string{opts.Organization}},
		NotBefore:             nb.UTC(),
		NotAfter:              na.UTC(),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
		IsCA:                  true,
		SignatureAlgorithm:    opts.SignatureAlgorithm,
	}
	switch {
	case opts.MaxPathLen < 0:
		t.MaxPathLen = -1
	case opts.MaxPathLen == 0:
		t.MaxPathLenZero = true
	default:
		t.MaxPathLen = opts.MaxPathLen
	}
	return t, nil
}

// validity returns NotBefore and NotAfter: from notBefore for d when notBefore is set, else
// from now (minus an hour, for clocks a little behind) until now + d.
func validity(notBefore time.Time, d time.Duration, now time.Time) (time.Time, time.Time) {
	if !notBefore.IsZero() {
		return notBefore, notBefore.Add(d)
	}
	return now.Add(-backdate), now.Add(d)
}

// NewIntermediate creates a CA signed by ca (which must allow it: CAOptions.MaxPathLen).
// Leaves it issues carry it and ca's own chain, so that a client trusting the root verifies
// them.
func (ca *CA) NewIntermediate(opts CAOptions, now time.Time) (*CA, error) {
	inter, err := newCA(opts, now, orCryptoRand(ca.Rand), ca)
	if err != nil {
		return nil, err
	}
	inter.Rand = ca.Rand
	return inter, nil
}

// chain is what a leaf issued by ca presents after itself: ca (unless it is a self-signed
// root) and ca's parents.
func (ca *CA) chain() []*x509.Certificate {
	if isSelfSigned(ca.Cert) {
		return nil
	}
	return append([]*x509.Certificate{ca.Cert}, ca.Parents...)
}

// isSelfSigned reports whether c is a root: issued by itself. (Not CheckSignatureFrom: Go
// refuses to check a SHA-1 signature, which a root shaped like Baltimore CyberTrust has.)
func isSelfSigned(c *x509.Certificate) bool {
	return bytes.Equal(c.RawIssuer, c.RawSubject)
}

// Leaf is an issued end-entity certificate with its key and the CA certificates it presents
// after itself (intermediates; never the root).
type Leaf struct {
	Cert  *x509.Certificate
	Key   crypto.Signer
	Chain []*x509.Certificate
}

// TLSCertificate returns the leaf and its chain as a tls.Certificate.
func (l *Leaf) TLSCertificate() tls.Certificate {
	tc := tls.Certificate{Certificate: [][]byte{l.Cert.Raw}, PrivateKey: l.Key, Leaf: l.Cert}
	for _, c := range l.Chain {
		tc.Certificate = append(tc.Certificate, c.Raw)
	}
	return tc
}

// CertPEM returns the leaf and its chain as PEM, leaf first (the --cert file of mosquitto,
// Python's load_cert_chain and Node's cert option).
func (l *Leaf) CertPEM() []byte {
	out := encodePEM("CERTIFICATE", l.Cert.Raw)
	for _, c := range l.Chain {
		out = append(out, encodePEM("CERTIFICATE", c.Raw)...)
	}
	return out
}

// KeyPEM returns the leaf's private key as PEM (PKCS #8).
func (l *Leaf) KeyPEM() ([]byte, error) { return KeyPEM(l.Key) }

// Save writes the leaf (with its chain) to dir/name.pem (0644) and its key to
// dir/name-key.pem (0600), creating dir if needed, and returns both paths.
func (l *Leaf) Save(dir, name string) (certPath, keyPath string, err error) {
	key, err := l.KeyPEM()
	if err != nil {
		return "", "", err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", "", fmt.Errorf("certs: %w", err)
	}
	certPath, keyPath = filepath.Join(dir, name+".pem"), filepath.Join(dir, name+"-key.pem")
	if err := writeFile(keyPath, key, 0o600); err != nil {
		return "", "", err
	}
	if err := writeFile(certPath, l.CertPEM(), 0o644); err != nil {
		return "", "", err
	}
	return certPath, keyPath, nil
}

// LeafOptions describe an end-entity certificate.
type LeafOptions struct {
	CommonName string
	// Hosts become DNS or IP SANs (server certificates).
	Hosts     []string
	Validity  time.Duration // default 365 days; capped at the issuer's NotAfter
	NotBefore time.Time     // default now minus one hour (set it in the past for an expired leaf)
	KeyType   KeyType       // default ECDSAP256
	// ExtKeyUsage defaults to client authentication (a device certificate) when Hosts is
	// empty, else server authentication.
	ExtKeyUsage []x509.ExtKeyUsage
	// KeyUsage defaults to digital signature (plus key encipherment for RSA).
	KeyUsage           x509.KeyUsage
	SignatureAlgorithm x509.SignatureAlgorithm
}

// DefaultLeafValidity is the validity of device and verification certificates by default.
const DefaultLeafValidity = 365 * 24 * time.Hour

// IssueLeaf mints an end-entity certificate signed by the CA.
func (ca *CA) IssueLeaf(opts LeafOptions, now time.Time) (*Leaf, error) {
	return issueLeaf(opts, now, orCryptoRand(ca.Rand), ca)
}

// SelfSignedLeaf mints a self-signed end-entity certificate (a device certificate for
// thumbprint authentication).
func SelfSignedLeaf(opts LeafOptions, now time.Time, rand io.Reader) (*Leaf, error) {
	return issueLeaf(opts, now, orCryptoRand(rand), nil)
}

func issueLeaf(opts LeafOptions, now time.Time, rand io.Reader, ca *CA) (*Leaf, error) {
	if opts.CommonName == "" && len(opts.Hosts) == 0 {
		return nil, errors.New("certs: a leaf needs a common name or a host")
	}
	if opts.Validity == 0 {
		opts.Validity = DefaultLeafValidity
	}
	if opts.Validity < 0 {
		return nil, fmt.Errorf("certs: leaf validity must be positive, got %v", opts.Validity)
	}
	key, err := NewKey(opts.KeyType, rand)
	if err != nil {
		return nil, err
	}
	serial, err := newSerial(rand)
	if err != nil {
		return nil, err
	}
	nb, na := validity(opts.NotBefore, opts.Validity, now)
	cn := opts.CommonName
	if cn == "" {
		cn = opts.Hosts[0]
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: cn},
		NotBefore:             nb.UTC(),
		NotAfter:              na.UTC(),
		KeyUsage:              opts.KeyUsage,
		ExtKeyUsage:           opts.ExtKeyUsage,
		BasicConstraintsValid: true,
		SignatureAlgorithm:    opts.SignatureAlgorithm,
	}
	if tmpl.KeyUsage == 0 {
		tmpl.KeyUsage = x509.KeyUsageDigitalSignature
		if _, isRSA := key.Public().(*rsa.PublicKey); isRSA {
			tmpl.KeyUsage |= x509.KeyUsageKeyEncipherment
		}
	}
	if tmpl.ExtKeyUsage == nil {
		if len(opts.Hosts) > 0 {
			tmpl.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}
		} else {
			tmpl.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}
		}
	}
	if err := addHosts(tmpl, opts.Hosts); err != nil {
		return nil, err
	}
	parent, signer := tmpl, key
	var chain []*x509.Certificate
	if ca != nil {
		parent, signer, chain = ca.Cert, ca.Key, ca.chain()
		if tmpl.NotAfter.After(ca.Cert.NotAfter) {
			tmpl.NotAfter = ca.Cert.NotAfter
		}
	}
	der, err := x509.CreateCertificate(rand, tmpl, parent, key.Public(), signer)
	if err != nil {
		return nil, fmt.Errorf("certs: creating certificate for %q: %w", cn, err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, fmt.Errorf("certs: parsing new certificate: %w", err)
	}
	return &Leaf{Cert: cert, Key: key, Chain: chain}, nil
}

// IssueDevice mints a device certificate for CA authentication: subject CN = id (a device
// ID, or "deviceId/moduleId" for a module, as IoT Hub requires), client authentication.
func (ca *CA) IssueDevice(id string, validity time.Duration, keyType KeyType, now time.Time) (*Leaf, error) {
	if id == "" {
		return nil, errors.New("certs: IssueDevice needs a device ID")
	}
	return ca.IssueLeaf(LeafOptions{CommonName: id, Validity: validity, KeyType: keyType}, now)
}

// IssueVerification mints the proof-of-possession certificate of IoT Hub's CA
// verification: subject CN = the verification code the hub generated, signed by the CA's
// private key.
func (ca *CA) IssueVerification(code string, now time.Time) (*Leaf, error) {
	if code == "" {
		return nil, errors.New("certs: IssueVerification needs the verification code")
	}
	return ca.IssueLeaf(LeafOptions{CommonName: code, Validity: 30 * 24 * time.Hour}, now)
}

// LoadLeaf reads a certificate (with its chain) and key from PEM files, as the --cert and
// --key flags take them. The key must match the first certificate.
func LoadLeaf(certFile, keyFile string) (tls.Certificate, error) {
	c, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("reading %s and %s: %w", certFile, keyFile, err)
	}
	return c, nil
}
