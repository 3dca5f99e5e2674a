package main

import (
	"flag"
	"fmt"
	"os/exec"
	"sync"
	"testing"

	"github.com/rogpeppe/go-internal/testscript"

	"github.com/hubkit/hubkit/internal/cli/clitest"
	"github.com/hubkit/hubkit/internal/testutil"
)

var update = flag.Bool("update", false, "rewrite the cmp golden files in testdata/*.txtar from the actual output")

func TestMain(m *testing.M) { clitest.Main(m, "sastool", run) }

// TestScripts runs testdata/*.txtar: every verb's stdout, stderr and exit code.
// Run with -update to rewrite the golden sections after an intended change (and read the diff).
func TestScripts(t *testing.T) {
	testscript.Run(t, testscript.Params{
		Dir:           "testdata",
		UpdateScripts: *update,
		Setup: func(env *testscript.Env) error {
			env.Setenv("TZ", "UTC") // decode shows local time; scripts that want another zone set TZ
			env.Setenv("PAHO_PYTHON", pahoPython())
			return clitest.Setup(env)
		},
		Cmds: map[string]func(ts *testscript.TestScript, neg bool, args []string){
			"exits": clitest.Exits,
		},
		Condition: func(cond string) (bool, error) {
			if cond == "paho" {
				if pahoPython() == "" && testutil.InteropRequired() {
					return false, fmt.Errorf("python3 with paho-mqtt is not installed and %s=1", testutil.RequireInteropEnv)
				}
				return pahoPython() != "", nil
			}
			return false, fmt.Errorf("unknown condition %q", cond)
		},
	})
}

// pahoPython finds a python3 that can import paho.mqtt (Debian's python3-paho-mqtt), for the
// scripts that compile and run the generated paho-python client; "" if there is none.
var pahoPython = sync.OnceValue(func() string {
	for _, py := range []string{"python3", "/usr/bin/python3"} {
		if exec.Command(py, "-c", "import paho.mqtt.client").Run() == nil {
			if p, err := exec.LookPath(py); err == nil {
				return p
			}
		}
	}
	return ""
})
