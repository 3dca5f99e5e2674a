package conformance_test

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"fmt"
	"net"
	"testing"
	"time"

	"github.com/hubkit/hubkit/pkg/conformance"
	"github.com/hubkit/hubkit/pkg/iothub"
	"github.com/hubkit/hubkit/pkg/iothub/dps"
	"github.com/hubkit/hubkit/pkg/sas"
	"github.com/hubkit/hubkit/pkg/serviceclient"
)

// realDPS is a Device Provisioning Service reached through its service API, for the dps/
// cases against a real DPS (realHubConfig.DPS).
type realDPS struct {
	ep  conformance.DPSEndpoint
	svc *serviceclient.DPSClient
}

func newRealDPS(c realDPSConfig, roots *x509.CertPool) (*realDPS, error) {
	if err := dps.ValidateIDScope(c.IDScope); err != nil {
		return nil, fmt.Errorf("dps.idScope: %w", err)
	}
	cs, err := sas.ParseConnectionString(c.Service)
	if err != nil {
		return nil, fmt.Errorf("dps.service: %w", err)
	}
	u := c.ServiceURL
	if u == "" {
		u = "https://" + cs.HostName
	}
	svc, err := serviceclient.NewDPS(c.Service, serviceclient.WithURL(u), serviceclient.WithRootCAs(roots))
	if err != nil {
		return nil, fmt.Errorf("dps.service: %w", err)
	}
	host := c.GlobalEndpoint
	if host == "" {
		host = iothub.DPSGlobalHost
	}
	d := &realDPS{svc: svc, ep: conformance.DPSEndpoint{Addr: c.Addr, HTTPSAddr: c.HTTPSAddr, HostName: host, IDScope: c.IDScope,
		TLS: &tls.Config{ServerName: host, MinVersion: tls.VersionTLS12, RootCAs: roots}}}
	if d.ep.Addr == "" {
		d.ep.Addr = net.JoinHostPort(host, "8883")
	}
	if d.ep.HTTPSAddr == "" {
		d.ep.HTTPSAddr = net.JoinHostPort(host, "443")
	}
	return d, nil
}

func (h *realHub) DPS() conformance.DPSEndpoint {
	if h.dps == nil {
		return conformance.DPSEndpoint{}
	}
	return h.dps.ep
}

func (h *realHub) dpsOrSkip(t testing.TB) *realDPS {
	t.Helper()
	if h.dps == nil {
		t.Skip("no DPS configured: add \"dps\":{\"idScope\":...,\"service\":...} to " + envConfig)
	}
	return h.dps
}

func (h *realHub) NewEnrollment(t testing.TB, disabled bool) conformance.DPSEnrollment {
	t.Helper()
	d := h.dpsOrSkip(t)
	st := dps.ProvisioningEnabled
	if disabled {
		st = dps.ProvisioningDisabled
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	en, err := d.svc.PutEnrollment(ctx, dps.Enrollment{RegistrationID: "hubkit-conf-" + randomHex(6), Attestation: dps.SymmetricKeyAttestation("", ""), ProvisioningStatus: st}, "")
	if err != nil {
		t.Fatalf("creating a DPS enrollment: %v", err)
	}
	t.Cleanup(func() {
		h.deleteDPS(t, func(ctx context.Context) error { return d.svc.DeleteEnrollment(ctx, en.RegistrationID, "*") })
	})
	return conformance.DPSEnrollment{RegistrationID: en.RegistrationID, Key: en.Attestation.SymmetricKey.PrimaryKey}
}

func (h *realHub) NewGroupDevice(t testing.TB) conformance.DPSEnrollment {
	t.Helper()
	d := h.dpsOrSkip(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	g, err := d.svc.PutGroup(ctx, dps.EnrollmentGroup{EnrollmentGroupID: "hubkit-conf-" + randomHex(6), Attestation: dps.SymmetricKeyAttestation("", "")}, "")
	if err != nil {
		t.Fatalf("creating a DPS enrollment group: %v", err)
	}
	t.Cleanup(func() {
		h.deleteDPS(t, func(ctx context.Context) error { return d.svc.DeleteGroup(ctx, g.EnrollmentGroupID, "*") })
	})
	gk, err := sas.DecodeKey(g.Attestation.SymmetricKey.PrimaryKey)
	if err != nil {
		t.Fatalf("the DPS returned group key: %v", err)
	}
	regID := "hubkit-conf-" + randomHex(6)
	return conformance.DPSEnrollment{RegistrationID: regID, GroupID: g.EnrollmentGroupID, Key: base64.StdEncoding.EncodeToString(sas.DeriveDeviceKey(gk, regID))}
}

func (h *realHub) deleteDPS(t testing.TB, del func(context.Context) error) {
	if h.keep {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := del(ctx); err != nil {
		t.Logf("cleaning up the DPS: %v", err)
	}
}

func (h *realHub) NewX509Enrollment(t testing.TB, cert *x509.Certificate) {
	t.Helper()
	d := h.dpsOrSkip(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	en, err := d.svc.PutEnrollment(ctx, dps.Enrollment{RegistrationID: cert.Subject.CommonName, Attestation: x509Attestation(cert, false)}, "")
	if err != nil {
		t.Fatalf("creating an X.509 DPS enrollment: %v", err)
	}
	t.Cleanup(func() {
		h.deleteDPS(t, func(ctx context.Context) error { return d.svc.DeleteEnrollment(ctx, en.RegistrationID, "*") })
	})
}

// NewX509Group uploads ca as the group's signing certificate. The hub's trust of the CA for
// the device's later CONNECT is the DPS owner's set-up (docs/iothub-behavior.md §7.16).
func (h *realHub) NewX509Group(t testing.TB, ca *x509.Certificate) string {
	t.Helper()
	d := h.dpsOrSkip(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	g, err := d.svc.PutGroup(ctx, dps.EnrollmentGroup{EnrollmentGroupID: "hubkit-conf-x509-" + randomHex(6), Attestation: x509Attestation(ca, true)}, "")
	if err != nil {
		t.Fatalf("creating an X.509 DPS enrollment group: %v", err)
	}
	t.Cleanup(func() {
		h.deleteDPS(t, func(ctx context.Context) error { return d.svc.DeleteGroup(ctx, g.EnrollmentGroupID, "*") })
	})
	return g.EnrollmentGroupID
}
