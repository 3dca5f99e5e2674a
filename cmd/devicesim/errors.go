package main

import (
	"crypto/x509"
	"errors"
	"strings"

	"github.com/hubkit/hubkit/pkg/device"
)

// hintsFor suggests what to do about common connection failures; run prints them after the
// error's own hints.
func hintsFor(err error) []string {
	if err == nil {
		return nil
	}
	var unknownCA x509.UnknownAuthorityError
	var hostErr x509.HostnameError
	switch {
	case errors.Is(err, device.ErrNotAuthorized):
		return []string{
			"the hub refused the SAS token: check the key, the device ID and this machine's clock",
			`"sastool verify -c CONNECTION_STRING TOKEN" explains a rejected token`,
		}
	case errors.As(err, &unknownCA):
		return []string{"the server certificate is not signed by a trusted CA: pass the hub's CA with --ca PATH (a folder holding ca.pem, or a PEM file; fakehub: --ca testdata/certs)"}
	case errors.As(err, &hostErr):
		return []string{"the server certificate does not name the host: use --endpoint HOST:PORT to dial another address while keeping HostName for TLS"}
	case strings.Contains(err.Error(), "connection refused"):
		return []string{"nothing listens there: is the hub running? --endpoint HOST:PORT sets the address to dial"}
	}
	return nil
}
