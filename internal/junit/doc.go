// Package junit converts `go test -json` output into a JUnit XML report (Convert),
// offline and with the standard library only. The command over it is
// internal/junit/cmd/junit.
package junit
