package conformance

import (
	"context"
	"crypto/x509"
	"errors"
	"time"

	"github.com/hubkit/hubkit/pkg/device"
)

// TLS drills check the DEVICE side: a correct client trusts roots, not leaves, verifies
// the host name and the validity, and survives a root migration when it trusts both roots
// (docs/iothub-behavior.md §8.5). The reference client is the client under test.

const docTLS = "learn.microsoft.com/azure/iot-hub/iot-hub-tls-support"

// drill returns the drill's endpoint and device, skipping when the target lacks it.
func (e *env) drill(name string) (Endpoint, DeviceIdentity, *x509.Certificate) {
	e.t.Helper()
	ep, d, old, ok := e.target.(TLSDrills).TLSDrill(e.t, name)
	if !ok {
		e.Skipf("the target offers no %s drill", name)
	}
	return ep, d, old
}

// connectOnce connects a fresh reference client to ep as d, returns the error, and closes
// the client.
func (e *env) connectOnce(ep Endpoint, d DeviceIdentity) error {
	e.t.Helper()
	cl := e.newClientAt(ep, d, nil)
	ctx, cancel := context.WithTimeout(e.ctx, answerWithin)
	defer cancel()
	err := cl.Connect(ctx)
	cctx, ccancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer ccancel()
	_ = cl.Close(cctx)
	return err
}

func chainCase(id, drill, requirement string) Case {
	return Case{
		ID:          id,
		Requirement: requirement,
		Section:     "docs/iothub-behavior.md §8.1, §8.5; " + docTLS,
		Certainty:   "C",
		Needs:       []string{NeedTLSDrills},
		run: func(e *env) {
			ep, d, _ := e.drill(drill)
			if err := e.connectOnce(ep, d); err != nil {
				e.Errorf("Connect through the %s chain: %v, want a connection", drill, err)
			}
		},
	}
}

// refuseCase checks that the client refuses the server with a certificate error, before
// any CONNECT (the hub never sees credentials).
func refuseCase(id, drill, requirement string, want func(error) bool, what string) Case {
	return Case{
		ID:          id,
		Requirement: requirement,
		Section:     "docs/iothub-behavior.md §8.5; RFC 5280 §6; RFC 6125 §6",
		Certainty:   "C",
		Needs:       []string{NeedTLSDrills},
		run: func(e *env) {
			ep, d, _ := e.drill(drill)
			err := e.connectOnce(ep, d)
			var ce *device.ConnectError
			switch {
			case err == nil:
				e.Errorf("Connect succeeded against the %s drill: the client must refuse the server", drill)
			case errors.As(err, &ce):
				e.Errorf("Connect reached CONNECT (CONNACK %d) against the %s drill: the client sent its credentials to a server it should have refused", ce.Code, drill)
			case !want(err):
				e.Errorf("Connect = %v, want %s", err, what)
			}
		},
	}
}

func isExpired(err error) bool {
	var inv x509.CertificateInvalidError
	return errors.As(err, &inv) && inv.Reason == x509.Expired
}

func isHostname(err error) bool {
	var h x509.HostnameError
	return errors.As(err, &h)
}

func isUnknownAuthority(err error) bool {
	var u x509.UnknownAuthorityError
	return errors.As(err, &u)
}

var tlsCases = []Case{
	chainCase("tls/chain/azure-g2", DrillAzureG2,
		"A client trusting DigiCert Global Root G2 (here its test copy) connects through a chain shaped like IoT Hub's: root → RSA 4096 issuing CA (sent by the server) → RSA 2048 leaf."),
	chainCase("tls/chain/microsoft-rsa-2017", DrillMSRSA2017,
		"A client trusting Microsoft RSA Root Certificate Authority 2017 (test copy), the second root Microsoft tells devices to trust, connects through a chain under it."),
	chainCase("tls/chain/azure-ecc", DrillAzureECC,
		"A client trusting DigiCert Global Root G3 (test copy) connects through the ECC chain (P-384 issuing CA, ECDSA leaf)."),
	refuseCase("tls/refuse/expired", DrillExpired,
		"A correct client refuses a server certificate past its NotAfter, before sending CONNECT.", isExpired, "an expired-certificate error"),
	refuseCase("tls/refuse/wrong-san", DrillWrongSAN,
		"A correct client refuses a server certificate that does not name the hub's host name, before sending CONNECT.", isHostname, "a host name mismatch error"),
	refuseCase("tls/refuse/untrusted-root", DrillUntrustedRoot,
		"A correct client refuses a chain to a root it was not given, before sending CONNECT.", isUnknownAuthority, "an unknown-authority error"),
	{
		ID:          "tls/root-change/trusts-both",
		Requirement: "A client trusting both the old and the new root (Baltimore CyberTrust Root and DigiCert Global Root G2, test copies) connects before and after the hub changes its root.",
		Section:     "docs/iothub-behavior.md §8.1, §8.5; learn.microsoft.com/azure/iot-hub/migrate-tls-certificate",
		Certainty:   "C",
		Needs:       []string{NeedTLSDrills},
		run: func(e *env) {
			ep, d, _ := e.drill(DrillRootChange)
			for i, when := range []string{"before the root change", "after the root change"} {
				if err := e.connectOnce(ep, d); err != nil {
					e.Errorf("connection %d (%s): %v, want a connection", i+1, when, err)
				}
			}
		},
	},
	{
		ID:          "tls/root-change/old-root-only",
		Requirement: "A client trusting only the old root connects before the root change and is refused (unknown authority) after it: the lock-out of the 2023 migration, which the drill must reproduce.",
		Section:     "docs/iothub-behavior.md §8.1, §8.5; learn.microsoft.com/azure/iot-hub/migrate-tls-certificate",
		Certainty:   "C",
		Needs:       []string{NeedTLSDrills},
		run: func(e *env) {
			ep, d, old := e.drill(DrillRootChange)
			if old == nil {
				e.Skipf("the target names no old root")
			}
			only := ep.TLS.Clone()
			only.RootCAs = x509.NewCertPool()
			only.RootCAs.AddCert(old)
			ep.TLS = only
			if err := e.connectOnce(ep, d); err != nil {
				e.Fatalf("connection 1 (old root): %v, want a connection", err)
			}
			if err := e.connectOnce(ep, d); !isUnknownAuthority(err) {
				e.Errorf("connection 2 (new root, client trusting the old one only) = %v, want an unknown-authority error", err)
			}
		},
	},
}
