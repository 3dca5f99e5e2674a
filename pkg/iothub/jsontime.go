package iothub

import (
	"bytes"
	"encoding/json"
	"fmt"
	"time"
)

// jsonTime is a timestamp in IoT Hub's JSON. It is written in UTC as RFC 3339 with
// nanoseconds (the zero time as "0001-01-01T00:00:00Z", as the hub writes it) and read from
// RFC 3339, from the zone-less form az prints ("0001-01-01T00:00:00", taken as UTC), and
// from null or "" (the zero time).
type jsonTime struct{ t time.Time }

func timeOf(t time.Time) *jsonTime { return &jsonTime{t} }

func (j *jsonTime) get() time.Time {
	if j == nil {
		return time.Time{}
	}
	return j.t
}

func (j jsonTime) MarshalJSON() ([]byte, error) {
	return json.Marshal(j.t.UTC().Format(time.RFC3339Nano))
}

func (j *jsonTime) UnmarshalJSON(b []byte) error {
	if bytes.Equal(b, []byte("null")) {
		j.t = time.Time{}
		return nil
	}
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return fmt.Errorf("time: want an RFC 3339 string, got %s", b)
	}
	t, err := parseTime(s)
	if err != nil {
		return err
	}
	j.t = t
	return nil
}

// parseTime reads RFC 3339, or the same without a zone (UTC); "" is the zero time.
func parseTime(s string) (time.Time, error) {
	if s == "" {
		return time.Time{}, nil
	}
	if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
		return t.UTC(), nil
	}
	if t, err := time.Parse("2006-01-02T15:04:05.999999999", s); err == nil {
		return t, nil
	}
	return time.Time{}, fmt.Errorf("time %q: want RFC 3339, such as 2030-01-01T00:00:00Z", s)
}
