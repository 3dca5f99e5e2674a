package grade_test

import (
	"bytes"
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/hubkit/hubkit/internal/nodetest"
	"github.com/hubkit/hubkit/internal/testutil"
	"github.com/hubkit/hubkit/pkg/fakehub"
	"github.com/hubkit/hubkit/pkg/fakehub/fakehubtest"
	"github.com/hubkit/hubkit/pkg/grade"
	"github.com/hubkit/hubkit/pkg/grade/internal/modeldevice"
	"github.com/hubkit/hubkit/pkg/iothub"
)

var testKey = []byte("0123456789abcdef0123456789abcdef")

// fastTiming shrinks the grader's waits for the model device, whose times are scaled down
// the same way (back-off from 200 ms, telemetry every 200 ms).
var fastTiming = grade.Timing{
	Settle: 200 * time.Millisecond, SettleMax: 2 * time.Second, Answer: 2 * time.Second, Reconnect: 10 * time.Second,
	Telemetry: 3 * time.Second, BackoffMin: 2 * time.Second, BackoffMax: 8 * time.Second, BackoffAttempts: 4,
	TightLoop: 50 * time.Millisecond, JitterFloor: 150 * time.Millisecond, JitterMin: 50 * time.Millisecond,
	Throttle: 4 * time.Second, QuotaHold: 500 * time.Millisecond, RealTimeBudget: 5 * time.Second,
}

// gradeModel grades a model device with faults on a fresh in-process hub.
func gradeModel(t *testing.T, f modeldevice.Faults, opts grade.Options) iothub.GradeReport {
	t.Helper()
	return gradeModelWith(t, f, opts, false)
}

// gradeModelWith is gradeModel; with subscribedFirst, the grade begins only once the
// device is connected and holds its subscriptions.
func gradeModelWith(t *testing.T, f modeldevice.Faults, opts grade.Options, subscribedFirst bool) iothub.GradeReport {
	t.Helper()
	hub := fakehubtest.Start(t, fakehub.Options{})
	id := iothub.Identity{DeviceID: "model"}
	if _, err := hub.AddDevice(id.DeviceID, testKey); err != nil {
		t.Fatal(err)
	}
	dev := modeldevice.Start(modeldevice.Config{Addr: hub.Addr(), TLS: hub.DrillTLS(), OldRoots: hub.CAPool, HostName: hub.HostName(), Identity: id, Key: testKey,
		Now: hub.Clock().Now, Faults: f})
	t.Cleanup(dev.Stop)
	if subscribedFirst {
		testutil.Eventually(t, "the model device holds its twin-response subscription", func() bool {
			subs, ok := hub.GradeHub().Subscriptions(id)
			_, held := subs[iothub.TwinResponseFilter]
			return ok && held
		})
	}
	opts.Identity = id
	if opts.Method == "" {
		opts.Method = "echo"
	}
	opts.Timing = fastTiming
	opts.WaitConnect = 20 * time.Second
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	rep, err := grade.Run(ctx, hub.GradeHub(), opts)
	if err != nil {
		t.Fatalf("grade.Run: %v", err)
	}
	if rep.State != iothub.GradeDone {
		t.Fatalf("report state %q, want done", rep.State)
	}
	return rep
}

func verdicts(rep iothub.GradeReport, v iothub.GradeVerdict) []string {
	var out []string
	for _, c := range rep.Cases {
		if c.Verdict == v {
			out = append(out, c.ID)
		}
	}
	return out
}

func text(rep iothub.GradeReport) string {
	var b bytes.Buffer
	_ = grade.WriteText(&b, rep, grade.TextOptions{Evidence: true})
	return b.String()
}

// notExercisedOnFakehub are the cases an in-process hub without a DPS cannot exercise.
var notExercisedOnFakehub = []string{"device/dps/honours-retry-after"}

// TestModelDevicePasses: the well-behaved model device (trusting the TLS drill trust
// file's roots) passes every case a hub without DPS can put it through, the TLS drills
// included, and the DPS case is not exercised (never a pass).
func TestModelDevicePasses(t *testing.T) {
	t.Parallel()
	rep := gradeModel(t, modeldevice.Faults{}, grade.Options{})
	if got := verdicts(rep, iothub.GradeFail); len(got) > 0 {
		t.Errorf("failed %v, want none\n%s", got, text(rep))
	}
	if got := verdicts(rep, iothub.GradeNotExercised); !slices.Equal(got, notExercisedOnFakehub) {
		t.Errorf("not exercised %v, want %v\n%s", got, notExercisedOnFakehub, text(rep))
	}
	for _, c := range rep.Cases {
		if c.Verdict == iothub.GradePass && c.Reason == "" {
			t.Errorf("%s passed without a reason", c.ID)
		}
		// The hub completes a C2D message in its PUBACK hook, a moment before the
		// observers record the PUBACK: the pass must still show both packets.
		if c.ID == "device/c2d/acks" && (len(c.Evidence) != 2 || !strings.Contains(c.Evidence[1].Text, "PUBACK")) {
			t.Errorf("%s: evidence %+v, want the delivery and the device's PUBACK", c.ID, c.Evidence)
		}
	}
	if rep.Failed() {
		t.Errorf("report.Failed() = true for a passing device")
	}
	checkJUnit(t, rep)
}

// checkJUnit validates the report's JUnit XML against Jenkins' JUnit schema (what CI
// viewers load).
func checkJUnit(t *testing.T, rep iothub.GradeReport) {
	t.Helper()
	var b bytes.Buffer
	if err := grade.WriteJUnit(&b, rep); err != nil {
		t.Fatal(err)
	}
	nodetest.CheckJUnit(t, b.Bytes())
}

// TestDeviantDevicesFailExactlyTheirCases: each deviant model device breaks one rule, and
// the grader fails exactly the cases that rule is about (plus those the breach makes
// impossible to pass, named in the table).
func TestDeviantDevicesFailExactlyTheirCases(t *testing.T) {
	tests := []struct {
		name   string
		faults modeldevice.Faults
		cases  []string // a selection (none: all)
		fail   []string
	}{
		{"never-renews", modeldevice.Faults{NeverRenews: true}, nil, []string{"device/token/renews-before-expiry"}},
		{"tight-loop", modeldevice.Faults{TightLoop: true}, nil, []string{"device/reconnect/backoff-with-jitter", "device/throttle/backs-off"}},
		{"constant-backoff", modeldevice.Faults{ConstantBackoff: true}, []string{"device/reconnect", "device/throttle"}, []string{"device/reconnect/backoff-with-jitter", "device/throttle/backs-off"}},
		{"no-jitter", modeldevice.Faults{NoJitter: true}, []string{"device/reconnect", "device/throttle"}, []string{"device/reconnect/backoff-with-jitter"}},
		{"get-before-subscribe", modeldevice.Faults{GetBeforeSubscribe: true}, nil, []string{"device/twin/subscribes-before-get"}},
		{"reuses-rid", modeldevice.Faults{ReuseRID: true}, nil, []string{"device/twin/unique-rid"}},
		{"never-acks-c2d", modeldevice.Faults{NoC2DAck: true}, nil, []string{"device/c2d/acks"}},
		{"publishes-qos2", modeldevice.Faults{QoS2: true}, nil, []string{"device/publish/no-qos2"}},
		{"no-method-answer", modeldevice.Faults{NoMethodAnswer: true}, nil, []string{"device/methods/answers-in-time"}},
		{"keepalive-zero", modeldevice.Faults{KeepAliveZero: true}, []string{"device/keepalive"}, []string{"device/keepalive/within-limits"}},
		{"no-resync", modeldevice.Faults{NoResync: true}, []string{"device/takeover", "device/twin"}, []string{"device/twin/resyncs-after-reconnect"}},
		{"no-resubscribe", modeldevice.Faults{NoResubscribe: true}, []string{"device/restart", "device/twin/subscribes-before-get"},
			[]string{"device/twin/subscribes-before-get", "device/restart/recovers"}},
		{"gives-up-after-quota", modeldevice.Faults{GiveUp: true}, []string{"device/quota"}, []string{"device/quota/recovers-after-reset"}},
		{"ignores-throttling", modeldevice.Faults{ThrottleIgnorant: true}, []string{"device/throttle"}, []string{"device/throttle/backs-off"}},
		{"accepts-any-cert", modeldevice.Faults{AcceptAnyCert: true}, nil, []string{"device/tls/refuses-wrong-san"}},
		{"old-root-only", modeldevice.Faults{OldRootOnly: true}, nil, []string{"device/tls/accepts-migrated-root"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			rep := gradeModel(t, tt.faults, grade.Options{Cases: tt.cases})
			got := verdicts(rep, iothub.GradeFail)
			if !slices.Equal(got, tt.fail) {
				t.Errorf("failed %v, want exactly %v\n%s", got, tt.fail, text(rep))
			}
			for _, c := range rep.Cases {
				if c.Verdict == iothub.GradeFail && (c.Reason == "" || len(c.Evidence) == 0) {
					t.Errorf("%s failed without a reason or evidence: %+v", c.ID, c)
				}
			}
			checkJUnit(t, rep)
		})
	}
}

// TestNeverRenewsSaysSo: the reason names what the device did after the hub cut it.
func TestNeverRenewsSaysSo(t *testing.T) {
	t.Parallel()
	rep := gradeModel(t, modeldevice.Faults{NeverRenews: true}, grade.Options{Cases: []string{"device/token"}})
	c := rep.Cases[0]
	if c.Verdict != iothub.GradeFail || !strings.Contains(c.Reason, "the same token") {
		t.Errorf("token case = %s: %s; want a failure saying it reconnected with the same token\n%s", c.Verdict, c.Reason, text(rep))
	}
}

// TestConnectedBeforeTheGrade: a device that subscribed before the grade began, whose
// connection the grader closes to watch a start-up, comes back with its session present
// and rightly does not subscribe again; its twin GET on that connection is not a failure
// (the subscription was made before the recorder saw anything). A device that GETs
// before subscribing still fails, on the connection after the hub forgot its session.
func TestConnectedBeforeTheGrade(t *testing.T) {
	for _, tt := range []struct {
		name   string
		faults modeldevice.Faults
		fail   []string
	}{
		{"well-behaved", modeldevice.Faults{}, nil},
		{"get-before-subscribe", modeldevice.Faults{GetBeforeSubscribe: true}, []string{"device/twin/subscribes-before-get"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			rep := gradeModelWith(t, tt.faults, grade.Options{Cases: []string{"device/twin/subscribes-before-get", "device/restart"}}, true)
			if !strings.Contains(text(rep), "connected before the grade began") {
				t.Fatalf("the device was not connected before the grade began\n%s", text(rep))
			}
			if got := verdicts(rep, iothub.GradeFail); !slices.Equal(got, tt.fail) {
				t.Errorf("failed %v, want exactly %v\n%s", got, tt.fail, text(rep))
			}
			for _, c := range rep.Cases { // the failure is the GET after the restart, not before
				if c.Verdict == iothub.GradeFail && (len(c.Evidence) == 0 || !strings.Contains(c.Evidence[0].Text, "session present false")) {
					t.Errorf("%s failed on a connection other than the one without a session: %+v", c.ID, c.Evidence)
				}
			}
		})
	}
}
