// Package testutil holds the helpers hubkit's tests share: one way to wait for a
// condition (Poll, Eventually), one fake clock (Clock, whose Now fits every Options.Now),
// one gate for tests that drive third-party clients (MissingTool, LookTool:
// skip when a tool is missing, fail when HUBKIT_REQUIRE_INTEROP=1), and one reader of
// the package graph for layering rules (ListPackages and Package.ForbiddenDeps over
// `go list`; LoadTypes and ForeignTypesInAPI for the types a public API exposes).
//
// It is imported only by _test.go files.
package testutil
