package main

import (
	"context"
	"fmt"
	"github.com/hubkit/hubkit/internal/procfs"
	"io"
	"os"
	"strconv"
	"time"
)

// runFleet holds o.fleet devices on one fakehub, each sending a QoS 1
// message per o.fleetInterval for o.fleetDuration, and reports the hub's
// memory and CPU and the errors (the target: none).
func runFleet(ctx context.Context, o options, stdout, stderr io.Writer) error {
	w, err := newWorkdir(o.bin, o.ca, o.mosquitto, o.fleet)
	if err != nil {
		return err
	}
	defer os.RemoveAll(w.dir)
	env := describeMachine("")
	fmt.Fprintf(stderr, "bench-compare: fleet of %d devices on fakehub; %s\n", o.fleet, env)
	p, err := startServer(ctx, w, kinds["fakehub"])
	if err != nil {
		return err
	}
	defer p.stop()
	time.Sleep(time.Second)
	idle, err := procfs.Memory(p.pid(), "VmRSS")
	if err != nil {
		return err
	}
	cpu0, err := procfs.CPUTime(p.pid())
	if err != nil {
		return err
	}
	rss := sampleRSS(p.pid(), 250*time.Millisecond)
	rep, err := load(ctx, w, p, stderr, "--devices", strconv.Itoa(o.fleet), "--interval", o.fleetInterval.String(),
		"--duration", o.fleetDuration.String(), "--connect-rate", strconv.FormatFloat(o.fleetRate, 'f', -1, 64),
		"--concurrency", strconv.Itoa(o.concurrency), "--payload-size", strconv.Itoa(o.payload))
	connected := rss.Max()
	if err != nil {
		return err
	}
	cpu1, err := procfs.CPUTime(p.pid())
	if err != nil {
		return err
	}
	peak, err := procfs.Memory(p.pid(), "VmHWM")
	if err != nil {
		return err
	}
	wall := rep.Ramp + rep.Steady
	fmt.Fprintf(stdout, "bench-compare: fleet test, fakehub; machine: %s\n\n", env)
	fmt.Fprintf(stdout, "| figure | value |\n|---|---|\n")
	row := func(k, format string, a ...any) {
		fmt.Fprintf(stdout, "| %s | "+format+" |\n", append([]any{k}, a...)...)
	}
	row("devices connected", "%d of %d (ramp %s, %.0f/s; %s)", rep.Connected, rep.Devices, rep.Ramp.Round(time.Second), rep.ConnectsPerSec, rep.TLS)
	row("open at the end of the steady phase", "%d", rep.LiveAtStop)
	row("telemetry", "QoS 1, %d B, one message per device every %s, for %s", o.payload, o.fleetInterval, rep.Steady.Round(time.Second))
	row("messages", "%d sent, %d acknowledged, %.0f msgs/s", rep.Sent, rep.Acked, rep.MsgsPerSec)
	row("PUBACK latency", "p50 %.2f ms, p99 %.1f ms, p99.9 %.1f ms", ms(rep.Puback.P50), ms(rep.Puback.P99), ms(rep.Puback.P999))
	row("CONNACK latency", "p50 %.1f ms, p99 %.1f ms", ms(rep.Connack.P50), ms(rep.Connack.P99))
	row("errors", "%d %v", rep.ErrorCount(), rep.Errors)
	row("hub RSS idle (registry loaded)", "%.1f MiB", float64(idle)/(1<<20))
	row("hub RSS, all devices connected (highest)", "%.1f MiB", float64(connected)/(1<<20))
	row("hub RSS per connected device", "%.1f KiB", float64(connected-idle)/1024/float64(max(rep.LiveAtStop, 1)))
	row("hub peak RSS (VmHWM)", "%.1f MiB", float64(peak)/(1<<20))
	row("hub CPU", "%.1f s over %s (%.0f %% of one core)", (cpu1 - cpu0).Seconds(), wall.Round(time.Second), 100*(cpu1-cpu0).Seconds()/wall.Seconds())
	row("client (devicesim load) memory", "%.1f MiB peak RSS, %.1f KiB per device", float64(rep.ClientPeakRSS)/(1<<20), rep.ClientRSSPerDevice/1024)
	if rep.ErrorCount() > 0 || rep.Connected < rep.Devices {
		return fmt.Errorf("the fleet test had %d errors and %d of %d devices connected", rep.ErrorCount(), rep.Connected, rep.Devices)
	}
	return nil
}
