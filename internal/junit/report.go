package junit

import (
	"encoding/xml"
	"fmt"
	"io"
	"slices"
	"strings"
	"unicode/utf8"
)

// The report model: the JUnit XML dialect that CI viewers read (Jenkins' junit plugin and
// its junit-10.xsd, GitLab's unit test reports, GitHub test-reporter actions, Azure
// Pipelines' PublishTestResults with testResultsFormat JUnit): <testsuites> of
// <testsuite> (name, tests, failures, errors, skipped, time; timestamp, <properties>,
// <system-out>) of <testcase> (name, classname, time) holding at most one <failure> or
// <skipped> (message attribute, text body). Times are seconds with a decimal point.
// Convert builds one from `go test -json`; others (the device grader) build one directly
// and Write it.

// Suites is a whole report.
type Suites struct {
	XMLName  xml.Name `xml:"testsuites"`
	Name     string   `xml:"name,attr,omitempty"`
	Tests    int      `xml:"tests,attr"`
	Failures int      `xml:"failures,attr"`
	Errors   int      `xml:"errors,attr"`
	Skipped  int      `xml:"-"` // counted, not written: the Jenkins schemas allow no skipped attribute on <testsuites>
	Time     string   `xml:"time,attr"`
	Suites   []Suite  `xml:"testsuite"`
}

// Suite is one <testsuite>.
type Suite struct {
	Name       string      `xml:"name,attr"`
	Tests      int         `xml:"tests,attr"`
	Failures   int         `xml:"failures,attr"`
	Errors     int         `xml:"errors,attr"`
	Skipped    int         `xml:"skipped,attr"`
	Time       string      `xml:"time,attr"`
	Timestamp  string      `xml:"timestamp,attr,omitempty"` // RFC 3339 (ISO 8601), UTC
	Hostname   string      `xml:"hostname,attr,omitempty"`
	Properties *Properties `xml:"properties,omitempty"`
	Cases      []Case      `xml:"testcase"`
	SystemOut  *CDATA      `xml:"system-out,omitempty"`
}

// Properties are a suite's <properties>.
type Properties struct {
	Property []Property `xml:"property"`
}

// Property is one name="..." value="..." pair.
type Property struct {
	Name  string `xml:"name,attr"`
	Value string `xml:"value,attr"`
}

// Case is one <testcase>: it passed unless Failure or Skipped is set.
type Case struct {
	Name      string   `xml:"name,attr"`
	Classname string   `xml:"classname,attr"`
	Time      string   `xml:"time,attr"`
	Failure   *Message `xml:"failure,omitempty"`
	Skipped   *Message `xml:"skipped,omitempty"`
	SystemOut *CDATA   `xml:"system-out,omitempty"`
}

// Message is a <failure> or <skipped>: a one-line message and a longer body. A <skipped>
// is written with its message as the first line of its body (no attributes): Jenkins'
// junit-4 schema, the one its junit plugin grew from, allows none on it.
type Message struct {
	Message string `xml:"message,attr,omitempty"`
	Type    string `xml:"type,attr,omitempty"`
	Body    string `xml:",cdata"`
}

// CDATA is text kept verbatim.
type CDATA struct {
	Text string `xml:",cdata"`
}

// NewCDATA returns s as CDATA, or nil for "".
func NewCDATA(s string) *CDATA {
	if s == "" {
		return nil
	}
	return &CDATA{s}
}

// Seconds formats a duration in seconds as the time attributes want it.
func Seconds(s float64) string { return fmt.Sprintf("%.3f", s) }

// Count fills the totals of the suites and of the report from their cases.
func (r *Suites) Count() {
	r.Tests, r.Failures, r.Errors, r.Skipped = 0, 0, 0, 0
	for i := range r.Suites {
		s := &r.Suites[i]
		s.Tests, s.Failures, s.Skipped = len(s.Cases), 0, 0
		for _, c := range s.Cases {
			switch {
			case c.Failure != nil:
				s.Failures++
			case c.Skipped != nil:
				s.Skipped++
			}
		}
		r.Tests += s.Tests
		r.Failures += s.Failures
		r.Errors += s.Errors
		r.Skipped += s.Skipped
	}
}

// Write writes r as an XML document that validates against Jenkins' JUnit schemas (the
// junit-4 one and xunit-plugin's junit-10.xsd). Characters XML 1.0 cannot carry (control
// characters other than tab, newline and carriage return, lone surrogates: a device's
// packet can put them in a reason or in evidence) become U+FFFD in text bodies, as
// encoding/xml already does in attributes, so that every viewer can parse the report.
func Write(w io.Writer, r Suites) error {
	r = r.xmlSafe()
	if _, err := io.WriteString(w, xml.Header); err != nil {
		return err
	}
	enc := xml.NewEncoder(w)
	enc.Indent("", "  ")
	if err := enc.Encode(r); err != nil {
		return fmt.Errorf("writing the report: %w", err)
	}
	_, err := io.WriteString(w, "\n")
	return err
}

// xmlSafe returns a copy of r whose CDATA bodies hold only XML 1.0 characters, each
// <skipped> with its message in its body.
func (r Suites) xmlSafe() Suites {
	r.Suites = slices.Clone(r.Suites)
	for i := range r.Suites {
		s := &r.Suites[i]
		s.SystemOut = s.SystemOut.xmlSafe()
		s.Cases = slices.Clone(s.Cases)
		for j := range s.Cases {
			c := &s.Cases[j]
			if k := c.Skipped; k != nil && k.Message != "" {
				c.Skipped = &Message{Body: strings.TrimSuffix(k.Message+"\n"+k.Body, "\n")}
			}
			c.Failure, c.Skipped, c.SystemOut = c.Failure.xmlSafe(), c.Skipped.xmlSafe(), c.SystemOut.xmlSafe()
		}
	}
	return r
}

func (m *Message) xmlSafe() *Message {
	if m == nil {
		return nil
	}
	c := *m
	c.Body = xmlChars(c.Body)
	return &c
}

func (d *CDATA) xmlSafe() *CDATA {
	if d == nil {
		return nil
	}
	return &CDATA{xmlChars(d.Text)}
}

// xmlChars replaces what is not an XML 1.0 Char (§2.2: tab, LF, CR, U+0020-U+D7FF,
// U+E000-U+FFFD, U+10000-U+10FFFF) with U+FFFD; strings.Map turns invalid UTF-8 into
// U+FFFD as well, and returns a clean s as it is.
func xmlChars(s string) string {
	return strings.Map(func(r rune) rune {
		if r == '\t' || r == '\n' || r == '\r' || (r >= 0x20 && r <= 0xD7FF) || (r >= 0xE000 && r <= 0xFFFD) || (r >= 0x10000 && r <= 0x10FFFF) {
			return r
		}
		return utf8.RuneError
	}, s)
}
