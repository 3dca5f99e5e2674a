package fakehub

import (
	"context"
	"errors"
	"strconv"
	"strings"
	"time"

	"github.com/hubkit/hubkit/pkg/iothub"
)

// The service API's test extensions (/hubkit/clock, /hubkit/faults, /hubkit/limits) over the
// Go API.

func (b serviceBackend) Clock(context.Context) iothub.ClockReading { return b.s.clock.Reading() }

func (b serviceBackend) MoveClock(_ context.Context, c iothub.ClockChange) (iothub.ClockReading, error) {
	n := 0
	for _, set := range []bool{c.Advance != "", c.Set != nil, c.Reset} {
		if set {
			n++
		}
	}
	if n != 1 {
		return iothub.ClockReading{}, iothub.Errorf(iothub.CodeArgumentInvalid,
			`give exactly one of "advance" (a duration such as "55m"), "set" (an RFC 3339 time) or "reset": true`)
	}
	switch {
	case c.Advance != "":
		d, err := ParseDuration(c.Advance)
		if err != nil {
			return iothub.ClockReading{}, iothub.Errorf(iothub.CodeArgumentInvalid, "advance: %v", err)
		}
		b.s.clock.Advance(d)
	case c.Set != nil:
		b.s.clock.Set(*c.Set)
	default:
		b.s.clock.Reset()
	}
	return b.s.clock.Reading(), nil
}

func (b serviceBackend) Fault(_ context.Context, f iothub.FaultRequest) (iothub.FaultResult, error) {
	id := iothub.Identity{DeviceID: f.DeviceID, ModuleID: f.ModuleID}
	var d time.Duration
	if f.Duration != "" {
		var err error
		if d, err = ParseDuration(f.Duration); err != nil || d < 0 {
			return iothub.FaultResult{}, iothub.Errorf(iothub.CodeArgumentInvalid, "duration %q: want a positive duration such as 30s or 5m", f.Duration)
		}
	}
	needID := func() error {
		if id.DeviceID == "" {
			return iothub.Errorf(iothub.CodeArgumentInvalid, "%s needs a deviceId", f.Action)
		}
		return b.s.opts.Registry.Exists(id)
	}
	needDuration := func() error {
		if d <= 0 && !f.Off {
			return iothub.Errorf(iothub.CodeArgumentInvalid, `%s needs a "duration" (or "off": true)`, f.Action)
		}
		return nil
	}
	switch f.Action {
	case iothub.FaultDrop:
		if err := needID(); err != nil {
			return iothub.FaultResult{}, err
		}
		err := b.s.Drop(id, DropOptions{Reason: f.Reason, ErrorCode: f.ErrorCode, Abort: f.Abort})
		if errors.Is(err, ErrOffline) {
			return iothub.FaultResult{}, &iothub.Error{Code: iothub.CodeDeviceNotOnline, Message: id.String() + " is not connected", Err: err}
		}
		return iothub.FaultResult{Closed: 1}, err
	case iothub.FaultDropAll:
		return iothub.FaultResult{Closed: b.s.DropAll(DropOptions{Reason: f.Reason, ErrorCode: f.ErrorCode, Abort: f.Abort})}, nil
	case iothub.FaultRefuseConnections:
		if err := needDuration(); err != nil {
			return iothub.FaultResult{}, err
		}
		if f.Off {
			d = 0
		}
		b.s.RefuseConnections(id, d)
	case iothub.FaultDelayPubacks:
		if err := needDuration(); err != nil {
			return iothub.FaultResult{}, err
		}
		if f.Off {
			d = 0
		}
		b.s.DelayPubacks(id, d)
	case iothub.FaultDropPubacks:
		b.s.DropPubacks(id, !f.Off)
	case iothub.FaultSilenceTwin:
		b.s.SilenceTwin(id, !f.Off)
	case iothub.FaultRestart:
		n := len(b.s.sessions.all())
		b.s.Restart(f.KeepState)
		return iothub.FaultResult{Closed: n}, nil
	case iothub.FaultClear:
		b.s.ClearFaults()
	default:
		return iothub.FaultResult{}, iothub.Errorf(iothub.CodeArgumentInvalid, "unknown fault action %q: want %s", f.Action,
			strings.Join([]string{iothub.FaultDrop, iothub.FaultDropAll, iothub.FaultRefuseConnections, iothub.FaultDelayPubacks,
				iothub.FaultDropPubacks, iothub.FaultSilenceTwin, iothub.FaultRestart, iothub.FaultClear}, ", "))
	}
	return iothub.FaultResult{}, nil
}

func (b serviceBackend) Limits(context.Context) iothub.LimitsStatus { return b.s.LimitsStatus() }

func (b serviceBackend) SetLimits(_ context.Context, l iothub.Limits) (iothub.LimitsStatus, error) {
	if err := b.s.SetLimits(l); err != nil {
		return iothub.LimitsStatus{}, err
	}
	return b.s.LimitsStatus(), nil
}

// ParseDuration reads a Go duration ("55m", "1h30m", "-2h") or a number of seconds ("90"),
// and "d" for days ("2d"), as the clock and fault verbs take them.
func ParseDuration(s string) (time.Duration, error) {
	s = strings.TrimSpace(s)
	if n, err := strconv.ParseFloat(s, 64); err == nil {
		return time.Duration(n * float64(time.Second)), nil
	}
	if days, ok := strings.CutSuffix(s, "d"); ok {
		if n, err := strconv.ParseFloat(days, 64); err == nil {
			return time.Duration(n * 24 * float64(time.Hour)), nil
		}
	}
	d, err := time.ParseDuration(s)
	if err != nil {
		return 0, errors.New("not a duration: want e.g. 55m, 1h30m, -2h, 2d or seconds")
	}
	return d, nil
}
