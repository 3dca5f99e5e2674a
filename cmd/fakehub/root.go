package main

import (
	"context"
	"io"
	"time"

	"github.com/spf13/cobra"

	"github.com/hubkit/hubkit/internal/cli"
)

// run is main without the process: it parses args, runs the command and
// returns the exit code.
func run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer, getenv func(string) string) int {
	root, serveCmd := newRootCmd(stdout, stderr)
	root.AddCommand(serveCmd, newVersionCmd(stdout))
	root.AddCommand(serviceCommands(getenv, time.Now)...)
	cmd, err := cli.Execute(ctx, root, args, stdin, stdout, stderr)
	return cli.Report(stderr, cmd, err)
}

func newVersionCmd(stdout io.Writer) *cobra.Command {
	return cli.NewVersionCmd("fakehub", stdout, cobra.NoArgs)
}
