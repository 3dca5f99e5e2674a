package dashboard

import (
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/hubkit/hubkit/pkg/iothub"
	"github.com/hubkit/hubkit/pkg/iothub/dps"
)

// The test-control pages: the hub's profile, clock, faults, throttles and
// reset (/ui/hub), and the Device Provisioning Service (/ui/dps).

// hubData is the test-controls page.
type hubData struct {
	Controls
	CanWrite bool
}

func (h *Handler) hubData(s *uiSession) hubData {
	return hubData{Controls: h.b.Controls(), CanWrite: s.may(iothub.ServiceConnect)}
}

func (h *Handler) hub(w http.ResponseWriter, r *http.Request, s *uiSession) {
	h.render(w, r, http.StatusOK, "hub", view{Title: "Test controls", Nav: "hub", Session: s, Events: "/ui/events/hub",
		Flash: r.URL.Query().Get("flash"), Data: h.hubData(s)})
}

// hubDone redirects back to the test-controls page with a message.
func hubDone(w http.ResponseWriter, r *http.Request, flash string) {
	http.Redirect(w, r, "/ui/hub?flash="+url.QueryEscape(flash), http.StatusSeeOther)
}

func (h *Handler) hubError(w http.ResponseWriter, r *http.Request, s *uiSession, msg string) {
	h.render(w, r, http.StatusBadRequest, "hub", view{Title: "Test controls", Nav: "hub", Session: s, Events: "/ui/events/hub",
		Error: msg, Data: h.hubData(s)})
}

// moveClock takes one of the clock form's buttons: advance, set or reset.
func (h *Handler) moveClock(w http.ResponseWriter, r *http.Request, s *uiSession) {
	if !h.needService(w, s) {
		return
	}
	f := r.PostForm
	var c iothub.ClockChange
	switch f.Get("action") {
	case "advance":
		c.Advance = strings.TrimSpace(f.Get("advance"))
		if c.Advance == "" {
			h.hubError(w, r, s, "Clock not moved: give a duration to advance by, for example 55m, 1h30m, -2h or 2d.")
			return
		}
	case "set":
		t, err := time.Parse(time.RFC3339, strings.TrimSpace(f.Get("set")))
		if err != nil {
			h.hubError(w, r, s, fmt.Sprintf("Clock not moved: %q is not an RFC 3339 time (want e.g. 2030-01-01T00:00:00Z).", f.Get("set")))
			return
		}
		c.Set = &t
	case "reset":
		c.Reset = true
	default:
		h.hubError(w, r, s, "Clock not moved: the form names no action (advance, set or reset).")
		return
	}
	rd, err := h.b.MoveClock(r.Context(), c)
	if err != nil {
		h.hubError(w, r, s, "Clock not moved: "+err.Error())
		return
	}
	h.log.Info("dashboard: clock moved", "policy", s.policy, "offset", rd.Offset)
	hubDone(w, r, fmt.Sprintf("The hub's clock reads %s (offset %s).", when(rd.Now), rd.Offset))
}

func (h *Handler) clearFaults(w http.ResponseWriter, r *http.Request, s *uiSession) {
	if !h.needService(w, s) {
		return
	}
	h.b.ClearFaults()
	h.log.Info("dashboard: faults cleared", "policy", s.policy)
	hubDone(w, r, "Every fault is cleared.")
}

// resetData is the reset confirmation page.
type resetData struct {
	Parts []string
}

// reset clears run-time state in two steps: the first POST shows what will
// be cleared and asks to confirm; the second (confirm=yes) clears it.
func (h *Handler) reset(w http.ResponseWriter, r *http.Request, s *uiSession) {
	if !h.needService(w, s) {
		return
	}
	known := h.b.Controls().ResetParts
	parts := r.PostForm["part"]
	for _, p := range parts {
		if !slices.Contains(known, p) {
			h.hubError(w, r, s, fmt.Sprintf("Nothing reset: unknown part %q (want %s).", p, strings.Join(known, ", ")))
			return
		}
	}
	if len(parts) == 0 {
		h.hubError(w, r, s, "Nothing reset: tick at least one part of the state to clear.")
		return
	}
	if r.PostForm.Get("confirm") != "yes" {
		h.render(w, r, http.StatusOK, "reset", view{Title: "Reset the hub's state?", Nav: "hub", Session: s, Data: resetData{Parts: parts}})
		return
	}
	if err := h.b.Reset(parts); err != nil {
		h.hubError(w, r, s, "Nothing reset: "+err.Error())
		return
	}
	h.log.Info("dashboard: state reset", "policy", s.policy, "parts", strings.Join(parts, ","))
	hubDone(w, r, "Reset: "+strings.Join(parts, ", ")+". Devices, keys, policies and connections are kept.")
}

// dpsData is the DPS page: one of its three lists, paginated and searched.
type dpsData struct {
	DPSState
	List   string // "registrations", "enrollments" or "groups"
	Search string
	Pager  pager
	// the page of the chosen list
	Registrations []dps.RegistrationState
	Enrollments   []dps.Enrollment
	Groups        []dps.EnrollmentGroup
}

var errNoDPS = errors.New("the hub runs no Device Provisioning Service")

// dpsLists are the DPS page's lists, in tab order.
var dpsLists = []string{"registrations", "enrollments", "groups"}

func (h *Handler) dpsData(r *http.Request) (dpsData, bool) {
	st, ok := h.b.DPS()
	if !ok {
		return dpsData{}, false
	}
	q := r.URL.Query()
	d := dpsData{DPSState: st, List: q.Get("list"), Search: strings.TrimSpace(q.Get("q"))}
	if !slices.Contains(dpsLists, d.List) {
		d.List = dpsLists[0]
	}
	match := func(id string) bool {
		return d.Search == "" || strings.Contains(strings.ToLower(id), strings.ToLower(d.Search))
	}
	switch d.List {
	case "registrations":
		rs := filter(st.Registrations, func(x dps.RegistrationState) bool { return match(x.RegistrationID) || match(x.DeviceID) })
		d.Pager = newPager(r, len(rs))
		d.Registrations = pageOf(rs, d.Pager)
	case "enrollments":
		es := filter(st.Enrollments, func(x dps.Enrollment) bool { return match(x.RegistrationID) || match(x.DeviceID) })
		d.Pager = newPager(r, len(es))
		d.Enrollments = pageOf(es, d.Pager)
	default:
		gs := filter(st.Groups, func(x dps.EnrollmentGroup) bool { return match(x.EnrollmentGroupID) })
		d.Pager = newPager(r, len(gs))
		d.Groups = pageOf(gs, d.Pager)
	}
	return d, true
}

func filter[T any](xs []T, keep func(T) bool) []T {
	var out []T
	for _, x := range xs {
		if keep(x) {
			out = append(out, x)
		}
	}
	return out
}

// pageOf returns the rows of xs the pager shows.
func pageOf[T any](xs []T, p pager) []T {
	if len(xs) == 0 {
		return nil
	}
	return xs[p.From-1 : p.To]
}

func (h *Handler) dps(w http.ResponseWriter, r *http.Request, s *uiSession) {
	d, ok := h.dpsData(r)
	if !ok {
		h.render(w, r, http.StatusNotFound, "error", view{Title: "Device Provisioning Service", Nav: "dps", Session: s,
			Error: "This hub runs no Device Provisioning Service: start fakehub with --dps (Options.DPS)."})
		return
	}
	h.render(w, r, http.StatusOK, "dps", view{Title: "Device Provisioning Service", Nav: "dps", Session: s,
		Events: "/ui/events/dps?" + r.URL.RawQuery, Data: d})
}

// dpsTabURL is the DPS page showing one list.
func dpsTabURL(list string) string { return "/ui/dps?list=" + url.QueryEscape(list) }

// groupOf names the enrollment group a registration went through ("" for
// an individual enrollment).
func groupOf(st dps.RegistrationState) string {
	for _, a := range []*dps.AttestationResult{st.SymmetricKey, st.X509} {
		if a != nil && a.EnrollmentGroupID != "" {
			return a.EnrollmentGroupID
		}
	}
	return ""
}
