package fakehub_test

import (
	"context"
	"html"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/hubkit/hubkit/internal/testutil"
	"github.com/hubkit/hubkit/pkg/iothub"
	"github.com/hubkit/hubkit/pkg/serviceclient"
)

// TestDashboardGradeFormErrorsAreTheAPIs: the dashboard's grade form gives
// the answers POST /hubkit/grade gives (the message and the status) for a
// missing or unknown device, an unknown case, a bad clock or wait, and a
// second grade while one runs; that one shows on the grades page and is
// canceled from its own page.
func TestDashboardGradeFormErrorsAreTheAPIs(t *testing.T) {
	h := startDashboardHub(t)
	// startHub registers dev1
	sc, err := serviceclient.New(h.ServiceConnectionString(), serviceclient.WithURL(h.ServiceURL()), serviceclient.WithRootCAs(h.CAPool))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	b := newBrowser(t, h)
	b.login(h.DashboardLoginURL())
	_, page := b.get("/ui/grades")
	token := csrf(t, page)

	post := func(form url.Values) (*http.Response, string) {
		form.Set("csrf", token)
		return b.post("/ui/grades", form)
	}
	for _, tc := range []struct {
		name string
		req  iothub.GradeRequest
		form url.Values
	}{
		{"no-device", iothub.GradeRequest{}, url.Values{}},
		{"unknown-device", iothub.GradeRequest{DeviceID: "ghost"}, url.Values{"device": {"ghost"}}},
		{"unknown-case", iothub.GradeRequest{DeviceID: "dev1", Cases: []string{"device/nope"}}, url.Values{"device": {"dev1"}, "cases": {"device/nope"}}},
		{"bad-clock", iothub.GradeRequest{DeviceID: "dev1", DeviceClock: "mine"}, url.Values{"device": {"dev1"}, "clock": {"mine"}}},
		{"bad-wait", iothub.GradeRequest{DeviceID: "dev1", WaitConnect: "soon"}, url.Values{"device": {"dev1"}, "wait": {"soon"}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, apiErr := sc.StartGrade(ctx, tc.req)
			e, ok := apiErr.(*iothub.Error)
			if !ok {
				t.Fatalf("StartGrade(%+v) over REST = %v, want an *iothub.Error", tc.req, apiErr)
			}
			resp, body := post(tc.form)
			if resp.StatusCode != e.Status() {
				t.Errorf("the form's status = %d, the API's %d", resp.StatusCode, e.Status())
			}
			if want := "Grade not started: " + html.EscapeString(e.Error()); !strings.Contains(body, want) {
				t.Errorf("the page lacks the API's error %q:\n%s", want, body)
			}
		})
	}

	// One grade at a time: a grade of a device that does not connect runs on.
	running, err := sc.StartGrade(ctx, iothub.GradeRequest{DeviceID: "dev1", Cases: []string{"device/publish"}, WaitConnect: "10m"})
	if err != nil {
		t.Fatal(err)
	}
	_, apiErr := sc.StartGrade(ctx, iothub.GradeRequest{DeviceID: "dev1"})
	e, ok := apiErr.(*iothub.Error)
	if !ok || e.Code != iothub.CodeGenericConflict {
		t.Fatalf("a second grade over REST = %v, want 409000", apiErr)
	}
	resp, body := post(url.Values{"device": {"dev1"}})
	if resp.StatusCode != http.StatusConflict || !strings.Contains(body, html.EscapeString(e.Error())) {
		t.Errorf("a second grade from the form = %d, want 409 with %q:\n%s", resp.StatusCode, e.Error(), body)
	}
	_, list := b.get("/ui/grades")
	if !strings.Contains(list, `id="grade-`+running.ID+`"`) || !strings.Contains(list, "running") {
		t.Errorf("the grades page does not list the running grade %s:\n%s", running.ID, list)
	}
	_, page = b.get("/ui/grades/" + running.ID)
	if !strings.Contains(page, "waiting") && !strings.Contains(page, "running") {
		t.Errorf("the running grade's page shows no progress:\n%s", page)
	}
	resp, _ = b.post("/ui/grades/"+running.ID+"/cancel", url.Values{"csrf": {token}})
	if resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("cancel = %d, want 303", resp.StatusCode)
	}
	testutil.Eventually(t, "the canceled grade ends canceled", func() bool {
		rep, _ := h.GradeReport(running.ID)
		return rep.State == iothub.GradeCanceled
	})
}
