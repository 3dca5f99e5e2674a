package grade_test

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hubkit/hubkit/internal/testutil"
	"github.com/hubkit/hubkit/pkg/fakehub"
	"github.com/hubkit/hubkit/pkg/fakehub/fakehubtest"
	"github.com/hubkit/hubkit/pkg/grade"
	"github.com/hubkit/hubkit/pkg/iothub"
)

// pahoSample is the classic IoT Hub sample done by hand on Eclipse Paho for Python, the
// one pkg/conformance's interop test runs.
var pahoSample = filepath.Join("..", "conformance", "testdata", "iothub_sample.py")

// superviseRestart is the pause before the supervisor runs the sample again: long next to
// Python's start-up (0.1-1.5 s on a loaded machine), so that the waits of a constant pause
// cannot look like a growing back-off by chance.
const superviseRestart = 4 * time.Second

// supervise runs the Paho sample until the test ends, starting it again superviseRestart
// after each exit, as a service manager would (systemd Restart=always, RestartSec=4): the
// sample itself connects once and exits when its connection ends or its C2D message came.
// It returns what the runs printed, for failure messages.
func supervise(t *testing.T, python string, env []string) func() string {
	ctx, cancel := context.WithCancel(context.Background())
	var mu sync.Mutex
	var out bytes.Buffer
	done := make(chan struct{})
	go func() {
		defer close(done)
		for run := 1; ctx.Err() == nil; run++ {
			cmd := exec.CommandContext(ctx, python, pahoSample)
			cmd.Env = env
			b, err := cmd.CombinedOutput()
			mu.Lock()
			out.WriteString(strings.TrimSpace(string(b)) + "\n")
			if err != nil {
				out.WriteString("  (exit: " + err.Error() + ")\n")
			}
			mu.Unlock()
			select {
			case <-ctx.Done():
			case <-time.After(superviseRestart):
			}
		}
	}()
	t.Cleanup(func() { cancel(); <-done })
	return func() string {
		mu.Lock()
		defer mu.Unlock()
		return out.String()
	}
}

// TestGradePahoPythonSample grades pkg/conformance/testdata/iothub_sample.py, unchanged,
// run by a supervisor that starts it again whenever it exits. It signs one SAS token per run
// (an hour, with its own clock) and never renews it, has no back-off of its own, and
// publishes one telemetry message per connection, so the grade fails exactly:
//
//   - device/token/renews-before-expiry: graded on the hub's clock (the default): the hub's
//     clock moves to 90 % of the token's lifetime and 30 s before its expiry; the sample
//     does nothing, and the hub cuts it once the token has expired. The reason says so.
//   - device/reconnect/backoff-with-jitter: refused with CONNACK 3 the sample exits, and the
//     supervisor starts it again after the same pause each time: the waits do not grow.
//
// It passes keep-alive (60 s), no QoS 2, api-version, C2D acks (Paho PUBACKs), the takeover
// and the restart (it subscribes again on each start). The twin, method and resync cases
// are not exercised (it uses neither), nor are throttling and quota: after its one message
// per connection it sends no telemetry for the hub to refuse.
func TestGradePahoPythonSample(t *testing.T) {
	t.Parallel()
	python := testutil.PahoPython(t)
	hub := fakehubtest.Start(t, fakehub.Options{})
	id := iothub.Identity{DeviceID: "paho-sample"}
	if _, err := hub.Registry().Add(iothub.Device{DeviceID: id.DeviceID, Authentication: iothub.SASAuth(sdkKey, "")}); err != nil {
		t.Fatal(err)
	}
	// EXPECT_C2D=1: after its message the sample waits (up to TIMEOUT) for a C2D message
	// rather than exiting at once, so it stays connected between the grader's cases.
	output := supervise(t, python, append(os.Environ(), "HUB_HOSTNAME="+hub.HostName(), "HUB_ADDR="+hub.Host, "HUB_PORT="+hub.Port,
		"CA_FILE="+hub.DrillTrustFile(), "DEVICE_ID="+id.DeviceID, "DEVICE_KEY="+sdkKey, "EXPECT_C2D=1", "TIMEOUT=600"))

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	// Telemetry 10 s: the throttle and quota cases wait that long for a message the sample
	// never sends (the default 30 s would only make the test longer). BackoffMin 20 s and
	// BackoffAttempts 4: four refusals or more an episode at the supervisor's pace, enough
	// waits that one slow Python start does not look like a growing back-off.
	rep, err := grade.Run(ctx, hub.GradeHub(), grade.Options{Identity: id, WaitConnect: time.Minute,
		Timing: grade.Timing{Telemetry: 10 * time.Second, BackoffMin: 20 * time.Second, BackoffMax: 40 * time.Second, BackoffAttempts: 4}})
	if err != nil {
		t.Fatalf("grade.Run: %v\n%s\nsample output:\n%s", err, text(rep), output())
	}
	want := []string{"device/reconnect/backoff-with-jitter", "device/token/renews-before-expiry"}
	if got := verdicts(rep, iothub.GradeFail); !slices.Equal(got, want) {
		t.Errorf("failed %v, want exactly %v\n%s\nsample output:\n%s", got, want, text(rep), output())
	}
	for _, c := range rep.Cases {
		if c.ID == "device/token/renews-before-expiry" && !strings.Contains(c.Reason, "did not reconnect with a new token before its token expired") {
			t.Errorf("token case reason %q: want it to say the device did not renew its token", c.Reason)
		}
	}
	wantPass := []string{"device/keepalive/within-limits", "device/publish/no-qos2", "device/connect/api-version", "device/c2d/acks",
		"device/takeover/recovers", "device/restart/recovers", "device/tls/accepts-migrated-root", "device/tls/refuses-wrong-san"}
	if got := verdicts(rep, iothub.GradePass); !slices.Equal(got, wantPass) {
		t.Errorf("passed %v, want %v\n%s", got, wantPass, text(rep))
	}
	t.Logf("%s", text(rep))
}
