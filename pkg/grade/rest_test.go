package grade_test

import (
	"bytes"
	"context"
	"encoding/xml"
	"errors"
	"testing"
	"time"

	"github.com/hubkit/hubkit/internal/testutil"
	"github.com/hubkit/hubkit/pkg/fakehub"
	"github.com/hubkit/hubkit/pkg/fakehub/fakehubtest"
	"github.com/hubkit/hubkit/pkg/grade"
	"github.com/hubkit/hubkit/pkg/grade/internal/modeldevice"
	"github.com/hubkit/hubkit/pkg/iothub"
	"github.com/hubkit/hubkit/pkg/serviceclient"
)

// TestGradeOverREST: a grade started with POST /hubkit/grade runs in the background, its
// report follows it (GET /hubkit/grade/{id}), a second one is refused while it runs
// (409), and the finished report renders as JUnit XML that parses back.
func TestGradeOverREST(t *testing.T) {
	t.Parallel()
	hub := fakehubtest.Start(t, fakehub.Options{ServiceAddr: "127.0.0.1:0"})
	id := iothub.Identity{DeviceID: "model"}
	if _, err := hub.AddDevice(id.DeviceID, testKey); err != nil {
		t.Fatal(err)
	}
	sc, err := serviceclient.New(hub.ServiceConnectionString(), serviceclient.WithURL(hub.ServiceURL()), serviceclient.WithRootCAs(hub.CAPool))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()

	cases, err := sc.GradeCases(ctx)
	if err != nil || len(cases) != len(grade.Cases()) {
		t.Fatalf("GradeCases = %d cases, %v; want %d", len(cases), err, len(grade.Cases()))
	}
	if _, err := sc.StartGrade(ctx, iothub.GradeRequest{DeviceID: "model", Cases: []string{"device/nope"}}); !errors.Is(err, iothub.ErrInvalidArgument) {
		t.Errorf("StartGrade(unknown case) = %v, want 400004 ArgumentInvalid", err)
	}

	dev := modeldevice.Start(modeldevice.Config{Addr: hub.Addr(), TLS: hub.ClientTLS(), HostName: hub.HostName(), Identity: id, Key: testKey,
		Now: hub.Clock().Now, Telemetry: 2 * time.Second})
	t.Cleanup(dev.Stop)
	rep, err := sc.StartGrade(ctx, iothub.GradeRequest{DeviceID: "model", Cases: []string{"device/publish", "device/keepalive"}, WaitConnect: "20s"})
	if err != nil {
		t.Fatalf("StartGrade: %v", err)
	}
	if rep.State != iothub.GradeRunning || rep.ID == "" {
		t.Fatalf("StartGrade = state %q id %q, want a running grade", rep.State, rep.ID)
	}
	var e *iothub.Error
	if _, err := sc.StartGrade(ctx, iothub.GradeRequest{DeviceID: "model"}); !errors.As(err, &e) || e.Code != iothub.CodeGenericConflict {
		t.Errorf("a second StartGrade while one runs = %v, want 409000", err)
	}
	if !testutil.Poll(45*time.Second, func() bool {
		rep, err = sc.GradeReport(ctx, rep.ID)
		return err == nil && rep.State != iothub.GradeRunning
	}) {
		t.Fatalf("the grade did not finish: %v\n%s", err, text(rep))
	}
	if rep.State != iothub.GradeDone || rep.Summary.Passed != 2 || rep.Failed() {
		t.Fatalf("report: state %s, summary %+v; want done with 2 passed\n%s", rep.State, rep.Summary, text(rep))
	}
	var b bytes.Buffer
	if err := grade.WriteJUnit(&b, rep); err != nil {
		t.Fatal(err)
	}
	var suites struct {
		Tests    int `xml:"tests,attr"`
		Failures int `xml:"failures,attr"`
		Suite    []struct {
			Cases []struct {
				Name string `xml:"name,attr"`
			} `xml:"testcase"`
		} `xml:"testsuite"`
	}
	if err := xml.Unmarshal(b.Bytes(), &suites); err != nil || suites.Tests != 2 || suites.Failures != 0 || len(suites.Suite) != 1 {
		t.Errorf("JUnit report = %+v, %v; want 2 tests, no failures, one suite\n%s", suites, err, b.String())
	}
}
