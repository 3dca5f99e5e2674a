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
		Setup: func(env *testscript.Env) error {
			env.Setenv(envConnectionString, "")
			return clitest.Setup(env)
		},
		Cmds: scriptCmds(),
	})
}
