package serviceclient_test

import (
	"context"
	"crypto/tls"
	"errors"
	"testing"
	"time"

	"github.com/hubkit/hubkit/internal/certs"
	"github.com/hubkit/hubkit/internal/mqttraw"
	"github.com/hubkit/hubkit/pkg/iothub"
)

// TestCertificatesOverREST follows az's CA flow over the service API: upload, generate a
// verification code, verify with a certificate signed by the CA, create a
// certificateAuthority device, and connect it with its certificate.
func TestCertificatesOverREST(t *testing.T) {
	t.Parallel()
	hub, c := startHub(t)
	ctx := testCtx(t)
	now := time.Now()
	ca, err := certs.NewCA("rest CA", time.Hour, now, nil)
	if err != nil {
		t.Fatal(err)
	}
	up, err := c.PutCertificate(ctx, "rest-ca", string(ca.CertPEM), false)
	if err != nil || up.Properties.IsVerified || up.Properties.Certificate == "" || up.ETag == "" {
		t.Fatalf("PutCertificate = %+v, %v", up, err)
	}
	g, err := c.GenerateVerificationCode(ctx, "rest-ca")
	if err != nil || g.Properties.VerificationCode == "" {
		t.Fatalf("GenerateVerificationCode = %+v, %v", g, err)
	}
	wrong, _ := ca.IssueVerification("not-it", now)
	if _, err := c.VerifyCertificate(ctx, "rest-ca", string(wrong.CertPEM())); !errors.Is(err, iothub.ErrInvalidArgument) {
		t.Errorf("verify with the wrong CN = %v, want ErrInvalidArgument", err)
	}
	proof, _ := ca.IssueVerification(g.Properties.VerificationCode, now)
	v, err := c.VerifyCertificate(ctx, "rest-ca", string(proof.CertPEM()))
	if err != nil || !v.Properties.IsVerified {
		t.Fatalf("VerifyCertificate = %+v, %v", v, err)
	}
	list, err := c.Certificates(ctx)
	if err != nil || len(list) != 1 || list[0].Name != "rest-ca" || !list[0].Properties.IsVerified {
		t.Errorf("Certificates = %+v, %v", list, err)
	}

	d := create(t, c, iothub.Device{DeviceID: "rest-x509", Authentication: iothub.CAAuth()})
	if d.Authentication.Type != iothub.AuthCertificateAuthority || d.Authentication.SymmetricKey.PrimaryKey != "" {
		t.Errorf("created %+v", d.Authentication)
	}
	leaf, _ := ca.IssueDevice("rest-x509", time.Hour, certs.ECDSAP256, now)
	cfg := hub.ClientTLS()
	cfg.Certificates = []tls.Certificate{leaf.TLSCertificate()}
	cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	ack, conn, err := mqttraw.ConnectAndWait(cctx, hub.Addr(), cfg, mqttraw.ConnectPacket{ClientID: "rest-x509",
		UserName: mqttraw.String(hub.HostName() + "/rest-x509/?api-version=" + iothub.DefaultAPIVersion), CleanSession: true, KeepAlive: 30})
	if err != nil || ack.ReturnCode != 0 {
		t.Fatalf("CA device CONNECT: %v, CONNACK %d (%+v)", err, ack.ReturnCode, hub.Rejections())
	}
	conn.Close()

	// selfSigned over REST: thumbprints as given, in az's upper case.
	self := create(t, c, iothub.Device{DeviceID: "rest-self", Authentication: iothub.X509Auth("da39a3ee5e6b4b0d3255bfef95601890afd80709", "")})
	if self.Authentication.Type != iothub.AuthSelfSigned || self.Authentication.X509Thumbprint.PrimaryThumbprint != "DA39A3EE5E6B4B0D3255BFEF95601890AFD80709" {
		t.Errorf("selfSigned device = %+v", self.Authentication)
	}

	// RegistryRead may read certificates, not change them.
	reader := newClient(t, hub, policyConnectionString(t, hub, "registryRead"))
	if _, err := reader.Certificate(ctx, "rest-ca"); err != nil {
		t.Errorf("registryRead reading a certificate: %v", err)
	}
	if _, err := reader.PutCertificate(ctx, "other", string(ca.CertPEM), true); !errors.Is(err, iothub.ErrUnauthorized) {
		t.Errorf("registryRead uploading = %v, want ErrUnauthorized", err)
	}
	if err := c.DeleteCertificate(ctx, "rest-ca"); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Certificate(ctx, "rest-ca"); !errors.Is(err, iothub.ErrNotFound) {
		t.Errorf("after delete: %v, want ErrNotFound", err)
	}
}
