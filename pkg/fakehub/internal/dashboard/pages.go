package dashboard

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/hubkit/hubkit/pkg/iothub"
)

// pageSize is how many rows a list page shows.
const pageSize = 50

// safeNext returns next when it is a path on this site, else "/".
func safeNext(next string) string {
	if strings.HasPrefix(next, "/") && !strings.HasPrefix(next, "//") && !strings.HasPrefix(next, "/\\") {
		return next
	}
	return "/"
}

func (h *Handler) loginPage(w http.ResponseWriter, r *http.Request) {
	next := safeNext(r.URL.Query().Get("next"))
	if tok := r.URL.Query().Get("token"); tok != "" {
		if !h.auth.useLoginToken(tok) {
			h.render(w, r, http.StatusUnauthorized, "login", view{Title: "Log in", Data: next,
				Error: "This login link was used already or is not one this hub made. Each link works once: paste the service connection string below, or ask fakehub for a new link (Server.DashboardLoginURL)."})
			return
		}
		h.startSession(w, r, "login link", iothub.RegistryRead|iothub.RegistryWrite|iothub.ServiceConnect, next)
		return
	}
	if h.auth.lookup(r) != nil {
		http.Redirect(w, r, next, http.StatusSeeOther)
		return
	}
	h.render(w, r, http.StatusOK, "login", view{Title: "Log in", Data: next})
}

func (h *Handler) login(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, 64<<10)
	if err := r.ParseForm(); err != nil {
		http.Error(w, "bad form: "+err.Error(), http.StatusBadRequest)
		return
	}
	next := safeNext(r.PostForm.Get("next"))
	p, err := checkConnectionString(h.b, h.opts.HostName, r.PostForm.Get("connection_string"))
	if err != nil {
		h.log.Info("dashboard login refused", "remoteAddr", r.RemoteAddr, "reason", err.Error())
		h.render(w, r, http.StatusUnauthorized, "login", view{Title: "Log in", Data: next, Error: err.Error()})
		return
	}
	h.startSession(w, r, p.KeyName, p.Rights, next)
}

func (h *Handler) startSession(w http.ResponseWriter, r *http.Request, policy string, rights iothub.Rights, next string) {
	s, err := h.auth.start(policy, rights)
	if err != nil {
		h.log.Error("dashboard: starting a session", "error", err)
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	h.log.Info("dashboard login", "remoteAddr", r.RemoteAddr, "policy", policy)
	setCookie(w, r, s.id, 0)
	http.Redirect(w, r, next, http.StatusSeeOther) // and the token leaves the address bar
}

func (h *Handler) logout(w http.ResponseWriter, r *http.Request, s *uiSession) {
	h.auth.end(s)
	setCookie(w, r, "", -1)
	http.Redirect(w, r, "/ui/login", http.StatusSeeOther)
}

// homeData is the home page: refusals first.
type homeData struct {
	Overview   Overview
	Rejections []iothub.Rejection // newest first
	More       int
}

func (h *Handler) homeData() homeData {
	rs := h.b.Rejections()
	d := homeData{Overview: h.b.Overview()}
	d.Rejections = newestFirst(rs, 10)
	d.More = max(len(rs)-len(d.Rejections), 0)
	return d
}

func newestFirst[T any](xs []T, n int) []T {
	out := slices.Clone(xs[max(len(xs)-n, 0):])
	slices.Reverse(out)
	return out
}

func (h *Handler) home(w http.ResponseWriter, r *http.Request, s *uiSession) {
	h.render(w, r, http.StatusOK, "home", view{Title: "Overview", Nav: "home", Session: s, Events: "/ui/events/home", Data: h.homeData()})
}

// pager is the navigation of a list page.
type pager struct {
	Page, Pages, Total, From, To int
	Prev, Next                   string // URLs, "" at the ends
}

func newPager(r *http.Request, total int) pager {
	page, _ := strconv.Atoi(r.URL.Query().Get("page"))
	pages := max((total+pageSize-1)/pageSize, 1)
	page = min(max(page, 1), pages)
	p := pager{Page: page, Pages: pages, Total: total, From: (page-1)*pageSize + 1, To: min(page*pageSize, total)}
	link := func(n int) string {
		q := r.URL.Query()
		q.Set("page", strconv.Itoa(n))
		return r.URL.Path + "?" + q.Encode()
	}
	if page > 1 {
		p.Prev = link(page - 1)
	}
	if page < pages {
		p.Next = link(page + 1)
	}
	return p
}

// devicesData is the device list.
type devicesData struct {
	Query DeviceQuery
	Rows  []DeviceRow
	Pager pager
}

func (h *Handler) devicesData(r *http.Request) devicesData {
	q := DeviceQuery{Search: strings.TrimSpace(r.URL.Query().Get("q")), State: r.URL.Query().Get("state"), Limit: pageSize}
	if q.State != "connected" && q.State != "disconnected" {
		q.State = ""
	}
	page, _ := strconv.Atoi(r.URL.Query().Get("page"))
	q.Offset = max(page-1, 0) * pageSize
	rows, total := h.b.Devices(q)
	p := newPager(r, total)
	if want := (p.Page - 1) * pageSize; want != q.Offset { // past the last page: show the last
		q.Offset = want
		rows, _ = h.b.Devices(q)
	}
	return devicesData{Query: q, Rows: rows, Pager: p}
}

func (h *Handler) devices(w http.ResponseWriter, r *http.Request, s *uiSession) {
	d := h.devicesData(r)
	h.render(w, r, http.StatusOK, "devices", view{Title: "Devices", Nav: "devices", Session: s,
		Events: "/ui/events/devices?" + r.URL.RawQuery, Data: d})
}

// deviceData is a device's page.
type deviceData struct {
	ID       iothub.Identity
	Row      DeviceRow
	Modules  []DeviceRow
	Twin     *iothub.Twin
	TwinErr  string
	C2D      []iothub.C2DStatus // newest first
	Feedback []iothub.C2DFeedback
	Recent   []iothub.Rejection // this identity's, newest first
	Events   []iothub.Event     // its latest telemetry, newest first
	Keys     *iothub.Device     // set when the user asked to see the keys
	Method   *methodView
	Form     url.Values // what the user typed, kept when a form failed
	CanWrite bool       // the session has ServiceConnect
	Base     string     // the page's URL
	Host     string     // the hub's host name, for connection strings
}

// methodView is the answer to a direct method.
type methodView struct {
	Name    string
	Status  int
	Payload string
	Error   string
	Took    time.Duration
}

func identityOf(r *http.Request) iothub.Identity {
	return iothub.Identity{DeviceID: r.PathValue("id"), ModuleID: r.URL.Query().Get("module")}
}

// deviceURL is the dashboard page of an identity.
func deviceURL(id iothub.Identity) string {
	u := "/ui/devices/" + url.PathEscape(id.DeviceID)
	if id.IsModule() {
		u += "?module=" + url.QueryEscape(id.ModuleID)
	}
	return u
}

// actionURL is the URL a device page's form posts to.
func actionURL(id iothub.Identity, action string) string {
	u := "/ui/devices/" + url.PathEscape(id.DeviceID) + "/" + action
	if id.IsModule() {
		u += "?module=" + url.QueryEscape(id.ModuleID)
	}
	return u
}

func (h *Handler) deviceData(id iothub.Identity, s *uiSession) (deviceData, error) {
	row, mods, err := h.b.Device(id)
	if err != nil {
		return deviceData{}, err
	}
	d := deviceData{ID: id, Row: row, Modules: mods, CanWrite: s.may(iothub.ServiceConnect), Base: deviceURL(id), Host: h.opts.HostName}
	row.Device.Authentication.SymmetricKey = iothub.SymmetricKey{} // keys only on request
	d.Row = row
	if d.CanWrite {
		if t, err := h.b.Twin(id); err == nil {
			d.Twin = &t
		} else {
			d.TwinErr = err.Error()
		}
		d.C2D = newestFirst(h.b.C2DMessages(id), 20)
		for _, f := range slices.Backward(h.b.C2DFeedback()) {
			if f.DeviceID == id.DeviceID && f.ModuleID == id.ModuleID && len(d.Feedback) < 10 {
				d.Feedback = append(d.Feedback, f)
			}
		}
		b := h.b.Telemetry(0, id.DeviceID, 20)
		for _, e := range slices.Backward(b.Events) {
			if e.ModuleID == id.ModuleID {
				d.Events = append(d.Events, e)
			}
		}
	}
	for _, rj := range slices.Backward(h.b.Rejections()) {
		if rj.DeviceID == id.DeviceID && rj.ModuleID == id.ModuleID && len(d.Recent) < 5 {
			d.Recent = append(d.Recent, rj)
		}
	}
	return d, nil
}

func (h *Handler) device(w http.ResponseWriter, r *http.Request, s *uiSession) {
	h.showDevice(w, r, s, identityOf(r), http.StatusOK, func(*deviceData) {}, r.URL.Query().Get("flash"), "")
}

// showDevice renders a device page; edit adds what a form produced.
func (h *Handler) showDevice(w http.ResponseWriter, r *http.Request, s *uiSession, id iothub.Identity, status int, edit func(*deviceData), flash, errText string) {
	d, err := h.deviceData(id, s)
	if err != nil {
		h.render(w, r, http.StatusNotFound, "error", view{Title: "Not found", Session: s, Error: err.Error()})
		return
	}
	edit(&d)
	title := "Device " + id.DeviceID
	if id.IsModule() {
		title = "Module " + id.String()
	}
	q := url.Values{"device": {id.DeviceID}}
	if id.IsModule() {
		q.Set("module", id.ModuleID)
	}
	h.render(w, r, status, "device", view{Title: title, Nav: "devices", Session: s, Events: "/ui/events/device?" + q.Encode(),
		Flash: flash, Error: errText, Data: d})
}

// done redirects back to the device page with a message (post/redirect/get).
func done(w http.ResponseWriter, r *http.Request, id iothub.Identity, flash string) {
	u := deviceURL(id)
	sep := "?"
	if id.IsModule() {
		sep = "&"
	}
	http.Redirect(w, r, u+sep+"flash="+url.QueryEscape(flash), http.StatusSeeOther)
}

func (h *Handler) revealKeys(w http.ResponseWriter, r *http.Request, s *uiSession) {
	id := identityOf(r)
	if !s.may(iothub.RegistryRead) {
		http.Error(w, "policy "+s.policy+" may not read the registry", http.StatusForbidden)
		return
	}
	row, _, err := h.b.Device(id)
	h.log.Info("dashboard: keys revealed", "deviceId", id.DeviceID, "moduleId", id.ModuleID, "policy", s.policy, "remoteAddr", r.RemoteAddr)
	h.showDevice(w, r, s, id, http.StatusOK, func(d *deviceData) {
		if err == nil {
			d.Keys = &row.Device
		}
	}, "", "")
}

func (h *Handler) needService(w http.ResponseWriter, s *uiSession) bool {
	if s.may(iothub.ServiceConnect) {
		return true
	}
	http.Error(w, "policy "+s.policy+" has no ServiceConnect", http.StatusForbidden)
	return false
}

func (h *Handler) updateTwin(w http.ResponseWriter, r *http.Request, s *uiSession) {
	if !h.needService(w, s) {
		return
	}
	id := identityOf(r)
	patch := strings.TrimSpace(r.PostForm.Get("patch"))
	var err error
	var t iothub.Twin
	if !json.Valid([]byte(patch)) || !strings.HasPrefix(patch, "{") {
		err = errors.New(`the desired patch must be a JSON object, for example {"interval": 10}; null removes a property`)
	} else {
		t, err = h.b.UpdateDesired(r.Context(), id, []byte(patch))
	}
	if err != nil {
		h.showDevice(w, r, s, id, http.StatusBadRequest, func(d *deviceData) { d.Form = r.PostForm }, "", "Desired properties not changed: "+err.Error())
		return
	}
	done(w, r, id, fmt.Sprintf("Desired properties updated (version %d).", t.DesiredVersion()))
}

func (h *Handler) sendC2D(w http.ResponseWriter, r *http.Request, s *uiSession) {
	if !h.needService(w, s) {
		return
	}
	id := identityOf(r)
	f := r.PostForm
	m, err := c2dFromForm(f)
	var st iothub.C2DStatus
	if err == nil {
		st, err = h.b.SendC2D(r.Context(), id, m)
	}
	if err != nil {
		h.showDevice(w, r, s, id, http.StatusBadRequest, func(d *deviceData) { d.Form = f }, "", "Message not sent: "+err.Error())
		return
	}
	done(w, r, id, fmt.Sprintf("Message %s sent: %s.", st.MessageID, st.State))
}

func c2dFromForm(f url.Values) (iothub.C2DMessage, error) {
	m := iothub.C2DMessage{Payload: []byte(f.Get("payload")), MessageID: strings.TrimSpace(f.Get("message_id")),
		ContentType: strings.TrimSpace(f.Get("content_type"))}
	var err error
	if m.Ack, err = iothub.ParseC2DAck(f.Get("ack")); err != nil {
		return m, err
	}
	if p := strings.TrimSpace(f.Get("properties")); p != "" {
		ps, err := iothub.ParseProperties(p)
		if err != nil {
			return m, fmt.Errorf("properties: %v (write them as a property bag: name=value&other=value)", err)
		}
		m.Properties = ps
	}
	return m, nil
}

func (h *Handler) invoke(w http.ResponseWriter, r *http.Request, s *uiSession) {
	if !h.needService(w, s) {
		return
	}
	id := identityOf(r)
	f := r.PostForm
	name := strings.TrimSpace(f.Get("method"))
	payload := strings.TrimSpace(f.Get("method_payload"))
	mv := &methodView{Name: name}
	timeout, err := strconv.Atoi(cmpOr(strings.TrimSpace(f.Get("timeout")), "30"))
	switch {
	case name == "":
		mv.Error = "name the method to invoke"
	case err != nil || timeout < 5 || timeout > 300:
		mv.Error = "the response timeout is a number of seconds from 5 to 300, as IoT Hub takes"
	case payload != "" && !json.Valid([]byte(payload)):
		mv.Error = `the payload must be JSON (for example {"delay": 2} or "text"), or empty`
	default:
		ctx, cancel := context.WithTimeout(r.Context(), time.Duration(timeout+5)*time.Second)
		defer cancel()
		start := h.opts.Now()
		res, err := h.b.InvokeMethod(ctx, id, name, []byte(payload), time.Duration(timeout)*time.Second)
		mv.Took = h.opts.Now().Sub(start).Round(time.Millisecond)
		if err != nil {
			mv.Error = err.Error()
		} else {
			mv.Status, mv.Payload = res.Status, prettyJSON(res.Payload)
		}
	}
	h.showDevice(w, r, s, id, http.StatusOK, func(d *deviceData) { d.Method, d.Form = mv, f }, "", "")
}

func cmpOr(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

// telemetryData is the live telemetry view.
type telemetryData struct {
	Device  string
	Events  []iothub.Event // newest first
	Skipped uint64
	Next    uint64
}

func (h *Handler) telemetry(w http.ResponseWriter, r *http.Request, s *uiSession) {
	dev := strings.TrimSpace(r.URL.Query().Get("device"))
	b := h.b.Telemetry(0, dev, pageSize)
	d := telemetryData{Device: dev, Next: b.Next, Skipped: b.Skipped}
	d.Events = slices.Clone(b.Events)
	slices.Reverse(d.Events)
	q := url.Values{"since": {strconv.FormatUint(b.Next, 10)}}
	if dev != "" {
		q.Set("device", dev)
	}
	h.render(w, r, http.StatusOK, "telemetry", view{Title: "Telemetry", Nav: "telemetry", Session: s, Events: "/ui/events/telemetry?" + q.Encode(), Data: d})
}

// rejectionsData is the list of refusals.
type rejectionsData struct {
	Device, Reason string
	Rows           []iothub.Rejection
	Pager          pager
	Reasons        []string // the reasons seen, for the filter
}

func (h *Handler) rejectionsData(r *http.Request) rejectionsData {
	q := r.URL.Query()
	d := rejectionsData{Device: strings.TrimSpace(q.Get("device")), Reason: strings.TrimSpace(q.Get("reason"))}
	var match []iothub.Rejection
	seen := map[string]bool{}
	for _, rj := range slices.Backward(h.b.Rejections()) {
		if !seen[string(rj.Reason)] {
			seen[string(rj.Reason)] = true
			d.Reasons = append(d.Reasons, string(rj.Reason))
		}
		if d.Device != "" && !strings.Contains(strings.ToLower(rj.DeviceID+"/"+rj.ModuleID+" "+rj.ClientID), strings.ToLower(d.Device)) {
			continue
		}
		if d.Reason != "" && string(rj.Reason) != d.Reason {
			continue
		}
		match = append(match, rj)
	}
	slices.Sort(d.Reasons)
	d.Pager = newPager(r, len(match))
	if len(match) > 0 {
		d.Rows = match[d.Pager.From-1 : d.Pager.To]
	}
	return d
}

func (h *Handler) rejections(w http.ResponseWriter, r *http.Request, s *uiSession) {
	h.render(w, r, http.StatusOK, "rejections", view{Title: "Rejections", Nav: "rejections", Session: s,
		Events: "/ui/events/rejections?" + r.URL.RawQuery, Data: h.rejectionsData(r)})
}

func (h *Handler) feedback(w http.ResponseWriter, r *http.Request, s *uiSession) {
	h.render(w, r, http.StatusOK, "feedback", view{Title: "C2D feedback", Nav: "feedback", Session: s,
		Events: "/ui/events/feedback", Data: newestFirst(h.b.C2DFeedback(), 1000)})
}

func (h *Handler) section(w http.ResponseWriter, r *http.Request, s *uiSession) {
	id := r.PathValue("section")
	for _, sec := range h.opts.Sections {
		if sec.ID != id {
			continue
		}
		body, err := sec.Render(r)
		if err != nil {
			h.render(w, r, http.StatusInternalServerError, "error", view{Title: sec.Title, Session: s, Error: err.Error()})
			return
		}
		h.render(w, r, http.StatusOK, "section", view{Title: sec.Title, Nav: "x-" + sec.ID, Session: s, Data: body})
		return
	}
	h.render(w, r, http.StatusNotFound, "error", view{Title: "Not found", Session: s, Error: "no section " + id + " in this hub"})
}
