package testutil

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// Package is what `go list -json` says about one package, the fields dependency rules need.
type Package struct {
	ImportPath string
	Dir        string
	Name       string
	Standard   bool
	GoFiles    []string // non-test .go files (after build constraints), relative to Dir
	Imports    []string // direct imports of the non-test files
	Deps       []string // every package the non-test files depend on, transitively
	Export     string   // the compiled export data, with the -export flag
	Error      *struct{ Err string }
}

// GoTool returns the go command, or skips t without one. `go test` puts the GOROOT/bin
// of the go running the test first in PATH, so it is that one.
func GoTool(t testing.TB) string {
	t.Helper()
	p, err := exec.LookPath("go")
	if err != nil {
		t.Skip("no go command in PATH")
	}
	return p
}

// ListPackages runs `go list -e -json` with args (patterns such as import paths or
// ./... forms, optionally preceded by go list flags such as -deps) and returns the
// packages in its order. A package that does not load fails t.
func ListPackages(t testing.TB, args ...string) []Package {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute) // -export may compile
	defer cancel()
	args = append([]string{"list", "-e", "-json=ImportPath,Dir,Name,Standard,GoFiles,Imports,Deps,Export,Error"}, args...)
	var stderr bytes.Buffer
	cmd := exec.CommandContext(ctx, GoTool(t), args...)
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go %s: %v\n%s", strings.Join(args, " "), err, stderr.Bytes())
	}
	var pkgs []Package
	for dec := json.NewDecoder(bytes.NewReader(out)); ; {
		var p Package
		if err := dec.Decode(&p); errors.Is(err, io.EOF) {
			break
		} else if err != nil {
			t.Fatalf("go list -json: %v", err)
		}
		if p.Error != nil {
			t.Fatalf("go list: package %s: %s", p.ImportPath, p.Error.Err)
		}
		pkgs = append(pkgs, p)
	}
	return pkgs
}

// ForbiddenDeps returns the dependencies of p (transitive, test files excluded) for
// which allowed returns false. Standard-library packages are passed to allowed too, so
// a rule can forbid them.
func (p Package) ForbiddenDeps(allowed func(dep string) bool) []string {
	var out []string
	for _, d := range p.Deps {
		if !allowed(d) {
			out = append(out, d)
		}
	}
	return out
}

// IsStandard reports whether importPath is in the standard library. In module mode an
// import path whose first element has no dot is reserved for it (the go command's rule);
// "C" (cgo) is not a package.
func IsStandard(importPath string) bool {
	first, _, _ := strings.Cut(importPath, "/")
	return !strings.Contains(first, ".") && importPath != "C"
}

// HasPathPrefix reports whether importPath is prefix or inside it, by whole path
// element ("a/b" is inside "a", "ab" is not).
func HasPathPrefix(importPath, prefix string) bool {
	return importPath == prefix || strings.HasPrefix(importPath, prefix+"/")
}

// ByImportPath indexes pkgs by import path.
func ByImportPath(pkgs []Package) map[string]Package {
	m := make(map[string]Package, len(pkgs))
	for _, p := range pkgs {
		m[p.ImportPath] = p
	}
	return m
}
