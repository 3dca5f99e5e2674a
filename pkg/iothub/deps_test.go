package iothub_test

import (
	"os/exec"
	"strings"
	"testing"
)

// TestDependencies pins the rule that pkg/iothub imports only the standard library (and
// pkg/sas, which is itself standard-library only).
func TestDependencies(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the go command")
	}
	out, err := exec.Command("go", "list", "-deps", "-f", "{{if not .Standard}}{{.ImportPath}}{{end}}", ".").CombinedOutput()
	if err != nil {
		t.Fatalf("go list -deps: %v\n%s", err, out)
	}
	for dep := range strings.FieldsSeq(string(out)) {
		switch dep {
		case "github.com/hubkit/hubkit/pkg/iothub", "github.com/hubkit/hubkit/pkg/sas":
		default:
			t.Errorf("pkg/iothub depends on %s; only the standard library and pkg/sas are allowed", dep)
		}
	}
}
