package main

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// parseTime reads an absolute time given as Unix seconds ("1893456000") or RFC 3339
// ("2030-01-01T00:00:00Z", "2030-01-01T01:00:00+01:00").
func parseTime(s string) (time.Time, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return time.Time{}, fmt.Errorf("empty time: want Unix seconds (1893456000) or RFC 3339 (2030-01-01T00:00:00Z)")
	}
	if isInteger(s) {
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			return time.Time{}, fmt.Errorf("%q: Unix seconds out of range", s)
		}
		return time.Unix(n, 0).UTC(), nil
	}
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		return time.Time{}, fmt.Errorf("%q is neither Unix seconds (1893456000) nor RFC 3339 (2030-01-01T00:00:00Z)", s)
	}
	return t, nil
}

func isInteger(s string) bool {
	s = strings.TrimPrefix(s, "-")
	if s == "" {
		return false
	}
	for _, r := range s {
		if r < '0' || r > '9' {
			return false
		}
	}
	return true
}

// parseTTL reads a lifetime: a Go duration ("90m", "1h30m"), whole days ("7d", "365d") or
// plain seconds ("3600"). Negative values are allowed (an already expired token for tests).
func parseTTL(s string) (time.Duration, error) {
	s = strings.TrimSpace(s)
	const bad = "%q is not a duration: use 90s, 45m, 1h30m, 7d or seconds (3600)"
	switch {
	case s == "":
		return 0, fmt.Errorf("empty duration: use 90s, 45m, 1h30m, 7d or seconds (3600)")
	case isInteger(s):
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil || n > maxTTLSeconds || n < -maxTTLSeconds {
			return 0, fmt.Errorf("%q: too long", s)
		}
		return time.Duration(n) * time.Second, nil
	case strings.HasSuffix(s, "d") && isInteger(strings.TrimSuffix(s, "d")):
		n, err := strconv.ParseInt(strings.TrimSuffix(s, "d"), 10, 64)
		if err != nil || n > maxTTLSeconds/86400 || n < -maxTTLSeconds/86400 {
			return 0, fmt.Errorf("%q: too long", s)
		}
		return time.Duration(n) * 24 * time.Hour, nil
	}
	d, err := time.ParseDuration(s)
	if err != nil {
		return 0, fmt.Errorf(bad, s)
	}
	return d, nil
}

// maxTTLSeconds keeps time.Duration arithmetic far from overflow (about 290 years is the
// limit; a century is plenty for a test token).
const maxTTLSeconds = 100 * 366 * 86400

// timeValue is a pflag.Value for --now and --expiry.
type timeValue struct {
	t   time.Time
	set bool
}

func (v *timeValue) Set(s string) error {
	t, err := parseTime(s)
	if err != nil {
		return err
	}
	v.t, v.set = t, true
	return nil
}

func (v *timeValue) String() string {
	if !v.set {
		return ""
	}
	return v.t.UTC().Format(time.RFC3339)
}

func (v *timeValue) Type() string { return "time" }

// ttlValue is a pflag.Value for --ttl (see parseTTL).
type ttlValue struct{ d time.Duration }

func (v *ttlValue) Set(s string) error {
	d, err := parseTTL(s)
	if err != nil {
		return err
	}
	v.d = d
	return nil
}

func (v *ttlValue) String() string { return formatTTL(v.d) }
func (v *ttlValue) Type() string   { return "duration" }

// formatTTL prints a duration the way the help text shows defaults: "1h0m0s" becomes "1h".
func formatTTL(d time.Duration) string {
	s := d.String()
	if strings.HasSuffix(s, "m0s") {
		s = strings.TrimSuffix(s, "0s")
	}
	if strings.HasSuffix(s, "h0m") {
		s = strings.TrimSuffix(s, "0m")
	}
	return s
}

// clock returns --now if given, else the wall clock, truncated to whole seconds (the unit
// of se).
func clock(now *timeValue) time.Time {
	if now.set {
		return now.t
	}
	return time.Now().Truncate(time.Second)
}

// relative says how far t is from now, for people: "expires in 59m", "expired 3h ago".
func relative(t, now time.Time) string {
	// Beyond about two years count in whole years, from Unix seconds: time.Duration
	// saturates at 292 years (an se in milliseconds is 60,000 years away).
	if secs := t.Unix() - now.Unix(); secs > 2*secondsPerYear {
		return fmt.Sprintf("expires in %d years", secs/secondsPerYear)
	} else if secs < -2*secondsPerYear {
		return fmt.Sprintf("expired %d years ago", -secs/secondsPerYear)
	}
	d := t.Sub(now)
	switch {
	case d > 0:
		return "expires in " + humanDuration(d)
	case d < 0:
		return "expired " + humanDuration(-d) + " ago"
	}
	return "expires now"
}

// secondsPerYear is a Julian year (365.25 days).
const secondsPerYear = 31557600

// humanDuration rounds down to the two largest units: 45s, 59m, 3h, 2h30m, 3d4h.
func humanDuration(d time.Duration) string {
	d = d.Truncate(time.Second)
	switch {
	case d < time.Minute:
		return fmt.Sprintf("%ds", int64(d/time.Second))
	case d < time.Hour:
		return fmt.Sprintf("%dm", int64(d/time.Minute))
	case d < 48*time.Hour:
		h, m := int64(d/time.Hour), int64(d%time.Hour/time.Minute)
		if m == 0 {
			return fmt.Sprintf("%dh", h)
		}
		return fmt.Sprintf("%dh%dm", h, m)
	}
	days, h := int64(d/(24*time.Hour)), int64(d%(24*time.Hour)/time.Hour)
	if h == 0 {
		return fmt.Sprintf("%dd", days)
	}
	return fmt.Sprintf("%dd%dh", days, h)
}

// utc formats t as RFC 3339 in UTC, the house format for times.
func utc(t time.Time) string { return t.UTC().Format(time.RFC3339) }

// local formats t in the machine's time zone (TZ), for the human "decode" view.
func local(t time.Time) string { return t.Local().Format("2006-01-02 15:04:05 MST") }
