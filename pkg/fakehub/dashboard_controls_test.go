package fakehub_test

import (
	"html/template"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/hubkit/hubkit/pkg/fakehub"
	"github.com/hubkit/hubkit/pkg/iothub"
	"github.com/hubkit/hubkit/pkg/iothub/dps"
)

func TestDashboardControlsShowFaultsAndLimits(t *testing.T) {
	h := startHub(t, fakehub.Options{ServiceAddr: "127.0.0.1:0", Profile: fakehub.ProfileEdgeHub,
		Limits: fakehub.Limits{D2C: fakehub.Throttle{PerSecond: 2}, DailyMessages: 8000}})
	h.RefuseConnections(dev1, time.Hour)
	h.DropPubacks(iothub.Identity{}, true)
	b := newBrowser(t, h)
	b.login(h.DashboardLoginURL())
	resp, page := b.get("/ui/hub")
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /ui/hub = %d, want 200", resp.StatusCode)
	}
	for _, want := range []string{"<code>edgehub</code>", "RequireAPIVersion", "refuse connections", "dev1", "drop PUBACKs", "every identity",
		"device-to-cloud sends", ">2<", "of 8000 messages", "Clear every fault"} {
		if !strings.Contains(page, want) {
			t.Errorf("/ui/hub does not show %q", want)
		}
	}
	resp, _ = b.post("/ui/hub/faults/clear", url.Values{"csrf": {csrf(t, page)}})
	if resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("POST /ui/hub/faults/clear = %d, want 303", resp.StatusCode)
	}
	if _, page = b.get("/ui/hub"); !strings.Contains(page, "No fault in force.") || strings.Contains(page, "drop PUBACKs") {
		t.Errorf("after clearing, /ui/hub still shows faults")
	}
}

func TestDashboardMovesTheClock(t *testing.T) {
	h := startDashboardHub(t)
	b := newBrowser(t, h)
	b.login(h.DashboardLoginURL())
	_, page := b.get("/ui/hub")
	tok := csrf(t, page)
	for _, tc := range []struct {
		name   string
		form   url.Values
		status int
		offset time.Duration
	}{
		{"advance", url.Values{"action": {"advance"}, "advance": {"55m"}}, http.StatusSeeOther, 55 * time.Minute},
		{"advance-again", url.Values{"action": {"advance"}, "advance": {"2d"}}, http.StatusSeeOther, 55*time.Minute + 48*time.Hour},
		{"bad-duration", url.Values{"action": {"advance"}, "advance": {"soon"}}, http.StatusBadRequest, 55*time.Minute + 48*time.Hour},
		{"bad-time", url.Values{"action": {"set"}, "set": {"tomorrow"}}, http.StatusBadRequest, 55*time.Minute + 48*time.Hour},
		{"reset", url.Values{"action": {"reset"}}, http.StatusSeeOther, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.form.Set("csrf", tok)
			resp, body := b.post("/ui/hub/clock", tc.form)
			if resp.StatusCode != tc.status {
				t.Fatalf("POST /ui/hub/clock %v = %d, want %d: %s", tc.form, resp.StatusCode, tc.status, body)
			}
			if got := h.Clock().Offset(); got != tc.offset {
				t.Errorf("clock offset = %v, want %v", got, tc.offset)
			}
			if tc.status == http.StatusBadRequest && !strings.Contains(body, "Clock not moved") {
				t.Errorf("the page does not say the clock was not moved")
			}
		})
	}
}

func TestDashboardResetAsksFirst(t *testing.T) {
	h := startDashboardHub(t)
	sendC2D(t, h, dev1, iothub.C2DMessage{Payload: []byte("queued")})
	b := newBrowser(t, h)
	b.login(h.DashboardLoginURL())
	_, page := b.get("/ui/hub")
	form := url.Values{"csrf": {csrf(t, page)}, "part": {"c2d"}}
	resp, body := b.post("/ui/hub/reset", form)
	if resp.StatusCode != http.StatusOK || !strings.Contains(body, "Yes, reset") {
		t.Fatalf("first POST /ui/hub/reset = %d, want 200 with a confirmation", resp.StatusCode)
	}
	if n := len(h.C2DMessages(dev1)); n != 1 {
		t.Fatalf("the first step reset already: %d C2D messages, want 1", n)
	}
	if resp, _ := b.post("/ui/hub/reset", url.Values{"part": {"c2d"}, "confirm": {"yes"}}); resp.StatusCode != http.StatusForbidden {
		t.Errorf("confirm without CSRF token = %d, want 403", resp.StatusCode)
	}
	form.Set("confirm", "yes")
	if resp, _ := b.post("/ui/hub/reset", form); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("confirmed POST /ui/hub/reset = %d, want 303", resp.StatusCode)
	}
	if n := len(h.C2DMessages(dev1)); n != 0 {
		t.Errorf("after the reset: %d C2D messages, want 0", n)
	}
	form.Set("part", "registry")
	if resp, body := b.post("/ui/hub/reset", form); resp.StatusCode != http.StatusBadRequest || !strings.Contains(body, "unknown part") {
		t.Errorf("reset of an unknown part = %d, want 400 naming it", resp.StatusCode)
	}
}

func TestDashboardDPS(t *testing.T) {
	key := "c2VjcmV0LWRwcy1rZXktdGhhdC1tdXN0LW5vdC1zaG93"
	en := []dps.Enrollment{}
	for _, id := range []string{"sensor-a", "sensor-b"} {
		en = append(en, dps.Enrollment{RegistrationID: id, Attestation: dps.Attestation{Type: dps.AttestationSymmetricKey,
			SymmetricKey: &iothub.SymmetricKey{PrimaryKey: key, SecondaryKey: key}}})
	}
	h := startHub(t, fakehub.Options{ServiceAddr: "127.0.0.1:0", DPS: &fakehub.DPSOptions{Enrollments: en,
		Groups: []dps.EnrollmentGroup{{EnrollmentGroupID: "fleet", Attestation: dps.Attestation{Type: dps.AttestationSymmetricKey,
			SymmetricKey: &iothub.SymmetricKey{PrimaryKey: key, SecondaryKey: key}}}}}})
	b := newBrowser(t, h)
	b.login(h.DashboardLoginURL())
	for _, tc := range []struct{ path, want, not string }{
		{"/", `href="/ui/dps"`, ""},
		{"/ui/dps", "0ne00000000", "sensor-a"}, // registrations first: none yet
		{"/ui/dps?list=enrollments", "sensor-b", ""},
		{"/ui/dps?list=enrollments&q=-a", "sensor-a", "sensor-b"},
		{"/ui/dps?list=groups", "fleet", ""},
	} {
		resp, page := b.get(tc.path)
		if resp.StatusCode != http.StatusOK || !strings.Contains(page, tc.want) {
			t.Errorf("GET %s = %d, want 200 showing %q", tc.path, resp.StatusCode, tc.want)
		}
		if tc.not != "" && strings.Contains(page, tc.not) {
			t.Errorf("GET %s shows %q", tc.path, tc.not)
		}
		if strings.Contains(page, key) {
			t.Errorf("GET %s shows an attestation key", tc.path)
		}
	}
}

func TestDashboardWithoutDPS(t *testing.T) {
	h := startDashboardHub(t)
	b := newBrowser(t, h)
	b.login(h.DashboardLoginURL())
	if _, page := b.get("/"); strings.Contains(page, `href="/ui/dps"`) {
		t.Error("the navigation links to DPS on a hub without one")
	}
	if resp, page := b.get("/ui/dps"); resp.StatusCode != http.StatusNotFound || !strings.Contains(page, "--dps") {
		t.Errorf("GET /ui/dps without DPS = %d, want 404 saying how to start one", resp.StatusCode)
	}
}

// TestDashboardSections: the seam later pages (the device grader's reports)
// plug into: a navigation entry and /ui/x/{id} with the section's HTML.
func TestDashboardSections(t *testing.T) {
	sec := fakehub.DashboardSection{ID: "grades", Title: "Grader reports", Render: func(r *http.Request) (template.HTML, error) {
		return template.HTML("<p id=\"grade-body\">" + template.HTMLEscapeString(r.URL.Query().Get("report")) + "</p>"), nil
	}}
	h := startHub(t, fakehub.Options{ServiceAddr: "127.0.0.1:0", DashboardSections: []fakehub.DashboardSection{sec}})
	b := newBrowser(t, h)
	b.login(h.DashboardLoginURL())
	if _, page := b.get("/"); !strings.Contains(page, `href="/ui/x/grades"`) || !strings.Contains(page, "Grader reports") {
		t.Error("the navigation has no entry for the section")
	}
	resp, page := b.get("/ui/x/grades?report=%3Cb%3Er1")
	if resp.StatusCode != http.StatusOK || !strings.Contains(page, `<p id="grade-body">&lt;b&gt;r1</p>`) || !strings.Contains(page, `aria-current="page">Grader reports`) {
		t.Errorf("GET /ui/x/grades = %d, want 200 with the section's HTML, its entry current", resp.StatusCode)
	}
	if resp, _ := b.get("/ui/x/nothing"); resp.StatusCode != http.StatusNotFound {
		t.Errorf("GET /ui/x/nothing = %d, want 404", resp.StatusCode)
	}
}
