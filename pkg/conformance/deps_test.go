package conformance_test

import (
	"os/exec"
	"strings"
	"testing"
)

// TestDependencyRule pins STYLE.md §1: the suite depends on pkg/device,
// pkg/iothub, pkg/sas and internal/mqttraw, never on pkg/fakehub (only its
// _test.go files use fakehub, as go-cloud's drivers run drivertest). A suite
// that imported the fake could not be trusted to judge it.
func TestDependencyRule(t *testing.T) {
	// go test puts its own GOROOT/bin first in PATH, so this is the go running the test.
	goTool, err := exec.LookPath("go")
	if err != nil {
		t.Skip("no go command")
	}
	out, err := exec.Command(goTool, "list", "-e", "-deps", "-f", "{{if not .Standard}}{{.ImportPath}}{{end}}", ".").CombinedOutput()
	if err != nil {
		t.Fatalf("go list -deps: %v\n%s", err, out)
	}
	for _, p := range strings.Fields(string(out)) {
		if strings.HasPrefix(p, "github.com/hubkit/hubkit/pkg/fakehub") || strings.HasPrefix(p, "github.com/mochi-mqtt/") {
			t.Errorf("pkg/conformance depends on %s; the suite must not import the hub it judges", p)
		}
	}
}
