package fakehub

import (
	"cmp"
	"context"
	"fmt"
	"reflect"
	"slices"
	"time"

	"github.com/hubkit/hubkit/pkg/fakehub/internal/dashboard"
	"github.com/hubkit/hubkit/pkg/iothub"
	"github.com/hubkit/hubkit/pkg/iothub/dps"
)

// The dashboard's test-control and DPS pages over the Server: what
// /hubkit/clock, /hubkit/faults and /hubkit/reset change, and what the DPS
// holds.

func (b dashboardBackend) Controls() dashboard.Controls {
	s := b.s
	c := dashboard.Controls{Profile: string(s.opts.Profile), Quirks: quirksOn(s.opts.Quirks), Clock: s.clock.Reading(),
		Faults: s.faults.inForce(s.opts.Now())}
	if c.Profile == "" {
		c.Profile = string(ProfileAzure)
	}
	l := s.limits.get()
	for _, t := range []struct {
		op string
		t  Throttle
	}{
		{opConnect, l.Connections}, {opD2C, l.D2C}, {opC2D, l.C2D}, {opTwinRead, l.TwinReads},
		{opTwinUpdate, l.TwinUpdates}, {opMethods, l.Methods}, {opRegistry, l.Registry},
	} {
		row := dashboard.Limit{Operation: t.op, PerSecond: t.t.PerSecond, Throttled: s.metrics.throttledCount(t.op)}
		if t.t.On() {
			row.Burst, row.Backlog = int(t.t.BurstSize()), int(t.t.BacklogSize())
			if t.t.Backlog < 0 {
				row.Backlog = -1
			}
		}
		c.Limits = append(c.Limits, row)
	}
	day, used := s.limits.usage()
	c.Quota = dashboard.Quota{Day: day, Used: used, Limit: l.DailyMessages, MeterSize: cmp.Or(l.MeterSize, 4096)}
	for _, p := range ResetParts {
		c.ResetParts = append(c.ResetParts, string(p))
	}
	return c
}

// quirksOn names the Quirks switched on or set.
func quirksOn(q Quirks) []string {
	var out []string
	v := reflect.ValueOf(q)
	for i := range v.NumField() {
		if !v.Field(i).IsZero() {
			f := v.Type().Field(i)
			if f.Type.Kind() == reflect.Bool {
				out = append(out, f.Name)
			} else {
				out = append(out, fmt.Sprintf("%s=%v", f.Name, v.Field(i).Interface()))
			}
		}
	}
	return out
}

// inForce lists the faults in force at now, identity by identity.
func (f *faultTable) inForce(now time.Time) []dashboard.Fault {
	f.mu.Lock()
	defer f.mu.Unlock()
	target := func(id iothub.Identity) string {
		if id == allIdentities {
			return "every identity"
		}
		return id.String()
	}
	var out []dashboard.Fault
	if now.Before(f.refuseAll) {
		out = append(out, dashboard.Fault{Target: target(allIdentities), Kind: "refuse connections", Detail: "CONNACK 3, 400030", Until: f.refuseAll})
	}
	for id, until := range f.refuse {
		if now.Before(until) {
			out = append(out, dashboard.Fault{Target: target(id), Kind: "refuse connections", Detail: "CONNACK 3, 400030", Until: until})
		}
	}
	for id, d := range f.pubackDelay {
		out = append(out, dashboard.Fault{Target: target(id), Kind: "delay PUBACKs", Detail: "each telemetry PUBACK " + d.String() + " late"})
	}
	for id := range f.pubackDrop {
		out = append(out, dashboard.Fault{Target: target(id), Kind: "drop PUBACKs", Detail: "telemetry is captured, never acknowledged"})
	}
	for id := range f.twinSilent {
		out = append(out, dashboard.Fault{Target: target(id), Kind: "silence twin", Detail: "twin GETs and reported PATCHes go unanswered"})
	}
	for id, w := range f.windows {
		if w.active(now) || now.Before(w.from) {
			detail := fmt.Sprintf("%s=%s, %s", PropFaultOperationType, w.kind, w.code)
			if now.Before(w.from) {
				detail += ", from " + w.from.UTC().Format(time.RFC3339)
			}
			out = append(out, dashboard.Fault{Target: target(id), Kind: w.kind, Detail: detail, Until: w.until})
		}
	}
	slices.SortFunc(out, func(a, b dashboard.Fault) int {
		return cmp.Or(cmp.Compare(a.Kind, b.Kind), cmp.Compare(a.Target, b.Target))
	})
	return out
}

func (b dashboardBackend) MoveClock(ctx context.Context, c iothub.ClockChange) (iothub.ClockReading, error) {
	return serviceBackend(b).MoveClock(ctx, c)
}

func (b dashboardBackend) ClearFaults() { b.s.ClearFaults() }

func (b dashboardBackend) Reset(parts []string) error {
	return serviceBackend(b).Reset(context.Background(), parts)
}

func (b dashboardBackend) HasDPS() bool { return b.s.dps != nil }

func (b dashboardBackend) DPS() (dashboard.DPSState, bool) {
	d := b.s.dps
	if d == nil {
		return dashboard.DPSState{}, false
	}
	st := dashboard.DPSState{IDScope: d.IDScope(), HostName: d.HostName(), MQTTAddr: d.Addr(), URL: d.URL(),
		Enrollments: d.Enrollments(), Groups: d.Groups(), Registrations: d.Registrations("")}
	group := map[string]string{} // registration ID -> the group it registered through
	for _, g := range st.Groups {
		for _, r := range d.Registrations(g.EnrollmentGroupID) {
			group[r.RegistrationID] = g.EnrollmentGroupID
		}
	}
	for i, r := range st.Registrations {
		if g := group[r.RegistrationID]; g != "" && r.SymmetricKey == nil && r.X509 == nil {
			st.Registrations[i].SymmetricKey = &dps.AttestationResult{EnrollmentGroupID: g}
		}
	}
	for i := range st.Enrollments { // the pages never show keys
		st.Enrollments[i].Attestation = withoutKeys(st.Enrollments[i].Attestation)
	}
	for i := range st.Groups {
		st.Groups[i].Attestation = withoutKeys(st.Groups[i].Attestation)
	}
	return st, true
}

func withoutKeys(a dps.Attestation) dps.Attestation { return dps.Attestation{Type: a.Type} }
