package certs

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// TLS drills: server certificate set-ups that a device's TLS stack must handle the way it
// would handle the real hub's (docs/iothub-behavior.md §8.5). The "azure-*" drills present
// chains SHAPED like IoT Hub's (depth, key algorithms and sizes, signature algorithms,
// subject names with "(hubkit test copy)"), built from test CAs: never Microsoft's or
// DigiCert's keys. A device trusts the test copy of the root in place of the real one.
const (
	DrillDefault       = "default"         // the hub's own CA and leaf (no drill)
	DrillAzureG2       = "azure-g2"        // DigiCert Global Root G2 → Microsoft Azure RSA TLS Issuing CA → leaf (today's chain)
	DrillBaltimore     = "azure-baltimore" // Baltimore CyberTrust Root → Microsoft RSA TLS CA 01 → leaf (before 2023)
	DrillMSRSA2017     = "azure-msrsa2017" // Microsoft RSA Root Certificate Authority 2017 → issuing CA → leaf
	DrillAzureECC      = "azure-ecc"       // DigiCert Global Root G3 → Microsoft Azure ECC TLS Issuing CA → leaf (ECC preview)
	DrillExpired       = "expired"         // the hub's CA, but the leaf expired a year ago
	DrillWrongSAN      = "wrong-san"       // the hub's CA, but the leaf names another host only
	DrillUntrustedRoot = "untrusted-root"  // a leaf from a root the device does not trust
	DrillRootChange    = "root-change"     // Baltimore-shaped and G2-shaped chains, alternating per TLS handshake
)

// DrillInfo names a drill and says what a correct device does with it.
type DrillInfo struct {
	Name        string
	Description string
	Refuse      bool // a correct device refuses the server (and never sends its credentials)
}

// Drills lists the drills, DrillDefault first.
var Drills = []DrillInfo{
	{DrillDefault, "the hub's own test CA and a leaf for its host names", false},
	{DrillAzureG2, "a 3-deep RSA chain shaped like IoT Hub's since 2023: DigiCert Global Root G2 (RSA 2048, SHA-256) → Microsoft Azure RSA TLS Issuing CA 04 (RSA 4096, SHA-384) → leaf (RSA 2048)", false},
	{DrillBaltimore, "a chain shaped like IoT Hub's before the 2023 migration: Baltimore CyberTrust Root (RSA 2048, self-signed with SHA-1) → Microsoft RSA TLS CA 01 (RSA 4096) → leaf (RSA 2048)", false},
	{DrillMSRSA2017, "a chain under Microsoft RSA Root Certificate Authority 2017 (RSA 4096, SHA-384), the second root Microsoft tells devices to trust", false},
	{DrillAzureECC, "the ECC preview chain: DigiCert Global Root G3 (P-384) → Microsoft Azure ECC TLS Issuing CA 03 (P-384) → leaf (P-256)", false},
	{DrillExpired, "the hub's CA, but a server certificate that expired a year ago", true},
	{DrillWrongSAN, "the hub's CA, but a server certificate for wrong-host.invalid only", true},
	{DrillUntrustedRoot, "a server certificate from a root the device was not given", true},
	{DrillRootChange, "a root migration: handshakes alternate between the Baltimore-shaped and the G2-shaped chain; a device trusting both roots reconnects, one trusting only the old root is locked out", false},
}

// DrillByName returns the drill called name.
func DrillByName(name string) (DrillInfo, bool) {
	for _, d := range Drills {
		if d.Name == name {
			return d, true
		}
	}
	return DrillInfo{}, false
}

// DrillNames returns the names of Drills, comma-separated (for help texts and errors).
func DrillNames() string {
	n := make([]string, len(Drills))
	for i, d := range Drills {
		n[i] = d.Name
	}
	return strings.Join(n, ", ")
}

// A rootShape is a test root and intermediate shaped like a real pair.
type rootShape struct {
	name        string // store name
	root, inter CAOptions
	leafKey     KeyType
	leafSigAlgo x509.SignatureAlgorithm
}

const testCopy = " (hubkit test copy)"

var (
	shapeG2 = rootShape{
		name:    "digicert-global-root-g2",
		root:    CAOptions{CommonName: "DigiCert Global Root G2" + testCopy, Organization: "hubkit test", KeyType: RSA2048, SignatureAlgorithm: x509.SHA256WithRSA, MaxPathLen: -1},
		inter:   CAOptions{CommonName: "Microsoft Azure RSA TLS Issuing CA 04" + testCopy, Organization: "hubkit test", KeyType: RSA4096, SignatureAlgorithm: x509.SHA384WithRSA},
		leafKey: RSA2048, leafSigAlgo: x509.SHA384WithRSA,
	}
	shapeBaltimore = rootShape{
		name:    "baltimore-cybertrust-root",
		root:    CAOptions{CommonName: "Baltimore CyberTrust Root" + testCopy, Organization: "hubkit test", KeyType: RSA2048, SignatureAlgorithm: x509.SHA1WithRSA, MaxPathLen: 3},
		inter:   CAOptions{CommonName: "Microsoft RSA TLS CA 01" + testCopy, Organization: "hubkit test", KeyType: RSA4096, SignatureAlgorithm: x509.SHA256WithRSA},
		leafKey: RSA2048, leafSigAlgo: x509.SHA256WithRSA,
	}
	shapeMSRSA2017 = rootShape{
		name:    "microsoft-rsa-root-2017",
		root:    CAOptions{CommonName: "Microsoft RSA Root Certificate Authority 2017" + testCopy, Organization: "hubkit test", KeyType: RSA4096, SignatureAlgorithm: x509.SHA384WithRSA, MaxPathLen: -1},
		inter:   CAOptions{CommonName: "Microsoft Azure RSA TLS Issuing CA 03" + testCopy, Organization: "hubkit test", KeyType: RSA2048, SignatureAlgorithm: x509.SHA384WithRSA},
		leafKey: RSA2048, leafSigAlgo: x509.SHA384WithRSA,
	}
	shapeG3 = rootShape{
		name:    "digicert-global-root-g3",
		root:    CAOptions{CommonName: "DigiCert Global Root G3" + testCopy, Organization: "hubkit test", KeyType: ECDSAP384, SignatureAlgorithm: x509.ECDSAWithSHA384, MaxPathLen: -1},
		inter:   CAOptions{CommonName: "Microsoft Azure ECC TLS Issuing CA 03" + testCopy, Organization: "hubkit test", KeyType: ECDSAP384, SignatureAlgorithm: x509.ECDSAWithSHA384},
		leafKey: ECDSAP256, leafSigAlgo: x509.ECDSAWithSHA384,
	}
	shapeUntrusted = rootShape{
		name: "untrusted-root",
		root: CAOptions{CommonName: "hubkit untrusted test root (DO NOT TRUST)", Organization: "hubkit test"},
	}
)

// CAStore keeps the CAs drills are built from, so that a device can trust a drill's root
// across restarts. CA returns the CA called name, creating it with opts (signed by parent,
// or self-signed when parent is nil) when there is none yet, or when the stored one was not
// signed by parent.
type CAStore interface {
	CA(name string, opts CAOptions, parent *CA) (*CA, error)
}

// DirStore keeps each CA in dir/NAME/ca.pem and dir/NAME/ca-key.pem (the layout of LoadCA).
func DirStore(dir string, now time.Time) CAStore { return &dirStore{dir: dir, now: now} }

type dirStore struct {
	dir string
	now time.Time
}

func (s *dirStore) CA(name string, opts CAOptions, parent *CA) (*CA, error) {
	dir := filepath.Join(s.dir, name)
	ca, err := LoadCA(dir)
	switch {
	case err == nil && (parent == nil || ca.Cert.CheckSignatureFrom(parent.Cert) == nil) && !s.now.After(ca.Cert.NotAfter):
		if parent != nil {
			ca.Parents = parent.chain()
		}
		return ca, nil
	case err != nil && !errors.Is(err, fs.ErrNotExist):
		return nil, err
	}
	ca, err = newStoredCA(opts, parent, s.now)
	if err != nil {
		return nil, err
	}
	if err := ca.Save(dir); err != nil {
		return nil, err
	}
	return ca, nil
}

// MemoryStore keeps CAs in memory (tests: one set per process).
func MemoryStore(now time.Time) CAStore { return &memStore{now: now, cas: map[string]*CA{}} }

type memStore struct {
	mu  sync.Mutex
	now time.Time
	cas map[string]*CA
}

func (s *memStore) CA(name string, opts CAOptions, parent *CA) (*CA, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if ca, ok := s.cas[name]; ok {
		return ca, nil
	}
	ca, err := newStoredCA(opts, parent, s.now)
	if err != nil {
		return nil, err
	}
	s.cas[name] = ca
	return ca, nil
}

func newStoredCA(opts CAOptions, parent *CA, now time.Time) (*CA, error) {
	if parent == nil {
		return NewCAWith(opts, now, nil)
	}
	return parent.NewIntermediate(opts, now)
}

// Drill is a running drill's server side: the certificates to present and the roots a
// correct device trusts.
type Drill struct {
	Info DrillInfo
	// Certificates are presented in turn, one per TLS handshake (the root-change drill has
	// two; the others one).
	Certificates []tls.Certificate
	// Trusted are the roots a correct device is given for this drill (the hub's own CA for
	// the refusal drills; for the migration both roots and the hub's CA, so that the same
	// trust file serves a device graded on a hub presenting its own chain).
	Trusted []*x509.Certificate
	// Roots are the roots the presented chains lead to (for the untrusted-root drill: a root
	// not in Trusted).
	Roots []*x509.Certificate

	next atomic.Uint64
}

// NewDrill builds the drill called name for a server answering for hosts. hubCA is the
// hub's own CA (used by default, expired and wrong-san); store keeps the shaped roots and
// their intermediates.
func NewDrill(name string, hosts []string, hubCA *CA, store CAStore, now time.Time) (*Drill, error) {
	info, ok := DrillByName(name)
	if !ok {
		return nil, fmt.Errorf("certs: unknown TLS drill %q: want one of %s", name, DrillNames())
	}
	d := &Drill{Info: info}
	hubLeaf := func(opts LeafOptions) error {
		opts.Hosts = append(opts.Hosts, hosts...)
		l, err := hubCA.IssueLeaf(opts, now)
		if err != nil {
			return err
		}
		d.Certificates = append(d.Certificates, l.TLSCertificate())
		d.Trusted, d.Roots = []*x509.Certificate{hubCA.Cert}, []*x509.Certificate{hubCA.Cert}
		return nil
	}
	switch name {
	case DrillDefault:
		return d, hubLeaf(LeafOptions{Validity: 90 * 24 * time.Hour})
	case DrillExpired:
		return d, hubLeaf(LeafOptions{NotBefore: now.Add(-2 * DefaultLeafValidity), Validity: DefaultLeafValidity})
	case DrillWrongSAN:
		// Hosts are replaced, not added: the certificate must not name the hub.
		l, err := hubCA.IssueLeaf(LeafOptions{Hosts: []string{"wrong-host.invalid"}, Validity: 90 * 24 * time.Hour}, now)
		if err != nil {
			return nil, err
		}
		d.Certificates = []tls.Certificate{l.TLSCertificate()}
		d.Trusted, d.Roots = []*x509.Certificate{hubCA.Cert}, []*x509.Certificate{hubCA.Cert}
		return d, nil
	case DrillUntrustedRoot:
		root, err := store.CA(shapeUntrusted.name, shapeUntrusted.root, nil)
		if err != nil {
			return nil, err
		}
		l, err := root.IssueLeaf(LeafOptions{Hosts: hosts, Validity: 90 * 24 * time.Hour}, now)
		if err != nil {
			return nil, err
		}
		d.Certificates = []tls.Certificate{l.TLSCertificate()}
		d.Trusted, d.Roots = []*x509.Certificate{hubCA.Cert}, []*x509.Certificate{root.Cert}
		return d, nil
	}
	shapes := map[string][]rootShape{
		DrillAzureG2: {shapeG2}, DrillBaltimore: {shapeBaltimore}, DrillMSRSA2017: {shapeMSRSA2017},
		DrillAzureECC: {shapeG3}, DrillRootChange: {shapeBaltimore, shapeG2},
	}[name]
	for _, sh := range shapes {
		root, err := store.CA(sh.name, sh.root, nil)
		if err != nil {
			return nil, err
		}
		inter, err := store.CA(sh.name+"-issuing", sh.inter, root)
		if err != nil {
			return nil, err
		}
		l, err := inter.IssueLeaf(LeafOptions{Hosts: hosts, Validity: 90 * 24 * time.Hour, KeyType: sh.leafKey, SignatureAlgorithm: sh.leafSigAlgo}, now)
		if err != nil {
			return nil, err
		}
		d.Certificates = append(d.Certificates, l.TLSCertificate())
		d.Trusted = append(d.Trusted, root.Cert)
		d.Roots = append(d.Roots, root.Cert)
	}
	if name == DrillRootChange {
		d.Trusted = append(d.Trusted, hubCA.Cert)
	}
	return d, nil
}

// Presented returns the one chain a device grader presents for the drill (the hub
// switching to it for a while, docs/iothub-behavior.md §15.17): the root-change drill's
// new (G2-shaped) chain, the only chain of the others.
func (d *Drill) Presented() tls.Certificate { return d.Certificates[len(d.Certificates)-1] }

// TrustPool returns a pool of the drill's Trusted roots.
func (d *Drill) TrustPool() *x509.CertPool {
	p := x509.NewCertPool()
	for _, c := range d.Trusted {
		p.AddCert(c)
	}
	return p
}

// ServerTLS returns a server configuration (TLS 1.2 or later) presenting the drill's
// certificates, the next one on each handshake.
func (d *Drill) ServerTLS() *tls.Config {
	return &tls.Config{MinVersion: tls.VersionTLS12, GetCertificate: func(*tls.ClientHelloInfo) (*tls.Certificate, error) {
		n := d.next.Add(1) - 1
		return &d.Certificates[n%uint64(len(d.Certificates))], nil
	}}
}

// WriteTrust writes the drill's Trusted roots as one PEM file (0644).
func (d *Drill) WriteTrust(path string) error {
	var out []byte
	for _, c := range d.Trusted {
		out = append(out, encodePEM("CERTIFICATE", c.Raw)...)
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return fmt.Errorf("certs: %w", err)
	}
	return writeFile(path, out, 0o644)
}
