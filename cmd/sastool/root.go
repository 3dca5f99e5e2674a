package main

import (
	"context"
	"errors"
	"io"
	"strings"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/hubkit/hubkit/internal/cli"
)

// envKey is the one environment variable sastool reads: a key for gen, verify and connstr
// build when no --key, --key-file or -c is given.
const envKey = "HUBKIT_SAS_KEY"

// streams is what a command may touch besides its flags. run builds one per invocation so
// tests (and testscript) can drive run with buffers.
type streams struct {
	ctx      context.Context // canceled by SIGINT/SIGTERM: a read from stdin gives up
	in       io.Reader
	out, err io.Writer

	stdinUsed bool // "-" may stand for stdin once per invocation
}

const rootLong = `sastool makes, inspects and checks Azure IoT Hub shared access signature (SAS)
tokens and connection strings, offline. Nothing is sent anywhere.

The result (a token, a key, one --json object) is the only thing on stdout.
Diagnostics go to stderr as "sastool: error: ..." and "sastool: hint: ..." lines.

Keys can be given as --key KEY, --key-file PATH ("-" reads stdin) or in the
` + envKey + ` environment variable. On a shared machine prefer --key-file or the
variable: a --key argument is visible to other users in the process list and
lands in your shell history.

Exit codes:
  0  success (verify: the token is valid)
  1  error: bad key, token or connection string, unreadable file
  2  usage: unknown verb or flag, missing or conflicting flags, bad flag value
  3  verify: the token is well formed but rejected (reason and hints on stderr)`

const rootExample = `  # a device token valid for one hour
  sastool gen -c "$DEVICE_CONNECTION_STRING"

  # why does the hub answer CONNACK 5 "not authorized"?
  sastool verify -c "$DEVICE_CONNECTION_STRING" "$TOKEN"

  # everything a raw MQTT client needs, as mosquitto commands
  sastool mqtt -c "$DEVICE_CONNECTION_STRING" --format mosquitto --ca ca.pem`

const completionExample = `  # bash, for this shell
  source <(sastool completion bash)

  # zsh, for every new shell
  sastool completion zsh > "${fpath[1]}/_sastool"`

// usageTemplate is cobra's default without command groups and with the examples last, so
// every help text ends with them.
const usageTemplate = `Usage:{{if .Runnable}}
  {{.UseLine}}{{end}}{{if .HasAvailableSubCommands}}
  {{.CommandPath}} [command]{{end}}{{if .HasAvailableSubCommands}}

Available Commands:{{range .Commands}}{{if (or .IsAvailableCommand (eq .Name "help"))}}
  {{rpad .Name .NamePadding }} {{.Short}}{{end}}{{end}}{{end}}{{if .HasAvailableLocalFlags}}

Flags:
{{.LocalFlags.FlagUsages | trimTrailingWhitespaces}}{{end}}{{if .HasAvailableInheritedFlags}}

Global Flags:
{{.InheritedFlags.FlagUsages | trimTrailingWhitespaces}}{{end}}{{if .HasAvailableSubCommands}}

Use "{{.CommandPath}} [command] --help" for more information about a command.{{end}}{{if .HasExample}}

Examples:
{{.Example}}{{end}}
`

// run is main without the process: it parses args, runs the verb and returns the exit code.
func run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	st := &streams{ctx: ctx, in: stdin, out: stdout, err: stderr}
	root := &cobra.Command{
		Use:     "sastool",
		Short:   "Make, decode and verify Azure IoT Hub SAS tokens and connection strings",
		Long:    rootLong,
		Example: rootExample,
	}
	root.SetUsageTemplate(usageTemplate)
	root.AddCommand(
		newGenCmd(st),
		newDecodeCmd(st),
		newVerifyCmd(st),
		newDeriveCmd(st),
		newConnstrCmd(st),
		newMQTTCmd(st),
		newCertCmd(st),
		newDPSCmd(st),
		newVersionCmd(st),
	)
	root.InitDefaultCompletionCmd()
	if c, _, err := root.Find([]string{"completion"}); err == nil && c != root {
		c.Example = completionExample
	}
	cmd, err := cli.Execute(ctx, root, args, stdin, stdout, stderr)
	if re, ok := errors.AsType[*rejectedError](err); ok {
		return reportRejected(stderr, re)
	}
	return cli.Report(stderr, cmd, err)
}

// noArgs and oneArg replace cobra's validators so the messages name what is expected.
func noArgs(cmd *cobra.Command, args []string) error {
	if len(args) > 0 {
		return cli.Usagef("%s takes no arguments, got %q", cmd.Name(), args[0])
	}
	return nil
}

func oneArg(what string) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		switch {
		case len(args) == 0:
			return cli.Usagef("%s needs %s (or - to read it from stdin)", cmd.Name(), what)
		case len(args) > 1:
			return cli.Usagef("%s takes one argument (%s), got %d: quote the value, it may contain spaces or '&'", cmd.Name(), what, len(args))
		}
		return nil
	}
}

// sortFlags keeps flags in the order they were declared, which groups them by meaning.
func sortFlags(fs ...*pflag.FlagSet) {
	for _, f := range fs {
		f.SortFlags = false
	}
}

// A flagRule checks a combination of flags; commands list theirs in PreRunE with checkFlags.
// (cobra's MarkFlagsMutuallyExclusive runs after the hooks and words its errors for cobra
// developers; these say what to do.)
type flagRule func(*cobra.Command) error

func checkFlags(rules ...flagRule) func(*cobra.Command, []string) error {
	return func(cmd *cobra.Command, _ []string) error {
		for _, r := range rules {
			if err := r(cmd); err != nil {
				return err
			}
		}
		return nil
	}
}

// exclusive: at most one of the flags.
func exclusive(names ...string) flagRule {
	return func(cmd *cobra.Command) error {
		var set []string
		for _, n := range names {
			if cmd.Flags().Changed(n) {
				set = append(set, "--"+n)
			}
		}
		if len(set) > 1 {
			return cli.Usagef("use either %s, not both", strings.Join(set, " or "))
		}
		return nil
	}
}

// oneOf: at least one of the flags.
func oneOf(names ...string) flagRule {
	return func(cmd *cobra.Command) error {
		var all []string
		for _, n := range names {
			if cmd.Flags().Changed(n) {
				return nil
			}
			all = append(all, "--"+n)
		}
		if len(all) == 1 {
			return cli.Usagef("%s is required", all[0])
		}
		return cli.Usagef("one of %s is required", strings.Join(all, " or "))
	}
}
