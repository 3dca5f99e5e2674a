// Package cli is the scaffolding hubkit's commands (sastool, fakehub,
// devicesim) share, so that they start, fail and report the same way
// (STYLE.md §5):
//
//   - [Main] is a command's main: a context canceled by SIGINT or SIGTERM,
//     then os.Exit with what run returns.
//   - [Execute] runs a cobra root command: usage and errors silenced, flag
//     errors and everything that fails before a command's RunE starts
//     (unknown verb or flag, wrong arguments) made usage errors.
//   - [Report] prints an error on stderr as "NAME: error: ..." and
//     "NAME: hint: ..." lines and returns its exit code.
//   - [Version] is the module version a "version" verb prints.
//
// Exit codes: [ExitOK] 0, [ExitError] 1, [ExitUsage] 2; codes from 3 up
// belong to a command (sastool verify exits 3 for a rejected token). An error
// carries its code with an ExitCode() int method and its hints with a
// Hints() []string method; [Error] has both, and [Usage], [Usagef],
// [WithHints] and [NewError] make one.
//
// The package uses the standard library and cobra only. Its script-test
// helpers are in package clitest.
package cli
