package fakehub

import (
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	mqtt "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/packets"

	"github.com/hubkit/hubkit/pkg/iothub"
	"github.com/hubkit/hubkit/pkg/sas"
)

// Reasons for refusing an X.509 identity (CONNACK 5, like every refusal). The client
// certificate is requested in the TLS handshake and judged here, at CONNECT, so that the
// refusal can say why (docs/iothub-behavior.md §1.5, §1.23, §1.24).
const (
	// ReasonX509NoCertificate: the identity authenticates with X.509 but the TLS handshake
	// carried no client certificate.
	ReasonX509NoCertificate sas.Reason = "x509-no-certificate"
	// ReasonX509UnknownThumbprint: a selfSigned identity's certificate matches neither of
	// its registered thumbprints.
	ReasonX509UnknownThumbprint sas.Reason = "x509-unknown-thumbprint"
	// ReasonX509Expired: the client certificate's NotAfter has passed.
	ReasonX509Expired sas.Reason = "x509-expired"
	// ReasonX509NotYetValid: the client certificate's NotBefore is still ahead.
	ReasonX509NotYetValid sas.Reason = "x509-not-yet-valid"
	// ReasonX509CNMismatch: a certificateAuthority identity's certificate names another
	// identity in its subject common name.
	ReasonX509CNMismatch sas.Reason = "x509-cn-mismatch"
	// ReasonX509Untrusted: the certificate chain leads to no CA registered on the hub (or is
	// broken: a missing intermediate, an expired CA).
	ReasonX509Untrusted sas.Reason = "x509-untrusted-chain"
	// ReasonX509CANotVerified: the chain leads to a registered CA that was never verified
	// by proof of possession.
	ReasonX509CANotVerified sas.Reason = "x509-ca-not-verified"
	// ReasonX509KeyUsage: the certificate may not be used for client authentication (its
	// extended key usage lacks clientAuth, or its key usage lacks digitalSignature).
	ReasonX509KeyUsage sas.Reason = "x509-key-usage"
)

// x509Verdict is the outcome of checkX509.
type x509Verdict struct {
	rejection *sas.Rejection
}

// x509AuthScope is the iothub-connection-auth-method scope of an X.509 identity.
func x509AuthScope(id iothub.Identity) string {
	if id.IsModule() {
		return "module"
	}
	return "device"
}

// x509AuthMethodJSON is the iothub-connection-auth-method of a connection authenticated by
// its certificate: type "x509" (docs/iothub-behavior.md §4.1).
func x509AuthMethodJSON(scope string) string {
	am, _ := json.Marshal(authMethod{Scope: scope, Type: "x509", Issuer: "iothub"})
	return string(am)
}

// checkX509 judges the client certificate of cl for identity id, whose authentication is a
// (selfSigned or certificateAuthority). The password, if any, is not used.
func (s *Server) checkX509(cl *mqtt.Client, pk packets.Packet, id iothub.Identity, a iothub.Authentication, now time.Time) x509Verdict {
	reject := func(reason sas.Reason, detail string, hints ...string) x509Verdict {
		return x509Verdict{rejection: sas.Reject(reason, detail, hints...)}
	}
	kind := a.EffectiveType()
	var chain []*x509.Certificate
	g := guardOf(cl.Net.Conn)
	if g != nil {
		if st, ok := g.ConnectionState(); ok {
			chain = st.PeerCertificates
		}
	}
	if len(chain) == 0 {
		hints := []string{"give the TLS client the device's certificate and private key (mosquitto --cert/--key, Python tls_set(certfile=..., keyfile=...), the Azure SDKs' x509 options, devicesim --cert/--key)"}
		if pk.Connect.PasswordFlag && len(pk.Connect.Password) > 0 {
			hints = append(hints, "a SAS token cannot authenticate an identity registered for X.509; register it with symmetric keys to use tokens")
		}
		if g != nil && g.noClientCert.Load() {
			hints = append(hints, "the WebSocket URL says ?iothub-no-client-cert=true: drop it for an X.509 device")
		}
		return reject(ReasonX509NoCertificate, fmt.Sprintf("%s authenticates with X.509 (%s) but the TLS handshake carried no client certificate", id, kind), hints...)
	}
	leaf := chain[0]
	s1, s256 := iothub.Thumbprints(leaf.Raw)
	switch {
	case now.Before(leaf.NotBefore):
		return reject(ReasonX509NotYetValid, fmt.Sprintf("client certificate (CN=%s) is not valid before %s", clip(leaf.Subject.CommonName), leaf.NotBefore.UTC().Format(time.RFC3339)),
			"check the device's clock (a device without RTC or NTP often starts in 1970 or 2000)", "or issue the certificate with an earlier NotBefore")
	case now.After(leaf.NotAfter):
		return reject(ReasonX509Expired, fmt.Sprintf("client certificate (CN=%s) expired at %s", clip(leaf.Subject.CommonName), leaf.NotAfter.UTC().Format(time.RFC3339)),
			"renew the device certificate (and, for selfSigned identities, register the new thumbprint)", "check the device's clock")
	}
	if leaf.KeyUsage != 0 && leaf.KeyUsage&x509.KeyUsageDigitalSignature == 0 {
		return reject(ReasonX509KeyUsage, fmt.Sprintf("client certificate (CN=%s) has key usage without digitalSignature, so it cannot sign the TLS handshake as a client", clip(leaf.Subject.CommonName)),
			"issue the device certificate with keyUsage=digitalSignature")
	}
	if len(leaf.ExtKeyUsage) > 0 && !slices.Contains(leaf.ExtKeyUsage, x509.ExtKeyUsageClientAuth) && !slices.Contains(leaf.ExtKeyUsage, x509.ExtKeyUsageAny) {
		return reject(ReasonX509KeyUsage, fmt.Sprintf("client certificate (CN=%s) has extended key usage %s, which lacks clientAuth", clip(leaf.Subject.CommonName), extKeyUsages(leaf.ExtKeyUsage)),
			"issue the device certificate with extendedKeyUsage=clientAuth (a server certificate cannot authenticate a device)")
	}

	if kind == iothub.AuthSelfSigned {
		tp := a.X509Thumbprint
		for _, want := range []string{tp.PrimaryThumbprint, tp.SecondaryThumbprint} {
			if want != "" && (strings.EqualFold(want, s1) || strings.EqualFold(want, s256)) {
				return x509Verdict{}
			}
		}
		hints := []string{fmt.Sprintf("register this certificate's thumbprint as the primary or secondary thumbprint of %s: SHA-256 %s (or SHA-1 %s)", id, s256, s1)}
		if pool, _ := s.opts.Registry.caAnchors(); len(chain) > 0 {
			if _, err := leaf.Verify(x509.VerifyOptions{Roots: pool, Intermediates: intermediates(chain), CurrentTime: now, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageAny}}); err == nil {
				hints = append(hints, "the certificate chains to a CA registered on this hub: register the identity as certificateAuthority instead")
			}
		}
		return reject(ReasonX509UnknownThumbprint, fmt.Sprintf("client certificate thumbprint (SHA-1 %s, SHA-256 %s) matches neither thumbprint registered for %s", s1, s256, id), hints...)
	}

	// certificateAuthority: the chain must lead to a registered, verified CA, and the
	// leaf's common name must name the identity.
	pool, byCert := s.opts.Registry.caAnchors()
	if len(byCert) == 0 {
		return reject(ReasonX509Untrusted, fmt.Sprintf("%s authenticates with a CA but no CA certificate is registered on this hub", id),
			"register the root or intermediate CA that signed the device certificate (fakehub certificate create NAME --path ca.pem --verified)")
	}
	chains, err := leaf.Verify(x509.VerifyOptions{Roots: pool, Intermediates: intermediates(chain), CurrentTime: now, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageAny}})
	if err != nil {
		var unknown x509.UnknownAuthorityError
		if errors.As(err, &unknown) {
			return reject(ReasonX509Untrusted, fmt.Sprintf("client certificate (CN=%s, issued by %q) chains to no CA certificate registered on this hub", clip(leaf.Subject.CommonName), clip(leaf.Issuer.CommonName)),
				"register the root or an intermediate CA of the device's chain (fakehub certificate create NAME --path ca.pem)",
				"a device signed by an intermediate CA must send the intermediate after its own certificate (one PEM file, leaf first)")
		}
		return reject(ReasonX509Untrusted, fmt.Sprintf("client certificate (CN=%s) does not chain to a registered CA: %v", clip(leaf.Subject.CommonName), err))
	}
	var unverified []string
	for _, c := range chains {
		e := byCert[string(c[len(c)-1].Raw)]
		if e != nil && e.verified {
			unverified = nil
			break
		}
		if e != nil && !slices.Contains(unverified, e.name) {
			unverified = append(unverified, e.name)
		}
	}
	if len(unverified) > 0 {
		name := unverified[0]
		return reject(ReasonX509CANotVerified, fmt.Sprintf("client certificate chains to CA certificate %q, which has not been verified (proof of possession)", name),
			fmt.Sprintf("fakehub certificate generate-verification-code %s; sastool cert verification --ca CA_DIR --code CODE; fakehub certificate verify %s --path verification.pem", name, name),
			"or register the CA as verified on upload (fakehub certificate create "+name+" --path ca.pem --verified)")
	}
	want := id.DeviceID
	if id.IsModule() {
		want = id.DeviceID + "/" + id.ModuleID
	}
	if leaf.Subject.CommonName != want {
		return reject(ReasonX509CNMismatch, fmt.Sprintf("client certificate CN is %q, want %q: IoT Hub requires the device certificate's common name to be the device ID (deviceId/moduleId for a module)", clip(leaf.Subject.CommonName), want),
			"issue the certificate with CN="+want+" (sastool cert device --ca CA_DIR --device "+want+")")
	}
	return x509Verdict{}
}

func intermediates(chain []*x509.Certificate) *x509.CertPool {
	p := x509.NewCertPool()
	for _, c := range chain[1:] {
		p.AddCert(c)
	}
	return p
}

func extKeyUsages(us []x509.ExtKeyUsage) string {
	names := map[x509.ExtKeyUsage]string{x509.ExtKeyUsageServerAuth: "serverAuth", x509.ExtKeyUsageClientAuth: "clientAuth",
		x509.ExtKeyUsageCodeSigning: "codeSigning", x509.ExtKeyUsageEmailProtection: "emailProtection"}
	var out []string
	for _, u := range us {
		n, ok := names[u]
		if !ok {
			n = fmt.Sprintf("usage(%d)", u)
		}
		out = append(out, n)
	}
	return strings.Join(out, ", ")
}

// noPasswordHints explains a CONNECT without password for an identity that uses keys (or
// is unknown) but sent a client certificate.
func noPasswordHints(cl *mqtt.Client, id iothub.Identity, reg *Registry) []string {
	g := guardOf(cl.Net.Conn)
	if g == nil {
		return nil
	}
	st, ok := g.ConnectionState()
	if !ok || len(st.PeerCertificates) == 0 {
		return nil
	}
	if _, known := reg.lookup(id); !known {
		return nil
	}
	return []string{fmt.Sprintf("the device sent a client certificate, but %s is registered with symmetric keys (type sas): register it as selfSigned (thumbprints) or certificateAuthority to authenticate with the certificate", id)}
}
