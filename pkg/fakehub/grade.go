package fakehub

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/hubkit/hubkit/pkg/fakehub/internal/restapi"
	"github.com/hubkit/hubkit/pkg/grade"
	"github.com/hubkit/hubkit/pkg/iothub"
)

// The device grader (pkg/grade, docs/iothub-behavior.md §15) run by the hub: GradeHub is
// the grader's view of the hub; Grade runs a grade and waits; StartGrade runs one in the
// background (POST /hubkit/grade), GradeReport follows it.

// GradeHub returns the hub as the device grader drives it (grade.Run(ctx, hub.GradeHub(),
// opts)): its packets, clock, faults, limits and cloud side.
func (s *Server) GradeHub() grade.Hub { return gradeHub{s} }

type gradeHub struct{ s *Server }

func (h gradeHub) ObservePackets(fn func(iothub.Packet)) func() { return h.s.ObservePackets(fn) }
func (h gradeHub) Connected(id iothub.Identity) bool            { return h.s.Connected(id) }

func (h gradeHub) ConnectedFrom(ip string) []iothub.Identity {
	var out []iothub.Identity
	key := grade.HostKey(ip)
	for _, ss := range h.s.sessions.all() {
		if grade.HostKey(ss.cl.Net.Remote) == key && !ss.cl.Closed() {
			out = append(out, ss.id)
		}
	}
	slices.SortFunc(out, func(a, b iothub.Identity) int { return strings.Compare(a.String(), b.String()) })
	return out
}

func (h gradeHub) Subscriptions(id iothub.Identity) (map[string]byte, bool) {
	ss := h.s.cloud.sessionFor(id)
	if ss == nil {
		return nil, false
	}
	return ss.subscriptions(), true
}

func (h gradeHub) Now() time.Time             { return h.s.clock.Now() }
func (h gradeHub) ClockOffset() time.Duration { return h.s.clock.Offset() }
func (h gradeHub) SetClock(t time.Time)       { h.s.clock.Set(t) }
func (h gradeHub) SetClockOffset(d time.Duration) {
	if d == 0 {
		h.s.clock.Reset()
		return
	}
	h.s.clock.Set(h.s.realNow().Add(d))
}
func (h gradeHub) TokenGrace() time.Duration { return h.s.opts.TokenExpiryGrace }

func (h gradeHub) Drop(id iothub.Identity, reason string, code iothub.ErrorCode) error {
	return h.s.Drop(id, DropOptions{Reason: reason, ErrorCode: code})
}

func (h gradeHub) RefuseConnections(id iothub.Identity, d time.Duration) {
	h.s.RefuseConnections(id, d)
}
func (h gradeHub) Restart(keepState bool) { h.s.Restart(keepState) }

func (h gradeHub) PresentTLSDrill(name string) (func(), error) { return h.s.PresentTLSDrill(name) }

func (h gradeHub) Throttle(id iothub.Identity, d time.Duration) error {
	return h.s.OpenFaultWindow(id, FaultInvokeThrottling, 0, d)
}

func (h gradeHub) SetDailyQuota(n int64) func() {
	old := h.s.Limits()
	l := old
	l.DailyMessages = n
	h.s.SetLimits(l)
	return func() { h.s.SetLimits(old) }
}

func (h gradeHub) SendC2D(ctx context.Context, id iothub.Identity, m iothub.C2DMessage) (string, error) {
	return h.s.SendC2DTo(ctx, id, m)
}

func (h gradeHub) WaitC2D(ctx context.Context, msgID string) (iothub.C2DStatus, error) {
	return h.s.WaitC2DState(ctx, msgID, nil)
}

func (h gradeHub) InvokeMethod(ctx context.Context, id iothub.Identity, name string, payload []byte, timeout time.Duration) (iothub.MethodResult, error) {
	return h.s.InvokeMethodOn(ctx, id, name, payload, timeout)
}

func (h gradeHub) UpdateDesired(ctx context.Context, id iothub.Identity, patch []byte) error {
	_, err := h.s.UpdateDesired(ctx, id, patch)
	return err
}

// Lacks names what this hub cannot do for a grade.
func (h gradeHub) Lacks(capability string) string {
	switch capability {
	case grade.CapTLSDrills:
		switch {
		case h.s.tlsLn == nil:
			return "the hub has no MQTT over TLS listener (plaintext only: --insecure-tcp)"
		case h.s.opts.TLSDrills == nil:
			return "the hub has no TLS drill chains to present (fakehub --ca DIR gives them; Options.TLSDrills in Go)"
		}
		return ""
	case grade.CapDPS:
		if h.s.dps == nil {
			return "the hub runs no Device Provisioning Service (fakehub --dps, Options.DPS)"
		}
		return ""
	}
	return "unknown capability " + capability
}

// GradeOptions turns a grade request into the grader's options (*iothub.Error
// 400004 ArgumentInvalid for a bad request).
func (s *Server) GradeOptions(req iothub.GradeRequest) (grade.Options, error) {
	id := iothub.Identity{DeviceID: req.DeviceID, ModuleID: req.ModuleID}
	if id.DeviceID == "" {
		return grade.Options{}, iothub.Errorf(iothub.CodeArgumentInvalid, `a grade needs a "deviceId"`)
	}
	if err := s.opts.Registry.Exists(id); err != nil {
		return grade.Options{}, err
	}
	if _, err := grade.Select(req.Cases); err != nil {
		return grade.Options{}, iothub.Errorf(iothub.CodeArgumentInvalid, "%v", err)
	}
	o := grade.Options{Identity: id, Cases: req.Cases, Method: req.Method, MethodPayload: req.MethodPayload,
		DeviceClock: req.DeviceClock, RegistrationID: req.RegistrationID, Logger: s.log.With("grade", id.String())}
	switch req.DeviceClock {
	case "", iothub.GradeClockHub, iothub.GradeClockOwn:
	default:
		return grade.Options{}, iothub.Errorf(iothub.CodeArgumentInvalid, "deviceClock %q: want %q (the device reads the hub's clock) or %q", req.DeviceClock, iothub.GradeClockHub, iothub.GradeClockOwn)
	}
	if req.WaitConnect != "" {
		d, err := ParseDuration(req.WaitConnect)
		if err != nil || d <= 0 {
			return grade.Options{}, iothub.Errorf(iothub.CodeArgumentInvalid, "waitConnect %q: want a positive duration such as 2m", req.WaitConnect)
		}
		o.WaitConnect = d
	}
	return o, nil
}

// Grade grades an identity and returns the report once every case has a verdict (or ctx
// ended). It refuses while another grade runs on this hub (409000: a grade moves the
// hub's clock and limits).
func (s *Server) Grade(ctx context.Context, req iothub.GradeRequest) (iothub.GradeReport, error) {
	o, err := s.GradeOptions(req)
	if err != nil {
		return iothub.GradeReport{}, err
	}
	run, err := s.grades.begin(s, o)
	if err != nil {
		return iothub.GradeReport{}, err
	}
	return run.execute(ctx, s, o)
}

// StartGrade starts a grade in the background and returns its first report (State
// running); GradeReport follows it. Close cancels it.
func (s *Server) StartGrade(req iothub.GradeRequest) (iothub.GradeReport, error) {
	o, err := s.GradeOptions(req)
	if err != nil {
		return iothub.GradeReport{}, err
	}
	run, err := s.grades.begin(s, o)
	if err != nil {
		return iothub.GradeReport{}, err
	}
	go func() { _, _ = run.execute(s.grades.ctx, s, o) }()
	return run.report(), nil
}

// GradeReport returns the report of a grade (running or finished), or false.
func (s *Server) GradeReport(id string) (iothub.GradeReport, bool) {
	if r := s.grades.get(id); r != nil {
		return r.report(), true
	}
	return iothub.GradeReport{}, false
}

// GradeReports returns the reports of the last grades, newest first.
func (s *Server) GradeReports() []iothub.GradeReport {
	s.grades.mu.Lock()
	runs := slices.Clone(s.grades.runs)
	s.grades.mu.Unlock()
	out := make([]iothub.GradeReport, 0, len(runs))
	for i := len(runs) - 1; i >= 0; i-- {
		out = append(out, runs[i].report())
	}
	return out
}

// CancelGrade stops a running grade (its report ends canceled); false when there is no
// such grade.
func (s *Server) CancelGrade(id string) bool {
	r := s.grades.get(id)
	if r == nil {
		return false
	}
	r.cancel()
	return true
}

// gradeRuns are the hub's grades: at most one running.
type gradeRuns struct {
	once   sync.Once
	ctx    context.Context // ended by Close
	stop   context.CancelFunc
	mu     sync.Mutex
	runs   []*gradeRun
	seq    int
	active *gradeRun
}

type gradeRun struct {
	id     string
	mu     sync.Mutex
	rep    iothub.GradeReport
	cancel context.CancelFunc
	ctx    context.Context
}

func (g *gradeRuns) init() {
	g.once.Do(func() { g.ctx, g.stop = context.WithCancel(context.Background()) })
}

// errGradeRunning is the refusal of a second grade.
var errGradeRunning = errors.New("fakehub: a grade is running")

func (g *gradeRuns) begin(s *Server, o grade.Options) (*gradeRun, error) {
	g.init()
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.active != nil {
		return nil, &iothub.Error{Code: iothub.CodeGenericConflict, Err: errGradeRunning,
			Message: fmt.Sprintf("grade %s of %s is running: one grade at a time (it moves the hub's clock and limits); cancel it with DELETE /hubkit/grade/%s", g.active.id, g.active.report().Identity(), g.active.id)}
	}
	g.seq++
	id := fmt.Sprintf("g%d-%s", g.seq, s.realNow().UTC().Format("20060102T150405Z"))
	ctx, cancel := context.WithCancel(g.ctx)
	r := &gradeRun{id: id, cancel: cancel, ctx: ctx,
		rep: iothub.GradeReport{ID: id, DeviceID: o.Identity.DeviceID, ModuleID: o.Identity.ModuleID, DeviceClock: o.DeviceClock, State: iothub.GradeRunning, Started: s.realNow().UTC()}}
	if r.rep.DeviceClock == "" {
		r.rep.DeviceClock = iothub.GradeClockHub
	}
	g.active = r
	g.runs = append(g.runs, r)
	if len(g.runs) > grade.KeptReports {
		g.runs = slices.Delete(g.runs, 0, len(g.runs)-grade.KeptReports)
	}
	return r, nil
}

// execute runs the grade (with ctx or the run's own context ending it) and records it.
func (r *gradeRun) execute(ctx context.Context, s *Server, o grade.Options) (iothub.GradeReport, error) {
	defer r.cancel()
	s.activity.changed() // a new row on the dashboard's grades page
	stop := context.AfterFunc(ctx, r.cancel)
	defer stop()
	o.ID, o.Now = r.id, s.realNow
	o.Progress = func(rep iothub.GradeReport) {
		r.mu.Lock()
		r.rep = rep
		r.mu.Unlock()
		s.activity.changed() // the dashboard's grade pages follow it live
	}
	rep, err := grade.Run(r.ctx, s.GradeHub(), o)
	if rep.ID != "" {
		o.Progress(rep)
	}
	s.grades.mu.Lock()
	if s.grades.active == r {
		s.grades.active = nil
	}
	s.grades.mu.Unlock()
	s.activity.changed()
	return rep, err
}

func (r *gradeRun) report() iothub.GradeReport {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.rep
}

func (g *gradeRuns) get(id string) *gradeRun {
	g.mu.Lock()
	defer g.mu.Unlock()
	for _, r := range g.runs {
		if r.id == id {
			return r
		}
	}
	return nil
}

// close cancels every running grade (Server.Close).
func (g *gradeRuns) close() {
	g.init()
	g.stop()
}

// The service API's grader routes (restapi.Grader) over the Go API.

var _ restapi.Grader = serviceBackend{}

func (b serviceBackend) GradeCases() []iothub.GradeCase {
	var out []iothub.GradeCase
	for _, c := range grade.Cases() {
		out = append(out, c.Info())
	}
	return out
}

func (b serviceBackend) StartGrade(req iothub.GradeRequest) (iothub.GradeReport, error) {
	return b.s.StartGrade(req)
}

func (b serviceBackend) GradeReport(id string) (iothub.GradeReport, bool) { return b.s.GradeReport(id) }
func (b serviceBackend) GradeReports() []iothub.GradeReport               { return b.s.GradeReports() }
func (b serviceBackend) CancelGrade(id string) bool                       { return b.s.CancelGrade(id) }
