package mqttraw

import (
	"go/parser"
	"go/token"
	"path/filepath"
	"strings"
	"testing"
)

// TestStdlibOnly keeps the non-test code of this package, and of
// internal/certs (same owner, same rule), on the standard library: the raw
// client must share no code with the broker under test.
func TestStdlibOnly(t *testing.T) {
	for _, dir := range []string{".", filepath.Join("..", "certs")} {
		files, err := filepath.Glob(filepath.Join(dir, "*.go"))
		if err != nil || len(files) == 0 {
			t.Fatalf("no Go files in %s (%v)", dir, err)
		}
		for _, file := range files {
			if strings.HasSuffix(file, "_test.go") {
				continue
			}
			f, err := parser.ParseFile(token.NewFileSet(), file, nil, parser.ImportsOnly)
			if err != nil {
				t.Fatal(err)
			}
			for _, imp := range f.Imports {
				path := strings.Trim(imp.Path.Value, `"`)
				if first, _, _ := strings.Cut(path, "/"); strings.Contains(first, ".") {
					t.Errorf("%s imports %s; only the standard library is allowed", file, path)
				}
			}
		}
	}
}
