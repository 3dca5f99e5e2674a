package fakehub

import (
	"context"
	"net"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/hubkit/hubkit/pkg/fakehub/internal/dashboard"
	"github.com/hubkit/hubkit/pkg/iothub"
)

// dashboardState is the Server's dashboard, made once.
type dashboardState struct {
	h *dashboard.Handler
}

func newDashboardState(s *Server) *dashboardState {
	return &dashboardState{h: dashboard.New(dashboardBackend{s}, dashboard.Options{
		HostName: s.opts.HostName, Now: s.realNow, Rand: s.opts.Rand, Logger: s.log, // sessions outlive clock moves, as service tokens do
		Sections: s.opts.DashboardSections,
	})}
}

// DashboardSection is a page an embedding program adds to the dashboard: a
// link in the navigation to /ui/x/{ID}, and the HTML Render returns (already
// escaped: render it with html/template). The hub's own pages (DPS, test
// controls, grades) are built in; this is for the rest.
type DashboardSection = dashboard.Section

// DashboardHandler returns the web dashboard (GET / and /ui/...): devices,
// live telemetry, rejections, twins, C2D and direct methods. Every page needs
// a login (DashboardLoginURL, or a pasted service connection string). The
// service listener serves it next to the REST API unless
// Options.NoDashboard.
func (s *Server) DashboardHandler() http.Handler { return s.dashboard.h }

// DashboardLoginURL mints a one-time login URL for the dashboard:
// {ServiceURL}/ui/login?token=... logs one browser in, with every right,
// once. It returns "" when the service API is not served or the dashboard
// is off.
func (s *Server) DashboardLoginURL() string {
	u := s.ServiceURL()
	if u == "" || s.opts.NoDashboard {
		return ""
	}
	tok, err := s.dashboard.h.NewLoginToken()
	if err != nil {
		s.log.Error("dashboard login token", "error", err)
		return ""
	}
	return u + dashboard.LoginPath(tok)
}

// httpHandler is what the service listener serves: /metrics, the dashboard
// at / and /ui/, and the service REST API everywhere else.
func (s *Server) httpHandler() http.Handler {
	api := s.writeDeadlines(s.ServiceHandler()) // the dashboard's event streams are long: no write deadline
	mux := http.NewServeMux()
	mux.Handle("/", api)
	mux.Handle("GET /metrics", s.metricsGuard(s.MetricsHandler()))
	if !s.opts.NoDashboard {
		mux.Handle("/ui/", s.dashboard.h)
		mux.Handle("GET /{$}", s.dashboard.h)
	}
	return mux
}

// metricsGuard serves /metrics to loopback clients, to every client with
// Options.MetricsPublic, and otherwise to logged-in dashboard browsers only.
func (s *Server) metricsGuard(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if s.opts.MetricsPublic || isLoopback(r.RemoteAddr) || s.dashboard.h.LoggedIn(r) {
			next.ServeHTTP(w, r)
			return
		}
		http.Error(w, "/metrics answers loopback clients only; start fakehub with --metrics-public (Options.MetricsPublic) to let Prometheus scrape it from elsewhere", http.StatusForbidden)
	})
}

func isLoopback(remote string) bool {
	host, _, err := net.SplitHostPort(remote)
	if err != nil {
		host = remote
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// dashboardBackend is the dashboard's view of the Server (dashboard.Backend).
type dashboardBackend struct{ s *Server }

var _ dashboard.Backend = dashboardBackend{}

func (b dashboardBackend) Policy(name string) (iothub.AccessPolicy, bool) {
	return b.s.opts.Registry.Policy(name)
}

func (b dashboardBackend) Overview() dashboard.Overview {
	s := b.s
	return dashboard.Overview{
		HostName: s.opts.HostName, MQTTAddr: s.Addr(), ServiceURL: s.ServiceURL(),
		Devices: s.opts.Registry.count(), Connected: s.sessions.count(), Telemetry: s.telemetry.nextSeq() - 1,
		Rejections: s.rejections.count(), C2DQueued: s.cloud.c2d.Depth(),
		MetricsPath: "/metrics", LoopbackOnly: !s.opts.MetricsPublic,
	}
}

func (b dashboardBackend) Devices(q dashboard.DeviceQuery) ([]dashboard.DeviceRow, int) {
	s := b.s
	search := strings.ToLower(q.Search)
	ids := s.opts.Registry.deviceIDs() // sorted; records are read for the page only
	match := ids[:0]
	for _, id := range ids {
		if search != "" && !strings.Contains(strings.ToLower(id), search) {
			continue
		}
		if q.State != "" && (q.State == "connected") != s.Connected(iothub.Identity{DeviceID: id}) {
			continue
		}
		match = append(match, id)
	}
	if q.Limit <= 0 || q.Offset >= len(match) {
		return nil, len(match)
	}
	page := match[q.Offset:min(q.Offset+q.Limit, len(match))]
	rows := make([]dashboard.DeviceRow, 0, len(page))
	for _, id := range page {
		if d, ok := s.opts.Registry.Get(iothub.Identity{DeviceID: id}); ok {
			rows = append(rows, b.row(d))
		}
	}
	return rows, len(match)
}

// row fills a registry record's live fields.
func (b dashboardBackend) row(d iothub.Device) dashboard.DeviceRow {
	s := b.s
	id := d.Identity()
	r := dashboard.DeviceRow{Device: s.live(d), LastActivity: s.lastActivity(id)}
	if !id.IsModule() {
		ms, _ := s.opts.Registry.Modules(id.DeviceID)
		r.Modules = len(ms)
	}
	if ss := s.cloud.sessionFor(id); ss != nil {
		subs := make([]string, 0, 4)
		for f := range ss.subscriptions() {
			subs = append(subs, f)
		}
		slices.Sort(subs)
		r.Conn = &dashboard.Connection{
			Transport: transportName(ss.cl.Net.Listener), Auth: authName(ss.authScope),
			RemoteAddr: ss.remote, ConnectedAt: ss.connectedAt, TokenExpiry: ss.expiry,
			Subscriptions: subs, ModelID: ss.userName.ModelID,
		}
	}
	return r
}

// transportName names a listener for people.
func transportName(listener string) string {
	switch listener {
	case "mqtts":
		return "MQTT over TLS"
	case "mqtt":
		return "MQTT (plaintext)"
	}
	return listener
}

func authName(scope string) string {
	switch scope {
	case "hub":
		return "SAS, policy token"
	case "":
		return "SAS"
	}
	return "SAS, " + scope + " key"
}

func (b dashboardBackend) Device(id iothub.Identity) (dashboard.DeviceRow, []dashboard.DeviceRow, error) {
	d, ok := b.s.opts.Registry.Get(id)
	if !ok {
		return dashboard.DeviceRow{}, nil, b.s.opts.Registry.Exists(id)
	}
	var mods []dashboard.DeviceRow
	if !id.IsModule() {
		ms, _ := b.s.opts.Registry.Modules(id.DeviceID)
		for _, m := range ms {
			mods = append(mods, b.row(m))
		}
	}
	return b.row(d), mods, nil
}

func (b dashboardBackend) Twin(id iothub.Identity) (iothub.Twin, error) { return b.s.Twin(id) }

func (b dashboardBackend) UpdateDesired(ctx context.Context, id iothub.Identity, patch []byte) (iothub.Twin, error) {
	return b.s.UpdateDesired(ctx, id, patch)
}

func (b dashboardBackend) SendC2D(ctx context.Context, id iothub.Identity, m iothub.C2DMessage) (iothub.C2DStatus, error) {
	return serviceBackend(b).SendC2D(ctx, id, m)
}

func (b dashboardBackend) C2DMessages(id iothub.Identity) []iothub.C2DStatus {
	return b.s.C2DMessages(id)
}

func (b dashboardBackend) C2DFeedback() []iothub.C2DFeedback { return b.s.C2DFeedback() }

func (b dashboardBackend) InvokeMethod(ctx context.Context, id iothub.Identity, name string, payload []byte, timeout time.Duration) (iothub.MethodResult, error) {
	return b.s.InvokeMethodOn(ctx, id, name, payload, timeout)
}

func (b dashboardBackend) Rejections() []iothub.Rejection { return b.s.Rejections() }

// Telemetry samples the capture buffer from its newest message back: it
// copies at most max messages and looks at no more than maxScan, so that a
// live view holds the buffer's lock (which every captured message takes)
// only briefly, whatever the traffic.
func (b dashboardBackend) Telemetry(since uint64, deviceID string, max int) dashboard.TelemetryBatch {
	const maxScan = 2000
	return b.s.telemetry.sample(since, deviceID, max, maxScan)
}

func (b dashboardBackend) GradeCases() []iothub.GradeCase { return serviceBackend(b).GradeCases() }

func (b dashboardBackend) StartGrade(req iothub.GradeRequest) (iothub.GradeReport, error) {
	return b.s.StartGrade(req)
}

func (b dashboardBackend) GradeReport(id string) (iothub.GradeReport, bool) {
	return b.s.GradeReport(id)
}
func (b dashboardBackend) GradeReports() []iothub.GradeReport { return b.s.GradeReports() }
func (b dashboardBackend) CancelGrade(id string) bool         { return b.s.CancelGrade(id) }

func (b dashboardBackend) Changes() <-chan struct{} {
	_, ch := b.s.activity.changes()
	return ch
}

// sample returns the newest messages from sequence number since on (of
// deviceID only, when not ""), at most max of them, oldest first, looking
// at no more than maxScan messages; Skipped counts the matching messages
// left out (unfiltered: exactly; filtered: those seen).
// The records are copied under the lock and their Events built after it.
func (r *ring) sample(since uint64, deviceID string, max, maxScan int) dashboard.TelemetryBatch {
	r.mu.Lock()
	out := dashboard.TelemetryBatch{Next: r.next}
	since = min(maxSeq(since, r.oldest()), r.next)
	if max <= 0 {
		r.mu.Unlock()
		return out
	}
	var picked []uint64
	scanned := 0
	for seq := r.next; seq > since && scanned < maxScan; scanned++ {
		seq--
		if deviceID != "" && r.at(seq).conn.id.DeviceID != deviceID {
			continue
		}
		if len(picked) == max {
			out.Skipped++
			continue
		}
		picked = append(picked, seq)
	}
	if deviceID == "" {
		out.Skipped = r.next - since - uint64(len(picked))
	}
	recs := make([]record, len(picked))
	for i, seq := range picked {
		recs[i] = *r.at(seq)
	}
	r.mu.Unlock()
	out.Events = make([]iothub.Event, len(picked))
	for i, seq := range picked {
		out.Events[len(picked)-1-i] = recs[i].event(seq)
	}
	return out
}

func maxSeq(a, b uint64) uint64 {
	if a > b {
		return a
	}
	return b
}

// deviceIDs returns the registry's device IDs, sorted.
func (r *Registry) deviceIDs() []string {
	r.mu.RLock()
	ids := make([]string, 0, len(r.devices))
	for id := range r.devices {
		ids = append(ids, id)
	}
	r.mu.RUnlock()
	slices.Sort(ids)
	return ids
}

// nextSeq returns the sequence number the next captured message gets.
func (r *ring) nextSeq() uint64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.next
}

// count returns how many rejections are kept.
func (l *rejectionLog) count() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.list)
}
