package main

import (
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/spf13/cobra"

	"github.com/hubkit/hubkit/pkg/device"
)

// Exit codes, listed in the root help and pinned by testdata/usage.txtar.
const (
	exitOK    = 0 // the command did what was asked
	exitError = 1 // connection refused or lost, timeout, bad connection string or CA file
	exitUsage = 2 // bad flags or arguments: fix the command line
)

// cliError is an error with an exit code and hints. Commands return it; report prints it.
type cliError struct {
	code  int
	err   error
	hints []string
}

func (e *cliError) Error() string { return e.err.Error() }
func (e *cliError) Unwrap() error { return e.err }

func usageErrorf(format string, args ...any) *cliError {
	return &cliError{code: exitUsage, err: fmt.Errorf(format, args...)}
}

// hintsFor suggests what to do about common connection failures.
func hintsFor(err error) []string {
	var unknownCA x509.UnknownAuthorityError
	var hostErr x509.HostnameError
	switch {
	case errors.Is(err, device.ErrNotAuthorized):
		return []string{
			"the hub refused the SAS token: check the key, the device ID and this machine's clock",
			`"sastool verify -c CONNECTION_STRING TOKEN" explains a rejected token`,
		}
	case errors.As(err, &unknownCA):
		return []string{"the server certificate is not signed by a trusted CA: pass the hub's CA with --ca FILE (fakehub: --ca testdata/certs)"}
	case errors.As(err, &hostErr):
		return []string{"the server certificate does not name the host: use --endpoint HOST:PORT to dial another address while keeping HostName for TLS"}
	case strings.Contains(err.Error(), "connection refused"):
		return []string{"nothing listens there: is the hub running? --endpoint HOST:PORT sets the address to dial"}
	}
	return nil
}

// report prints err on stderr in the house format and returns the exit code.
//
//	devicesim: error: <message>
//	devicesim: hint: <hint>
//
// preRun is true when cobra failed before any command ran: those are usage errors.
func report(stderr io.Writer, cmd *cobra.Command, err error, preRun bool) int {
	code := exitError
	var hints []string
	if ce, ok := errors.AsType[*cliError](err); ok {
		code, hints = ce.code, ce.hints
		err = ce.err
	} else if preRun {
		code = exitUsage
	}
	hints = append(hints, hintsFor(err)...)
	msg, rest, _ := strings.Cut(strings.TrimSpace(err.Error()), "\n")
	if rest != "" {
		var sugg []string
		for _, l := range strings.Split(rest, "\n") {
			if l = strings.TrimSpace(l); l != "" && l != "Did you mean this?" {
				sugg = append(sugg, l)
			}
		}
		if len(sugg) > 0 {
			hints = append([]string{"did you mean " + strings.Join(sugg, " or ") + "?"}, hints...)
		}
	}
	fmt.Fprintf(stderr, "devicesim: error: %s\n", msg)
	for _, h := range hints {
		fmt.Fprintf(stderr, "devicesim: hint: %s\n", h)
	}
	if code == exitUsage && cmd != nil {
		fmt.Fprintf(stderr, "devicesim: hint: run '%s --help' for usage\n", cmd.CommandPath())
	}
	return code
}
