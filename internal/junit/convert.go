package junit

import (
	"bufio"
	"encoding/json"
	"encoding/xml"
	"fmt"
	"io"
	"regexp"
	"strings"
	"time"
)

// event is one line of `go test -json` (cmd/test2json).
type event struct {
	Time    time.Time
	Action  string
	Package string
	Test    string
	Elapsed float64
	Output  string
}

type testSuites struct {
	XMLName  xml.Name    `xml:"testsuites"`
	Tests    int         `xml:"tests,attr"`
	Failures int         `xml:"failures,attr"`
	Skipped  int         `xml:"skipped,attr"`
	Time     string      `xml:"time,attr"`
	Suites   []testSuite `xml:"testsuite"`
}

type testSuite struct {
	Name      string     `xml:"name,attr"`
	Tests     int        `xml:"tests,attr"`
	Failures  int        `xml:"failures,attr"`
	Skipped   int        `xml:"skipped,attr"`
	Time      string     `xml:"time,attr"`
	Timestamp string     `xml:"timestamp,attr,omitempty"`
	Cases     []testCase `xml:"testcase"`
	SystemOut *cdata     `xml:"system-out,omitempty"`
}

type cdata struct {
	Text string `xml:",cdata"`
}

func newCDATA(s string) *cdata {
	if s == "" {
		return nil
	}
	return &cdata{s}
}

type testCase struct {
	Name      string   `xml:"name,attr"`
	Classname string   `xml:"classname,attr"`
	Time      string   `xml:"time,attr"`
	Failure   *message `xml:"failure,omitempty"`
	Skipped   *message `xml:"skipped,omitempty"`
}

type message struct {
	Message string `xml:"message,attr"`
	Body    string `xml:",cdata"`
}

type pkgState struct {
	name    string
	start   time.Time
	elapsed float64
	result  string // pass, fail, skip
	output  strings.Builder
	order   []string
	tests   map[string]*testState
}

type testState struct {
	result  string
	elapsed float64
	output  strings.Builder
}

// Convert reads `go test -json` output from r and writes a JUnit XML report
// to w: one testsuite per package, one testcase per test and subtest (named
// as `go test -run` names them, e.g. TestConformance/connect/sas/expired),
// with the test's output as the failure or skip body. Lines that are not
// JSON (e.g. build errors printed around it) go to the first suite's
// system-out. A package that failed without a failing test (a build error,
// a panic, a timeout) gets a failing testcase named "(package)".
func Convert(r io.Reader, w io.Writer) error {
	pkgs := map[string]*pkgState{}
	var order []string
	var stray strings.Builder
	get := func(name string) *pkgState {
		p, ok := pkgs[name]
		if !ok {
			p = &pkgState{name: name, tests: map[string]*testState{}}
			pkgs[name] = p
			order = append(order, name)
		}
		return p
	}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 64*1024), 16*1024*1024)
	line := 0
	for sc.Scan() {
		line++
		b := sc.Bytes()
		if len(strings.TrimSpace(string(b))) == 0 {
			continue
		}
		var ev event
		if b[0] != '{' || json.Unmarshal(b, &ev) != nil {
			stray.Write(b)
			stray.WriteByte('\n')
			continue
		}
		p := get(ev.Package)
		if p.start.IsZero() && !ev.Time.IsZero() {
			p.start = ev.Time
		}
		if ev.Test == "" {
			switch ev.Action {
			case "output":
				p.output.WriteString(ev.Output)
			case "pass", "fail", "skip":
				p.result, p.elapsed = ev.Action, ev.Elapsed
			}
			continue
		}
		t, ok := p.tests[ev.Test]
		if !ok {
			t = &testState{}
			p.tests[ev.Test] = t
			p.order = append(p.order, ev.Test)
		}
		switch ev.Action {
		case "output":
			t.output.WriteString(ev.Output)
		case "pass", "fail", "skip":
			t.result, t.elapsed = ev.Action, ev.Elapsed
		}
	}
	if err := sc.Err(); err != nil {
		return fmt.Errorf("reading go test -json output (line %d): %w", line+1, err)
	}
	if len(order) == 0 && stray.Len() > 0 {
		return fmt.Errorf("no go test -json events in the input (is it `go test -json` output?)")
	}
	report := testSuites{}
	var total float64
	for i, name := range order {
		p := pkgs[name]
		out := p.output.String()
		if i == 0 && stray.Len() > 0 {
			out = stray.String() + out
		}
		s := testSuite{Name: name, Time: seconds(p.elapsed), SystemOut: newCDATA(out)}
		if !p.start.IsZero() {
			s.Timestamp = p.start.UTC().Format(time.RFC3339)
		}
		failedTests := 0
		for _, tn := range p.order {
			t := p.tests[tn]
			c := testCase{Name: tn, Classname: name, Time: seconds(t.elapsed)}
			out := t.output.String()
			switch t.result {
			case "fail":
				c.Failure = &message{Message: "Failed", Body: out}
				s.Failures++
				failedTests++
			case "skip":
				c.Skipped = &message{Message: firstSkipLine(out), Body: out}
				s.Skipped++
			case "pass":
			default: // never finished: the run was cut short (timeout, panic)
				c.Failure = &message{Message: "did not finish", Body: out}
				s.Failures++
				failedTests++
			}
			s.Cases = append(s.Cases, c)
			s.Tests++
		}
		if p.result == "fail" && failedTests == 0 {
			s.Cases = append(s.Cases, testCase{Name: "(package)", Classname: name, Time: seconds(p.elapsed),
				Failure: &message{Message: "package failed", Body: p.output.String()}})
			s.Tests++
			s.Failures++
		}
		report.Tests += s.Tests
		report.Failures += s.Failures
		report.Skipped += s.Skipped
		total += p.elapsed
		report.Suites = append(report.Suites, s)
	}
	report.Time = seconds(total)
	if _, err := io.WriteString(w, xml.Header); err != nil {
		return err
	}
	enc := xml.NewEncoder(w)
	enc.Indent("", "  ")
	if err := enc.Encode(report); err != nil {
		return fmt.Errorf("writing the report: %w", err)
	}
	_, err := io.WriteString(w, "\n")
	return err
}

// fileLine is the "name_test.go:12: " prefix testing puts on log lines.
var fileLine = regexp.MustCompile(`^\S+\.go:\d+: `)

func seconds(s float64) string { return fmt.Sprintf("%.3f", s) }

// firstSkipLine is the skip reason: the first output line that is not the
// "=== RUN"/"--- SKIP" framing, trimmed.
func firstSkipLine(out string) string {
	for _, l := range strings.Split(out, "\n") {
		l = strings.TrimSpace(l)
		if l == "" || strings.HasPrefix(l, "=== ") || strings.HasPrefix(l, "--- ") {
			continue
		}
		return fileLine.ReplaceAllString(l, "")
	}
	return "skipped"
}
