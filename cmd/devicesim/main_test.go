package main

import (
	"testing"

	"github.com/rogpeppe/go-internal/testscript"

	"github.com/hubkit/hubkit/internal/cli/clitest"
)

func TestMain(m *testing.M) { clitest.Main(m, "devicesim", run) }

// TestScripts runs testdata/*.txtar: usage errors, help and exit codes, and runs against
// an in-process hub (see cmds_test.go).
func TestScripts(t *testing.T) {
	testscript.Run(t, testscript.Params{
		Dir: "testdata",
		// Not clitest.Setup: a -race devicesim sleeps 1 s at exit (GORACE atexit_sleep_ms), and
		// twin.txtar's "hub waitsub" relies on it: without the sleep it can match the session
		// of the previous command before the hub has dropped it, and the desired patch goes
		// to a connection that is gone.
		Setup: func(env *testscript.Env) error {
			env.Setenv(envConnectionString, "")
			return nil
		},
		Cmds: scriptCmds(),
	})
}
