package iothub

import (
	"fmt"
	"math"
)

// Limits are a hub's throttles and its daily message quota (docs/iothub-behavior.md §6). The
// zero value has no limits: every throttle off and the quota unbounded. fakehub takes them as
// Options.Limits (fakehub.Limits is this type, fakehub.TierLimits fills them from IoT Hub's
// table for a tier) and serves them as a hubkit extension: GET and PUT /hubkit/limits read
// and replace them while the hub runs. Each field can be set on its own (a D2C limit of 2/s:
// Limits{D2C: Throttle{PerSecond: 2}}).
type Limits struct {
	Connections Throttle `json:"connections,omitzero"` // new device connections per second (hub-wide)
	D2C         Throttle `json:"d2c,omitzero"`         // device-to-cloud sends per second
	C2D         Throttle `json:"c2d,omitzero"`         // cloud-to-device sends per second (service API and Go API)
	TwinReads   Throttle `json:"twinReads,omitzero"`   // twin reads per second: device GETs and the service's GET /twins
	TwinUpdates Throttle `json:"twinUpdates,omitzero"` // twin updates per second: reported PATCHes and the service's PATCH/PUT
	Methods     Throttle `json:"methods,omitzero"`     // direct methods, in 4 KB chunks of their payload per second
	Registry    Throttle `json:"registry,omitzero"`    // identity registry operations (service API /devices) per second
	// DailyMessages is the daily message quota in meter units (0: none). The operations IoT
	// Hub bills are charged in MeterSize chunks of their size (0 to MeterSize bytes is one):
	// D2C and C2D messages, direct methods (request and response), twin reads, updates,
	// desired-property notifications and twin queries (docs/iothub-behavior.md §14.9); the
	// count starts again at 00:00 UTC of the hub's clock.
	DailyMessages int64 `json:"dailyMessages,omitempty"`
	// MeterSize is the quota's meter in bytes: 4096 (0 means 4096), 512 on the free tier.
	MeterSize int `json:"meterSize,omitempty"`
}

// Throttle is one operation throttle with IoT Hub's traffic shaping: requests above the rate
// are first accepted at once (Burst), then queued and served at the rate (Backlog: the PUBACK
// or the answer is late), then refused with 429002 ThrottleBacklogLimitExceeded
// (docs/iothub-behavior.md §6.2). The page gives no sizes ("for the first minute or two"): by
// default Burst and Backlog each hold one minute of the rate ([I], §6.2).
type Throttle struct {
	PerSecond float64 `json:"perSecond"`         // the limit rate; 0: no limit
	Burst     int     `json:"burst,omitempty"`   // operations accepted at once above the rate; 0: 60 s of the rate (at least 1)
	Backlog   int     `json:"backlog,omitempty"` // operations queued at the rate once the burst is spent; 0: 60 s of the rate; negative: none
}

// On reports whether the throttle limits anything.
func (t Throttle) On() bool { return t.PerSecond > 0 }

// BurstSize is the burst in force: Burst, or 60 s of the rate (at least 1) when Burst is 0.
func (t Throttle) BurstSize() float64 {
	if t.Burst > 0 {
		return float64(t.Burst)
	}
	return math.Max(1, math.Round(60*t.PerSecond))
}

// BacklogSize is the backlog in force: Backlog, none when it is negative, or 60 s of the rate
// (at least 1) when it is 0.
func (t Throttle) BacklogSize() float64 {
	switch {
	case t.Backlog < 0:
		return 0
	case t.Backlog > 0:
		return float64(t.Backlog)
	}
	return math.Max(1, math.Round(60*t.PerSecond))
}

// Throttles lists the throttles by the names the CLI and the docs use ("connections",
// "d2c", "c2d", "twin-reads", "twin-updates", "methods", "registry"), in that order, as
// pointers into l.
func (l *Limits) Throttles() []NamedThrottle {
	return []NamedThrottle{
		{"connections", &l.Connections}, {"d2c", &l.D2C}, {"c2d", &l.C2D}, {"twin-reads", &l.TwinReads},
		{"twin-updates", &l.TwinUpdates}, {"methods", &l.Methods}, {"registry", &l.Registry},
	}
}

// NamedThrottle is one of Limits.Throttles.
type NamedThrottle struct {
	Name     string
	Throttle *Throttle
}

// Validate reports the first field that no hub could apply: a negative or non-finite rate, a
// negative burst, a negative quota or meter. The error is an *Error with
// CodeArgumentInvalid naming the field.
func (l Limits) Validate() error {
	for _, nt := range l.Throttles() {
		t := *nt.Throttle
		switch {
		case t.PerSecond < 0 || math.IsNaN(t.PerSecond) || math.IsInf(t.PerSecond, 0):
			return Errorf(CodeArgumentInvalid, "%s: perSecond %g: want operations per second, 0 (no limit) or more", nt.Name, t.PerSecond)
		case t.Burst < 0:
			return Errorf(CodeArgumentInvalid, "%s: burst %d: want 0 (60 s of the rate) or more", nt.Name, t.Burst)
		}
	}
	if l.DailyMessages < 0 {
		return Errorf(CodeArgumentInvalid, "dailyMessages %d: want 0 (no quota) or more", l.DailyMessages)
	}
	if l.MeterSize < 0 {
		return Errorf(CodeArgumentInvalid, "meterSize %d: want bytes (0: 4096)", l.MeterSize)
	}
	return nil
}

// LimitsStatus is the answer of GET and PUT /hubkit/limits: the limits in force and how much
// of the day's quota is used.
type LimitsStatus struct {
	Limits Limits `json:"limits"`
	// QuotaDay is the UTC date (2006-01-02), by the hub's clock, the quota counts for.
	QuotaDay string `json:"quotaDay"`
	// QuotaUsed is how many meter units of that day's quota are used.
	QuotaUsed int64 `json:"quotaUsed"`
}

// ThrottleNamed returns the throttle named name (see Throttles), or an error listing the names.
func (l *Limits) ThrottleNamed(name string) (*Throttle, error) {
	for _, nt := range l.Throttles() {
		if nt.Name == name {
			return nt.Throttle, nil
		}
	}
	return nil, fmt.Errorf("unknown limit %q: want connections, d2c, c2d, twin-reads, twin-updates, methods or registry", name)
}
