package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime/debug"
	"strings"
	"syscall"

	"github.com/spf13/cobra"
)

// Main is a command's main function: it runs run with a context that SIGINT
// or SIGTERM cancels, the process's arguments (without the program name) and
// standard streams, and exits with the code run returns.
func Main(run func(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int) {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdin, os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// Execute runs root with args on the given streams and returns the command
// that ran (or failed to) and its error. It silences cobra's own usage and
// error printing (Report does that), and makes usage errors (exit 2) of flag
// errors and of every error without an exit code of its own that comes before
// a command's RunE starts: an unknown verb or flag, a bad flag value, wrong
// arguments, a failed PreRunE. Commands must be added to root before.
func Execute(ctx context.Context, root *cobra.Command, args []string, stdin io.Reader, stdout, stderr io.Writer) (*cobra.Command, error) {
	root.SilenceUsage = true
	root.SilenceErrors = true
	root.SetArgs(args)
	root.SetIn(stdin)
	root.SetOut(stdout)
	root.SetErr(stderr)
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return Usage(err) })
	started := false
	markStart(root, &started)
	cmd, err := root.ExecuteContextC(ctx)
	if _, coded := exitCode(err); err != nil && !coded && !started {
		err = Usage(err)
	}
	return cmd, err
}

// markStart wraps the RunE of c and its subcommands to set *started.
func markStart(c *cobra.Command, started *bool) {
	if run := c.RunE; run != nil {
		c.RunE = func(cmd *cobra.Command, args []string) error {
			*started = true
			return run(cmd, args)
		}
	}
	for _, sub := range c.Commands() {
		markStart(sub, started)
	}
}

// Report prints err on stderr and returns its exit code (see ExitCode); for
// nil it prints nothing and returns ExitOK. The lines are
//
//	NAME: error: <the first line of the message>
//	NAME: hint: did you mean <cobra's suggestions>?
//	NAME: hint: <each of the error's hints>
//	NAME: hint: run 'NAME VERB --help' for usage
//
// where NAME is the root command's name, the suggestions are the further
// lines of a multi-line message (cobra's "Did you mean this?" list) and the
// last line is only for usage errors. An error that holds several (an
// errors.Join in its chain) gets one "NAME: error:" line for each. cmd is the
// command that failed, as Execute returns it (not nil).
func Report(stderr io.Writer, cmd *cobra.Command, err error) int {
	if err == nil {
		return ExitOK
	}
	name := cmd.Root().Name()
	code, hints := ExitCode(err), Hints(err)
	if j, ok := errors.AsType[multiError](err); ok && len(j.Unwrap()) > 1 {
		for _, e := range j.Unwrap() {
			fmt.Fprintf(stderr, "%s: error: %s\n", name, strings.TrimSpace(e.Error()))
		}
		printHints(stderr, cmd, name, code, hints)
		return code
	}
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
	fmt.Fprintf(stderr, "%s: error: %s\n", name, msg)
	printHints(stderr, cmd, name, code, hints)
	return code
}

// multiError is what errors.Join returns.
type multiError interface {
	error
	Unwrap() []error
}

func printHints(stderr io.Writer, cmd *cobra.Command, name string, code int, hints []string) {
	for _, h := range hints {
		fmt.Fprintf(stderr, "%s: hint: %s\n", name, h)
	}
	if code == ExitUsage {
		fmt.Fprintf(stderr, "%s: hint: run '%s --help' for usage\n", name, cmd.CommandPath())
	}
}

// Version is the main module's version from the build info: a tag for a
// "go install .../cmd/NAME@v1.2.3" build, "devel" for a build from a checkout.
func Version() string {
	if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
		return bi.Main.Version
	}
	return "devel"
}
