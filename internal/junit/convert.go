package junit

import (
	"bufio"
	"encoding/json"
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
	report := Suites{}
	var total float64
	for i, name := range order {
		p := pkgs[name]
		out := p.output.String()
		if i == 0 && stray.Len() > 0 {
			out = stray.String() + out
		}
		s := Suite{Name: name, Time: Seconds(p.elapsed), SystemOut: NewCDATA(out)}
		if !p.start.IsZero() {
			s.Timestamp = p.start.UTC().Format(time.RFC3339)
		}
		failedTests := 0
		for _, tn := range p.order {
			t := p.tests[tn]
			c := Case{Name: tn, Classname: name, Time: Seconds(t.elapsed)}
			out := t.output.String()
			switch t.result {
			case "fail":
				c.Failure = &Message{Message: "Failed", Body: out}
				s.Failures++
				failedTests++
			case "skip":
				c.Skipped = &Message{Message: firstSkipLine(out), Body: out}
				s.Skipped++
			case "pass":
			default: // never finished: the run was cut short (timeout, panic)
				c.Failure = &Message{Message: "did not finish", Body: out}
				s.Failures++
				failedTests++
			}
			s.Cases = append(s.Cases, c)
			s.Tests++
		}
		if p.result == "fail" && failedTests == 0 {
			s.Cases = append(s.Cases, Case{Name: "(package)", Classname: name, Time: Seconds(p.elapsed),
				Failure: &Message{Message: "package failed", Body: p.output.String()}})
			s.Tests++
			s.Failures++
		}
		report.Tests += s.Tests
		report.Failures += s.Failures
		report.Skipped += s.Skipped
		total += p.elapsed
		report.Suites = append(report.Suites, s)
	}
	report.Time = Seconds(total)
	return Write(w, report)
}

// fileLine is the "name_test.go:12: " prefix testing puts on log lines.
var fileLine = regexp.MustCompile(`^\S+\.go:\d+: `)

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
