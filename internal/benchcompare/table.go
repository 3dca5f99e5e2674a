package main

import (
	"fmt"
	"io"
	"slices"
	"strings"
	"time"
)

// figure is one row of the table: a value per result.
type figure struct {
	name  string
	value func(r result) float64
	unit  string // how to print it: "n" count/rate, "ms", "us", "KiB", "MiB"
	lower bool   // lower is better (latency, CPU, memory)
}

func figures(o options) []figure {
	perConnect := func(r result) float64 {
		return float64(r.ConnectCPU.Microseconds()) / float64(max(r.Connect.Connected, 1))
	}
	perMessage := func(r result) float64 {
		return float64(r.TelemetryCPU.Nanoseconds()) / 1e3 / float64(max(r.Telemetry.Acked, 1))
	}
	return []figure{
		{fmt.Sprintf("connects/s (%d devices, %d at a time)", o.connectDevices, o.concurrency), func(r result) float64 { return r.Connect.ConnectsPerSec }, "n", false},
		{"CONNACK p50 (dial to CONNACK)", func(r result) float64 { return ms(r.Connect.Connack.P50) }, "ms", true},
		{"CONNACK p99", func(r result) float64 { return ms(r.Connect.Connack.P99) }, "ms", true},
		{"server CPU per connect (TLS handshake, CONNECT, disconnect)", perConnect, "us", true},
		{fmt.Sprintf("QoS 1 msgs/s (%d devices, %d B, %d in flight each)", o.teleDevices, o.payload, o.window), func(r result) float64 { return r.Telemetry.MsgsPerSec }, "n", false},
		{"server CPU per message", perMessage, "us", true},
		{"PUBACK p50", func(r result) float64 { return ms(r.Telemetry.Puback.P50) }, "ms", true},
		{"PUBACK p99", func(r result) float64 { return ms(r.Telemetry.Puback.P99) }, "ms", true},
		{fmt.Sprintf("RSS per idle connected device (%d devices)", o.memDevices), func(r result) float64 {
			return float64(r.ConnectedRSS-r.IdleRSS) / 1024 / float64(max(r.Memory.LiveAtStop, 1))
		}, "KiB", true},
		{fmt.Sprintf("RSS with nothing connected (fakehub: a registry of %d devices)", max(o.connectDevices, o.teleDevices, o.memDevices)), func(r result) float64 { return float64(r.IdleRSS) / (1 << 20) }, "MiB", true},
		{"peak RSS (either process)", func(r result) float64 { return float64(r.PeakRSS) / (1 << 20) }, "MiB", true},
		{"errors (all phases, all rounds: sum)", func(r result) float64 {
			return float64(r.Connect.ErrorCount() + r.Telemetry.ErrorCount() + r.Memory.ErrorCount())
		}, "sum", true},
	}
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// printTable prints a Markdown table: the median of each figure per server
// (the range over rounds in parentheses) and fakehub's ratios.
func printTable(w io.Writer, o options, env string, names []string, all []result) {
	byServer := map[string][]result{}
	for _, r := range all {
		byServer[r.Server] = append(byServer[r.Server], r)
	}
	fmt.Fprintf(w, "bench-compare: %d rounds, servers interleaved; median (min–max) per server\n", o.rounds)
	fmt.Fprintf(w, "machine: %s\n", env)
	tls := ""
	for _, n := range names {
		if rs := byServer[n]; len(rs) > 0 {
			tls += fmt.Sprintf(" %s: %s;", n, rs[0].Connect.TLS)
		}
	}
	fmt.Fprintf(w, "tls:%s the Go processes with %s\n\n", strings.TrimSuffix(tls, ";"), goTLSEnv)

	header := []string{"figure"}
	header = append(header, names...)
	others := slices.DeleteFunc(slices.Clone(names), func(n string) bool { return n == "fakehub" })
	hasFakehub := len(others) < len(names)
	if hasFakehub {
		for _, n := range others {
			header = append(header, "fakehub / "+n)
		}
	}
	fmt.Fprintf(w, "| %s |\n|%s\n", strings.Join(header, " | "), strings.Repeat("---|", len(header)))
	for _, f := range figures(o) {
		row := []string{f.name}
		for _, n := range names {
			var vals []float64
			for _, r := range byServer[n] {
				vals = append(vals, f.value(r))
			}
			if len(vals) == 0 {
				row = append(row, "-")
				continue
			}
			slices.Sort(vals)
			if f.unit == "sum" {
				var s float64
				for _, v := range vals {
					s += v
				}
				row = append(row, format(s, f.unit))
				continue
			}
			m := median(vals)
			cell := format(m, f.unit)
			if len(vals) > 1 {
				cell += " (" + format(vals[0], f.unit) + "–" + format(vals[len(vals)-1], f.unit) + ")"
			}
			row = append(row, cell)
		}
		if hasFakehub {
			for _, n := range others {
				row = append(row, pairedRatio(f, byServer["fakehub"], byServer[n]))
			}
		}
		fmt.Fprintf(w, "| %s |\n", strings.Join(row, " | "))
	}
	fmt.Fprintf(w, "\nRatios: the median over rounds of fakehub's figure over the other's in the same round (range in parentheses);\nabove 1 is better for rates, below 1 for latency, CPU and memory.\n")
	fmt.Fprintf(w, "RSS per device = (highest RSS while the devices were connected − RSS before), in a fresh process, / devices connected.\n")
}

// pairedRatio is the median over rounds of fakehub's figure over the other
// server's in the same round (the range in parentheses): a machine shared
// with others drifts between rounds, and within a round both servers ran
// minutes apart at most.
func pairedRatio(f figure, fake, other []result) string {
	if f.unit == "sum" {
		return ""
	}
	byRound := map[int]float64{}
	for _, r := range other {
		byRound[r.Round] = f.value(r)
	}
	var ratios []float64
	for _, r := range fake {
		if o, ok := byRound[r.Round]; ok && o != 0 {
			ratios = append(ratios, f.value(r)/o)
		}
	}
	if len(ratios) == 0 {
		return ""
	}
	slices.Sort(ratios)
	cell := fmt.Sprintf("%.2f×", median(ratios))
	if len(ratios) > 1 {
		cell += fmt.Sprintf(" (%.2f–%.2f)", ratios[0], ratios[len(ratios)-1])
	}
	return cell
}

func median(sorted []float64) float64 {
	n := len(sorted)
	if n%2 == 1 {
		return sorted[n/2]
	}
	return (sorted[n/2-1] + sorted[n/2]) / 2
}

func format(v float64, unit string) string {
	switch unit {
	case "ms":
		if v < 10 {
			return fmt.Sprintf("%.2f ms", v)
		}
		return fmt.Sprintf("%.1f ms", v)
	case "us":
		return fmt.Sprintf("%.1f µs", v)
	case "KiB":
		return fmt.Sprintf("%.1f KiB", v)
	case "MiB":
		return fmt.Sprintf("%.1f MiB", v)
	case "sum":
		return fmt.Sprintf("%.0f", v)
	}
	return thousands(v)
}

// thousands prints v rounded, with thin commas: 31142 -> "31,142".
func thousands(v float64) string {
	s := fmt.Sprintf("%.0f", v)
	var b strings.Builder
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 && s[i-1] != '-' {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	return b.String()
}
