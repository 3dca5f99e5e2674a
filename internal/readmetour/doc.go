// Package readmetour runs the README's "Five-minute tour" as written, so the README cannot
// rot: it installs the tools with the Install section's `make install` (into a temporary
// GOBIN), starts the hub with the tour's `make run`, fills in the two connection strings the
// tour tells the reader to copy from the banner, and runs every other line of the tour's
// shell block verbatim in one bash, checking what each prints against what the README's
// comments promise. It has no code of its own.
//
// The tour uses the hub's fixed ports (8883, 8443). The test runs it in a private network
// namespace (a new user and network namespace with its own loopback), so a `make run` or
// another run of this test on the machine cannot collide with it; where the kernel does not
// allow that, it runs on the machine's loopback if both ports are free, and skips otherwise.
package readmetour
