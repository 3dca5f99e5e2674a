package grade

import (
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/hubkit/hubkit/internal/junit"
	"github.com/hubkit/hubkit/pkg/iothub"
)

// Label is how a verdict is printed: "pass", "FAIL", "not exercised" ("..." while pending).
func Label(v iothub.GradeVerdict) string {
	switch v {
	case iothub.GradePass:
		return "pass"
	case iothub.GradeFail:
		return "FAIL"
	case iothub.GradeNotExercised:
		return "not exercised"
	}
	return "..."
}

// ProgressLine is one line of progress for a case that got its verdict: "[3/17] pass
// device/c2d/acks: reason".
func ProgressLine(r iothub.GradeResult, done, total int) string {
	req := ""
	if r.Verdict == iothub.GradeFail && !r.Required {
		req = " (recommended)"
	}
	return fmt.Sprintf("[%d/%d] %-13s %s%s: %s", done, total, Label(r.Verdict), r.ID, req, r.Reason)
}

// TextOptions choose what WriteText prints.
type TextOptions struct {
	// Evidence prints the evidence of every case; by default only of failed ones.
	Evidence bool
}

// WriteText writes the report for a terminal: a line per case with its verdict and
// reason, the evidence of failures, and the summary.
func WriteText(w io.Writer, rep iothub.GradeReport, o TextOptions) error {
	var b strings.Builder
	fmt.Fprintf(&b, "device grade of %s (%s), device clock: %s, %s, %.1f s\n\n", rep.Identity(), rep.ID, rep.DeviceClock, rep.State, rep.Seconds)
	for _, l := range rep.Log {
		fmt.Fprintf(&b, "note: %s\n", l.Text)
	}
	if len(rep.Log) > 0 {
		b.WriteString("\n")
	}
	for _, c := range rep.Cases {
		kind := "required"
		if !c.Required {
			kind = "recommended"
		}
		fmt.Fprintf(&b, "%-13s %s (%s)\n", Label(c.Verdict), c.ID, kind)
		if c.Reason != "" {
			fmt.Fprintf(&b, "%13s   %s\n", "", c.Reason)
		}
		if len(c.Evidence) > 0 && (o.Evidence || c.Verdict == iothub.GradeFail) {
			for _, e := range c.Evidence {
				fmt.Fprintf(&b, "%13s     %8.3fs  %s  %s\n", "", e.Elapsed, e.Time.UTC().Format(time.RFC3339), e.Text)
			}
		}
	}
	s := rep.Summary
	fmt.Fprintf(&b, "\n%d passed, %d failed (%d required), %d not exercised", s.Passed, s.Failed, s.RequiredFailed, s.NotExercised)
	if s.Pending > 0 {
		fmt.Fprintf(&b, ", %d pending", s.Pending)
	}
	b.WriteString("\n")
	_, err := io.WriteString(w, b.String())
	return err
}

// WriteJUnit writes the report as JUnit XML for CI: one <testsuite> for the grade, one
// <testcase> per case (name: its ID; classname: the ID's group, dotted, e.g. device.twin),
// a <failure> for a failed case (message: the reason; type: required or recommended;
// body: the requirement and the evidence) and a <skipped> for one not exercised.
func WriteJUnit(w io.Writer, rep iothub.GradeReport) error {
	suite := junit.Suite{
		Name:      "hubkit device grade: " + rep.Identity().String(),
		Time:      junit.Seconds(rep.Seconds),
		Timestamp: rep.Started.UTC().Format(time.RFC3339),
		Properties: &junit.Properties{Property: []junit.Property{
			{Name: "grade.id", Value: rep.ID}, {Name: "deviceId", Value: rep.DeviceID}, {Name: "moduleId", Value: rep.ModuleID},
			{Name: "deviceClock", Value: rep.DeviceClock}, {Name: "state", Value: rep.State},
		}},
	}
	for _, c := range rep.Cases {
		jc := junit.Case{Name: c.ID, Classname: classname(c.ID), Time: junit.Seconds(c.Seconds)}
		body := c.Requirement + "\n" + c.Section
		for _, e := range c.Evidence {
			body += fmt.Sprintf("\n%8.3fs  %s  %s", e.Elapsed, e.Time.UTC().Format(time.RFC3339), e.Text)
		}
		switch c.Verdict {
		case iothub.GradeFail:
			typ := "required"
			if !c.Required {
				typ = "recommended"
			}
			jc.Failure = &junit.Message{Message: c.Reason, Type: typ, Body: body}
		case iothub.GradeNotExercised, "":
			jc.Skipped = &junit.Message{Message: "not exercised: " + c.Reason, Body: body}
		default:
			jc.SystemOut = junit.NewCDATA(c.Reason + "\n" + body)
		}
		suite.Cases = append(suite.Cases, jc)
	}
	report := junit.Suites{Name: "hubkit device grade", Time: suite.Time, Suites: []junit.Suite{suite}}
	report.Count()
	return junit.Write(w, report)
}

// classname is a case ID's group, dotted: device/twin/unique-rid -> device.twin.
func classname(id string) string {
	if i := strings.LastIndex(id, "/"); i > 0 {
		id = id[:i]
	}
	return strings.ReplaceAll(id, "/", ".")
}
