package cli

import (
	"errors"
	"fmt"
)

// Exit codes shared by every command, listed in each root help text and
// pinned by the testdata scripts. Codes from 3 up are a command's own.
const (
	ExitOK    = 0 // the command did what was asked
	ExitError = 1 // the command failed: bad input data, I/O, the network, a refusal
	ExitUsage = 2 // bad flags or arguments: fix the command line
)

// CAFlagUsage is the help text of the client --ca flag, which means the same in every command
// (sastool mqtt, devicesim, fakehub's service verbs): a folder holding ca.pem or a PEM file,
// resolved and checked by internal/certs.CAFile.
const CAFlagUsage = "CA to trust: a folder holding ca.pem (fakehub's --ca `PATH`, e.g. testdata/certs) or a PEM file"

// Error is an error with an exit code and hint lines. Commands return it;
// Report prints it.
type Error struct {
	code  int
	err   error
	hints []string
}

// NewError returns err with an exit code and hints.
func NewError(code int, err error, hints ...string) *Error {
	return &Error{code: code, err: err, hints: hints}
}

// Usage returns err as a usage error (exit 2), with hints.
func Usage(err error, hints ...string) *Error {
	return NewError(ExitUsage, err, hints...)
}

// Usagef returns a usage error (exit 2) with a formatted message.
func Usagef(format string, args ...any) *Error {
	return Usage(fmt.Errorf(format, args...))
}

// WithHints returns err with hints added after those it already carries. It
// keeps err's exit code; an err without one gets ExitError.
func WithHints(err error, hints ...string) *Error {
	return NewError(ExitCode(err), err, append(Hints(err), hints...)...)
}

func (e *Error) Error() string   { return e.err.Error() }
func (e *Error) Unwrap() error   { return e.err }
func (e *Error) ExitCode() int   { return e.code }
func (e *Error) Hints() []string { return append([]string(nil), e.hints...) }

// ExitCode returns the exit code for err: ExitOK for nil, the code of the
// first error in its chain with an ExitCode() int method, else ExitError.
func ExitCode(err error) int {
	if err == nil {
		return ExitOK
	}
	if code, ok := exitCode(err); ok {
		return code
	}
	return ExitError
}

// exitCode returns the code of the first error in err's chain with an
// ExitCode() int method, and whether there is one.
func exitCode(err error) (int, bool) {
	if ec, ok := errors.AsType[exitCoder](err); ok {
		return ec.ExitCode(), true
	}
	return 0, false
}

// Hints returns the hints of the first error in err's chain with a
// Hints() []string method, or nil.
func Hints(err error) []string {
	if h, ok := errors.AsType[hinter](err); ok {
		return h.Hints()
	}
	return nil
}

// The methods Report looks for in an error's chain.
type (
	exitCoder interface {
		error
		ExitCode() int
	}
	hinter interface {
		error
		Hints() []string
	}
)
