package fakehub

import (
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"io"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/hubkit/hubkit/pkg/iothub"
)

// CA certificates of certificateAuthority identities, as IoT Hub keeps them (Azure Resource
// Manager's Certificates_* operations; docs/iothub-behavior.md §1.24, §1.25): a root or
// intermediate CA, uploaded, then verified by proof of possession (or marked verified on
// upload). Only a verified CA authenticates devices.

// caEntry is one registered CA.
type caEntry struct {
	name     string
	cert     *x509.Certificate
	text     string // as uploaded
	verified bool
	code     string // pending verification code ("" none)
	created  time.Time
	updated  time.Time
	etag     string
}

// certificateName is ARM's rule for certificate names.
var certificateName = regexp.MustCompile(`^[A-Za-z0-9-._]{1,64}$`)

func (e *caEntry) describe(withText bool) iothub.Certificate {
	s1, _ := iothub.Thumbprints(e.cert.Raw)
	c := iothub.Certificate{Name: e.name, Type: iothub.CertificateType, ETag: e.etag, Properties: iothub.CertificateProperties{
		Subject: "CN=" + e.cert.Subject.CommonName, Expiry: e.cert.NotAfter.UTC(), Thumbprint: s1, IsVerified: e.verified,
		Created: e.created, Updated: e.updated,
	}}
	if withText {
		c.Properties.Certificate = e.text
	}
	return c
}

func (e *caEntry) touch(now time.Time) {
	e.updated = now.UTC().Truncate(time.Second)
	h := sha256.Sum256(fmt.Appendf(nil, "%s\x00%x\x00%v\x00%s\x00%d", e.name, e.cert.Raw, e.verified, e.code, e.updated.UnixNano()))
	e.etag = base64.StdEncoding.EncodeToString(h[:8])
}

func certNotFound(name string) error {
	return iothub.Errorf(iothub.CodeGenericNotFound, "no CA certificate named %q is registered on this hub", name)
}

func (r *Registry) clock() time.Time { return (*r.now.Load())() }

// checkIfMatch applies ARM's If-Match rule to a certificate ("" or "*": unconditional).
func checkIfMatch(e *caEntry, ifMatch string) error {
	ifMatch = iothub.UnquoteETag(ifMatch)
	if ifMatch != "" && ifMatch != "*" && ifMatch != e.etag {
		return iothub.Errorf(iothub.CodePreconditionFailed, "etag %q does not match CA certificate %q's %q", ifMatch, e.name, e.etag)
	}
	return nil
}

// certForUpdate returns the CA called name if ifMatch allows changing it. Call with r.mu held.
func (r *Registry) certForUpdate(name, ifMatch string) (*caEntry, error) {
	e, ok := r.cas[name]
	if !ok {
		return nil, certNotFound(name)
	}
	if err := checkIfMatch(e, ifMatch); err != nil {
		return nil, err
	}
	return e, nil
}

// PutCertificate registers (or replaces) the CA certificate called name: text is its PEM or
// base64 DER, as `az iot hub certificate create --path` uploads it. verified marks it
// verified on upload (az's --verified); otherwise it must be verified by proof of possession
// (GenerateVerificationCode, VerifyCertificate) before it authenticates devices. Replacing a
// certificate with another one resets its verification.
func (r *Registry) PutCertificate(name, text string, verified bool, ifMatch string) (iothub.Certificate, error) {
	if !certificateName.MatchString(name) {
		return iothub.Certificate{}, iothub.Errorf(iothub.CodeArgumentInvalid, "certificate name %q: want 1 to 64 letters, digits, '-', '.' or '_'", clip(name))
	}
	cert, err := iothub.ParseCertificate(text)
	if err != nil {
		return iothub.Certificate{}, iothub.Errorf(iothub.CodeArgumentInvalid, "certificate %q: %v", name, err)
	}
	if !cert.IsCA || !cert.BasicConstraintsValid {
		return iothub.Certificate{}, iothub.Errorf(iothub.CodeArgumentInvalid,
			"certificate %q (CN=%s) is not a CA certificate (BasicConstraints CA=false): register the root or intermediate CA that signed the devices; a device's own certificate is registered by thumbprint (authentication.type selfSigned)",
			name, clip(cert.Subject.CommonName))
	}
	now := r.clock()
	r.mu.Lock()
	defer r.mu.Unlock()
	old := r.cas[name]
	if old != nil {
		if err := checkIfMatch(old, ifMatch); err != nil {
			return iothub.Certificate{}, err
		}
	}
	e := &caEntry{name: name, cert: cert, text: text, verified: verified, created: now.UTC().Truncate(time.Second)}
	if old != nil {
		e.created = old.created
		if old.cert.Equal(cert) {
			e.verified = verified || old.verified
		}
	}
	e.touch(now)
	r.cas[name] = e
	return e.describe(true), nil
}

// Certificate returns the registered CA called name.
func (r *Registry) Certificate(name string) (iothub.Certificate, error) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	e, ok := r.cas[name]
	if !ok {
		return iothub.Certificate{}, certNotFound(name)
	}
	return e.describe(false), nil
}

// Certificates returns the registered CAs, sorted by name.
func (r *Registry) Certificates() []iothub.Certificate {
	r.mu.RLock()
	defer r.mu.RUnlock()
	out := make([]iothub.Certificate, 0, len(r.cas))
	for _, e := range r.cas {
		out = append(out, e.describe(false))
	}
	slices.SortFunc(out, func(a, b iothub.Certificate) int { return strings.Compare(a.Name, b.Name) })
	return out
}

// DeleteCertificate removes a registered CA (ifMatch: "" or "*" unconditional, else the
// etag). Devices it authenticated are refused at their next CONNECT.
func (r *Registry) DeleteCertificate(name, ifMatch string) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if _, err := r.certForUpdate(name, ifMatch); err != nil {
		return err
	}
	delete(r.cas, name)
	return nil
}

// GenerateVerificationCode starts proof of possession for the CA called name: the returned
// properties carry the verification code, to be the common name of a certificate signed
// with the CA's private key (`sastool cert verification`), which VerifyCertificate checks.
// A new code replaces the previous one.
func (r *Registry) GenerateVerificationCode(name, ifMatch string) (iothub.Certificate, error) {
	var b [24]byte
	if _, err := io.ReadFull(r.rand, b[:]); err != nil {
		return iothub.Certificate{}, fmt.Errorf("generating a verification code: %w", err)
	}
	now := r.clock()
	r.mu.Lock()
	defer r.mu.Unlock()
	e, err := r.certForUpdate(name, ifMatch)
	if err != nil {
		return iothub.Certificate{}, err
	}
	e.code = strings.ToUpper(hex.EncodeToString(b[:]))
	e.touch(now)
	c := e.describe(false)
	c.Properties.VerificationCode = e.code
	return c, nil
}

// VerifyCertificate completes proof of possession: proof (PEM or base64 DER) must have the
// pending verification code as its subject CN, be signed by the CA called name and be valid
// now. On success the CA is verified and the code is used up.
func (r *Registry) VerifyCertificate(name, ifMatch, proof string) (iothub.Certificate, error) {
	pc, err := iothub.ParseCertificate(proof)
	if err != nil {
		return iothub.Certificate{}, iothub.Errorf(iothub.CodeArgumentInvalid, "verification certificate: %v", err)
	}
	now := r.clock()
	r.mu.Lock()
	defer r.mu.Unlock()
	e, err := r.certForUpdate(name, ifMatch)
	if err != nil {
		return iothub.Certificate{}, err
	}
	switch {
	case e.code == "":
		return iothub.Certificate{}, iothub.Errorf(iothub.CodeArgumentInvalid,
			"CA certificate %q has no pending verification code: generate one first (generateVerificationCode)", name)
	case pc.Subject.CommonName != e.code:
		return iothub.Certificate{}, iothub.Errorf(iothub.CodeArgumentInvalid,
			"the verification certificate's CN is %q, want the verification code %s (the latest one generated for %q)", clip(pc.Subject.CommonName), e.code, name)
	case pc.CheckSignatureFrom(e.cert) != nil:
		return iothub.Certificate{}, iothub.Errorf(iothub.CodeArgumentInvalid,
			"the verification certificate (CN=%s) is not signed by CA certificate %q (CN=%s): sign it with that CA's private key", e.code, name, clip(e.cert.Subject.CommonName))
	case now.Before(pc.NotBefore) || now.After(pc.NotAfter):
		return iothub.Certificate{}, iothub.Errorf(iothub.CodeArgumentInvalid,
			"the verification certificate is not valid now (valid %s to %s)", pc.NotBefore.UTC().Format(time.RFC3339), pc.NotAfter.UTC().Format(time.RFC3339))
	}
	e.verified, e.code = true, ""
	e.touch(now)
	return e.describe(false), nil
}

// caAnchors returns the registered CA certificates and whether each is verified, for the
// X.509 verdict.
func (r *Registry) caAnchors() (pool *x509.CertPool, byCert map[string]*caEntry) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	pool, byCert = x509.NewCertPool(), map[string]*caEntry{}
	for _, e := range r.cas {
		pool.AddCert(e.cert)
		cp := *e
		byCert[string(e.cert.Raw)] = &cp
	}
	return pool, byCert
}
