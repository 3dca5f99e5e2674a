package loadgen

import (
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
	"text/tabwriter"
	"time"
)

// Report is the outcome of a Run. JSON durations are milliseconds.
type Report struct {
	Devices     int           `json:"devices"` // attempted (after sharding)
	First       int           `json:"first"`   // index of the first device
	Telemetry   string        `json:"telemetry"`
	Interval    time.Duration `json:"-"`
	QoS         byte          `json:"qos"`
	PayloadSize int           `json:"payloadSize"`
	TLS         string        `json:"tls,omitempty"` // version and key exchange of the first handshake

	Connected      int           `json:"connected"`
	Failed         int           `json:"failed"`
	Ramp           time.Duration `json:"-"`
	ConnectsPerSec float64       `json:"connectsPerSec"` // connected / ramp time
	Connack        Latency       `json:"connack"`        // dial to CONNACK

	Steady     time.Duration `json:"-"`
	LiveAtStop int           `json:"liveAtStop"` // connections still open when the steady phase ended
	Sent       uint64        `json:"sent"`
	Acked      uint64        `json:"acked"`      // PUBACKs (QoS 0: messages written)
	MsgsPerSec float64       `json:"msgsPerSec"` // acknowledged in the steady phase / its length
	Puback     Latency       `json:"puback"`     // PUBLISH written to PUBACK read

	C2DReceived     uint64  `json:"c2dReceived"`
	MethodsAnswered uint64  `json:"methodsAnswered"`
	Twin            Latency `json:"twin"` // reported PATCH to its 204

	Errors map[string]uint64 `json:"errors"` // by kind (the Err* constants, connack-N)

	// Set by the caller when it can measure them (devicesim load does).
	Shard              string  `json:"shard,omitempty"`
	ClientPeakRSS      int64   `json:"clientPeakRssBytes,omitempty"`
	ClientRSSPerDevice float64 `json:"clientRssPerDeviceBytes,omitempty"`
}

// reportJSON is Report on the wire: the durations in milliseconds.
type reportJSON struct {
	plainReport
	IntervalMs float64 `json:"intervalMs,omitempty"`
	RampMs     float64 `json:"rampMs"`
	SteadyMs   float64 `json:"steadyMs"`
}

type plainReport Report // without the methods

// MarshalJSON adds the durations in milliseconds.
func (r Report) MarshalJSON() ([]byte, error) {
	return json.Marshal(reportJSON{plainReport(r), ms(r.Interval), ms(r.Ramp), ms(r.Steady)})
}

// UnmarshalJSON reads what MarshalJSON writes.
func (r *Report) UnmarshalJSON(b []byte) error {
	var v reportJSON
	if err := json.Unmarshal(b, &v); err != nil {
		return err
	}
	*r = Report(v.plainReport)
	r.Interval, r.Ramp, r.Steady = fromMs(v.IntervalMs), fromMs(v.RampMs), fromMs(v.SteadyMs)
	return nil
}

// latencyJSON is Latency on the wire, in milliseconds.
type latencyJSON struct {
	Count uint64  `json:"count"`
	P50   float64 `json:"p50Ms"`
	P99   float64 `json:"p99Ms"`
	P999  float64 `json:"p999Ms"`
	Max   float64 `json:"maxMs"`
}

// MarshalJSON writes the durations in milliseconds.
func (l Latency) MarshalJSON() ([]byte, error) {
	return json.Marshal(latencyJSON{l.Count, ms(l.P50), ms(l.P99), ms(l.P999), ms(l.Max)})
}

// UnmarshalJSON reads what MarshalJSON writes.
func (l *Latency) UnmarshalJSON(b []byte) error {
	var v latencyJSON
	if err := json.Unmarshal(b, &v); err != nil {
		return err
	}
	*l = Latency{Count: v.Count, P50: fromMs(v.P50), P99: fromMs(v.P99), P999: fromMs(v.P999), Max: fromMs(v.Max)}
	return nil
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

func fromMs(f float64) time.Duration { return time.Duration(f * float64(time.Millisecond)) }

// ErrorCount is the total of Errors.
func (r *Report) ErrorCount() uint64 {
	var n uint64
	for _, c := range r.Errors {
		n += c
	}
	return n
}

// WriteText writes the report as a table.
func (r *Report) WriteText(w io.Writer) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	row := func(k, format string, a ...any) { fmt.Fprintf(tw, "%s\t"+format+"\n", append([]any{k}, a...)...) }
	devs := fmt.Sprintf("%d (%d to %d)", r.Devices, r.First, r.First+r.Devices-1)
	if r.Shard != "" {
		devs += ", shard " + r.Shard
	}
	row("devices", "%s", devs)
	if r.TLS != "" {
		row("tls", "%s", r.TLS)
	}
	row("connected", "%d in %s (%.0f/s), %d failed", r.Connected, r.Ramp.Round(time.Millisecond), r.ConnectsPerSec, r.Failed)
	row("CONNACK latency", "%s", r.Connack.text())
	tele := r.Telemetry
	if r.Interval > 0 {
		tele += " " + r.Interval.String()
	}
	row("telemetry", "%s, QoS %d, %d B", tele, r.QoS, r.PayloadSize)
	row("steady phase", "%s, %d connections open at its end", r.Steady.Round(time.Millisecond), r.LiveAtStop)
	row("messages", "%d sent, %d acknowledged, %.0f msgs/s", r.Sent, r.Acked, r.MsgsPerSec)
	if r.QoS > 0 {
		row("PUBACK latency", "%s", r.Puback.text())
	}
	if r.C2DReceived > 0 || r.MethodsAnswered > 0 {
		row("cloud to device", "%d C2D messages, %d methods answered", r.C2DReceived, r.MethodsAnswered)
	}
	if r.Twin.Count > 0 {
		row("twin PATCH latency", "%s", r.Twin.text())
	}
	if r.ClientPeakRSS > 0 {
		row("client memory", "%.1f MiB peak RSS, %.1f KiB per connected device", float64(r.ClientPeakRSS)/(1<<20), r.ClientRSSPerDevice/1024)
	}
	errs := "none"
	if len(r.Errors) > 0 {
		var parts []string
		for _, k := range slices.Sorted(maps.Keys(r.Errors)) {
			parts = append(parts, fmt.Sprintf("%s %d", k, r.Errors[k]))
		}
		errs = strings.Join(parts, ", ")
	}
	row("errors", "%s", errs)
	return tw.Flush()
}

func (l Latency) text() string {
	if l.Count == 0 {
		return "-"
	}
	return fmt.Sprintf("p50 %s  p99 %s  p99.9 %s  max %s  (%d samples)", round(l.P50), round(l.P99), round(l.P999), round(l.Max), l.Count)
}

// round keeps three significant digits or so.
func round(d time.Duration) time.Duration {
	switch {
	case d >= 10*time.Second:
		return d.Round(100 * time.Millisecond)
	case d >= time.Second:
		return d.Round(10 * time.Millisecond)
	case d >= 10*time.Millisecond:
		return d.Round(100 * time.Microsecond)
	case d >= time.Millisecond:
		return d.Round(10 * time.Microsecond)
	}
	return d.Round(time.Microsecond)
}

// Line is the one-line form of a Progress, for the live progress line.
func (p Progress) Line() string {
	s := fmt.Sprintf("%6.1fs %-6s connected %d (open %d, failed %d, %.0f/s)", p.Elapsed.Seconds(), p.Phase, p.Connected, p.Live, p.Failed, p.ConnectsPerSec)
	if p.Acked > 0 || p.Phase != "ramp" {
		s += fmt.Sprintf("  msgs %d (%.0f/s, PUBACK p99 %s)", p.Acked, p.MsgsPerSec, round(p.PubackP99))
	}
	return s + fmt.Sprintf("  errors %d", p.Errors)
}
