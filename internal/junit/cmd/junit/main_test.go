package main

import (
	"bytes"
	"strings"
	"testing"
)

// A passing test in `go test -json` form.
const sample = `{"Time":"2026-11-26T05:00:00Z","Action":"run","Package":"example.com/p","Test":"TestCases"}
{"Time":"2026-11-26T05:00:00Z","Action":"pass","Package":"example.com/p","Test":"TestCases","Elapsed":0.01}
{"Time":"2026-11-26T05:00:01Z","Action":"pass","Package":"example.com/p","Elapsed":0.02}
`

func TestRun(t *testing.T) {
	var out, errb bytes.Buffer
	if code := run(nil, strings.NewReader(sample), &out, &errb); code != 0 || !strings.HasPrefix(out.String(), "<?xml") ||
		!strings.Contains(out.String(), `name="TestCases"`) {
		t.Errorf("run = %d, stdout %q, stderr %q; want 0 and an XML report with TestCases", code, out.String(), errb.String())
	}
	if code := run([]string{"extra"}, strings.NewReader(""), &out, &errb); code != 2 {
		t.Errorf("run(extra) = %d, want 2 (usage)", code)
	}
	if code := run([]string{"-h"}, strings.NewReader(""), &out, &errb); code != 0 {
		t.Errorf("run(-h) = %d, want 0", code)
	}
	errb.Reset()
	if code := run(nil, strings.NewReader("not json\n"), &out, &errb); code != 1 || !strings.Contains(errb.String(), "junit: error:") {
		t.Errorf("run(garbage) = %d, stderr %q; want 1 and a junit: error: line", code, errb.String())
	}
}
