package main

// The serve flags of issue 12: --tier/--units (IoT Hub's throttles and quota), --limit
// (one throttle on its own) and --profile.

import (
	"fmt"
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
	if f.tier != "" {
		t, err := fakehub.ParseTier(f.tier)
		if err != nil {
			return cli.Usagef("--tier: %v", err)
		}
		if f.units < 1 {
			return cli.Usagef("--units: %d: a hub has at least 1 unit", f.units)
		}
		if opts.Limits, err = fakehub.TierLimits(t, f.units); err != nil {
			return cli.Usagef("--tier: %v", err)
		}
	}
	for _, l := range f.limits {
		if err := setLimit(&opts.Limits, l); err != nil {
			return cli.Usagef("--limit %s: %v", l, err)
		}
	}
	return nil
}

// setLimit applies one NAME=VALUE[/burst=N][/backlog=N].
func setLimit(l *fakehub.Limits, spec string) error {
	name, value, ok := strings.Cut(spec, "=")
	if !ok {
		return fmt.Errorf("want NAME=VALUE, e.g. d2c=2")
	}
	name = strings.ToLower(strings.TrimSpace(name))
	if name == "daily" {
		n, err := strconv.ParseInt(value, 10, 64)
		if err != nil || n < 0 {
			return fmt.Errorf("daily takes a number of messages, got %q", value)
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
	targets := map[string]*fakehub.Throttle{
		"connections": &l.Connections, "d2c": &l.D2C, "c2d": &l.C2D, "twin-reads": &l.TwinReads,
		"twin-updates": &l.TwinUpdates, "methods": &l.Methods, "registry": &l.Registry,
	}
	th, ok := targets[name]
	if !ok {
		return fmt.Errorf("unknown limit %q: want connections, d2c, c2d, twin-reads, twin-updates, methods, registry, daily or meter", name)
	}
	parts := strings.Split(value, "/")
	rate, err := strconv.ParseFloat(parts[0], 64)
	if err != nil || rate < 0 {
		return fmt.Errorf("%s takes operations per second, got %q", name, parts[0])
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
