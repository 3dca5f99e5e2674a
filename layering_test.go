// Package hubkit_test pins the layering of the whole module (STYLE.md §1, §2): which
// package may depend on which, and which third-party types may appear in a public API.
// It lives at the root because its rules are about the house, not about one room.
package hubkit_test

import (
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/hubkit/hubkit/internal/testutil"
)

const module = "github.com/hubkit/hubkit"

const (
	mochi = "github.com/mochi-mqtt/server/v2"
	paho  = "github.com/eclipse/paho.mqtt.golang"
)

// in reports whether path is one of the module's packages prefixes (by path element):
// in(p, "pkg/fakehub") is pkg/fakehub and everything below it.
func in(path string, prefixes ...string) bool {
	for _, p := range prefixes {
		if testutil.HasPathPrefix(path, module+"/"+p) {
			return true
		}
	}
	return false
}

// A depRule limits what some packages may depend on, transitively, through their
// non-test files (test files may use anything: go-cmp, an in-process fakehub, ...).
type depRule struct {
	name    string
	why     string
	applies func(pkg string) bool
	allowed func(dep string) bool
}

var depRules = []depRule{
	{
		name:    "sas-stdlib-only",
		why:     "pkg/sas is the SAS verdict both sides share; it imports only the standard library",
		applies: func(p string) bool { return in(p, "pkg/sas") },
		allowed: testutil.IsStandard,
	},
	{
		name:    "iothub-stdlib-and-sas",
		why:     "pkg/iothub is the protocol vocabulary; it imports only the standard library and pkg/sas (its DPS sibling pkg/iothub/dps also pkg/iothub)",
		applies: func(p string) bool { return in(p, "pkg/iothub") },
		allowed: func(d string) bool {
			return testutil.IsStandard(d) || in(d, "pkg/sas") || d == module+"/pkg/iothub"
		},
	},
	{
		name:    "raw-client-and-certs-stdlib-only",
		why:     "internal/mqttraw and internal/certs share no code with the broker or the clients under test",
		applies: func(p string) bool { return in(p, "internal/mqttraw") || p == module+"/internal/certs" },
		allowed: testutil.IsStandard,
	},
	{
		name:    "junit-stdlib-only",
		why:     "internal/junit runs offline on any CI machine with the standard library only",
		applies: func(p string) bool { return in(p, "internal/junit") },
		allowed: func(d string) bool { return testutil.IsStandard(d) || in(d, "internal/junit") },
	},
	{
		name:    "device-and-suite-never-use-the-fake",
		why:     "pkg/device and pkg/conformance never depend on pkg/fakehub or mochi: a client or a suite built on the fake could not judge it",
		applies: func(p string) bool { return in(p, "pkg/device", "pkg/conformance") },
		allowed: func(d string) bool { return !in(d, "pkg/fakehub") && !testutil.HasPathPrefix(d, mochi) },
	},
	{
		name:    "fake-never-uses-the-client",
		why:     "pkg/fakehub never depends on pkg/device, pkg/conformance or paho: the hub and the reference client share only pkg/iothub and pkg/sas",
		applies: func(p string) bool { return in(p, "pkg/fakehub") },
		allowed: func(d string) bool {
			return !in(d, "pkg/device", "pkg/conformance") && !testutil.HasPathPrefix(d, paho)
		},
	},
	{
		name:    "libraries-have-no-cli",
		why:     "flags, printing and exit codes belong to cmd/: nothing under pkg/ depends on cobra, pflag or internal/cli",
		applies: func(p string) bool { return in(p, "pkg") },
		allowed: func(d string) bool {
			return !in(d, "internal/cli") && !testutil.HasPathPrefix(d, "github.com/spf13/cobra") && !testutil.HasPathPrefix(d, "github.com/spf13/pflag")
		},
	},
	{
		name:    "interop-clients-are-test-only",
		why:     "github.com/amenzhinsky/iothub (and the go-amqp it pulls in) is a client under test for internal/gointerop's tests; no hubkit code builds on it",
		applies: func(p string) bool { return testutil.HasPathPrefix(p, module) },
		allowed: func(d string) bool {
			return !testutil.HasPathPrefix(d, "github.com/amenzhinsky/iothub") && !testutil.HasPathPrefix(d, "github.com/Azure/go-amqp")
		},
	},
}

// fakehubInternal is the package tree only pkg/fakehub itself may reach into.
const fakehubInternal = "pkg/fakehub/internal"

func TestLayering(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the go command")
	}
	all := testutil.ListPackages(t, "-deps", module+"/...") // with every dependency, for frontier
	byPath := testutil.ByImportPath(all)
	var pkgs []testutil.Package // the module's own
	for _, p := range all {
		if testutil.HasPathPrefix(p.ImportPath, module) {
			pkgs = append(pkgs, p)
		}
	}

	for _, r := range depRules {
		t.Run(r.name, func(t *testing.T) {
			matched := 0
			for _, p := range pkgs {
				if !r.applies(p.ImportPath) {
					continue
				}
				matched++
				for _, d := range frontier(byPath, p.ForbiddenDeps(r.allowed)) {
					t.Errorf("%s depends on %s%s; %s", p.ImportPath, d, via(byPath, p, d), r.why)
				}
			}
			if matched == 0 {
				t.Errorf("rule %s applies to no package: a package moved; update the rule", r.name)
			}
		})
	}

	t.Run("fakehub-internal-stays-inside", func(t *testing.T) {
		for _, p := range pkgs {
			if p.ImportPath == module+"/pkg/fakehub" || in(p.ImportPath, fakehubInternal) {
				continue
			}
			for _, imp := range p.Imports {
				if !in(imp, fakehubInternal) {
					continue
				}
				t.Errorf("%s imports %s; only pkg/fakehub and its internal packages may (public packages use exported APIs, no client reaches into another package's internal/)", p.ImportPath, imp)
			}
		}
	})

	t.Run("no-mochi-or-paho-type-in-public-apis", func(t *testing.T) {
		foreign := func(path string) bool {
			return testutil.HasPathPrefix(path, mochi) || testutil.HasPathPrefix(path, paho)
		}
		var public []string
		for _, p := range pkgs {
			if in(p.ImportPath, "pkg") && !strings.Contains(p.ImportPath+"/", "/internal/") {
				public = append(public, p.ImportPath)
			}
		}
		if !slices.Contains(public, module+"/pkg/fakehub") || !slices.Contains(public, module+"/pkg/device") {
			t.Fatalf("public packages %v lack pkg/fakehub or pkg/device", public)
		}
		for _, pkg := range testutil.LoadTypes(t, public...) {
			for _, f := range testutil.ForeignTypesInAPI(pkg, foreign) {
				t.Errorf("%s exports %s; mochi and paho types stay behind hubkit's own types (STYLE.md §1)", pkg.Path(), f)
			}
		}
	})
}

// frontier keeps, of the forbidden dependencies deps, those not reached through another
// one: pkg/fakehub, not also mochi and every package pkg/fakehub pulls in.
func frontier(byPath map[string]testutil.Package, deps []string) []string {
	var out []string
	for _, d := range deps {
		if !slices.ContainsFunc(deps, func(f string) bool { return f != d && slices.Contains(byPath[f].Deps, d) }) {
			out = append(out, d)
		}
	}
	return out
}

// via names, for a forbidden transitive dependency, the direct import that leads to it.
func via(byPath map[string]testutil.Package, p testutil.Package, dep string) string {
	if slices.Contains(p.Imports, dep) {
		return ""
	}
	for _, imp := range p.Imports {
		if q, ok := byPath[imp]; ok && slices.Contains(q.Deps, dep) {
			return fmt.Sprintf(" (through %s)", imp)
		}
	}
	return " (indirectly)"
}
