package main

import (
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"runtime/debug"
	"strconv"
	"time"

	"github.com/spf13/cobra"

	"github.com/hubkit/hubkit/internal/certs"
	"github.com/hubkit/hubkit/internal/cli"
	"github.com/hubkit/hubkit/internal/loadgen"
	"github.com/hubkit/hubkit/internal/procfs"
	"github.com/hubkit/hubkit/pkg/iothub"
	"github.com/hubkit/hubkit/pkg/sas"
)

// envLoadConnectionString holds the policy connection string of devicesim load.
const envLoadConnectionString = "HUBKIT_LOAD_CONNECTION_STRING"

const loadLong = `Simulate a fleet of devices: connect --devices N of them (at most
--connect-rate per second, --concurrency at a time), then for --duration let each
send telemetry (one message per --interval, --interval 0 as fast as --window
unacknowledged messages allow, or --idle for none), and report connects/s,
CONNACK latency, msgs/s, PUBACK latency and errors by kind.

Credentials, one of:
  -c POLICY_CONNECTION_STRING  (or $` + envLoadConnectionString + `) a shared access
                               policy with DeviceConnect ("device", "iothubowner"):
                               a token per device, for IDs from --id-pattern
  --keys FILE                  device connection strings, one per line, or a devices
                               file (fakehub's YAML/JSON, or "az iot hub
                               device-identity list" output with keys); with
                               --policy NAME, that policy's key from the file signs
  --anonymous --hostname H     no password, for a broker that lets anyone in

--shard I/N drives only part I (from 0) of N of the devices, contiguous and
deterministic, so N processes (pods of a Kubernetes Indexed Job) drive the whole
fleet once. The devices are those numbered --first to --first+--devices-1
(--keys: entries of the file in device-ID order).

The final report goes to stdout (a table, or one JSON object with --json); a
progress line goes to stderr every --progress. The client's own peak RSS and RSS
per connected device are reported too (Linux). The CONNACK latency runs from the
TCP dial to the CONNACK; the PUBACK latency from writing the PUBLISH to reading its
PUBACK.

Exit codes:
  0  the run completed without errors
  1  devices failed to connect or lost connections, messages went unacknowledged,
     or another error (bad keys file, CA)
  2  usage: bad flag values, no or several credential sources`

const loadExample = `  # 1,000 devices against a local fakehub, one message per device every 10 s for a minute
  fakehub --ca testdata/certs --devices fleet.yaml &
  devicesim load --keys fleet.yaml --ca testdata/certs --endpoint localhost:8883 \
    --devices 1000 --connect-rate 500 --interval 10s --duration 1m

  # a real hub: the built-in "device" policy, devices load-0 .. load-99 must exist
  export HUBKIT_LOAD_CONNECTION_STRING='HostName=myhub.azure-devices.net;SharedAccessKeyName=device;SharedAccessKey=...'
  devicesim load --devices 100 --id-pattern 'load-%d' --interval 1s --duration 5m

  # throughput: 100 devices, QoS 1, one message in flight each, as fast as the hub takes them
  devicesim load --keys fleet.yaml --ca testdata/certs --devices 100 --interval 0 --duration 10s --json

  # shard 2 of 8 of a 50,000-device fleet (the other 7 run elsewhere)
  devicesim load --keys fleet.yaml --ca ca.pem --devices 50000 --shard 2/8 --interval 10s --duration 10m

  # any MQTT broker that lets anyone in (mosquitto with allow_anonymous true)
  devicesim load --anonymous --hostname localhost --endpoint localhost:1883 --tcp --devices 500`

type loadFlags struct {
	connStr, keysFile, policy string
	anonymous                 bool
	hostName, endpoint, ca    string
	tcp                       bool

	devices, first int
	shard          string
	idPattern      string

	connectRate    float64
	concurrency    int
	connectTimeout time.Duration
	keepAlive      time.Duration

	interval    time.Duration
	idle        bool
	window      int
	payloadSize int
	qos         int
	duration    time.Duration
	drain       time.Duration

	c2d, methods bool
	twinInterval time.Duration
	tokenTTL     time.Duration

	jsonOut  bool
	progress time.Duration

	devicesSet bool // --devices given (with --keys, the default is the whole file)
}

func newLoadCmd(st *streams) *cobra.Command {
	f := &loadFlags{}
	cmd := &cobra.Command{
		Use:     "load",
		Short:   "Simulate a fleet of devices and measure the hub: connects/s, latencies, msgs/s",
		Long:    loadLong,
		Example: loadExample,
		Args:    noArgs,
		PreRunE: func(cmd *cobra.Command, _ []string) error { return f.check(cmd) },
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runLoad(cmd, f, st)
		},
	}
	fs := cmd.Flags()
	fs.SortFlags = false
	fs.StringVarP(&f.connStr, "connection-string", "c", "", "shared access policy connection string with DeviceConnect (default $"+envLoadConnectionString+")")
	fs.StringVar(&f.keysFile, "keys", "", "`FILE` of device connection strings (one per line) or a devices file (YAML/JSON)")
	fs.StringVar(&f.policy, "policy", "", "with --keys: sign with this policy of the devices file instead of the device keys")
	fs.BoolVar(&f.anonymous, "anonymous", false, "send no password (a broker that lets anyone in); needs --hostname")
	fs.StringVar(&f.hostName, "hostname", "", "hub host name for user names and tokens (default: from the credentials)")
	fs.StringVar(&f.endpoint, "endpoint", "", "address to dial, HOST:PORT (default HOSTNAME:8883)")
	fs.StringVar(&f.ca, "ca", "", "PEM file of the CA to trust instead of the system roots; a directory means DIR/ca.pem")
	fs.BoolVar(&f.tcp, "tcp", false, "plain MQTT over TCP instead of TLS (fakehub --insecure-tcp, a test broker)")
	fs.IntVarP(&f.devices, "devices", "n", 100, "number of devices (before --shard)")
	fs.IntVar(&f.first, "first", 0, "number of the first device")
	fs.StringVar(&f.shard, "shard", "", "drive only part `I/N` of the devices (I from 0)")
	fs.StringVar(&f.idPattern, "id-pattern", "load-%d", "device IDs, a printf pattern with one integer verb (with -c and --anonymous)")
	fs.Float64Var(&f.connectRate, "connect-rate", 0, "new connections per second at most (0: only --concurrency bounds them)")
	fs.IntVar(&f.concurrency, "concurrency", 50, "connections being set up at once")
	fs.DurationVar(&f.connectTimeout, "connect-timeout", 30*time.Second, "give up on a device that has no CONNACK after this long")
	fs.DurationVar(&f.keepAlive, "keep-alive", 60*time.Second, "MQTT keep-alive of each device")
	fs.DurationVar(&f.interval, "interval", 10*time.Second, "time between two messages of one device (0: as fast as --window allows)")
	fs.BoolVar(&f.idle, "idle", false, "send no telemetry: connect, stay connected for --duration, disconnect")
	fs.IntVar(&f.window, "window", 1, "QoS 1 messages a device may have waiting for their PUBACK")
	fs.IntVar(&f.payloadSize, "payload-size", 256, "telemetry payload size in bytes (a JSON object)")
	fs.IntVar(&f.qos, "qos", 1, "telemetry QoS, 0 or 1")
	fs.DurationVar(&f.duration, "duration", time.Minute, "steady phase, after every device has connected (0: disconnect at once)")
	fs.DurationVar(&f.drain, "drain", 5*time.Second, "wait at most this long for outstanding PUBACKs at the end")
	fs.BoolVar(&f.c2d, "c2d", false, "subscribe to C2D messages; each is acknowledged and echoed back as telemetry ($.cid = its $.mid)")
	fs.BoolVar(&f.methods, "methods", false, "subscribe to direct methods; each is answered 200 with the request payload")
	fs.DurationVar(&f.twinInterval, "twin-interval", 0, "send a reported-properties PATCH this often per device and time its answer (0: none)")
	fs.DurationVar(&f.tokenTTL, "token-ttl", 0, "lifetime of the SAS tokens (default: 1 h, or the run's length plus 1 h)")
	fs.BoolVar(&f.jsonOut, "json", false, "print the report as one JSON object")
	fs.DurationVar(&f.progress, "progress", time.Second, "progress line on stderr this often (0: none)")
	return cmd
}

func (f *loadFlags) check(cmd *cobra.Command) error {
	f.devicesSet = cmd.Flags().Changed("devices")
	sources := 0
	for _, set := range []bool{f.connStr != "" || (f.keysFile == "" && !f.anonymous && os.Getenv(envLoadConnectionString) != ""), f.keysFile != "", f.anonymous} {
		if set {
			sources++
		}
	}
	switch {
	case sources == 0:
		return cli.Usagef("no credentials: pass -c POLICY_CONNECTION_STRING (or set %s), --keys FILE or --anonymous", envLoadConnectionString)
	case sources > 1:
		return cli.Usagef("-c, --keys and --anonymous exclude each other")
	case f.anonymous && f.hostName == "":
		return cli.Usagef("--anonymous needs --hostname (the host name in user names)")
	case f.policy != "" && f.keysFile == "":
		return cli.Usagef("--policy picks a policy of the --keys file; with -c the connection string names the policy")
	case f.devices < 0 || f.first < 0:
		return cli.Usagef("--devices and --first must not be negative")
	case f.concurrency < 1:
		return cli.Usagef("--concurrency must be at least 1")
	case f.connectRate < 0:
		return cli.Usagef("--connect-rate must not be negative")
	case f.interval < 0 || f.duration < 0 || f.twinInterval < 0 || f.tokenTTL < 0:
		return cli.Usagef("durations must not be negative")
	case f.idle && cmd.Flags().Changed("interval"):
		return cli.Usagef("--idle and --interval exclude each other")
	case f.window < 1:
		return cli.Usagef("--window must be at least 1")
	case f.qos != 0 && f.qos != 1:
		return cli.Usagef("--qos %d: IoT Hub takes telemetry at QoS 0 or 1", f.qos)
	case f.payloadSize < 0 || f.payloadSize > iothub.MaxTelemetrySize:
		return cli.Usagef("--payload-size must be from 0 to %d", iothub.MaxTelemetrySize)
	case f.keepAlive < time.Second || f.keepAlive > 65535*time.Second:
		return cli.Usagef("--keep-alive must be from 1s to 65535s")
	}
	if f.shard != "" {
		if _, err := loadgen.ParseShard(f.shard); err != nil {
			return cli.Usage(err)
		}
	}
	if !f.anonymous && f.keysFile == "" || f.anonymous {
		if _, err := loadgen.IDPattern(f.idPattern); err != nil {
			return cli.Usage(err)
		}
	}
	return nil
}

func runLoad(cmd *cobra.Command, f *loadFlags, st *streams) error {
	cfg := loadgen.Config{
		ConnectRate: f.connectRate, Concurrency: f.concurrency, ConnectTimeout: f.connectTimeout, KeepAlive: f.keepAlive,
		Interval: f.interval, Window: f.window, PayloadSize: f.payloadSize, QoS: byte(f.qos), QoSSet: true,
		Duration: f.duration, Drain: f.drain, C2D: f.c2d, Methods: f.methods, TwinInterval: f.twinInterval,
		Telemetry: loadgen.TelemetryInterval,
	}
	switch {
	case f.idle:
		cfg.Telemetry = loadgen.TelemetryNone
	case f.interval == 0:
		cfg.Telemetry = loadgen.TelemetryFlood
	}
	ttl := f.tokenTTL
	if ttl == 0 {
		ttl = max(time.Hour, f.duration+time.Hour)
	}
	expiry := time.Now().Add(ttl)
	total := f.devices
	host, err := f.credentials(&cfg, expiry, &total)
	if err != nil {
		return err
	}
	cfg.HostName = host
	shard := loadgen.Shard{}
	if f.shard != "" {
		shard, _ = loadgen.ParseShard(f.shard)
	}
	cfg.First, cfg.Count = shard.Range(f.first, total)

	cfg.Addr = f.endpoint
	if cfg.Addr == "" {
		cfg.Addr = net.JoinHostPort(stripPort(host), strconv.Itoa(iothub.DefaultPort))
	}
	if !f.tcp {
		tc := &tls.Config{ServerName: stripPort(host), MinVersion: tls.VersionTLS12}
		if f.ca != "" {
			pool, err := certs.LoadPool(f.ca)
			if err != nil {
				return fmt.Errorf("reading the CA: %w", err)
			}
			tc.RootCAs = pool
		}
		cfg.TLS = loadgen.CachedVerification(tc)
	}
	// The client's own memory: RSS at its highest while devices are
	// connected, over the RSS before the first one (the keys file's parsing
	// garbage returned to the OS first).
	var print func(loadgen.Progress)
	if f.progress > 0 {
		cfg.ProgressInterval = f.progress
		print = progressPrinter(st)
	}
	var peakRSS, peakLive int64
	cfg.Progress = func(p loadgen.Progress) {
		if p.Live > 0 {
			if r := selfRSS(); r > peakRSS {
				peakRSS, peakLive = r, p.Live
			}
		}
		if print != nil {
			print(p)
		}
	}
	debug.FreeOSMemory()
	baseRSS := selfRSS()
	rep, err := loadgen.Run(cmd.Context(), cfg)
	if err != nil {
		return err
	}
	if f.shard != "" {
		rep.Shard = shard.String()
	}
	if peakRSS > 0 && peakLive > 0 {
		rep.ClientPeakRSS = peakRSS
		rep.ClientRSSPerDevice = float64(peakRSS-baseRSS) / float64(peakLive)
	}
	if f.jsonOut {
		b, err := json.Marshal(rep)
		if err != nil {
			return err
		}
		fmt.Fprintf(st.out, "%s\n", b)
	} else if err := rep.WriteText(st.out); err != nil {
		return err
	}
	if n := rep.ErrorCount(); n == 1 {
		return errors.New("the run counted 1 error (see the report's errors line)")
	} else if n > 1 {
		return fmt.Errorf("the run counted %d errors (see the report's errors line)", n)
	}
	if rep.Connected < rep.Devices {
		return fmt.Errorf("only %d of %d devices connected (interrupted)", rep.Connected, rep.Devices)
	}
	return nil
}

// credentials fills cfg.Credential from the flags and returns the hub host
// name; with --keys, *total defaults to the number of devices in the file.
func (f *loadFlags) credentials(cfg *loadgen.Config, expiry time.Time, total *int) (string, error) {
	ids, _ := loadgen.IDPattern(f.idPattern) // checked by check
	switch {
	case f.anonymous:
		cfg.Credential = loadgen.AnonymousCredentials(ids)
		return f.hostName, nil
	case f.keysFile != "":
		kf, err := readKeysFile(f.keysFile)
		if err != nil {
			return "", err
		}
		host := f.hostName
		if host == "" {
			host = kf.hostName
		}
		if host == "" {
			return "", cli.Usagef("%s names no host: pass --hostname", f.keysFile)
		}
		if !f.devicesSet {
			*total = len(kf.keys) - f.first
		}
		if f.first+*total > len(kf.keys) {
			return "", fmt.Errorf("%s has %d devices; devices %d to %d were asked for", f.keysFile, len(kf.keys), f.first, f.first+*total-1)
		}
		if f.policy != "" {
			key, ok := kf.policies[f.policy]
			if !ok {
				return "", fmt.Errorf("%s has no policy %q", f.keysFile, f.policy)
			}
			cfg.Credential = loadgen.PolicyCredentials(host, f.policy, key, func(i int) iothub.Identity { return kf.keys[i].Identity }, expiry)
			return host, nil
		}
		cfg.Credential = loadgen.KeyCredentials(host, kf.keys, expiry)
		return host, nil
	}
	s := f.connStr
	if s == "" {
		s = os.Getenv(envLoadConnectionString)
	}
	cs, err := sas.ParseConnectionString(s)
	if err != nil {
		return "", fmt.Errorf("connection string: %w", err)
	}
	if cs.SharedAccessKeyName == "" || cs.DeviceID != "" {
		return "", cli.Usage(errors.New("-c must be a shared access policy connection string (HostName=…;SharedAccessKeyName=…;SharedAccessKey=…)"),
			"for per-device keys use --keys FILE (device connection strings, one per line)")
	}
	key, err := sas.DecodeKey(cs.SharedAccessKey)
	if err != nil {
		return "", fmt.Errorf("connection string: SharedAccessKey: %w", err)
	}
	host := cs.HostName
	if f.hostName != "" {
		host = f.hostName
	}
	cfg.Credential = loadgen.PolicyCredentials(host, cs.SharedAccessKeyName, key, ids, expiry)
	return host, nil
}

// progressPrinter writes each progress line to stderr: on a terminal over
// the previous one, elsewhere (logs, a pod) one line each.
func progressPrinter(st *streams) func(loadgen.Progress) {
	term := false
	if fh, ok := st.err.(*os.File); ok {
		if fi, err := fh.Stat(); err == nil && fi.Mode()&os.ModeCharDevice != 0 {
			term = true
		}
	}
	return func(p loadgen.Progress) {
		if term {
			end := "\r"
			if p.Final {
				end = "\n"
			}
			fmt.Fprintf(st.err, "\r\x1b[K%s%s", p.Line(), end)
			return
		}
		fmt.Fprintf(st.err, "devicesim: %s\n", p.Line())
	}
}

// selfRSS is this process's resident set (0 where /proc is not there).
func selfRSS() int64 {
	r, _ := procfs.Memory(0, "VmRSS")
	return r
}

// stripPort drops a ":port" from a host name.
func stripPort(h string) string {
	if host, _, err := net.SplitHostPort(h); err == nil {
		return host
	}
	return h
}
