package fakehub_test

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/hubkit/hubkit/internal/certs"
	"github.com/hubkit/hubkit/internal/mqttraw"
	"github.com/hubkit/hubkit/pkg/fakehub"
	"github.com/hubkit/hubkit/pkg/fakehub/fakehubtest"
	"github.com/hubkit/hubkit/pkg/iothub"
	"github.com/hubkit/hubkit/pkg/sas"
)

// x509Connect is a CONNECT for an X.509 identity: the documented user name, no password.
func x509Connect(id iothub.Identity) mqttraw.ConnectPacket {
	return mqttraw.ConnectPacket{ClientID: id.ClientID(), UserName: mqttraw.String(userName("localhost", id)), CleanSession: true, KeepAlive: 60}
}

// certConnect sends p over TLS presenting cert (nil: none) and returns the CONNACK code.
func certConnect(t *testing.T, h *fakehubtest.Hub, p mqttraw.ConnectPacket, cert *tls.Certificate) (byte, *mqttraw.Conn) {
	t.Helper()
	cfg := h.ClientTLS()
	if cert != nil {
		cfg.Certificates = []tls.Certificate{*cert}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	ack, c, err := mqttraw.ConnectAndWait(ctx, h.Addr(), cfg, p)
	if err != nil {
		t.Fatalf("CONNECT %s: %v", p.ClientID, err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return ack.ReturnCode, c
}

// TestX509Accepted: selfSigned (SHA-1 or SHA-256 thumbprint, primary or secondary),
// certificateAuthority devices and modules connect with their certificate and no password;
// their telemetry says auth type x509.
func TestX509Accepted(t *testing.T) {
	t.Parallel()
	h := fakehubtest.Start(t, fakehub.Options{})
	st := h.TelemetrySince(0)
	self := h.SelfSignedCertificate("self-1")
	reg := h.Registry()
	mustDo(t, func() error {
		_, err := reg.Add(iothub.Device{DeviceID: "self-sha1", Authentication: iothub.X509Auth(strings.ToLower(self.ThumbprintSHA1), "")})
		if err == nil {
			_, err = reg.Add(iothub.Device{DeviceID: "self-secondary", Authentication: iothub.X509Auth(strings.Repeat("AB", 32), self.ThumbprintSHA256)})
		}
		return err
	})
	ca := h.AddCADevice(iothub.Identity{DeviceID: "ca-dev"})
	mustDo(t, func() error { _, err := reg.Add(iothub.Device{DeviceID: "ca-dev", ModuleID: "m"}); return err }) // a SAS module of a CA device
	mustDo(t, func() error { _, err := reg.Add(iothub.Device{DeviceID: "ca-mod-dev"}); return err })
	mod := h.AddCADevice(iothub.Identity{DeviceID: "ca-mod-dev", ModuleID: "m1"})
	for _, tc := range []struct {
		id   iothub.Identity
		cert tls.Certificate
	}{
		{iothub.Identity{DeviceID: "self-sha1"}, self.TLS},
		{iothub.Identity{DeviceID: "self-secondary"}, self.TLS},
		{iothub.Identity{DeviceID: "ca-dev"}, ca.TLS},
		{iothub.Identity{DeviceID: "ca-mod-dev", ModuleID: "m1"}, mod.TLS},
	} {
		code, c := certConnect(t, h, x509Connect(tc.id), &tc.cert)
		if code != 0 {
			t.Errorf("%s: CONNACK %d, want 0; rejections %+v", tc.id, code, h.Rejections())
			continue
		}
		if err := c.Publish(mqttraw.PublishPacket{Topic: iothub.TelemetryTopic(tc.id, nil), Payload: []byte("{}"), QoS: 1, PacketID: 1}); err != nil {
			t.Fatal(err)
		}
		m := nextMessage(t, st)
		var am struct{ Scope, Type string }
		if err := json.Unmarshal([]byte(m.Annotations[iothub.PropConnectionAuthMethod]), &am); err != nil || am.Type != "x509" || m.Identity() != tc.id {
			t.Errorf("%s: telemetry from %s with auth method %q (%v), want type x509", tc.id, m.Identity(), m.Annotations[iothub.PropConnectionAuthMethod], err)
		}
	}
	tw, err := h.Twin(iothub.Identity{DeviceID: "ca-dev"})
	if err != nil || tw.AuthenticationType != iothub.AuthCertificateAuthority {
		t.Errorf("twin authenticationType = %q, %v, want certificateAuthority", tw.AuthenticationType, err)
	}
}

// TestX509Refusals: every way an X.509 CONNECT fails gets CONNACK 5 and its own reason.
func TestX509Refusals(t *testing.T) {
	t.Parallel()
	h := fakehubtest.Start(t, fakehub.Options{})
	now := time.Now()
	reg := h.Registry()
	add := func(d iothub.Device) {
		t.Helper()
		if _, err := reg.Add(d); err != nil {
			t.Fatal(err)
		}
	}
	self := h.SelfSignedCertificate("s")
	add(iothub.Device{DeviceID: "no-cert", Authentication: iothub.X509Auth(self.ThumbprintSHA256, "")})
	add(iothub.Device{DeviceID: "wrong-tp", Authentication: iothub.X509Auth(strings.Repeat("0", 64), "")})
	mint := func(o certs.LeafOptions) tls.Certificate {
		t.Helper()
		l, err := certs.SelfSignedLeaf(o, now, nil)
		if err != nil {
			t.Fatal(err)
		}
		return l.TLSCertificate()
	}
	expired := mint(certs.LeafOptions{CommonName: "expired", NotBefore: now.Add(-48 * time.Hour), Validity: 24 * time.Hour})
	future := mint(certs.LeafOptions{CommonName: "future", NotBefore: now.Add(48 * time.Hour), Validity: 24 * time.Hour})
	serverOnly := mint(certs.LeafOptions{CommonName: "server-eku", ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}})
	for name, c := range map[string]tls.Certificate{"expired": expired, "future": future, "server-eku": serverOnly} {
		_, s256 := iothub.Thumbprints(c.Certificate[0])
		add(iothub.Device{DeviceID: name, Authentication: iothub.X509Auth(s256, "")})
	}
	// CA devices: one whose certificate names someone else, one signed by an unregistered CA,
	// one signed by a registered but unverified CA.
	add(iothub.Device{DeviceID: "cn-mismatch", Authentication: iothub.CAAuth()})
	cnOther := h.DeviceCertificate("someone-else")
	add(iothub.Device{DeviceID: "untrusted", Authentication: iothub.CAAuth()})
	stranger, _ := certs.NewCA("stranger", time.Hour, now, nil)
	strangerLeaf, _ := stranger.IssueDevice("untrusted", time.Hour, certs.ECDSAP256, now)
	add(iothub.Device{DeviceID: "unverified", Authentication: iothub.CAAuth()})
	pending, _ := certs.NewCA("pending", time.Hour, now, nil)
	if _, err := reg.PutCertificate("pending", string(pending.CertPEM), false, ""); err != nil {
		t.Fatal(err)
	}
	pendingLeaf, _ := pending.IssueDevice("unverified", time.Hour, certs.ECDSAP256, now)
	// A SAS device that sends a certificate but no password.
	mustDo(t, func() error { _, err := h.AddDevice("sas-dev"); return err })

	for _, tc := range []struct {
		id     string
		cert   *tls.Certificate
		reason sas.Reason
		hint   string
	}{
		{"no-cert", nil, fakehub.ReasonX509NoCertificate, "--cert/--key"},
		{"wrong-tp", &self.TLS, fakehub.ReasonX509UnknownThumbprint, self.ThumbprintSHA256},
		{"expired", &expired, fakehub.ReasonX509Expired, "renew"},
		{"future", &future, fakehub.ReasonX509NotYetValid, "clock"},
		{"server-eku", &serverOnly, fakehub.ReasonX509KeyUsage, "clientAuth"},
		{"cn-mismatch", &cnOther.TLS, fakehub.ReasonX509CNMismatch, "CN=cn-mismatch"},
		{"untrusted", ptr(strangerLeaf.TLSCertificate()), fakehub.ReasonX509Untrusted, "register the root"},
		{"unverified", ptr(pendingLeaf.TLSCertificate()), fakehub.ReasonX509CANotVerified, "generate-verification-code pending"},
		{"sas-dev", &self.TLS, sas.ReasonNoPassword, "registered with symmetric keys"},
	} {
		since := len(h.Rejections())
		code, c := certConnect(t, h, x509Connect(iothub.Identity{DeviceID: tc.id}), tc.cert)
		if code != 5 {
			t.Errorf("%s: CONNACK %d, want 5", tc.id, code)
			continue
		}
		expectClosedSilently(t, c)
		r := waitRejection(t, h, since, tc.reason)
		if r.DeviceID != tc.id || !strings.Contains(strings.Join(r.Hints, "\n"), tc.hint) {
			t.Errorf("%s: rejection %+v, want device %s and a hint containing %q", tc.id, r, tc.id, tc.hint)
		}
	}
}

func ptr[T any](v T) *T { return &v }

// TestX509Intermediate: a registered root authenticates a device signed by an intermediate
// when the device sends the intermediate; without it the chain is untrusted.
func TestX509Intermediate(t *testing.T) {
	t.Parallel()
	h := fakehubtest.Start(t, fakehub.Options{})
	now := time.Now()
	root, _ := certs.NewCAWith(certs.CAOptions{CommonName: "root", MaxPathLen: 1}, now, nil)
	inter, err := root.NewIntermediate(certs.CAOptions{CommonName: "inter"}, now)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := h.Registry().PutCertificate("root", string(root.CertPEM), true, ""); err != nil {
		t.Fatal(err)
	}
	mustDo(t, func() error {
		_, err := h.Registry().Add(iothub.Device{DeviceID: "chained", Authentication: iothub.CAAuth()})
		return err
	})
	leaf, _ := inter.IssueDevice("chained", time.Hour, certs.RSA2048, now)
	full := leaf.TLSCertificate()
	if code, _ := certConnect(t, h, x509Connect(iothub.Identity{DeviceID: "chained"}), &full); code != 0 {
		t.Errorf("with the intermediate: CONNACK %d, want 0 (%+v)", code, h.Rejections())
	}
	bare := full
	bare.Certificate = bare.Certificate[:1]
	since := len(h.Rejections())
	if code, _ := certConnect(t, h, x509Connect(iothub.Identity{DeviceID: "chained"}), &bare); code != 5 {
		t.Errorf("without the intermediate: CONNACK %d, want 5", code)
	}
	r := waitRejection(t, h, since, fakehub.ReasonX509Untrusted)
	if !strings.Contains(strings.Join(r.Hints, " "), "intermediate") {
		t.Errorf("hints %q do not mention the missing intermediate", r.Hints)
	}
}

// TestCAProofOfPossession follows IoT Hub's verification flow: upload, generate a code,
// sign a certificate with CN=code with the CA's key, verify; the CA then authenticates.
func TestCAProofOfPossession(t *testing.T) {
	t.Parallel()
	h := fakehubtest.Start(t, fakehub.Options{})
	now := time.Now()
	reg := h.Registry()
	ca, _ := certs.NewCA("my CA", time.Hour, now, nil)
	other, _ := certs.NewCA("other CA", time.Hour, now, nil)
	c, err := reg.PutCertificate("mine", string(ca.CertPEM), false, "")
	s1, _ := iothub.Thumbprints(ca.Cert.Raw)
	if err != nil || c.Properties.IsVerified || c.Properties.Thumbprint != s1 || c.Properties.Subject != "CN=my CA" || c.Type != iothub.CertificateType {
		t.Fatalf("PutCertificate = %+v, %v", c, err)
	}
	if _, err := reg.VerifyCertificate("mine", "", string(ca.CertPEM)); !errors.Is(err, iothub.ErrInvalidArgument) || !strings.Contains(err.Error(), "no pending verification code") {
		t.Errorf("verify before generating a code = %v", err)
	}
	if _, err := reg.GenerateVerificationCode("mine", "wrong-etag"); !errors.Is(err, iothub.ErrPreconditionFailed) {
		t.Errorf("stale If-Match = %v, want ErrPreconditionFailed", err)
	}
	g, err := reg.GenerateVerificationCode("mine", c.ETag)
	code := g.Properties.VerificationCode
	if err != nil || len(code) != 48 {
		t.Fatalf("GenerateVerificationCode = %+v, %v", g, err)
	}
	wrongCN, _ := ca.IssueVerification("not-the-code", now)
	wrongCA, _ := other.IssueVerification(code, now)
	for name, proof := range map[string]*certs.Leaf{"wrong-cn": wrongCN, "wrong-ca": wrongCA} {
		if _, err := reg.VerifyCertificate("mine", "", string(proof.CertPEM())); !errors.Is(err, iothub.ErrInvalidArgument) {
			t.Errorf("%s: VerifyCertificate = %v, want ErrInvalidArgument", name, err)
		}
	}
	mustDo(t, func() error {
		_, err := reg.Add(iothub.Device{DeviceID: "pop-dev", Authentication: iothub.CAAuth()})
		return err
	})
	leaf, _ := ca.IssueDevice("pop-dev", time.Hour, certs.ECDSAP256, now)
	tc := leaf.TLSCertificate()
	if code, _ := certConnect(t, h, x509Connect(iothub.Identity{DeviceID: "pop-dev"}), &tc); code != 5 {
		t.Errorf("before verification: CONNACK %d, want 5", code)
	}
	proof, _ := ca.IssueVerification(code, now)
	v, err := reg.VerifyCertificate("mine", "", string(proof.CertPEM()))
	if err != nil || !v.Properties.IsVerified {
		t.Fatalf("VerifyCertificate = %+v, %v", v, err)
	}
	if _, err := reg.VerifyCertificate("mine", "", string(proof.CertPEM())); err == nil {
		t.Error("a verification code was accepted twice")
	}
	if code, _ := certConnect(t, h, x509Connect(iothub.Identity{DeviceID: "pop-dev"}), &tc); code != 0 {
		t.Errorf("after verification: CONNACK %d, want 0 (%+v)", code, h.Rejections())
	}
	if err := reg.DeleteCertificate("mine", ""); err != nil {
		t.Fatal(err)
	}
	if code, _ := certConnect(t, h, x509Connect(iothub.Identity{DeviceID: "pop-dev"}), &tc); code != 5 {
		t.Errorf("after the CA's removal: CONNACK %d, want 5", code)
	}
	if _, err := reg.PutCertificate("leaf", string(leaf.CertPEM()), true, ""); err == nil || !strings.Contains(err.Error(), "not a CA certificate") {
		t.Errorf("uploading a device certificate as CA = %v", err)
	}
}

// TestX509Registry: the registry keeps X.509 authentication in IoT Hub's shape and refuses
// contradictions.
func TestX509Registry(t *testing.T) {
	reg := fakehub.NewRegistry(nil)
	d, err := reg.Add(iothub.Device{DeviceID: "x", Authentication: iothub.Authentication{X509Thumbprint: iothub.X509Thumbprint{PrimaryThumbprint: "da:39:a3:ee:5e:6b:4b:0d:32:55:bf:ef:95:60:18:90:af:d8:07:09"}}})
	if err != nil || d.Authentication.Type != iothub.AuthSelfSigned || d.Authentication.X509Thumbprint.PrimaryThumbprint != "DA39A3EE5E6B4B0D3255BFEF95601890AFD80709" || d.Authentication.SymmetricKey.PrimaryKey != "" {
		t.Errorf("Add (thumbprint without type) = %+v, %v", d.Authentication, err)
	}
	if _, err := reg.SetKeys(iothub.Identity{DeviceID: "x"}, iothub.SymmetricKey{}); !errors.Is(err, iothub.ErrInvalidArgument) {
		t.Errorf("SetKeys on an X.509 device = %v", err)
	}
	for name, a := range map[string]iothub.Authentication{
		"keys-on-x509":    {Type: iothub.AuthSelfSigned, SymmetricKey: iothub.SymmetricKey{PrimaryKey: "AAAAAAAAAAAAAAAAAAAAAA=="}, X509Thumbprint: iothub.X509Thumbprint{PrimaryThumbprint: strings.Repeat("A", 40)}},
		"thumbprint-ca":   {Type: iothub.AuthCertificateAuthority, X509Thumbprint: iothub.X509Thumbprint{PrimaryThumbprint: strings.Repeat("A", 40)}},
		"short-tp":        iothub.X509Auth("ABCD", ""),
		"selfsigned-none": {Type: iothub.AuthSelfSigned},
		"sas-with-tp":     {Type: iothub.AuthSAS, X509Thumbprint: iothub.X509Thumbprint{PrimaryThumbprint: strings.Repeat("A", 40)}},
	} {
		if _, err := reg.Add(iothub.Device{DeviceID: name, Authentication: a}); !errors.Is(err, iothub.ErrInvalidArgument) {
			t.Errorf("%s: Add = %v, want ErrInvalidArgument", name, err)
		}
	}
	// An update without thumbprints keeps them; a switch to SAS generates keys.
	got, _, err := reg.Put(iothub.Device{DeviceID: "x", Authentication: iothub.Authentication{Type: iothub.AuthSelfSigned}}, "*")
	if err != nil || got.Authentication.X509Thumbprint.PrimaryThumbprint == "" {
		t.Errorf("update keeping thumbprints = %+v, %v", got.Authentication, err)
	}
	got, _, err = reg.Put(iothub.Device{DeviceID: "x"}, "*")
	if err != nil || got.Authentication.Type != iothub.AuthSAS || got.Authentication.SymmetricKey.PrimaryKey == "" || got.Authentication.X509Thumbprint.PrimaryThumbprint != "" {
		t.Errorf("switch to SAS = %+v, %v", got.Authentication, err)
	}
}

// TestLoadRegistryX509 loads az's output for X.509 devices as is, and the hubkit
// extension's certificates section; errors name the entry.
func TestLoadRegistryX509(t *testing.T) {
	az, err := os.ReadFile("../iothub/testdata/wire/device_az_create_x509_ca.json")
	if err != nil {
		t.Fatal(err)
	}
	selfSigned := `{"deviceId":"cam2","authentication":{"symmetricKey":{"primaryKey":null,"secondaryKey":null},"type":"selfSigned",
		"x509Thumbprint":{"primaryThumbprint":"97388663832D0393C9246CAB4FBA2C8677185A25","secondaryThumbprint":null}}}`
	rf, err := fakehub.LoadRegistry(strings.NewReader("["+string(az)+","+selfSigned+"]"), nil)
	if err != nil {
		t.Fatal(err)
	}
	ca, ok := rf.Registry.Get(iothub.Identity{DeviceID: "OT-105783B5AA8C"})
	if !ok || ca.Authentication.Type != iothub.AuthCertificateAuthority || ca.GenerationID != "637347212881300554" {
		t.Errorf("az x509_ca device = %+v", ca)
	}
	self, ok := rf.Registry.Get(iothub.Identity{DeviceID: "cam2"})
	if !ok || self.Authentication.X509Thumbprint.PrimaryThumbprint != "97388663832D0393C9246CAB4FBA2C8677185A25" {
		t.Errorf("selfSigned device = %+v", self)
	}

	caPEM, err := os.ReadFile("../../testdata/certs/ca.pem")
	if err != nil {
		t.Fatal(err)
	}
	indented := "    " + strings.ReplaceAll(strings.TrimSpace(string(caPEM)), "\n", "\n    ")
	yaml := "devices:\n- deviceId: cam3\n  authentication: {type: certificateAuthority}\ncertificates:\n- name: maker-ca\n  isVerified: true\n  certificate: |\n" + indented + "\n"
	rf, err = fakehub.LoadRegistry(strings.NewReader(yaml), nil)
	if err != nil {
		t.Fatal(err)
	}
	if c, err := rf.Registry.Certificate("maker-ca"); err != nil || !c.Properties.IsVerified || c.Properties.Subject != "CN=hubkit test CA (PUBLIC KEY MATERIAL, TESTS ONLY)" {
		t.Errorf("certificate = %+v, %v", c, err)
	}
	for _, tc := range []struct{ in, want string }{
		{"certificates:\n- name: a\n  certificate: nope\n", `certificates[0] (name "a"): 400004 ArgumentInvalid: certificate "a": no certificate`},
		{"certificates:\n- certificate: nope\n", "certificates[0]: name: missing"},
	} {
		if _, err := fakehub.LoadRegistry(strings.NewReader(tc.in), nil); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("LoadRegistry(%q) = %v, want %q", tc.in, err, tc.want)
		}
	}
}

func TestLoadRegistryCertificateTypo(t *testing.T) {
	_, err := fakehub.LoadRegistry(strings.NewReader("certificates:\n- name: a\n  isverified: true\n"), nil)
	if err == nil || !strings.Contains(err.Error(), `certificates[0]: unknown field "isverified" (did you mean isVerified?)`) {
		t.Errorf("LoadRegistry = %v", err)
	}
}
