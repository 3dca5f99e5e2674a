package junit

import (
	"bytes"
	"encoding/xml"
	"strings"
	"testing"
)

// A trimmed, real `go test -json` stream: a pass, a failing subtest, a skip,
// and a package that failed to build.
const sample = `{"Time":"2026-11-26T05:00:00Z","Action":"start","Package":"example.com/p"}
{"Time":"2026-11-26T05:00:00Z","Action":"run","Package":"example.com/p","Test":"TestConformance"}
{"Time":"2026-11-26T05:00:00Z","Action":"output","Package":"example.com/p","Test":"TestConformance","Output":"=== RUN   TestConformance\n"}
{"Time":"2026-11-26T05:00:00Z","Action":"run","Package":"example.com/p","Test":"TestConformance/connect/sas/expired"}
{"Time":"2026-11-26T05:00:00Z","Action":"output","Package":"example.com/p","Test":"TestConformance/connect/sas/expired","Output":"    helpers.go:1: connect/sas/expired: CONNACK = 0, want 5\n"}
{"Time":"2026-11-26T05:00:01Z","Action":"fail","Package":"example.com/p","Test":"TestConformance/connect/sas/expired","Elapsed":0.5}
{"Time":"2026-11-26T05:00:00Z","Action":"run","Package":"example.com/p","Test":"TestConformance/c2d/receive"}
{"Time":"2026-11-26T05:00:00Z","Action":"output","Package":"example.com/p","Test":"TestConformance/c2d/receive","Output":"=== RUN   TestConformance/c2d/receive\n"}
{"Time":"2026-11-26T05:00:00Z","Action":"output","Package":"example.com/p","Test":"TestConformance/c2d/receive","Output":"    run.go:39: c2d/receive: skipped: target does not implement conformance.CloudToDevice\n"}
{"Time":"2026-11-26T05:00:00Z","Action":"skip","Package":"example.com/p","Test":"TestConformance/c2d/receive","Elapsed":0}
{"Time":"2026-11-26T05:00:01Z","Action":"fail","Package":"example.com/p","Test":"TestConformance","Elapsed":1.2}
{"Time":"2026-11-26T05:00:00Z","Action":"run","Package":"example.com/p","Test":"TestCases"}
{"Time":"2026-11-26T05:00:00Z","Action":"pass","Package":"example.com/p","Test":"TestCases","Elapsed":0.01}
{"Time":"2026-11-26T05:00:01Z","Action":"output","Package":"example.com/p","Output":"FAIL\n"}
{"Time":"2026-11-26T05:00:01Z","Action":"fail","Package":"example.com/p","Elapsed":1.3}
# example.com/q
q/q.go:3:1: syntax error
{"Time":"2026-11-26T05:00:01Z","Action":"output","Package":"example.com/q","Output":"FAIL\texample.com/q [build failed]\n"}
{"Time":"2026-11-26T05:00:01Z","Action":"fail","Package":"example.com/q","Elapsed":0}
`

func TestConvert(t *testing.T) {
	var out bytes.Buffer
	if err := Convert(strings.NewReader(sample), &out); err != nil {
		t.Fatalf("convert: %v", err)
	}
	var got Suites
	if err := xml.Unmarshal(out.Bytes(), &got); err != nil {
		t.Fatalf("the report is not XML: %v\n%s", err, out.String())
	}
	if got.Tests != 5 || got.Failures != 3 || got.Skipped != 1 {
		t.Errorf("totals tests=%d failures=%d skipped=%d, want 5, 3, 1", got.Tests, got.Failures, got.Skipped)
	}
	if len(got.Suites) != 2 {
		t.Fatalf("%d suites, want 2", len(got.Suites))
	}
	byName := map[string]Case{}
	for _, c := range got.Suites[0].Cases {
		byName[c.Name] = c
	}
	exp := byName["TestConformance/connect/sas/expired"]
	if exp.Failure == nil || !strings.Contains(exp.Failure.Body, "CONNACK = 0, want 5") || exp.Time != "0.500" {
		t.Errorf("failing case = %+v, want a failure carrying the want/got message and time 0.500", exp)
	}
	skip := byName["TestConformance/c2d/receive"]
	if skip.Skipped == nil || !strings.Contains(skip.Skipped.Message, "does not implement conformance.CloudToDevice") {
		t.Errorf("skipped case = %+v, want the skip reason as its message", skip)
	}
	if c := byName["TestCases"]; c.Failure != nil || c.Skipped != nil {
		t.Errorf("passing case = %+v, want neither failure nor skip", c)
	}
	q := got.Suites[1]
	if len(q.Cases) != 1 || q.Cases[0].Name != "(package)" || q.Cases[0].Failure == nil {
		t.Errorf("build-failed package cases = %+v, want one failing (package) case", q.Cases)
	}
	if so := got.Suites[0].SystemOut; so == nil || !strings.Contains(so.Text, "syntax error") {
		t.Errorf("non-JSON lines are lost; system-out = %+v", so)
	}
	if want := "c2d/receive: skipped: target does not implement conformance.CloudToDevice"; skip.Skipped.Message != want {
		t.Errorf("skip message = %q, want %q (no file:line prefix)", skip.Skipped.Message, want)
	}
}

func TestConvertRejectsNonJSON(t *testing.T) {
	if err := Convert(strings.NewReader("ok  \texample.com/p\t0.1s\n"), new(bytes.Buffer)); err == nil {
		t.Error("Convert(plain go test output) = nil, want an error saying -json is needed")
	}
}
