package dashboard

import (
	"fmt"
	"hash/fnv"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/hubkit/hubkit/pkg/iothub"
)

// Live updates are server-sent events (EventSource), two kinds:
//
//	event: replace            data: {element id}\n{HTML}    the element's content is replaced
//	event: prepend            data: {element id}\n{HTML}    rows are put first (unless paused)
//
// The HTML is rendered by the same templates as the page. A view re-renders
// its live parts when the hub signals a change (Backend.Changes), at most
// once per Options.Tick, and sends only the parts that changed; the
// telemetry view samples new messages once per tick.

// maxLiveRows bounds the telemetry rows one event carries.
const maxLiveRows = 25

// part is a live element of a page: its id and how to render its content.
type part struct {
	id     string
	render func() (string, error)
}

// fallbackEvery re-renders the parts even without a change signal, for
// what changes without one (C2D expiry, devices added to the registry).
const fallbackEvery = 5 * time.Second

func (h *Handler) events(w http.ResponseWriter, r *http.Request, s *uiSession) {
	fl, ok := w.(http.Flusher)
	if !ok {
		http.Error(w, "streaming unsupported", http.StatusInternalServerError)
		return
	}
	q := r.URL.Query()
	var parts []part
	var tele *teleFeed
	switch view := r.PathValue("view"); view {
	case "home":
		parts = []part{
			{"overview", func() (string, error) { return h.fragment("overview", h.homeData()) }},
			{"recent-rejections", func() (string, error) { return h.fragment("recent-rejections", h.homeData()) }},
		}
	case "devices":
		rq := &http.Request{URL: &url.URL{Path: "/ui/devices", RawQuery: r.URL.RawQuery}}
		parts = []part{{"device-list", func() (string, error) { return h.fragment("device-list", h.devicesData(rq)) }}}
	case "device":
		id := iothub.Identity{DeviceID: q.Get("device"), ModuleID: q.Get("module")}
		frag := func(name string) func() (string, error) {
			return func() (string, error) {
				d, err := h.deviceData(id, s)
				if err != nil {
					return "", err
				}
				return h.fragment(name, d)
			}
		}
		parts = []part{{"device-summary", frag("device-summary")}, {"device-rejections", frag("device-rejections")}}
		if s.may(iothub.ServiceConnect) {
			parts = append(parts, part{"twin", frag("twin")}, part{"c2d-list", frag("c2d-list")})
			tele = &teleFeed{device: id.DeviceID, module: id.ModuleID, target: "device-telemetry", next: h.b.Telemetry(0, id.DeviceID, 0).Next}
		}
	case "rejections":
		rq := &http.Request{URL: &url.URL{Path: "/ui/rejections", RawQuery: r.URL.RawQuery}}
		parts = []part{{"rejection-list", func() (string, error) { return h.fragment("rejection-list", h.rejectionsData(rq)) }}}
	case "feedback":
		parts = []part{{"feedback-list", func() (string, error) { return h.fragment("feedback-list", newestFirst(h.b.C2DFeedback(), 1000)) }}}
	case "hub":
		parts = []part{
			{"hub-clock", func() (string, error) { return h.fragment("hub-clock", h.hubData(s)) }},
			{"hub-faults", func() (string, error) { return h.fragment("hub-faults", h.hubData(s)) }},
			{"hub-limits", func() (string, error) { return h.fragment("hub-limits", h.hubData(s)) }},
		}
	case "dps":
		rq := &http.Request{URL: &url.URL{Path: "/ui/dps", RawQuery: r.URL.RawQuery}}
		parts = []part{{"dps-list", func() (string, error) {
			d, ok := h.dpsData(rq)
			if !ok {
				return "", errNoDPS
			}
			return h.fragment("dps-list", d)
		}}}
	case "grades":
		if !h.needService(w, s) {
			return
		}
		rq := &http.Request{URL: &url.URL{Path: "/ui/grades", RawQuery: r.URL.RawQuery}}
		parts = []part{{"grade-list", func() (string, error) { return h.fragment("grade-list", h.gradesData(rq, url.Values{})) }}}
	case "grade":
		if !h.needService(w, s) {
			return
		}
		frag := func(name string) func() (string, error) {
			return func() (string, error) {
				rep, ok := h.b.GradeReport(q.Get("id"))
				if !ok {
					return "", errNoGrade
				}
				return h.fragment(name, gradeData{Report: rep, CanWrite: true, CSRF: s.csrf})
			}
		}
		parts = []part{{"grade-summary", frag("grade-summary")}, {"grade-cases", frag("grade-cases")}}
	case "telemetry":
		if !s.may(iothub.ServiceConnect) {
			http.Error(w, "policy "+s.policy+" has no ServiceConnect", http.StatusForbidden)
			return
		}
		since, _ := strconv.ParseUint(q.Get("since"), 10, 64)
		tele = &teleFeed{device: strings.TrimSpace(q.Get("device")), target: "telemetry-rows", next: since, all: true}
	default:
		http.Error(w, "no live view "+view, http.StatusNotFound)
		return
	}

	// What the browser has (part id -> hash; the page was rendered with
	// this content), taken before the stream opens: a change after it is
	// sent, even one made the instant the browser sees the stream open.
	changes := h.b.Changes()
	sent := map[string]uint64{}
	for _, p := range parts {
		if html, err := p.render(); err == nil {
			sent[p.id] = hash(html)
		}
	}
	hd := w.Header()
	hd.Set("Content-Type", "text/event-stream")
	hd.Set("Cache-Control", "no-store")
	hd.Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	fmt.Fprint(w, "retry: 2000\n\n")
	fl.Flush()
	tick := time.NewTicker(h.opts.Tick)
	defer tick.Stop()
	heartbeat := time.NewTicker(15 * time.Second)
	defer heartbeat.Stop()
	ctx := r.Context()
	dirty := false
	fallback := max(int(fallbackEvery/h.opts.Tick), 1)
	ticks := 0
	for {
		select {
		case <-ctx.Done():
			return
		case <-changes:
			changes = h.b.Changes()
			dirty = true
			continue
		case <-heartbeat.C:
			fmt.Fprint(w, ": keep-alive\n\n")
		case <-tick.C:
		}
		wrote := false
		ticks++
		if dirty || ticks%fallback == 0 {
			dirty = false
			for _, p := range parts {
				html, err := p.render()
				if err != nil {
					continue // the identity was removed, say: the page will 404 on reload
				}
				if hv := hash(html); sent[p.id] != hv {
					sent[p.id] = hv
					writeEvent(w, "replace", p.id, html)
					wrote = true
				}
			}
		}
		if tele != nil {
			html, n := h.teleRows(tele)
			if n > 0 {
				writeEvent(w, "prepend", tele.target, html)
				wrote = true
			}
		}
		if wrote {
			fl.Flush()
		}
	}
}

// teleFeed is a telemetry view's position.
type teleFeed struct {
	device, module string
	target         string
	next           uint64
	all            bool // rows of the telemetry page (with the device column)
}

// teleRows renders the messages that arrived since the last call (the
// newest maxLiveRows of them) and how many there were.
func (h *Handler) teleRows(f *teleFeed) (string, int) {
	b := h.b.Telemetry(f.next, f.device, maxLiveRows)
	f.next = b.Next
	evs := slices.DeleteFunc(slices.Clone(b.Events), func(e iothub.Event) bool { return !f.all && e.ModuleID != f.module })
	if len(evs) == 0 && b.Skipped == 0 {
		return "", 0
	}
	slices.Reverse(evs)
	html, err := h.fragment("telemetry-rows", teleRowsData{Events: evs, Skipped: b.Skipped, All: f.all})
	if err != nil {
		h.log.Error("dashboard: rendering telemetry", "error", err)
		return "", 0
	}
	return html, len(evs) + int(min(b.Skipped, 1))
}

type teleRowsData struct {
	Events  []iothub.Event
	Skipped uint64
	All     bool
}

func writeEvent(w http.ResponseWriter, event, target, html string) {
	var b strings.Builder
	b.WriteString("event: ")
	b.WriteString(event)
	b.WriteString("\ndata: ")
	b.WriteString(target)
	for line := range strings.SplitSeq(html, "\n") {
		b.WriteString("\ndata: ")
		b.WriteString(strings.TrimSuffix(line, "\r"))
	}
	b.WriteString("\n\n")
	_, _ = w.Write([]byte(b.String()))
}

func hash(s string) uint64 {
	h := fnv.New64a()
	_, _ = h.Write([]byte(s))
	return h.Sum64()
}
