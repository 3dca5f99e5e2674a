// Package junit writes JUnit XML reports, offline and with the standard library only:
// Convert turns `go test -json` output into one (the command over it is
// internal/junit/cmd/junit); Suites, Case and Write build one directly (the device
// grader's report, pkg/grade).
package junit
