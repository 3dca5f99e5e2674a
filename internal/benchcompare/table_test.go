package main

import (
	"strings"
	"testing"
	"time"

	"github.com/hubkit/hubkit/internal/loadgen"
)

func TestThousands(t *testing.T) {
	for v, want := range map[float64]string{0: "0", 999: "999", 1000: "1,000", 31142.4: "31,142", 1234567: "1,234,567", -1500: "-1,500"} {
		if got := thousands(v); got != want {
			t.Errorf("thousands(%v) = %q, want %q", v, got, want)
		}
	}
}

// The table has a row per figure with each server's median and range, and
// fakehub's ratio to each other server.
func TestPrintTable(t *testing.T) {
	o := options{rounds: 3, connectDevices: 1000, concurrency: 50, teleDevices: 100, payload: 256, window: 1}
	var all []result
	for i, rate := range []float64{900, 1000, 1100} {
		for _, s := range []struct {
			name  string
			scale float64
		}{{"fakehub", 1}, {"mochi", 2}} {
			all = append(all, result{Server: s.name, Round: i + 1,
				Connect:   loadgen.Report{ConnectsPerSec: rate * s.scale, Connected: 1000, LiveAtStop: 1000, TLS: "TLS 1.3, X25519"},
				Telemetry: loadgen.Report{MsgsPerSec: 30000, Acked: 300000, Puback: loadgen.Latency{P50: 2 * time.Millisecond}}})
		}
	}
	var b strings.Builder
	printTable(&b, o, "test machine", []string{"fakehub", "mochi"}, all)
	out := b.String()
	for _, want := range []string{
		"| figure | fakehub | mochi | fakehub / mochi |",
		"| connects/s (1000 devices, 50 at a time) | 1,000 (900–1,100) | 2,000 (1,800–2,200) | 0.50× (0.50–0.50) |",
		"| QoS 1 msgs/s (100 devices, 256 B, 1 in flight each) | 30,000 (30,000–30,000) | 30,000 (30,000–30,000) | 1.00× (1.00–1.00) |",
		"tls: fakehub: TLS 1.3, X25519; mochi: TLS 1.3, X25519",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("table lacks %q:\n%s", want, out)
		}
	}
}
