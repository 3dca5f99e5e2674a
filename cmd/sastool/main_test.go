package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/rogpeppe/go-internal/testscript"
)

var update = flag.Bool("update", false, "rewrite the cmp golden files in testdata/*.txtar from the actual output")

func TestMain(m *testing.M) {
	testscript.Main(m, map[string]func(){
		"sastool": func() { os.Exit(run(context.Background(), os.Args[1:], os.Stdin, os.Stdout, os.Stderr)) },
	})
}

// TestScripts runs testdata/*.txtar: every verb's stdout, stderr and exit code.
// Run with -update to rewrite the golden sections after an intended change (and read the diff).
func TestScripts(t *testing.T) {
	testscript.Run(t, testscript.Params{
		Dir:           "testdata",
		UpdateScripts: *update,
		Setup: func(env *testscript.Env) error {
			env.Setenv("TZ", "UTC") // decode shows local time; scripts that want another zone set TZ
			env.Setenv("PAHO_PYTHON", pahoPython())
			// A -race binary sleeps 1 s at exit by default (atexit_sleep_ms), once per sastool
			// run in the scripts: 50 s for the package. The race reports still print.
			env.Setenv("GORACE", strings.TrimSpace(os.Getenv("GORACE")+" atexit_sleep_ms=0"))
			return nil
		},
		Cmds: map[string]func(ts *testscript.TestScript, neg bool, args []string){
			"exits": cmdExits,
		},
		Condition: func(cond string) (bool, error) {
			if cond == "paho" {
				if pahoPython() == "" && os.Getenv("HUBKIT_REQUIRE_INTEROP") == "1" {
					return false, fmt.Errorf("python3 with paho-mqtt is not installed and HUBKIT_REQUIRE_INTEROP=1")
				}
				return pahoPython() != "", nil
			}
			return false, fmt.Errorf("unknown condition %q", cond)
		},
	})
}

// cmdExits is the script command "exits CODE PROGRAM [ARGS...]": run PROGRAM and require
// that exact exit code (testscript's "!" only says "not zero"). stdout and stderr are kept for
// the following stdout/stderr/cmp lines, as after exec.
func cmdExits(ts *testscript.TestScript, neg bool, args []string) {
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
