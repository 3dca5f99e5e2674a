package cli_test

import (
	"context"
	"errors"
	"io"
	"strconv"
	"testing"

	"github.com/rogpeppe/go-internal/testscript"
	"github.com/spf13/cobra"

	"github.com/hubkit/hubkit/internal/cli"
	"github.com/hubkit/hubkit/internal/cli/clitest"
)

func TestMain(m *testing.M) { clitest.Main(m, "demo", runDemo) }

// runDemo is a command built on the package, for testdata/*.txtar.
func runDemo(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	root := &cobra.Command{Use: "demo", Short: "a demo command"}
	root.AddCommand(
		&cobra.Command{Use: "ok", Args: cobra.NoArgs, RunE: func(cmd *cobra.Command, _ []string) error {
			_, err := io.WriteString(cmd.OutOrStdout(), "ok\n")
			return err
		}},
		&cobra.Command{Use: "fail", RunE: func(*cobra.Command, []string) error {
			return errors.New("it broke")
		}},
		&cobra.Command{Use: "hint", RunE: func(*cobra.Command, []string) error {
			return cli.WithHints(cli.WithHints(errors.New("it broke"), "first"), "second")
		}},
		&cobra.Command{Use: "joined", RunE: func(*cobra.Command, []string) error {
			return cli.WithHints(errors.Join(errors.New("first broke"), errors.New("second broke")), "fix both")
		}},
		&cobra.Command{Use: "usage", RunE: func(*cobra.Command, []string) error {
			return cli.WithHints(cli.Usagef("usage: %s", "wrong"), "a hint")
		}},
		&cobra.Command{Use: "code N", Args: cobra.ExactArgs(1), RunE: func(_ *cobra.Command, args []string) error {
			n, err := strconv.Atoi(args[0])
			if err != nil {
				return cli.Usagef("code: %v", err)
			}
			return cli.NewError(n, errors.New("code "+args[0]), "hint "+args[0])
		}},
		&cobra.Command{Use: "prerun", PreRunE: func(*cobra.Command, []string) error {
			return errors.New("failed before RunE")
		}, RunE: func(*cobra.Command, []string) error { return nil }},
		&cobra.Command{Use: "prerun-coded", PreRunE: func(*cobra.Command, []string) error {
			return cli.WithHints(errors.New("failed before RunE"), "not a usage error")
		}, RunE: func(*cobra.Command, []string) error { return nil }},
	)
	cmd, err := cli.Execute(ctx, root, args, stdin, stdout, stderr)
	return cli.Report(stderr, cmd, err)
}

func TestScripts(t *testing.T) {
	testscript.Run(t, testscript.Params{
		Dir:   "testdata",
		Setup: clitest.Setup,
		Cmds:  map[string]func(*testscript.TestScript, bool, []string){"exits": clitest.Exits},
	})
}

func TestErrors(t *testing.T) {
	plain := errors.New("plain")
	for _, tc := range []struct {
		name      string
		err       error
		wantCode  int
		wantHints []string
	}{
		{"nil", nil, cli.ExitOK, nil},
		{"plain", plain, cli.ExitError, nil},
		{"usage", cli.Usage(plain, "h"), cli.ExitUsage, []string{"h"}},
		{"usagef", cli.Usagef("bad %d", 1), cli.ExitUsage, nil},
		{"new-error", cli.NewError(3, plain, "h1", "h2"), 3, []string{"h1", "h2"}},
		{"with-hints-plain", cli.WithHints(plain, "h"), cli.ExitError, []string{"h"}},
		{"with-hints-keeps-code-and-hints", cli.WithHints(cli.Usage(plain, "h1"), "h2"), cli.ExitUsage, []string{"h1", "h2"}},
		{"wrapped", errors.Join(cli.NewError(4, plain, "h")), 4, []string{"h"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.err != nil && tc.name != "usagef" && !errors.Is(tc.err, plain) {
				t.Errorf("errors.Is(%v, plain) = false, want true: the error must unwrap", tc.err)
			}
			if got := cli.ExitCode(tc.err); got != tc.wantCode {
				t.Errorf("ExitCode(%v) = %d, want %d", tc.err, got, tc.wantCode)
			}
			got := cli.Hints(tc.err)
			if len(got) != len(tc.wantHints) {
				t.Fatalf("Hints(%v) = %q, want %q", tc.err, got, tc.wantHints)
			}
			for i := range got {
				if got[i] != tc.wantHints[i] {
					t.Errorf("Hints(%v) = %q, want %q", tc.err, got, tc.wantHints)
				}
			}
		})
	}
}
