package testutil

import (
	"fmt"
	"go/importer"
	"go/token"
	"go/types"
	"io"
	"os"
	"slices"
	"testing"
)

// LoadTypes returns the types of the packages importPaths (their non-test files), in
// order, read from the export data the go command compiles for them and their
// dependencies (one `go list -deps -export`): a build-cache lookup, not a type-check of
// every dependency from source.
func LoadTypes(t testing.TB, importPaths ...string) []*types.Package {
	t.Helper()
	exports := map[string]string{}
	for _, p := range ListPackages(t, append([]string{"-deps", "-export"}, importPaths...)...) {
		exports[p.ImportPath] = p.Export
	}
	imp := importer.ForCompiler(token.NewFileSet(), "gc", func(path string) (io.ReadCloser, error) {
		f, ok := exports[path]
		if !ok || f == "" {
			return nil, fmt.Errorf("no export data for %s", path)
		}
		return os.Open(f)
	})
	pkgs := make([]*types.Package, 0, len(importPaths))
	for _, path := range importPaths {
		pkg, err := imp.Import(path)
		if err != nil {
			t.Fatalf("loading the types of %s: %v", path, err)
		}
		pkgs = append(pkgs, pkg)
	}
	return pkgs
}

// ForeignTypesInAPI returns, sorted, one line per place where the exported API of pkg
// names a type declared in a package for which foreign returns true: an exported
// function's or method's parameter or result, an exported variable's or constant's type,
// an exported field (an embedded field included) or interface method, a type argument,
// or a method promoted into an exported type. Unexported types that the exported API
// reaches are followed too, since callers can still use their exported parts.
func ForeignTypesInAPI(pkg *types.Package, foreign func(pkgPath string) bool) []string {
	w := apiWalker{pkg: pkg, foreign: foreign, seen: map[types.Type]bool{}}
	scope := pkg.Scope()
	for _, name := range scope.Names() {
		obj := scope.Lookup(name)
		if !obj.Exported() {
			continue
		}
		switch obj := obj.(type) {
		case *types.TypeName:
			w.named(obj.Name(), obj.Type())
		default:
			w.walk(obj.Name(), obj.Type())
		}
	}
	slices.Sort(w.found)
	return slices.Compact(w.found)
}

type apiWalker struct {
	pkg     *types.Package
	foreign func(string) bool
	seen    map[types.Type]bool
	found   []string
}

// named checks a type declared in pkg: its underlying type and its exported methods,
// promoted ones included.
func (w *apiWalker) named(where string, t types.Type) {
	if w.seen[t] {
		return
	}
	w.seen[t] = true
	w.walk(where, t.Underlying())
	if _, isInterface := t.Underlying().(*types.Interface); isInterface {
		return // its methods are walked with the underlying type
	}
	ms := types.NewMethodSet(types.NewPointer(t))
	for i := range ms.Len() {
		m := ms.At(i).Obj()
		if !m.Exported() {
			continue
		}
		if m.Pkg() != nil && w.foreign(m.Pkg().Path()) {
			w.found = append(w.found, fmt.Sprintf("%s.%s: method promoted from %s", where, m.Name(), m.Pkg().Path()))
			continue
		}
		w.walk(where+"."+m.Name(), m.Type())
	}
}

func (w *apiWalker) walk(where string, t types.Type) {
	switch t := t.(type) {
	case *types.Named:
		if obj := t.Obj(); obj.Pkg() != nil && w.foreign(obj.Pkg().Path()) {
			w.found = append(w.found, fmt.Sprintf("%s: %s", where, types.TypeString(t, nil)))
			return
		}
		for i := range t.TypeArgs().Len() {
			w.walk(where, t.TypeArgs().At(i))
		}
		if obj := t.Obj(); obj.Pkg() == w.pkg {
			w.named(obj.Name(), t.Origin())
		}
	case *types.Alias:
		w.walk(where, types.Unalias(t))
	case *types.Pointer:
		w.walk(where, t.Elem())
	case *types.Slice:
		w.walk(where, t.Elem())
	case *types.Array:
		w.walk(where, t.Elem())
	case *types.Chan:
		w.walk(where, t.Elem())
	case *types.Map:
		w.walk(where, t.Key())
		w.walk(where, t.Elem())
	case *types.Signature:
		for v := range t.Params().Variables() {
			w.walk(where, v.Type())
		}
		for v := range t.Results().Variables() {
			w.walk(where, v.Type())
		}
	case *types.Struct:
		for f := range t.Fields() {
			if f.Exported() {
				w.walk(where+"."+f.Name(), f.Type())
			}
		}
	case *types.Interface:
		for i := range t.NumMethods() {
			if m := t.Method(i); m.Exported() {
				w.walk(where+"."+m.Name(), m.Type())
			}
		}
		for i := range t.NumEmbeddeds() {
			w.walk(where, t.EmbeddedType(i))
		}
	case *types.TypeParam:
		w.walk(where, t.Constraint())
	case *types.Union:
		for i := range t.Len() {
			w.walk(where, t.Term(i).Type())
		}
	}
}
