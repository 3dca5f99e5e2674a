package main

import (
	"fmt"
	"io"

	"github.com/hubkit/hubkit/pkg/sas"
)

// exitRejected is verify's exit code for a well-formed token the verifier refused; the
// others (0 ok, 1 error, 2 usage) are cli's. All are listed in the root help text and pinned
// by the testdata scripts ("exits CODE sastool ...") and TestRunExitCodes.
const exitRejected = 3

// rejectedError is verify's exit-3 result: a well-formed token the verifier refused.
type rejectedError struct{ rej *sas.Rejection }

func (e *rejectedError) Error() string { return e.rej.Error() }
func (e *rejectedError) Unwrap() error { return e.rej }

// reportRejected prints verify's verdict on stderr and returns exitRejected:
//
//	sastool: rejected: <reason>: <detail>
//	sastool: hint: <hint>
func reportRejected(stderr io.Writer, re *rejectedError) int {
	fmt.Fprintf(stderr, "sastool: rejected: %s: %s\n", re.rej.Reason, re.rej.Detail)
	for _, h := range re.rej.Hints {
		fmt.Fprintf(stderr, "sastool: hint: %s\n", h)
	}
	return exitRejected
}
