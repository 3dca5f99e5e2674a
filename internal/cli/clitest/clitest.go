// Package clitest runs a hubkit command's testscript scripts
// (cmd/*/testdata/*.txtar) the same way in every command: the command as a
// program the scripts exec, the "exits CODE PROGRAM [ARGS...]" script command
// that pins an exit code, and an environment that keeps -race runs fast.
//
// A command's main_test.go:
//
//	func TestMain(m *testing.M) { clitest.Main(m, "sastool", run) }
//
//	func TestScripts(t *testing.T) {
//		testscript.Run(t, testscript.Params{
//			Dir:   "testdata",
//			Setup: clitest.Setup,
//			Cmds:  map[string]func(*testscript.TestScript, bool, []string){"exits": clitest.Exits},
//		})
//	}
package clitest

import (
	"context"
	"errors"
	"io"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"

	"github.com/rogpeppe/go-internal/testscript"
)

// Main is TestMain for a command's package: scripts can exec name, which
// calls run (the command's main without the process) with a background
// context and the process's arguments and streams.
func Main(m *testing.M, name string, run func(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int) {
	testscript.Main(m, map[string]func(){
		name: func() { os.Exit(run(context.Background(), os.Args[1:], os.Stdin, os.Stdout, os.Stderr)) },
	})
}

// Setup prepares a script's environment. A -race binary sleeps 1 s at exit by
// default (GORACE atexit_sleep_ms), once per command a script execs: a minute
// for a package. Setup turns the sleep off; race reports still print.
func Setup(env *testscript.Env) error {
	env.Setenv("GORACE", strings.TrimSpace(os.Getenv("GORACE")+" atexit_sleep_ms=0"))
	return nil
}

// Exits is the script command "exits CODE PROGRAM [ARGS...]": it runs PROGRAM
// like exec and requires that exact exit code (testscript's "!" only says
// "not zero"). stdout and stderr are kept for the stdout, stderr and cmp
// lines that follow, as after exec.
func Exits(ts *testscript.TestScript, neg bool, args []string) {
	if neg {
		ts.Fatalf("use exits CODE, not ! exits")
	}
	if len(args) < 2 {
		ts.Fatalf("usage: exits CODE PROGRAM [ARGS...]")
	}
	want, err := strconv.Atoi(args[0])
	if err != nil {
		ts.Fatalf("exits: bad CODE %q", args[0])
	}
	got := 0
	if err := ts.Exec(args[1], args[2:]...); err != nil {
		ee, ok := errors.AsType[*exec.ExitError](err)
		if !ok {
			ts.Fatalf("exits: %v", err)
		}
		got = ee.ExitCode()
	}
	if got != want {
		ts.Fatalf("%s exited with %d, want %d", args[1], got, want)
	}
}
