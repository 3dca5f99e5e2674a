package iothub_test

import (
	"encoding/json"
	"errors"
	"math"
	"strings"
	"testing"

	"github.com/hubkit/hubkit/pkg/iothub"
)

// The JSON of /hubkit/limits (a hubkit extension: no Microsoft document to take a vector
// from, so the shape is written out here by hand, as README and docs/iothub-behavior.md §14.8
// show it).
func TestLimitsJSON(t *testing.T) {
	l := iothub.Limits{D2C: iothub.Throttle{PerSecond: 2, Burst: 2, Backlog: 2}, TwinReads: iothub.Throttle{PerSecond: 10}, DailyMessages: 100, MeterSize: 512}
	b, err := json.Marshal(iothub.LimitsStatus{Limits: l, QuotaDay: "2030-01-01", QuotaUsed: 7})
	if err != nil {
		t.Fatal(err)
	}
	want := `{"limits":{"d2c":{"perSecond":2,"burst":2,"backlog":2},"twinReads":{"perSecond":10},"dailyMessages":100,"meterSize":512},"quotaDay":"2030-01-01","quotaUsed":7}`
	if string(b) != want {
		t.Errorf("json.Marshal = %s\nwant            %s", b, want)
	}
	var back iothub.LimitsStatus
	if err := json.Unmarshal([]byte(want), &back); err != nil || back.Limits != l {
		t.Errorf("json.Unmarshal = %+v, %v; want %+v", back.Limits, err, l)
	}
	if b, _ := json.Marshal(iothub.Limits{}); string(b) != `{}` {
		t.Errorf("no limits = %s, want {}", b)
	}
}

func TestThrottleSizes(t *testing.T) {
	for _, tc := range []struct {
		t              iothub.Throttle
		burst, backlog float64
	}{
		{iothub.Throttle{PerSecond: 2}, 120, 120},
		{iothub.Throttle{PerSecond: 0.001}, 1, 1},
		{iothub.Throttle{PerSecond: 2, Burst: 3, Backlog: 4}, 3, 4},
		{iothub.Throttle{PerSecond: 2, Backlog: -1}, 120, 0},
	} {
		if got := tc.t.BurstSize(); got != tc.burst {
			t.Errorf("%+v.BurstSize() = %g, want %g", tc.t, got, tc.burst)
		}
		if got := tc.t.BacklogSize(); got != tc.backlog {
			t.Errorf("%+v.BacklogSize() = %g, want %g", tc.t, got, tc.backlog)
		}
	}
}

func TestLimitsValidate(t *testing.T) {
	for _, tc := range []struct {
		name string
		l    iothub.Limits
		want string // "" = valid
	}{
		{"none", iothub.Limits{}, ""},
		{"rates", iothub.Limits{D2C: iothub.Throttle{PerSecond: 2, Burst: 1, Backlog: -1}, DailyMessages: 5, MeterSize: 512}, ""},
		{"negative-rate", iothub.Limits{C2D: iothub.Throttle{PerSecond: -1}}, "c2d: perSecond -1"},
		{"nan-rate", iothub.Limits{Methods: iothub.Throttle{PerSecond: math.NaN()}}, "methods: perSecond NaN"},
		{"negative-burst", iothub.Limits{TwinUpdates: iothub.Throttle{PerSecond: 1, Burst: -2}}, "twin-updates: burst -2"},
		{"negative-daily", iothub.Limits{DailyMessages: -1}, "dailyMessages -1"},
		{"negative-meter", iothub.Limits{MeterSize: -4}, "meterSize -4"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.l.Validate()
			if tc.want == "" {
				if err != nil {
					t.Errorf("Validate() = %v, want nil", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.want) || !errors.Is(err, iothub.ErrInvalidArgument) {
				t.Errorf("Validate() = %v, want an invalid-argument error naming %q", err, tc.want)
			}
		})
	}
}

func TestLimitsThrottleNamed(t *testing.T) {
	var l iothub.Limits
	th, err := l.ThrottleNamed("twin-reads")
	if err != nil {
		t.Fatal(err)
	}
	th.PerSecond = 3
	if l.TwinReads.PerSecond != 3 {
		t.Errorf("ThrottleNamed(twin-reads) does not point at TwinReads: %+v", l)
	}
	if _, err := l.ThrottleNamed("d2C"); err == nil || !strings.Contains(err.Error(), `"d2C"`) {
		t.Errorf("ThrottleNamed(d2C) = %v, want an error naming it", err)
	}
}
