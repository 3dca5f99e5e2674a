package junit

import (
	"bytes"
	"encoding/xml"
	"strings"
	"testing"

	"github.com/hubkit/hubkit/internal/nodetest"
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
	if len(got.Suites) != 2 {
		t.Fatalf("%d suites, want 2", len(got.Suites))
	}
	if got.Tests != 5 || got.Failures != 3 || got.Suites[0].Skipped != 1 {
		t.Errorf("totals tests=%d failures=%d skipped=%d, want 5, 3, 1", got.Tests, got.Failures, got.Suites[0].Skipped)
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
	if skip.Skipped == nil || skip.Skipped.Message != "" {
		t.Fatalf("skipped case = %+v, want a <skipped> without attributes (the reason in its body)", skip)
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
	first, _, _ := strings.Cut(skip.Skipped.Body, "\n")
	if want := "c2d/receive: skipped: target does not implement conformance.CloudToDevice"; first != want {
		t.Errorf("skip reason (the body's first line) = %q, want %q (no file:line prefix)", first, want)
	}
	nodetest.CheckJUnit(t, out.Bytes())
}

// TestWriteIsValidXML: characters XML 1.0 cannot carry (a device can put a control
// character in a client ID or a topic, and the grader quotes those) become U+FFFD in the
// bodies, so the report still parses and validates.
func TestWriteIsValidXML(t *testing.T) {
	r := Suites{Name: "s", Suites: []Suite{{Name: "p", Cases: []Case{
		{Name: "a", Failure: &Message{Message: "bad \x01 id", Body: "topic \x00\x1b[31m \xff\xfe ]]> end\ttab"}},
		{Name: "b", Skipped: &Message{Message: "not run \x02", Body: "why \x0b"}},
		{Name: "c", SystemOut: NewCDATA("out \x7f \x08")},
	}}}}
	r.Count()
	var out bytes.Buffer
	if err := Write(&out, r); err != nil {
		t.Fatal(err)
	}
	var got Suites
	if err := xml.Unmarshal(out.Bytes(), &got); err != nil {
		t.Fatalf("the report does not parse: %v\n%s", err, out.String())
	}
	c := got.Suites[0].Cases
	if want := "topic \uFFFD\uFFFD[31m \uFFFD\uFFFD ]]> end\ttab"; c[0].Failure.Body != want {
		t.Errorf("failure body %q, want %q", c[0].Failure.Body, want)
	}
	if want := "not run \uFFFD\nwhy \uFFFD"; c[1].Skipped.Body != want {
		t.Errorf("skipped body %q, want %q", c[1].Skipped.Body, want)
	}
	if r.Suites[0].Cases[1].Skipped.Message != "not run \x02" {
		t.Error("Write changed the caller's report")
	}
	nodetest.CheckJUnit(t, out.Bytes())
}

func TestConvertRejectsNonJSON(t *testing.T) {
	if err := Convert(strings.NewReader("ok  \texample.com/p\t0.1s\n"), new(bytes.Buffer)); err == nil {
		t.Error("Convert(plain go test output) = nil, want an error saying -json is needed")
	}
}
