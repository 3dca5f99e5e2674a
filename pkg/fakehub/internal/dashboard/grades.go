package dashboard

import (
	"bytes"
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"strings"

	"github.com/hubkit/hubkit/pkg/grade"
	"github.com/hubkit/hubkit/pkg/iothub"
)

// The device grader's pages (docs/iothub-behavior.md §15): the list of
// grades with a form to start one (/ui/grades), a grade's progress and
// report (/ui/grades/{id}), its downloads as JSON and JUnit XML. They need
// ServiceConnect, as the service API's /hubkit/grade routes do, and start
// grades through the same Backend call, so the form's errors are the API's.

// gradesData is the grades page.
type gradesData struct {
	Rows  []iothub.GradeReport // the page's, newest first
	Pager pager
	Cases []iothub.GradeCase
	Form  url.Values // the start form's values (prefilled from ?device=&module=, or what the user typed)
	Kept  int        // how many grades the hub keeps
}

func (h *Handler) gradesData(r *http.Request, form url.Values) gradesData {
	all := h.b.GradeReports()
	d := gradesData{Pager: newPager(r, len(all)), Cases: h.b.GradeCases(), Form: form, Kept: grade.KeptReports}
	d.Rows = pageOf(all, d.Pager)
	if d.Form == nil {
		q := r.URL.Query()
		d.Form = url.Values{"device": {q.Get("device")}, "module": {q.Get("module")}}
	}
	return d
}

func (h *Handler) grades(w http.ResponseWriter, r *http.Request, s *uiSession) {
	h.render(w, r, http.StatusOK, "grades", view{Title: "Grades", Nav: "grades", Session: s,
		Events: "/ui/events/grades?" + r.URL.RawQuery, Flash: r.URL.Query().Get("flash"), Data: h.gradesData(r, nil)})
}

// gradeRequest reads the start form: the identity, the cases (IDs or
// prefixes separated by spaces or commas; none: all), the method and its
// payload, the device's clock and how long to wait for it to connect.
func gradeRequest(f url.Values) (iothub.GradeRequest, error) {
	req := iothub.GradeRequest{
		DeviceID: strings.TrimSpace(f.Get("device")), ModuleID: strings.TrimSpace(f.Get("module")),
		Cases:       strings.FieldsFunc(f.Get("cases"), func(r rune) bool { return r == ',' || r == ' ' || r == '\n' || r == '\r' || r == '\t' }),
		Method:      strings.TrimSpace(f.Get("method")),
		DeviceClock: strings.TrimSpace(f.Get("clock")), WaitConnect: strings.TrimSpace(f.Get("wait")),
	}
	if p := strings.TrimSpace(f.Get("method_payload")); p != "" {
		if !json.Valid([]byte(p)) {
			return req, iothub.Errorf(iothub.CodeIotHubFormatError, `the method payload must be JSON (for example {"delay": 1}), or empty for {}`)
		}
		req.MethodPayload = json.RawMessage(p)
	}
	return req, nil
}

// startGrade takes the start form: on success it shows the new grade's
// page; otherwise the grades page again with the API's error and the form
// as typed.
func (h *Handler) startGrade(w http.ResponseWriter, r *http.Request, s *uiSession) {
	if !h.needService(w, s) {
		return
	}
	req, err := gradeRequest(r.PostForm)
	var rep iothub.GradeReport
	if err == nil {
		rep, err = h.b.StartGrade(req)
	}
	if err != nil {
		h.render(w, r, gradeErrorStatus(err), "grades", view{Title: "Grades", Nav: "grades", Session: s, Events: "/ui/events/grades",
			Error: "Grade not started: " + err.Error(), Data: h.gradesData(r, r.PostForm)})
		return
	}
	h.log.Info("dashboard: grade started", "grade", rep.ID, "deviceId", rep.DeviceID, "moduleId", rep.ModuleID, "policy", s.policy)
	http.Redirect(w, r, gradeURL(rep.ID), http.StatusSeeOther)
}

// gradeErrorStatus is the HTTP status the service API answers err with.
func gradeErrorStatus(err error) int {
	if e, ok := errors.AsType[*iothub.Error](err); ok {
		return e.Status()
	}
	return http.StatusBadRequest
}

// gradeStartURL is the grades page with its start form filled in for id.
func gradeStartURL(id iothub.Identity) string {
	q := url.Values{"device": {id.DeviceID}}
	if id.IsModule() {
		q.Set("module", id.ModuleID)
	}
	return "/ui/grades?" + q.Encode() + "#start"
}

// gradeURL is the page of a grade.
func gradeURL(id string) string { return "/ui/grades/" + url.PathEscape(id) }

// gradeData is a grade's page.
type gradeData struct {
	Report   iothub.GradeReport
	CanWrite bool   // the session may cancel it
	CSRF     string // for the cancel form, which the live updates re-render
}

func (h *Handler) gradeReport(w http.ResponseWriter, r *http.Request, s *uiSession) (iothub.GradeReport, bool) {
	id := r.PathValue("id")
	rep, ok := h.b.GradeReport(id)
	if !ok {
		h.render(w, r, http.StatusNotFound, "error", view{Title: "Not found", Nav: "grades", Session: s,
			Error: "No grade " + id + ": the hub keeps only its latest grades (the Grades page lists them)."})
	}
	return rep, ok
}

func (h *Handler) grade(w http.ResponseWriter, r *http.Request, s *uiSession) {
	rep, ok := h.gradeReport(w, r, s)
	if !ok {
		return
	}
	h.render(w, r, http.StatusOK, "grade", view{Title: "Grade " + rep.ID, Nav: "grades", Session: s,
		Events: "/ui/events/grade?" + url.Values{"id": {rep.ID}}.Encode(), Flash: r.URL.Query().Get("flash"),
		Data: gradeData{Report: rep, CanWrite: s.may(iothub.ServiceConnect), CSRF: s.csrf}})
}

func (h *Handler) cancelGrade(w http.ResponseWriter, r *http.Request, s *uiSession) {
	if !h.needService(w, s) {
		return
	}
	id := r.PathValue("id")
	if !h.b.CancelGrade(id) {
		h.render(w, r, http.StatusNotFound, "error", view{Title: "Not found", Nav: "grades", Session: s, Error: "No grade " + id + " to cancel."})
		return
	}
	h.log.Info("dashboard: grade canceled", "grade", id, "policy", s.policy)
	http.Redirect(w, r, gradeURL(id)+"?flash="+url.QueryEscape("Grade "+id+" canceled: the cases not reached are not exercised."), http.StatusSeeOther)
}

// gradeDownload serves a report as JSON (the shape GET /hubkit/grade/{id}
// answers) or as JUnit XML (what fakehub grade --format junit writes).
func (h *Handler) gradeDownload(w http.ResponseWriter, r *http.Request, s *uiSession) {
	rep, ok := h.gradeReport(w, r, s)
	if !ok {
		return
	}
	var buf bytes.Buffer
	var ctype, ext string
	switch r.PathValue("format") {
	case "report.json":
		ctype, ext = "application/json", "json"
		enc := json.NewEncoder(&buf)
		enc.SetIndent("", "  ")
		if err := enc.Encode(rep); err != nil {
			http.Error(w, "encoding the report: "+err.Error(), http.StatusInternalServerError)
			return
		}
	case "junit.xml":
		ctype, ext = "application/xml", "xml"
		if err := grade.WriteJUnit(&buf, rep); err != nil {
			http.Error(w, "writing the JUnit report: "+err.Error(), http.StatusInternalServerError)
			return
		}
	default:
		http.Error(w, "no download "+r.PathValue("format")+" (want report.json or junit.xml)", http.StatusNotFound)
		return
	}
	w.Header().Set("Content-Type", ctype+"; charset=utf-8")
	w.Header().Set("Content-Disposition", `attachment; filename="grade-`+fileSafe(rep.ID)+`.`+ext+`"`)
	_, _ = w.Write(buf.Bytes())
}

// fileSafe keeps the letters, digits, '-' and '_' of s.
func fileSafe(s string) string {
	return strings.Map(func(r rune) rune {
		if r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_' {
			return r
		}
		return -1
	}, s)
}

// verdictText is how a case's verdict reads on the pages: grade.Label's
// words ("pass", "FAIL", "not exercised"), "running" for the current case
// and "pending" for the cases still to come.
func verdictText(rep iothub.GradeReport, c iothub.GradeResult) string {
	switch {
	case c.Verdict != "":
		return grade.Label(c.Verdict)
	case rep.State == iothub.GradeRunning && c.ID == rep.Current:
		return "running"
	}
	return "pending"
}

// gradeDone counts the cases of rep that have their verdict.
func gradeDone(rep iothub.GradeReport) int {
	n := 0
	for _, c := range rep.Cases {
		if c.Verdict != "" {
			n++
		}
	}
	return n
}

var errNoGrade = errors.New("no such grade")
