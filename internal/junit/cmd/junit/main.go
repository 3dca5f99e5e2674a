// Command junit converts `go test -json` output into a JUnit XML report,
// offline and with the standard library only, for CI systems that read JUnit:
//
//	go test -json ./pkg/conformance > test.json
//	go run ./internal/junit/cmd/junit < test.json > report.xml
//
// or in one pipe (the exit status of go test is lost in a pipe; keep the
// JSON file if the job must fail on test failures):
//
//	go test -json ./pkg/conformance | go run ./internal/junit/cmd/junit > report.xml
//
// Each package becomes a testsuite and each test or subtest a testcase named
// as -run names it (TestConformance/connect/sas/expired), so a failing
// conformance case shows up under its stable ID with the "want/got" message.
//
// The conversion is package internal/junit (junit.Convert).
//
// Exit status: 0 report written, 1 unreadable input, 2 usage.
package main

import (
	"fmt"
	"io"
	"os"

	"github.com/hubkit/hubkit/internal/junit"
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
}

func run(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	if len(args) > 0 {
		fmt.Fprintln(stderr, "usage: go test -json ./... | junit > report.xml")
		if args[0] == "-h" || args[0] == "-help" || args[0] == "--help" {
			return 0
		}
		return 2
	}
	if err := junit.Convert(stdin, stdout); err != nil {
		fmt.Fprintf(stderr, "junit: error: %v\n", err)
		return 1
	}
	return 0
}
