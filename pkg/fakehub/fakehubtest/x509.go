package fakehubtest

import (
	"crypto/tls"
	"path/filepath"
	"strings"
	"time"

	"github.com/hubkit/hubkit/internal/certs"
	"github.com/hubkit/hubkit/pkg/iothub"
)

// DeviceCert is a device certificate ready for a test: the TLS client certificate, the
// same as PEM files (leaf first, then any intermediate; key as PKCS #8) for mosquitto
// --cert/--key, Python's tls_set(certfile, keyfile) or the Node SDK's x509 options, and
// its thumbprints as az prints them.
type DeviceCert struct {
	TLS              tls.Certificate
	CertFile         string
	KeyFile          string
	ThumbprintSHA1   string
	ThumbprintSHA256 string
}

// DeviceCAName is the name under which the hub's test device CA is registered (verified).
const DeviceCAName = "fakehubtest-device-ca"

// deviceCAFor returns the hub's device CA, registering it (verified) on first use.
func (h *Hub) deviceCAFor() *certs.CA {
	h.t.Helper()
	h.deviceMu.Lock()
	defer h.deviceMu.Unlock()
	if h.deviceCA != nil {
		return h.deviceCA
	}
	ca, err := certs.NewCA("fakehubtest device CA", 24*time.Hour, h.now, nil)
	if err != nil {
		h.t.Fatalf("fakehubtest: device CA: %v", err)
	}
	if _, err := h.Registry().PutCertificate(DeviceCAName, string(ca.CertPEM), true, ""); err != nil {
		h.t.Fatalf("fakehubtest: registering the device CA: %v", err)
	}
	h.deviceCA = ca
	return ca
}

// DeviceCAPEM returns the PEM of the test CA that signs DeviceCertificate's certificates
// (registered on the hub, verified, as DeviceCAName).
func (h *Hub) DeviceCAPEM() string { return string(h.deviceCAFor().CertPEM) }

// DeviceCertificate mints a certificate signed by the hub's registered device CA, with
// subject CN=cn (a device ID, or "deviceId/moduleId"), valid for a day. It does not register
// an identity: AddCADevice does both.
func (h *Hub) DeviceCertificate(cn string) DeviceCert {
	h.t.Helper()
	l, err := h.deviceCAFor().IssueDevice(cn, 24*time.Hour, certs.ECDSAP256, h.now)
	if err != nil {
		h.t.Fatalf("fakehubtest: device certificate for %q: %v", cn, err)
	}
	return h.save(l, cn)
}

// SelfSignedCertificate mints a self-signed device certificate with CN=cn, valid for a day.
func (h *Hub) SelfSignedCertificate(cn string) DeviceCert {
	h.t.Helper()
	l, err := certs.SelfSignedLeaf(certs.LeafOptions{CommonName: cn, Validity: 24 * time.Hour}, h.now, nil)
	if err != nil {
		h.t.Fatalf("fakehubtest: self-signed certificate for %q: %v", cn, err)
	}
	return h.save(l, cn)
}

func (h *Hub) save(l *certs.Leaf, cn string) DeviceCert {
	h.t.Helper()
	dir := h.t.TempDir()
	certFile, keyFile, err := l.Save(dir, strings.NewReplacer("/", "_").Replace(cn))
	if err != nil {
		h.t.Fatalf("fakehubtest: %v", err)
	}
	s1, s256 := iothub.Thumbprints(l.Cert.Raw)
	return DeviceCert{TLS: l.TLSCertificate(), CertFile: filepath.Clean(certFile), KeyFile: filepath.Clean(keyFile), ThumbprintSHA1: s1, ThumbprintSHA256: s256}
}

// AddCADevice registers id (a device, or a module of an existing device) as a
// certificateAuthority identity and returns a certificate for it from the hub's device CA.
func (h *Hub) AddCADevice(id iothub.Identity) DeviceCert {
	h.t.Helper()
	cn := id.DeviceID
	if id.IsModule() {
		cn += "/" + id.ModuleID
	}
	c := h.DeviceCertificate(cn)
	if _, err := h.Registry().Add(iothub.Device{DeviceID: id.DeviceID, ModuleID: id.ModuleID, Authentication: iothub.CAAuth()}); err != nil {
		h.t.Fatalf("fakehubtest: adding %s: %v", id, err)
	}
	return c
}

// AddSelfSignedDevice registers id as a selfSigned identity whose primary thumbprint is the
// SHA-256 of a fresh self-signed certificate, and returns that certificate.
func (h *Hub) AddSelfSignedDevice(id iothub.Identity) DeviceCert {
	h.t.Helper()
	c := h.SelfSignedCertificate(id.String())
	if _, err := h.Registry().Add(iothub.Device{DeviceID: id.DeviceID, ModuleID: id.ModuleID, Authentication: iothub.X509Auth(c.ThumbprintSHA256, "")}); err != nil {
		h.t.Fatalf("fakehubtest: adding %s: %v", id, err)
	}
	return c
}
