package main

// The serve flags of issue 12: --tier/--units (IoT Hub's throttles and quota), --limit
// (one throttle on its own) and --profile.

import (
	"fmt"
	"math"
	"strconv"
	"strings"

	"github.com/spf13/pflag"

	"github.com/hubkit/hubkit/internal/cli"
	"github.com/hubkit/hubkit/pkg/fakehub"
)

type limitFlags struct {
	tier    string
	units   int
	limits  []string
	profile string
}

func (f *limitFlags) register(fs *pflag.FlagSet) {
	fs.StringVar(&f.tier, "tier", "", "IoT Hub `TIER` whose throttles and daily quota apply: F1, B1, B2, B3, S1, S2 or S3 (default: no limits)")
	fs.IntVar(&f.units, "units", 1, "number of `N` units of the tier")
	fs.StringArrayVar(&f.limits, "limit", nil, "set one limit `NAME=VALUE` (repeatable): connections, d2c, c2d, twin-reads, twin-updates, methods, registry (per second, e.g. d2c=2, d2c=2/burst=2/backlog=2), daily (messages)")
	fs.StringVar(&f.profile, "profile", "azure", "rules where the anchors disagree: azure (what IoT Hub accepts), edgehub (IoT Edge hub's rules) or strict (azure, plus warnings)")
}

// apply sets opts.Limits and opts.Profile from the flags.
func (f *limitFlags) apply(opts *fakehub.Options) error {
	p, err := fakehub.ParseProfile(f.profile)
	if err != nil {
		return cli.Usagef("--profile: %v", err)
	}
	opts.Profile = p
	opts.Limits, err = buildLimits(opts.Limits, f.tier, f.units, f.limits, "--limit ")
	return err
}

// buildLimits returns base changed by a tier (when tier is not "": its limits replace base)
// and then by each NAME=VALUE spec, as --tier/--units/--limit and `fakehub limits set` take
// them. Its errors are usage errors naming the flag or the spec (after label).
func buildLimits(base fakehub.Limits, tier string, units int, specs []string, label string) (fakehub.Limits, error) {
	l := base
	if tier != "" {
		t, err := fakehub.ParseTier(tier)
		if err != nil {
			return l, cli.Usagef("--tier: %v", err)
		}
		if units < 1 {
			return l, cli.Usagef("--units: %d: a hub has at least 1 unit", units)
		}
		if l, err = fakehub.TierLimits(t, units); err != nil {
			return l, cli.Usagef("--tier: %v", err)
		}
	}
	for _, spec := range specs {
		if err := setLimit(&l, spec); err != nil {
			return l, cli.Usagef("%s%s: %v", label, spec, err)
		}
	}
	return l, nil
}

// setLimit applies one NAME=VALUE[/burst=N][/backlog=N] (VALUE "off" or 0: no limit).
func setLimit(l *fakehub.Limits, spec string) error {
	name, value, ok := strings.Cut(spec, "=")
	if !ok {
		return fmt.Errorf("want NAME=VALUE, e.g. d2c=2")
	}
	name = strings.ToLower(strings.TrimSpace(name))
	if name == "daily" {
		if value == "off" {
			value = "0"
		}
		n, err := strconv.ParseInt(value, 10, 64)
		if err != nil || n < 0 {
			return fmt.Errorf("daily takes a number of messages (0 or off: no quota), got %q", value)
		}
		l.DailyMessages = n
		return nil
	}
	if name == "meter" {
		n, err := strconv.Atoi(value)
		if err != nil || n <= 0 {
			return fmt.Errorf("meter takes a size in bytes, got %q", value)
		}
		l.MeterSize = n
		return nil
	}
	th, err := l.ThrottleNamed(name)
	if err != nil {
		var names []string
		for _, nt := range l.Throttles() {
			names = append(names, nt.Name)
		}
		return fmt.Errorf("unknown limit %q: want %s, daily or meter", name, strings.Join(names, ", "))
	}
	if value == "off" {
		*th = fakehub.Throttle{}
		return nil
	}
	parts := strings.Split(value, "/")
	rate, err := strconv.ParseFloat(parts[0], 64)
	if err != nil || rate < 0 || math.IsInf(rate, 0) {
		return fmt.Errorf("%s takes operations per second (0 or off: no limit), got %q", name, parts[0])
	}
	t := fakehub.Throttle{PerSecond: rate}
	for _, p := range parts[1:] {
		k, v, _ := strings.Cut(p, "=")
		n, err := strconv.Atoi(v)
		if err != nil {
			return fmt.Errorf("%s: %q is not burst=N or backlog=N", name, p)
		}
		switch k {
		case "burst":
			t.Burst = n
		case "backlog":
			t.Backlog = n
		default:
			return fmt.Errorf("%s: %q is not burst=N or backlog=N", name, p)
		}
	}
	*th = t
	return nil
}
