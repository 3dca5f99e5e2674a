package device_test

import (
	"context"
	"errors"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/hubkit/hubkit/internal/certs"
	"github.com/hubkit/hubkit/pkg/device"
	"github.com/hubkit/hubkit/pkg/iothub"
	"github.com/hubkit/hubkit/pkg/iothub/dps"
)

func x509Attestation(individual bool, pem string) dps.Attestation {
	set := &dps.X509Certificates{Primary: &dps.X509CertificateWithInfo{Certificate: pem}}
	if individual {
		return dps.Attestation{Type: dps.AttestationX509, X509: &dps.X509Attestation{ClientCertificates: set}}
	}
	return dps.Attestation{Type: dps.AttestationX509, X509: &dps.X509Attestation{SigningCertificates: set}}
}

// TestProvisionX509ThenConnect: a self-signed device of an individual X.509 enrollment and
// a device of an X.509 enrollment group (signed through an intermediate) register over MQTT
// and HTTPS with their certificate only, and connect to the assigned hub with the same
// certificate: selfSigned and certificateAuthority hub devices (docs/iothub-behavior.md
// §7.14–§7.17).
func TestProvisionX509ThenConnect(t *testing.T) {
	hub := dpsHub(t)
	now := time.Now()
	root, err := certs.NewCAWith(certs.CAOptions{CommonName: "factory root", MaxPathLen: -1}, now, nil)
	if err != nil {
		t.Fatal(err)
	}
	inter, err := root.NewIntermediate(certs.CAOptions{CommonName: "line 7"}, now)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := hub.DPS().SetGroup(dps.EnrollmentGroup{EnrollmentGroupID: "factory", Attestation: x509Attestation(false, string(root.CertPEM))}); err != nil {
		t.Fatal(err)
	}
	for _, tr := range []device.ProvisionTransport{device.ProvisionMQTT, device.ProvisionHTTPS} {
		t.Run(string(tr)+"/individual", func(t *testing.T) {
			regID := "cam-" + string(tr)
			c := hub.SelfSignedCertificate(regID)
			pem := readFile(t, c.CertFile)
			if _, err := hub.DPS().SetEnrollment(dps.Enrollment{RegistrationID: regID, Attestation: x509Attestation(true, pem)}); err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			cfg := provisionConfig(hub, tr, regID)
			cfg.Certificate = &c.TLS
			p, err := device.Provision(ctx, cfg)
			if err != nil {
				t.Fatalf("Provision = %v", err)
			}
			if p.SymmetricKey != "" || p.State.X509 == nil || !strings.HasSuffix(p.ConnectionString(), ";x509=true") {
				t.Errorf("Provisioned = %+v (%s), want an X.509 assignment", p, p.ConnectionString())
			}
			d, ok := hub.Registry().Get(iothub.Identity{DeviceID: p.DeviceID})
			if !ok || d.Authentication.EffectiveType() != iothub.AuthSelfSigned || d.Authentication.X509Thumbprint.PrimaryThumbprint != c.ThumbprintSHA256 {
				t.Errorf("hub device = %+v, want selfSigned with %s", d.Authentication, c.ThumbprintSHA256)
			}
			connectAssigned(t, ctx, hub, p)
		})
		t.Run(string(tr)+"/group", func(t *testing.T) {
			regID := "line7-" + string(tr)
			l, err := inter.IssueDevice(regID, time.Hour, certs.ECDSAP256, now)
			if err != nil {
				t.Fatal(err)
			}
			cert := l.TLSCertificate()
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			cfg := provisionConfig(hub, tr, regID)
			cfg.Certificate = &cert
			p, err := device.Provision(ctx, cfg)
			if err != nil {
				t.Fatalf("Provision = %v", err)
			}
			if p.State.X509 == nil || p.State.X509.EnrollmentGroupID != "factory" {
				t.Errorf("registration state x509 = %+v, want enrollmentGroupId factory", p.State.X509)
			}
			d, ok := hub.Registry().Get(iothub.Identity{DeviceID: regID})
			if !ok || d.Authentication.EffectiveType() != iothub.AuthCertificateAuthority {
				t.Errorf("hub device = %+v, want certificateAuthority", d.Authentication)
			}
			if ca, err := hub.Registry().Certificate("dps-factory"); err != nil || !ca.Properties.IsVerified {
				t.Errorf("hub CA dps-factory = %+v, %v; want the group's root, verified", ca, err)
			}
			connectAssigned(t, ctx, hub, p)
		})
	}
}

// TestProvisionX509Refused: a certificate no enrollment trusts is refused (401 over HTTPS,
// CONNACK 5 over MQTT) and fakehub names the reason; a certificate whose CN is not the
// registration ID is refused by the client before it dials.
func TestProvisionX509Refused(t *testing.T) {
	hub := dpsHub(t)
	stranger := hub.SelfSignedCertificate("stranger-1")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for _, tr := range []device.ProvisionTransport{device.ProvisionMQTT, device.ProvisionHTTPS} {
		cfg := provisionConfig(hub, tr, "stranger-1")
		cfg.Certificate = &stranger.TLS
		_, err := device.Provision(ctx, cfg)
		var de *dps.Error
		var ce *device.ConnectError
		switch {
		case tr == device.ProvisionHTTPS && errors.As(err, &de) && de.Status() == 401 && de.Reason == "x509-untrusted-chain":
		case tr == device.ProvisionMQTT && errors.As(err, &ce) && ce.Code == 5:
		default:
			t.Errorf("%s: Provision with an unenrolled certificate = %v, want refused", tr, err)
		}
	}
	if !hasRejection(hub, "x509-untrusted-chain") {
		t.Errorf("rejections = %+v, want x509-untrusted-chain", hub.Rejections())
	}
	cfg := provisionConfig(hub, device.ProvisionMQTT, "someone-else")
	cfg.Certificate = &stranger.TLS
	if _, err := device.Provision(ctx, cfg); !errors.Is(err, device.ErrInvalidConfig) || !strings.Contains(err.Error(), "common name") {
		t.Errorf("Provision with CN != registration ID = %v, want a config error naming the common name", err)
	}
}

func hasRejection(hub interface{ Rejections() []iothub.Rejection }, reason string) bool {
	for _, r := range hub.Rejections() {
		if string(r.Reason) == reason {
			return true
		}
	}
	return false
}

func readFile(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
