// Command benchcompare runs the same device load against fakehub, a bare
// mochi-mqtt broker (internal/brokertest/cmd/baremochi) and Debian's
// Mosquitto, in interleaved rounds, and prints a table of medians and
// ratios: connects per second, CONNACK and PUBACK latencies, telemetry
// messages per second, server CPU per connect and per message, and server
// memory (RSS per idle connected device, peak RSS). It is what
// scripts/bench-compare (make bench-compare) runs; see the README's
// Performance section.
//
// Every server listens with TLS on 127.0.0.1 with a certificate from the
// same CA (testdata/certs); all negotiate TLS 1.3 with X25519 (the Go
// processes with GODEBUG=tlsmlkem=0,tlssecpmlkem=0, since OpenSSL 3.0 cannot
// do the hybrid key exchanges Go prefers). The load is devicesim load, a
// separate process, with the same devices and tokens for every server.
//
// With -fleet N it instead runs one long fleet test against fakehub alone:
// N devices, each sending one message per -fleet-interval, and reports
// errors and the hub's memory.
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/hubkit/hubkit/internal/loadgen"
	"github.com/hubkit/hubkit/internal/procfs"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	os.Exit(run(ctx, os.Args[1:], os.Stdout, os.Stderr))
}

type options struct {
	bin, ca, mosquitto, servers, out string
	rounds                           int
	connectDevices, concurrency      int
	memDevices                       int
	hold                             time.Duration
	teleDevices, payload, window     int
	teleDuration                     time.Duration
	fleet                            int
	fleetInterval, fleetDuration     time.Duration
	fleetRate                        float64
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	var o options
	fs := flag.NewFlagSet("bench-compare", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&o.bin, "bin", "bin", "directory with the fakehub, devicesim and baremochi binaries")
	fs.StringVar(&o.ca, "ca", "testdata/certs", "CA directory (ca.pem, ca-key.pem) for every server's certificate")
	fs.StringVar(&o.mosquitto, "mosquitto", "", "mosquitto binary (default: mosquitto or /usr/sbin/mosquitto)")
	fs.StringVar(&o.servers, "servers", "fakehub,mochi,mosquitto", "servers to compare, in the first round's order")
	fs.StringVar(&o.out, "json", "", "also write every round's raw figures to this JSON file")
	fs.IntVar(&o.rounds, "rounds", 3, "rounds; each runs every server once, the order rotating")
	fs.IntVar(&o.connectDevices, "connect-devices", 1000, "devices connected (then disconnected at once) in the connect phase")
	fs.IntVar(&o.concurrency, "concurrency", 50, "connections set up at once in the connect and memory phases")
	fs.IntVar(&o.memDevices, "memory-devices", 10000, "devices connected and held idle in the memory phase (0: no memory phase)")
	fs.DurationVar(&o.hold, "hold", 3*time.Second, "how long the memory phase holds its devices idle before it ends")
	fs.IntVar(&o.teleDevices, "telemetry-devices", 100, "devices in the telemetry phase")
	fs.DurationVar(&o.teleDuration, "telemetry-duration", 10*time.Second, "length of the telemetry phase")
	fs.IntVar(&o.payload, "payload", 256, "telemetry payload bytes")
	fs.IntVar(&o.window, "window", 1, "QoS 1 messages in flight per device")
	fs.IntVar(&o.fleet, "fleet", 0, "instead: a fleet test of this many devices against fakehub alone")
	fs.DurationVar(&o.fleetInterval, "fleet-interval", 10*time.Second, "fleet test: time between two messages of a device")
	fs.DurationVar(&o.fleetDuration, "fleet-duration", 2*time.Minute, "fleet test: steady phase")
	fs.Float64Var(&o.fleetRate, "fleet-rate", 1000, "fleet test: connections per second")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if o.mosquitto == "" {
		for _, c := range []string{"mosquitto", "/usr/sbin/mosquitto"} {
			if p, err := exec.LookPath(c); err == nil {
				o.mosquitto = p
				break
			}
		}
	}
	var err error
	if o.fleet > 0 {
		err = runFleet(ctx, o, stdout, stderr)
	} else {
		err = runCompare(ctx, o, stdout, stderr)
	}
	if err != nil {
		fmt.Fprintf(stderr, "bench-compare: error: %v\n", err)
		return 1
	}
	return 0
}

// result is one server's figures in one round.
type result struct {
	Server string `json:"server"`
	Round  int    `json:"round"`

	Connect      loadgen.Report `json:"connect"`
	ConnectCPU   time.Duration  `json:"connectCpuNs"` // server CPU over the connect phase (connects and disconnects)
	Telemetry    loadgen.Report `json:"telemetry"`
	TelemetryCPU time.Duration  `json:"telemetryCpuNs"`
	TelemetryRSS int64          `json:"telemetryRssBytes"`
	IdleRSS      int64          `json:"idleRssBytes"` // the memory phase's fresh process, nothing connected
	Memory       loadgen.Report `json:"memory"`
	ConnectedRSS int64          `json:"connectedRssBytes"` // highest while the memory phase's devices were connected
	PeakRSS      int64          `json:"peakRssBytes"`      // the higher VmHWM of the two processes
}

func runCompare(ctx context.Context, o options, stdout, stderr io.Writer) error {
	names := strings.Split(o.servers, ",")
	for _, n := range names {
		if _, ok := kinds[n]; !ok {
			return fmt.Errorf("-servers: unknown server %q (want fakehub, mochi, mosquitto)", n)
		}
	}
	w, err := newWorkdir(o.bin, o.ca, o.mosquitto, max(o.connectDevices, o.teleDevices, o.memDevices))
	if err != nil {
		return err
	}
	defer os.RemoveAll(w.dir)
	env := describeMachine(o.mosquitto)
	fmt.Fprintf(stderr, "bench-compare: %s\n", env)
	var all []result
	for round := range o.rounds {
		for k := range names {
			name := names[(k+round)%len(names)]
			fmt.Fprintf(stderr, "bench-compare: round %d/%d: %s\n", round+1, o.rounds, name)
			r, err := runRound(ctx, w, o, kinds[name], stderr)
			if err != nil {
				return fmt.Errorf("round %d, %s: %w", round+1, name, err)
			}
			r.Round = round + 1
			all = append(all, r)
			if ctx.Err() != nil {
				return ctx.Err()
			}
		}
	}
	if o.out != "" {
		b, err := json.MarshalIndent(all, "", "  ")
		if err != nil {
			return err
		}
		if err := os.WriteFile(o.out, b, 0o644); err != nil {
			return err
		}
	}
	printTable(stdout, o, env, names, all)
	return nil
}

// runRound runs the three phases against a server: connect (connects/s,
// CONNACK latency, CPU per connect) and telemetry (msgs/s, PUBACK latency,
// CPU per message) on one process, then memory (RSS per idle connected
// device) on a fresh one, whose RSS owes nothing to earlier connections
// (a process keeps and reuses what it once held). It waits for the server
// to be idle before and after each phase, so that each phase's CPU is its
// own.
func runRound(ctx context.Context, w *workdir, o options, k kind, stderr io.Writer) (result, error) {
	r := result{Server: k.name}
	p, err := startServer(ctx, w, k)
	if err != nil {
		return r, err
	}
	defer func() {
		if p != nil {
			p.stop()
		}
	}()
	phase := func(args ...string) (loadgen.Report, time.Duration, int64, error) {
		pid := p.pid()
		settle(pid)
		cpu0, err := procfs.CPUTime(pid)
		if err != nil {
			return loadgen.Report{}, 0, 0, err
		}
		rss := sampleRSS(pid, 100*time.Millisecond)
		rep, err := load(ctx, w, p, stderr, args...)
		peak := rss.Max()
		if err != nil {
			return rep, 0, peak, err
		}
		settle(pid) // the server's side of the disconnects belongs to this phase
		cpu1, err := procfs.CPUTime(pid)
		return rep, cpu1 - cpu0, peak, err
	}
	r.Connect, r.ConnectCPU, _, err = phase("--devices", strconv.Itoa(o.connectDevices), "--idle", "--duration", "0",
		"--concurrency", strconv.Itoa(o.concurrency))
	if err != nil {
		return r, err
	}
	r.Telemetry, r.TelemetryCPU, r.TelemetryRSS, err = phase("--devices", strconv.Itoa(o.teleDevices), "--interval", "0", "--qos", "1",
		"--payload-size", strconv.Itoa(o.payload), "--window", strconv.Itoa(o.window), "--duration", o.teleDuration.String())
	if err != nil {
		return r, err
	}
	if r.PeakRSS, err = procfs.Memory(p.pid(), "VmHWM"); err != nil {
		return r, err
	}
	if o.memDevices == 0 {
		return r, nil
	}
	p.stop()
	if p, err = startServer(ctx, w, k); err != nil {
		p = nil
		return r, err
	}
	time.Sleep(time.Second) // let it settle after start (fakehub: the devices file's garbage)
	settle(p.pid())
	if r.IdleRSS, err = procfs.Memory(p.pid(), "VmRSS"); err != nil {
		return r, err
	}
	r.Memory, _, r.ConnectedRSS, err = phase("--devices", strconv.Itoa(o.memDevices), "--idle", "--duration", o.hold.String(),
		"--concurrency", strconv.Itoa(o.concurrency))
	if err != nil {
		return r, err
	}
	peak, err := procfs.Memory(p.pid(), "VmHWM")
	r.PeakRSS = max(r.PeakRSS, peak)
	return r, err
}

// load runs devicesim load against p with the fleet's keys and returns its
// report (also when it counted errors: they show in the table).
func load(ctx context.Context, w *workdir, p *process, stderr io.Writer, args ...string) (loadgen.Report, error) {
	base := []string{"load", "--keys", w.fleet, "--ca", filepath.Join(w.caDir, "ca.pem"), "--endpoint", p.addr(), "--json", "--progress", "0"}
	cmd := exec.CommandContext(ctx, filepath.Join(w.bin, "devicesim"), append(base, args...)...)
	cmd.Env = append(os.Environ(), goTLSEnv)
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	runErr := cmd.Run()
	var rep loadgen.Report
	if err := json.Unmarshal(out.Bytes(), &rep); err != nil {
		return rep, fmt.Errorf("devicesim load %s: %v; stderr: %s", strings.Join(args, " "), runErr, errOut.String())
	}
	if runErr != nil {
		fmt.Fprintf(stderr, "bench-compare:   devicesim load: %s", errOut.String())
	}
	return rep, nil
}

// describeMachine names the CPU, the core count, the kernel, Go and
// Mosquitto, and the load average now.
func describeMachine(mosquitto string) string {
	cpu := "unknown CPU"
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, l := range strings.Split(string(b), "\n") {
			if v, ok := strings.CutPrefix(l, "model name"); ok {
				cpu = strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(v), ":"))
				break
			}
		}
	}
	kernel := ""
	if b, err := os.ReadFile("/proc/sys/kernel/osrelease"); err == nil {
		kernel = ", Linux " + strings.TrimSpace(string(b))
	}
	mosq := ""
	if mosquitto != "" {
		if out, _ := exec.Command(mosquitto, "-h").CombinedOutput(); len(out) > 0 {
			mosq = ", " + strings.TrimSpace(strings.SplitN(string(out), "\n", 2)[0])
		}
	}
	la := ""
	if b, err := os.ReadFile("/proc/loadavg"); err == nil {
		la = ", load average " + strings.Join(strings.Fields(string(b))[:3], " ")
	}
	return fmt.Sprintf("%d × %s%s, %s%s%s", runtime.NumCPU(), cpu, kernel, runtime.Version(), mosq, la)
}
