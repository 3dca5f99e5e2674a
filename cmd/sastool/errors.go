package main

import (
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/spf13/cobra"

	"github.com/hubkit/hubkit/pkg/sas"
)

// Exit codes. They are listed in the root help text and pinned by the testdata scripts
// ("exits CODE sastool ...") and TestRunExitCodes.
const (
	exitOK       = 0 // the command did what was asked
	exitError    = 1 // bad input data (key, token, connection string), I/O failure
	exitUsage    = 2 // bad flags or arguments: fix the command line
	exitRejected = 3 // verify: the token is well formed but was rejected
)

// cliError is an error with an exit code and hints. Commands return it; report prints it.
type cliError struct {
	code  int
	err   error
	hints []string
}

func (e *cliError) Error() string { return e.err.Error() }
func (e *cliError) Unwrap() error { return e.err }

// usageErrorf returns an exit-2 error: the command line itself is wrong.
func usageErrorf(format string, args ...any) *cliError {
	return &cliError{code: exitUsage, err: fmt.Errorf(format, args...)}
}

// withHints attaches hint lines to err (exit 1 unless err already carries a code).
func withHints(err error, hints ...string) error {
	if ce, ok := errors.AsType[*cliError](err); ok {
		return &cliError{code: ce.code, err: ce.err, hints: append(append([]string(nil), ce.hints...), hints...)}
	}
	return &cliError{code: exitError, err: err, hints: hints}
}

// rejectedError is verify's exit-3 result: a well-formed token the verifier refused.
type rejectedError struct{ rej *sas.Rejection }

func (e *rejectedError) Error() string { return e.rej.Error() }
func (e *rejectedError) Unwrap() error { return e.rej }

// report prints err on stderr in the house format and returns the exit code.
//
//	sastool: error: <message>
//	sastool: hint: <hint>
//
// preRun is true when cobra failed before any command ran (unknown flag or command, wrong
// arguments): those are usage errors.
func report(stderr io.Writer, cmd *cobra.Command, err error, preRun bool) int {
	if re, ok := errors.AsType[*rejectedError](err); ok {
		fmt.Fprintf(stderr, "sastool: rejected: %s: %s\n", re.rej.Reason, re.rej.Detail)
		for _, h := range re.rej.Hints {
			fmt.Fprintf(stderr, "sastool: hint: %s\n", h)
		}
		return exitRejected
	}
	code := exitError
	var hints []string
	if ce, ok := errors.AsType[*cliError](err); ok {
		code, hints = ce.code, ce.hints
		err = ce.err
	} else if preRun {
		code = exitUsage
	}
	// Cobra's messages can span lines ("Did you mean this?\n\tgen"); keep the first line as
	// the error and turn the rest into a hint.
	msg, rest, _ := strings.Cut(strings.TrimSpace(err.Error()), "\n")
	if rest != "" {
		var sugg []string
		for _, l := range strings.Split(rest, "\n") {
			l = strings.TrimSpace(l)
			if l != "" && l != "Did you mean this?" {
				sugg = append(sugg, l)
			}
		}
		if len(sugg) > 0 {
			hints = append([]string{"did you mean " + strings.Join(sugg, " or ") + "?"}, hints...)
		}
	}
	fmt.Fprintf(stderr, "sastool: error: %s\n", msg)
	for _, h := range hints {
		fmt.Fprintf(stderr, "sastool: hint: %s\n", h)
	}
	if code == exitUsage && cmd != nil {
		fmt.Fprintf(stderr, "sastool: hint: run '%s --help' for usage\n", cmd.CommandPath())
	}
	return code
}
