package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"runtime"
	"runtime/debug"
	"strings"
	"time"

	"github.com/spf13/cobra"
)

// Exit codes, listed in the root help and pinned by testdata/*.txtar.
const (
	exitOK    = 0
	exitError = 1
	exitUsage = 2
)

// run is main without the process: it parses args, runs the command and
// returns the exit code.
func run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer, getenv func(string) string) int {
	started := false
	root := newServeCmd(stdout, stderr)
	root.SetArgs(args)
	root.SetIn(stdin)
	root.SetOut(stdout)
	root.SetErr(stderr)
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return usageError(err) })
	root.AddCommand(newVersionCmd(stdout))
	root.AddCommand(serviceCommands(getenv, time.Now)...)
	markStart(root, &started)
	cmd, err := root.ExecuteContextC(ctx)
	if err == nil {
		return exitOK
	}
	return report(stderr, cmd, err, !started)
}

// markStart records that a RunE began: errors before that are usage errors.
func markStart(c *cobra.Command, started *bool) {
	if r := c.RunE; r != nil {
		c.RunE = func(cmd *cobra.Command, args []string) error {
			*started = true
			return r(cmd, args)
		}
	}
	for _, sub := range c.Commands() {
		markStart(sub, started)
	}
}

// report prints err as "fakehub: error: ..." and "fakehub: hint: ..." lines
// and returns the exit code.
func report(stderr io.Writer, cmd *cobra.Command, err error, preRun bool) int {
	code := exitError
	var hints []string
	var ec interface {
		ExitCode() int
		Hints() []string
	}
	if errors.As(err, &ec) {
		code, hints = ec.ExitCode(), ec.Hints()
	} else if preRun {
		code = exitUsage
	}
	msg, rest, _ := strings.Cut(strings.TrimSpace(err.Error()), "\n")
	for _, l := range strings.Split(rest, "\n") {
		if l = strings.TrimSpace(l); l != "" && l != "Did you mean this?" {
			hints = append(hints, "did you mean "+l+"?")
		}
	}
	fmt.Fprintf(stderr, "fakehub: error: %s\n", msg)
	for _, h := range hints {
		fmt.Fprintf(stderr, "fakehub: hint: %s\n", h)
	}
	if code == exitUsage && cmd != nil {
		fmt.Fprintf(stderr, "fakehub: hint: run '%s --help' for usage\n", cmd.CommandPath())
	}
	return code
}

func newVersionCmd(stdout io.Writer) *cobra.Command {
	return &cobra.Command{
		Use:     "version",
		Short:   "Print the fakehub version",
		Long:    "Print the module version fakehub was built from (\"devel\" for a source build) and the Go version.",
		Example: "  fakehub version",
		Args:    cobra.NoArgs,
		RunE: func(*cobra.Command, []string) error {
			_, err := fmt.Fprintf(stdout, "fakehub %s (%s)\n", version(), runtime.Version())
			return err
		},
	}
}

func version() string {
	if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
		return bi.Main.Version
	}
	return "devel"
}
