package dashboard

import (
	"bufio"
	"context"
	"encoding/json"
	"encoding/xml"
	"fmt"
	"html"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hubkit/hubkit/pkg/iothub"
)

// gradeBackend is a Backend with a scripted grader; the methods the grade
// pages do not call panic (the embedded nil interface).
type gradeBackend struct {
	Backend
	mu      sync.Mutex
	reports []iothub.GradeReport // newest first
	started []iothub.GradeRequest
	startFn func(iothub.GradeRequest) (iothub.GradeReport, error)
	changes chan struct{}
}

func (b *gradeBackend) HasDPS() bool { return false }
func (b *gradeBackend) GradeCases() []iothub.GradeCase {
	return []iothub.GradeCase{{ID: "device/publish/no-qos2", Title: "no QoS 2 PUBLISH", Requirement: "never QoS 2", Section: "docs/iothub-behavior.md §3.2", Required: true}}
}

func (b *gradeBackend) StartGrade(req iothub.GradeRequest) (iothub.GradeReport, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.started = append(b.started, req)
	return b.startFn(req)
}

func (b *gradeBackend) GradeReport(id string) (iothub.GradeReport, bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, r := range b.reports {
		if r.ID == id {
			return r, true
		}
	}
	return iothub.GradeReport{}, false
}

func (b *gradeBackend) GradeReports() []iothub.GradeReport {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]iothub.GradeReport(nil), b.reports...)
}

func (b *gradeBackend) CancelGrade(id string) bool { _, ok := b.GradeReport(id); return ok }

func (b *gradeBackend) Changes() <-chan struct{} {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.changes
}

// update replaces report id and signals a change.
func (b *gradeBackend) update(rep iothub.GradeReport) {
	b.mu.Lock()
	defer b.mu.Unlock()
	for i, r := range b.reports {
		if r.ID == rep.ID {
			b.reports[i] = rep
		}
	}
	close(b.changes)
	b.changes = make(chan struct{})
}

// Device and the rest serve the device page's link to the grade form.
func (b *gradeBackend) Device(id iothub.Identity) (DeviceRow, []DeviceRow, error) {
	return DeviceRow{Device: iothub.Device{DeviceID: id.DeviceID, ModuleID: id.ModuleID}}, nil, nil
}
func (b *gradeBackend) Twin(iothub.Identity) (iothub.Twin, error)      { return iothub.Twin{}, nil }
func (b *gradeBackend) C2DMessages(iothub.Identity) []iothub.C2DStatus { return nil }
func (b *gradeBackend) C2DFeedback() []iothub.C2DFeedback              { return nil }
func (b *gradeBackend) Rejections() []iothub.Rejection                 { return nil }
func (b *gradeBackend) Telemetry(uint64, string, int) TelemetryBatch   { return TelemetryBatch{} }

var gradeStart = time.Date(2026, 12, 8, 1, 0, 0, 0, time.UTC)

// finished is a done report of dev1 with one case of each verdict.
func finished(id string) iothub.GradeReport {
	rep := iothub.GradeReport{ID: id, DeviceID: "dev1", DeviceClock: "hub", State: iothub.GradeDone, Started: gradeStart,
		Finished: gradeStart.Add(12 * time.Second), Seconds: 12.5, Cases: []iothub.GradeResult{
			{GradeCase: iothub.GradeCase{ID: "device/publish/no-qos2", Title: "no QoS 2 PUBLISH", Requirement: "The device never publishes with QoS 2.", Section: "docs/iothub-behavior.md §3.2", Required: true},
				Verdict: iothub.GradePass, Reason: "14 PUBLISH packets, none QoS 2",
				Evidence: []iothub.GradeEvidence{{Time: gradeStart.Add(time.Second), Elapsed: 1.25, Text: "PUBLISH devices/dev1/messages/events/ qos=1 <script>"}}},
			{GradeCase: iothub.GradeCase{ID: "device/c2d/acks", Title: "acknowledges C2D", Requirement: "PUBACK each C2D message.", Section: "§5.1", Required: true},
				Verdict: iothub.GradeFail, Reason: "no PUBACK within 30 s"},
			{GradeCase: iothub.GradeCase{ID: "device/methods/answers-in-time", Title: "answers a method", Requirement: "Answer in time.", Section: "§6"},
				Verdict: iothub.GradeNotExercised, Reason: "no method named"},
		}}
	rep.Summarize()
	return rep
}

// gradeClient is a logged-in browser without JavaScript on a test server.
type gradeClient struct {
	t    *testing.T
	base string
	c    *http.Client
}

func newGradeClient(t *testing.T, b *gradeBackend) *gradeClient {
	t.Helper()
	if b.changes == nil {
		b.changes = make(chan struct{})
	}
	h := New(b, Options{HostName: "hub.example", Tick: 10 * time.Millisecond})
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	jar, _ := cookiejar.New(nil)
	gc := &gradeClient{t: t, base: srv.URL, c: &http.Client{Jar: jar, Timeout: 30 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}}
	tok, err := h.NewLoginToken()
	if err != nil {
		t.Fatal(err)
	}
	if resp, _ := gc.get(LoginPath(tok)); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("login = %d, want 303", resp.StatusCode)
	}
	return gc
}

func (g *gradeClient) do(req *http.Request) (*http.Response, string) {
	g.t.Helper()
	resp, err := g.c.Do(req)
	if err != nil {
		g.t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp, string(body)
}

func (g *gradeClient) get(path string) (*http.Response, string) {
	g.t.Helper()
	req, _ := http.NewRequest("GET", g.base+path, nil)
	return g.do(req)
}

// post submits a form with the CSRF token of the page at from.
func (g *gradeClient) post(from, path string, form url.Values) (*http.Response, string) {
	g.t.Helper()
	_, page := g.get(from)
	_, rest, ok := strings.Cut(page, `name="csrf" value="`)
	if !ok {
		g.t.Fatalf("no CSRF token on %s", from)
	}
	form.Set("csrf", rest[:strings.IndexByte(rest, '"')])
	req, _ := http.NewRequest("POST", g.base+path, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	return g.do(req)
}

func contains(t *testing.T, what, body string, wants ...string) {
	t.Helper()
	for _, w := range wants {
		if !strings.Contains(body, w) {
			t.Errorf("%s lacks %q:\n%s", what, w, body)
		}
	}
}

func TestGradesListNewestFirst(t *testing.T) {
	running := iothub.GradeReport{ID: "g3-x", DeviceID: "dev2", ModuleID: "m1", State: iothub.GradeRunning, Current: "device/c2d/acks", Started: gradeStart.Add(time.Minute),
		Cases: []iothub.GradeResult{{GradeCase: iothub.GradeCase{ID: "device/c2d/acks"}}}}
	running.Summarize()
	b := &gradeBackend{reports: []iothub.GradeReport{running, finished("g2-x"), finished("g1-x")}}
	g := newGradeClient(t, b)
	resp, body := g.get("/ui/grades")
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /ui/grades = %d, want 200:\n%s", resp.StatusCode, body)
	}
	contains(t, "the grades page", body, `href="/ui/grades/g3-x"`, `href="/ui/devices/dev2?module=m1"`, "dev2/m1", `grade-state running`,
		`grade-state done`, "12.5 s", `data-events="/ui/events/grades?"`, `aria-current="page">Grades`, "device/publish/no-qos2",
		"The hub keeps the last 20 grades")
	if i3, i1 := strings.Index(body, `id="grade-g3-x"`), strings.Index(body, `id="grade-g1-x"`); i3 < 0 || i1 < 0 || i3 > i1 {
		t.Errorf("grade rows at %d (g3) and %d (g1), want the newest (g3) first", i3, i1)
	}
	// counts: pass, fail, not exercised of a finished grade
	row := body[strings.Index(body, `id="grade-g2-x"`):]
	row = row[:strings.Index(row, "</tr>")]
	contains(t, "the row of g2-x", row, `<td class="num">1</td><td class="num">1 <span class="small">(1 required)</span></td><td class="num">1</td>`)

	// a device page links to the start form, filled in
	_, dev := g.get("/ui/devices/dev1")
	contains(t, "the device page", dev, `href="/ui/grades?device=dev1#start"`, "Grade this device")
	_, form := g.get("/ui/grades?device=dev1&module=m%3Cx%3E")
	contains(t, "the prefilled form", form, `id="grade-device" name="device" value="dev1"`, `value="m&lt;x&gt;"`)
}

func TestGradesPaginate(t *testing.T) {
	b := &gradeBackend{}
	for i := 60; i >= 1; i-- {
		b.reports = append(b.reports, finished(fmt.Sprintf("g%d-x", i)))
	}
	g := newGradeClient(t, b)
	_, p1 := g.get("/ui/grades")
	contains(t, "page 1", p1, "1–50 of 60 grades", `id="grade-g60-x"`, `rel="next"`)
	if strings.Contains(p1, `id="grade-g10-x"`) {
		t.Errorf("page 1 shows g10, the 51st newest")
	}
	_, p2 := g.get("/ui/grades?page=2")
	contains(t, "page 2", p2, "51–60 of 60 grades", `id="grade-g10-x"`, `id="grade-g1-x"`)
}

func TestGradeDetail(t *testing.T) {
	b := &gradeBackend{reports: []iothub.GradeReport{finished("g1-x")}}
	g := newGradeClient(t, b)
	resp, body := g.get("/ui/grades/g1-x")
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /ui/grades/g1-x = %d:\n%s", resp.StatusCode, body)
	}
	contains(t, "the grade page", body,
		// verdicts as words, not colour only
		`<span class="verdict">pass</span>`, `<span class="verdict">FAIL</span>`, `<span class="verdict">not exercised</span>`,
		"14 PUBLISH packets, none QoS 2", "The device never publishes with QoS 2.", "docs/iothub-behavior.md §3.2",
		"1.250 s", "2026-12-08 01:00:01Z", "qos=1 &lt;script&gt;", // evidence, escaped
		`href="/ui/devices/dev1"`, "a required case failed", `href="/ui/grades/g1-x/report.json"`, `href="/ui/grades/g1-x/junit.xml"`,
		`data-events="/ui/events/grade?id=g1-x"`)
	if strings.Contains(body, "<script>") {
		t.Errorf("the evidence text was not escaped")
	}
	if strings.Contains(body, "/cancel") {
		t.Errorf("a finished grade offers a cancel button")
	}
	resp, body = g.get("/ui/grades/g9-nope")
	if resp.StatusCode != http.StatusNotFound || !strings.Contains(body, "No grade g9-nope") {
		t.Errorf("GET an unknown grade = %d, want 404 naming it:\n%s", resp.StatusCode, body)
	}
}

func TestGradeDownloads(t *testing.T) {
	b := &gradeBackend{reports: []iothub.GradeReport{finished("g1-x")}}
	g := newGradeClient(t, b)

	resp, body := g.get("/ui/grades/g1-x/report.json")
	if resp.StatusCode != http.StatusOK || !strings.HasPrefix(resp.Header.Get("Content-Type"), "application/json") ||
		resp.Header.Get("Content-Disposition") != `attachment; filename="grade-g1-x.json"` {
		t.Fatalf("report.json = %d %q %q", resp.StatusCode, resp.Header.Get("Content-Type"), resp.Header.Get("Content-Disposition"))
	}
	var got iothub.GradeReport
	if err := json.Unmarshal([]byte(body), &got); err != nil {
		t.Fatalf("report.json does not parse: %v\n%s", err, body)
	}
	if got.ID != "g1-x" || len(got.Cases) != 3 || got.Cases[1].Verdict != iothub.GradeFail || got.Summary.RequiredFailed != 1 {
		t.Errorf("report.json = %+v, want g1-x's report", got)
	}

	resp, body = g.get("/ui/grades/g1-x/junit.xml")
	if resp.StatusCode != http.StatusOK || !strings.HasPrefix(resp.Header.Get("Content-Type"), "application/xml") ||
		resp.Header.Get("Content-Disposition") != `attachment; filename="grade-g1-x.xml"` {
		t.Fatalf("junit.xml = %d %q %q", resp.StatusCode, resp.Header.Get("Content-Type"), resp.Header.Get("Content-Disposition"))
	}
	var suites struct {
		Tests    int `xml:"tests,attr"`
		Failures int `xml:"failures,attr"`
		Skipped  int `xml:"skipped,attr"`
	}
	if err := xml.Unmarshal([]byte(body), &suites); err != nil {
		t.Fatalf("junit.xml does not parse: %v\n%s", err, body)
	}
	if suites.Tests != 3 || suites.Failures != 1 {
		t.Errorf("junit.xml: %d tests, %d failures; want 3 and 1\n%s", suites.Tests, suites.Failures, body)
	}

	if resp, _ := g.get("/ui/grades/g1-x/report.csv"); resp.StatusCode != http.StatusNotFound {
		t.Errorf("report.csv = %d, want 404", resp.StatusCode)
	}
	if resp, _ := g.get("/ui/grades/g9-nope/report.json"); resp.StatusCode != http.StatusNotFound {
		t.Errorf("the JSON of an unknown grade = %d, want 404", resp.StatusCode)
	}
}

func TestGradeStartForm(t *testing.T) {
	b := &gradeBackend{}
	b.startFn = func(req iothub.GradeRequest) (iothub.GradeReport, error) {
		switch {
		case req.DeviceID == "":
			return iothub.GradeReport{}, iothub.Errorf(iothub.CodeArgumentInvalid, `a grade needs a "deviceId"`)
		case req.DeviceID == "ghost":
			return iothub.GradeReport{}, iothub.Errorf(iothub.CodeDeviceNotFound, "device ghost is not registered")
		case len(req.Cases) > 0 && req.Cases[0] == "device/nope":
			return iothub.GradeReport{}, iothub.Errorf(iothub.CodeArgumentInvalid, `unknown case "device/nope"`)
		}
		rep := iothub.GradeReport{ID: "g1-x", DeviceID: req.DeviceID, ModuleID: req.ModuleID, State: iothub.GradeRunning}
		b.reports = append([]iothub.GradeReport{rep}, b.reports...)
		return rep, nil
	}
	g := newGradeClient(t, b)

	resp, _ := g.post("/ui/grades", "/ui/grades", url.Values{"device": {" dev1 "}, "module": {"m1"}, "cases": {"device/publish, device/c2d\ndevice/twin/"},
		"method": {"reboot"}, "method_payload": {`{"delay": 1}`}, "clock": {"own"}, "wait": {"20s"}})
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/ui/grades/g1-x" {
		t.Fatalf("starting a grade = %d to %q, want 303 to /ui/grades/g1-x", resp.StatusCode, resp.Header.Get("Location"))
	}
	want := iothub.GradeRequest{DeviceID: "dev1", ModuleID: "m1", Cases: []string{"device/publish", "device/c2d", "device/twin/"},
		Method: "reboot", MethodPayload: json.RawMessage(`{"delay": 1}`), DeviceClock: "own", WaitConnect: "20s"}
	if got := b.started[0]; fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("the form started %+v, want %+v", got, want)
	}

	for _, tc := range []struct {
		name   string
		form   url.Values
		status int
		msg    string
	}{
		{"no-device", url.Values{"device": {""}}, http.StatusBadRequest, `400004 ArgumentInvalid: a grade needs a "deviceId"`},
		{"unknown-device", url.Values{"device": {"ghost"}}, http.StatusNotFound, "device ghost is not registered"},
		{"unknown-case", url.Values{"device": {"dev1"}, "cases": {"device/nope"}}, http.StatusBadRequest, `unknown case "device/nope"`},
		{"bad-payload", url.Values{"device": {"dev1"}, "method": {"reboot"}, "method_payload": {"{nope"}}, http.StatusBadRequest, "the method payload must be JSON"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			n := len(b.started)
			resp, body := g.post("/ui/grades", "/ui/grades", tc.form)
			if resp.StatusCode != tc.status {
				t.Errorf("status %d, want %d", resp.StatusCode, tc.status)
			}
			contains(t, "the page", body, `role="alert">Grade not started: `, html.EscapeString(tc.msg))
			for k, v := range tc.form { // the form keeps what was typed
				if v[0] != "" && k != "method_payload" {
					contains(t, "the form", body, `value="`+html.EscapeString(v[0])+`"`)
				}
			}
			if tc.name == "bad-payload" && len(b.started) != n {
				t.Errorf("a bad payload reached the grader")
			}
		})
	}

	// without the CSRF token nothing starts
	n := len(b.started)
	req, _ := http.NewRequest("POST", g.base+"/ui/grades", strings.NewReader("device=dev1"))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if resp, _ := g.do(req); resp.StatusCode != http.StatusForbidden || len(b.started) != n {
		t.Errorf("a POST without CSRF = %d (grades started: %d), want 403 and none", resp.StatusCode, len(b.started)-n)
	}
}

func TestGradeCancel(t *testing.T) {
	running := iothub.GradeReport{ID: "g1-x", DeviceID: "dev1", State: iothub.GradeRunning}
	b := &gradeBackend{reports: []iothub.GradeReport{running}}
	g := newGradeClient(t, b)
	_, page := g.get("/ui/grades/g1-x")
	contains(t, "a running grade's page", page, `action="/ui/grades/g1-x/cancel"`)
	resp, _ := g.post("/ui/grades/g1-x", "/ui/grades/g1-x/cancel", url.Values{})
	if resp.StatusCode != http.StatusSeeOther || !strings.HasPrefix(resp.Header.Get("Location"), "/ui/grades/g1-x?flash=") {
		t.Errorf("cancel = %d to %q, want 303 back to the grade", resp.StatusCode, resp.Header.Get("Location"))
	}
	resp, _ = g.post("/ui/grades/g1-x", "/ui/grades/g9-nope/cancel", url.Values{})
	if resp.StatusCode != http.StatusNotFound {
		t.Errorf("cancel an unknown grade = %d, want 404", resp.StatusCode)
	}
}

// TestGradeLive: the grade page's event stream replaces the progress and
// the cases when the grade moves on.
func TestGradeLive(t *testing.T) {
	rep := finished("g1-x")
	rep.State, rep.Current, rep.Finished = iothub.GradeRunning, "device/c2d/acks", time.Time{}
	rep.Cases[1].Verdict, rep.Cases[1].Reason = "", ""
	rep.Cases[2].Verdict, rep.Cases[2].Reason = "", ""
	rep.Summarize()
	b := &gradeBackend{reports: []iothub.GradeReport{rep}}
	g := newGradeClient(t, b)
	_, page := g.get("/ui/grades/g1-x")
	contains(t, "the running grade", page, "case 1 of 3 done", `<span class="verdict">running</span>`, `<span class="verdict">pending</span>`)

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "GET", g.base+"/ui/events/grade?id=g1-x", nil)
	resp, err := g.c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("the event stream = %d", resp.StatusCode)
	}
	rd := bufio.NewReader(resp.Body)
	if _, err := rd.ReadString('\n'); err != nil { // retry: ...
		t.Fatal(err)
	}
	b.update(finished("g1-x"))
	got := map[string]string{}
	for len(got) < 2 {
		ev, err := readEvent(rd)
		if err != nil {
			t.Fatalf("reading events (have %v): %v", got, err)
		}
		if ev != "" {
			id, body, _ := strings.Cut(ev, "\n")
			got[id] = body
		}
	}
	contains(t, "the summary event", got["grade-summary"], "grade-state done", "a required case failed")
	contains(t, "the cases event", got["grade-cases"], `<span class="verdict">FAIL</span>`, "no PUBACK within 30 s")
}

// readEvent reads one "event: replace" event's data lines (joined by
// newlines), or "" for another block.
func readEvent(rd *bufio.Reader) (string, error) {
	var data []string
	replace := false
	for {
		line, err := rd.ReadString('\n')
		if err != nil {
			return "", err
		}
		line = strings.TrimSuffix(line, "\n")
		switch {
		case line == "":
			if replace {
				return strings.Join(data, "\n"), nil
			}
			return "", nil
		case line == "event: replace":
			replace = true
		case strings.HasPrefix(line, "data: "):
			data = append(data, strings.TrimPrefix(line, "data: "))
		}
	}
}
