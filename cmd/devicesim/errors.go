package main

import (
	"crypto/x509"
	"errors"
	"strings"

	"github.com/hubkit/hubkit/internal/cli"
	"github.com/hubkit/hubkit/pkg/device"
)

// explain adds hints about a failed connection to err: what the hub's refusal can mean and where
// its reason is, how to check the token devicesim presented, and what to do about TLS and
// network errors. host is the connection string's HostName.
func (f *connFlags) explain(err error, host string) error {
	var unknownCA x509.UnknownAuthorityError
	var hostErr x509.HostnameError
	var hints []string
	switch {
	case errors.Is(err, device.ErrNotAuthorized) && f.certFile != "":
		hints = []string{
			"the hub refused the certificate: the identity must be registered for X.509 (selfSigned with this certificate's thumbprint, or certificateAuthority with a verified CA and CN = device ID)",
			"fakehub records why (unknown thumbprint, expired, CN mismatch, untrusted chain, CA not verified): fakehub rejections --ca PATH (or its log on stderr); a real IoT Hub does not say",
		}
	case errors.Is(err, device.ErrNotAuthorized):
		hints = []string{
			"the hub refused the device: a wrong or replaced key, an unknown or disabled device ID, an expired token (check this machine's clock), or a host name the hub does not serve",
			"fakehub records which: fakehub rejections --ca PATH (or its log on stderr); a real IoT Hub does not say",
		}
		if f.tokenFile == "" {
			hints = append(hints, "to check the token devicesim presented, rerun with --token-file FILE (a secret: written with mode 0600), then: sastool verify -c CONNECTION_STRING - < FILE, with the connection string the hub shows for the device")
		} else {
			hints = append(hints, "the token devicesim presented is in "+f.tokenFile+": sastool verify -c CONNECTION_STRING - < "+f.tokenFile+", with the connection string the hub shows for the device, explains a refusal")
		}
	case errors.As(err, &unknownCA):
		hints = []string{"the server certificate is not signed by a trusted CA: pass the hub's CA with --ca PATH (a folder holding ca.pem, or a PEM file; fakehub: --ca testdata/certs)"}
	case errors.As(err, &hostErr):
		hints = []string{
			"the hub's certificate does not name " + host + ", the HostName of the connection string (TLS checks it, whatever --endpoint dials)",
			"for fakehub: start it with --hostname " + host + " (it mints its certificate for its host names), or use the host name its banner shows",
		}
	case strings.Contains(err.Error(), "connection refused"):
		hints = []string{"nothing listens there: is the hub running? --endpoint HOST:PORT sets the address to dial"}
	}
	if len(hints) == 0 {
		return err
	}
	return cli.WithHints(err, hints...)
}
