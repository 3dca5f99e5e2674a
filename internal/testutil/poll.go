package testutil

import (
	"testing"
	"time"
)

// DefaultTimeout is how long Eventually waits: generous for a loaded 2-core CI
// machine under the race detector, short enough to fail fast when nothing happens.
const DefaultTimeout = 5 * time.Second

// pollInterval is how often Poll re-checks its condition.
const pollInterval = 5 * time.Millisecond

// Poll calls cond until it returns true or timeout passes, and reports whether it
// held. It is the one way hubkit's tests wait for a state that has no event to wait
// on (never a bare sleep); the wait is bounded, the check is what the test asserts.
func Poll(timeout time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			return cond()
		}
		time.Sleep(pollInterval)
	}
	return true
}

// Eventually polls cond for up to DefaultTimeout and fails t with "timed out after
// 5s waiting for <what>" if it never holds.
func Eventually(t testing.TB, what string, cond func() bool) {
	t.Helper()
	if !Poll(DefaultTimeout, cond) {
		t.Fatalf("timed out after %s waiting for %s", DefaultTimeout, what)
	}
}
