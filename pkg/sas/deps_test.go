package sas

import (
	"os/exec"
	"strings"
	"testing"
)

// TestStandardLibraryOnly enforces that pkg/sas imports nothing outside the
// standard library (test files excluded: they may use go-cmp).
func TestStandardLibraryOnly(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the go command")
	}
	gobin, err := exec.LookPath("go")
	if err != nil {
		t.Skip("go command not found")
	}
	out, err := exec.Command(gobin, "list", "-deps", "-f", "{{if not .Standard}}{{.ImportPath}}{{end}}", ".").CombinedOutput()
	if err != nil {
		t.Fatalf("go list -deps: %v\n%s", err, out)
	}
	for _, p := range strings.Fields(string(out)) {
		if p != "github.com/hubkit/hubkit/pkg/sas" {
			t.Errorf("pkg/sas depends on %s; it must import only the standard library", p)
		}
	}
}
