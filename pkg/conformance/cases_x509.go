package conformance

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"time"

	"github.com/hubkit/hubkit/internal/certs"
	"github.com/hubkit/hubkit/internal/mqttraw"
	"github.com/hubkit/hubkit/pkg/device"
	"github.com/hubkit/hubkit/pkg/iothub"
)

const docX509 = "learn.microsoft.com/azure/iot-hub/authenticate-authorize-x509"

// x509Connect is the CONNECT of an X.509 identity: the documented user name, no password.
func (e *env) x509Connect(d DeviceIdentity) mqttraw.ConnectPacket {
	id := identityOf(d)
	return mqttraw.ConnectPacket{ClientID: id.ClientID(), UserName: mqttraw.String(e.userName(id)), CleanSession: true, KeepAlive: 60}
}

// selfSigned mints a self-signed device certificate (the suite's own) with opts.
func (e *env) selfSigned(opts certs.LeafOptions) *certs.Leaf {
	e.t.Helper()
	if opts.CommonName == "" {
		opts.CommonName = "conformance-x509"
	}
	l, err := certs.SelfSignedLeaf(opts, e.now(), nil)
	if err != nil {
		e.Fatalf("minting a certificate: %v", err)
	}
	return l
}

// x509Device registers a selfSigned device for a certificate minted with opts.
func (e *env) x509Device(opts certs.LeafOptions) (DeviceIdentity, tls.Certificate) {
	e.t.Helper()
	l := e.selfSigned(opts)
	return e.target.(X509Provisioner).NewSelfSignedDevice(e.t, l.Cert), l.TLSCertificate()
}

// connectX509 connects the reference client as d with cert and checks, when the target
// reads telemetry, that the hub stamps auth type x509.
func (e *env) connectX509(d DeviceIdentity, cert tls.Certificate) {
	e.t.Helper()
	cl := e.newClient(d, func(c *device.Config) { c.SharedAccessKey, c.Certificate = "", &cert })
	e.connectClient(cl, "reference client with its X.509 certificate and no password")
	tr, ok := e.target.(TelemetryReader)
	if !ok {
		return
	}
	if err := cl.SendEvent(e.ctx, device.Event{Payload: []byte(`{"x509":true}`)}); err != nil {
		e.Fatalf("SendEvent: %v", err)
	}
	ev, err := tr.NextTelemetry(e.ctx, d.DeviceID)
	if err != nil {
		e.Fatalf("reading the telemetry back: %v", err)
	}
	var am struct{ Scope, Type string }
	if err := json.Unmarshal([]byte(ev.Annotations[iothub.PropConnectionAuthMethod]), &am); err != nil || am.Type != "x509" {
		e.Errorf("%s = %q, want type x509", iothub.PropConnectionAuthMethod, ev.Annotations[iothub.PropConnectionAuthMethod])
	}
}

var x509Cases = []Case{
	{
		ID:          "connect/x509/self-signed",
		Requirement: "A selfSigned (thumbprint) device connects with its certificate in the TLS handshake and no password (CONNACK 0); its telemetry is stamped with auth type x509.",
		Section:     "docs/iothub-behavior.md §1.5, §1.15, §1.23, §4.1; " + docX509,
		Certainty:   "C",
		Needs:       []string{NeedX509},
		run: func(e *env) {
			d, cert := e.x509Device(certs.LeafOptions{})
			e.connectX509(d, cert)
		},
	},
	{
		ID:          "connect/x509/ca-signed",
		Requirement: "A certificateAuthority device connects with a certificate whose CN is its device ID, signed by a CA the hub has verified, and no password (CONNACK 0).",
		Section:     "docs/iothub-behavior.md §1.24; " + docX509 + " (Sign devices into the certificate chain of trust)",
		Certainty:   "C",
		Needs:       []string{NeedX509},
		run: func(e *env) {
			d, mint := e.target.(X509Provisioner).NewCADevice(e.t)
			e.connectX509(d, mint(d.DeviceID))
		},
	},
	{
		ID:          "connect/x509/no-certificate",
		Requirement: "An X.509 device that sends neither a certificate nor a password is refused with CONNACK 5.",
		Section:     "docs/iothub-behavior.md §1.15, §1.23",
		Certainty:   "I",
		Needs:       []string{NeedX509},
		run: func(e *env) {
			d, _ := e.x509Device(certs.LeafOptions{})
			e.expectRefusedWith(e.x509Connect(d), nil, refused5, "x509-no-certificate")
		},
	},
	{
		ID:          "connect/x509/unknown-thumbprint",
		Requirement: "A selfSigned device presenting a certificate whose thumbprint is not registered for it is refused with CONNACK 5.",
		Section:     "docs/iothub-behavior.md §1.23; " + docX509 + " (X.509 self-signed)",
		Certainty:   "C/I",
		Needs:       []string{NeedX509},
		run: func(e *env) {
			d, _ := e.x509Device(certs.LeafOptions{})
			other := e.selfSigned(certs.LeafOptions{}).TLSCertificate()
			e.expectRefusedWith(e.x509Connect(d), &other, refused5, "x509-unknown-thumbprint")
		},
	},
	{
		ID:          "connect/x509/expired",
		Requirement: "A device certificate past its NotAfter is refused with CONNACK 5, even with a registered thumbprint.",
		Section:     "docs/iothub-behavior.md §1.23",
		Certainty:   "I",
		Needs:       []string{NeedX509},
		run: func(e *env) {
			d, cert := e.x509Device(certs.LeafOptions{NotBefore: e.now().Add(-48 * time.Hour), Validity: 24 * time.Hour})
			e.expectRefusedWith(e.x509Connect(d), &cert, refused5, "x509-expired")
		},
	},
	{
		ID:          "connect/x509/not-yet-valid",
		Requirement: "A device certificate before its NotBefore (a device clock far behind) is refused with CONNACK 5.",
		Section:     "docs/iothub-behavior.md §1.23",
		Certainty:   "I",
		Needs:       []string{NeedX509},
		run: func(e *env) {
			d, cert := e.x509Device(certs.LeafOptions{NotBefore: e.now().Add(48 * time.Hour), Validity: 24 * time.Hour})
			e.expectRefusedWith(e.x509Connect(d), &cert, refused5, "x509-not-yet-valid")
		},
	},
	{
		ID:          "connect/x509/client-auth-usage",
		Requirement: "A certificate whose extended key usage allows only server authentication cannot authenticate a device (CONNACK 5).",
		Section:     "docs/iothub-behavior.md §1.23; RFC 5280 §4.2.1.12",
		Certainty:   "I",
		Needs:       []string{NeedX509},
		run: func(e *env) {
			d, cert := e.x509Device(certs.LeafOptions{ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}})
			e.expectRefusedWith(e.x509Connect(d), &cert, refused5, "x509-key-usage")
		},
	},
	{
		ID:          "connect/x509/cn-mismatch",
		Requirement: "A certificateAuthority device presenting a certificate from the verified CA whose CN is another device ID is refused with CONNACK 5.",
		Section:     "docs/iothub-behavior.md §1.24; " + docX509 + " (CN=deviceId)",
		Certainty:   "C/I",
		Needs:       []string{NeedX509},
		run: func(e *env) {
			d, mint := e.target.(X509Provisioner).NewCADevice(e.t)
			cert := mint(d.DeviceID + "-other")
			e.expectRefusedWith(e.x509Connect(d), &cert, refused5, "x509-cn-mismatch")
		},
	},
	{
		ID:          "connect/x509/untrusted-chain",
		Requirement: "A certificateAuthority device presenting a certificate from a CA the hub does not know (right CN) is refused with CONNACK 5.",
		Section:     "docs/iothub-behavior.md §1.24; " + docX509 + " (Register the X.509 CA certificate to IoT Hub)",
		Certainty:   "C/I",
		Needs:       []string{NeedX509},
		run: func(e *env) {
			d, _ := e.target.(X509Provisioner).NewCADevice(e.t)
			ca, err := certs.NewCA("conformance stranger CA", 24*time.Hour, e.now(), nil)
			if err != nil {
				e.Fatalf("CA: %v", err)
			}
			l, err := ca.IssueDevice(d.DeviceID, time.Hour, certs.ECDSAP256, e.now())
			if err != nil {
				e.Fatalf("device certificate: %v", err)
			}
			cert := l.TLSCertificate()
			e.expectRefusedWith(e.x509Connect(d), &cert, refused5, "x509-untrusted-chain")
		},
	},
}
