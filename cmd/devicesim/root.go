package main

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"sync"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/hubkit/hubkit/internal/certs"
	"github.com/hubkit/hubkit/internal/cli"
	"github.com/hubkit/hubkit/pkg/device"
	"github.com/hubkit/hubkit/pkg/serviceclient"
)

// envConnectionString is the one environment variable devicesim reads.
const envConnectionString = "HUBKIT_DEVICE_CONNECTION_STRING"

const rootLong = `devicesim is a simulated Azure IoT Hub device (or module) built on hubkit's
reference client. It connects over MQTT 3.1.1/TLS with SAS tokens minted from the
connection string (a fresh one on every connection, renewed hourly), to a real hub
or to a local fakehub. --transport mqtt-ws goes over WebSockets instead
(wss://HOST:443/$iothub/websocket, through --proxy if given); --cert and --key
authenticate an X.509 identity (connection string ...;x509=true) with its
certificate and no token.

The connection string comes from -c or the ` + envConnectionString + `
environment variable; on a shared machine prefer the variable: a -c argument is
visible in the process list and lands in your shell history.

Results go to stdout; diagnostics go to stderr as "devicesim: ..." lines
("devicesim: error: ..." and "devicesim: hint: ..." on failure).

Exit codes:
  0  success (listen, twin watch, methods: also when stopped with Ctrl-C)
  1  error: connection refused or lost, timeout, bad connection string or CA file
  2  usage: unknown verb or flag, missing connection string, bad flag value`

const rootExample = `  export ` + envConnectionString + `="HostName=localhost;DeviceId=dev1;SharedAccessKey=..."

  # against a local fakehub (its CA in testdata/certs)
  devicesim send --ca testdata/certs '{"temperature":21.5}'
  devicesim listen --ca testdata/certs --count 1

  # a real hub (system roots), 10 messages one second apart
  devicesim send -c "$CS" --count 10 --interval 1s

  # MQTT over WebSockets through a proxy; an X.509 device
  devicesim send --transport mqtt-ws --proxy http://proxy:3128 '{"t":1}'
  devicesim send -c "HostName=myhub.azure-devices.net;DeviceId=cam1;x509=true" \
    --cert cam1.pem --key cam1-key.pem '{"t":1}'

  devicesim twin get --ca testdata/certs
  devicesim methods --ca testdata/certs --status 200 --response '{"ok":true}'`

// streams is what a command may touch besides its flags.
type streams struct {
	in       io.Reader
	out, err io.Writer
}

// connFlags are the flags every verb that connects shares.
type connFlags struct {
	connStr   string
	ca        string
	endpoint  string
	timeout   time.Duration
	verbose   bool
	tokenFile string
	transport string
	certFile  string
	keyFile   string
	proxy     string
	hubClock  string
}

// hubClockInterval is how often --hub-clock reads the hub's clock.
const hubClockInterval = time.Second

func (f *connFlags) register(fs *pflag.FlagSet) {
	fs.SortFlags = false
	fs.StringVarP(&f.connStr, "connection-string", "c", "", "device or module connection string (default $"+envConnectionString+")")
	fs.StringVar(&f.ca, "ca", "", cli.CAFlagUsage+"; default: the system roots")
	fs.StringVar(&f.endpoint, "endpoint", "", "address to dial, HOST:PORT, when it differs from HostName (TLS still checks HostName)")
	fs.DurationVar(&f.timeout, "connect-timeout", 30*time.Second, "give up connecting after this long")
	fs.StringVar(&f.transport, "transport", "mqtt", "mqtt (MQTT over TLS, port 8883) or mqtt-ws (MQTT over WebSockets, wss://HOST:443/$iothub/websocket)")
	fs.StringVar(&f.certFile, "cert", "", "PEM `FILE` of an X.509 device certificate (leaf first, then intermediates); with --key, instead of a key or token")
	fs.StringVar(&f.keyFile, "key", "", "PEM `FILE` of the X.509 certificate's private key")
	fs.StringVar(&f.proxy, "proxy", "", "HTTP proxy `URL` for mqtt-ws (CONNECT tunnel), e.g. http://proxy:3128")
	fs.BoolVarP(&f.verbose, "verbose", "v", false, "log the client's protocol steps on stderr")
	fs.StringVar(&f.tokenFile, "token-file", "", "write each SAS token devicesim presents to `FILE` (mode 0600; a secret), for sastool verify")
	fs.StringVar(&f.hubClock, "hub-clock", "", "follow a fakehub's movable clock: its service API `URL` (https://localhost:8443; --ca applies); tokens are minted and renewed on it")
}

// client builds and connects a device client from the flags. Handlers registered by setup are
// in place before the CONNECT, so their subscriptions are made before client returns.
func (f *connFlags) client(ctx context.Context, st *streams, setup func(*device.Client), announce bool) (*device.Client, error) {
	cs := f.connStr
	if cs == "" {
		cs = os.Getenv(envConnectionString)
	}
	if cs == "" {
		return nil, cli.Usagef("no connection string: pass -c CONNECTION_STRING or set %s", envConnectionString)
	}
	cfg, err := device.ConfigFromConnectionString(cs)
	if err != nil {
		return nil, fmt.Errorf("connection string: %w", err)
	}
	if f.ca != "" {
		pool, err := certs.LoadPool(f.ca)
		if err != nil {
			return nil, fmt.Errorf("--ca: %w", err)
		}
		cfg.RootCAs = pool
	}
	cfg.Endpoint = f.endpoint
	if f.hubClock != "" {
		now, err := followHubClock(ctx, f.hubClock, cfg.RootCAs)
		if err != nil {
			return nil, err
		}
		cfg.Now = now
	}
	if f.tokenFile != "" {
		cfg.OnToken = func(tok string) {
			if err := writeSecret(f.tokenFile, tok+"\n"); err != nil {
				fmt.Fprintf(st.err, "devicesim: warning: --token-file: %v\n", err)
			}
		}
	}
	cfg.ConnectTimeout = f.timeout
	if cfg.Transport, err = device.ParseTransport(f.transport); err != nil {
		return nil, cli.Usagef("--transport: %v", err)
	}
	switch {
	case (f.certFile == "") != (f.keyFile == ""):
		return nil, cli.Usagef("--cert and --key go together (the device certificate and its private key)")
	case f.certFile != "":
		cert, err := device.LoadCertificate(f.certFile, f.keyFile)
		if err != nil {
			return nil, err
		}
		cfg.Certificate = &cert
	}
	if f.proxy != "" {
		if cfg.Transport != device.TransportWebSocket {
			return nil, cli.Usagef("--proxy needs --transport mqtt-ws (MQTT over TLS on 8883 does not go through HTTP proxies)")
		}
		u, err := url.Parse(f.proxy)
		if err != nil || u.Host == "" || (u.Scheme != "http" && u.Scheme != "https") {
			return nil, cli.Usagef("--proxy %q: want http://HOST:PORT", f.proxy)
		}
		cfg.Proxy = http.ProxyURL(u)
	}
	level := slog.LevelWarn
	if f.verbose {
		level = slog.LevelDebug
	}
	cfg.Logger = slog.New(slog.NewTextHandler(st.err, &slog.HandlerOptions{Level: level}))
	if announce {
		id := cfg.DeviceID
		if cfg.ModuleID != "" {
			id += "/" + cfg.ModuleID
		}
		cfg.OnConnectionChange = func(up bool, err error) {
			switch {
			case up:
				fmt.Fprintf(st.err, "devicesim: connected as %s to %s\n", id, cfg.HostName)
			case err != nil:
				fmt.Fprintf(st.err, "devicesim: disconnected: %v\n", err)
				if errors.Is(err, device.ErrReplaced) {
					fmt.Fprintf(st.err, "devicesim: hint: is another client connected as %s? the hub allows one connection per identity (fakehub rejections shows its reason)\n", id)
				}
			}
		}
	}
	c, err := device.New(cfg)
	if err != nil {
		return nil, err
	}
	if setup != nil {
		setup(c)
	}
	cctx, cancel := context.WithTimeout(ctx, f.timeout)
	defer cancel()
	if err := c.Connect(cctx); err != nil {
		_ = c.Close(context.Background())
		return nil, f.explain(err, cfg.HostName)
	}
	return c, nil
}

// followHubClock reads the clock of the fakehub whose service API is at url (GET
// /hubkit/clock, no token) and keeps following it every hubClockInterval until ctx ends. It
// returns the device's clock: the local one plus the hub's offset.
func followHubClock(ctx context.Context, url string, roots *x509.CertPool) (func() time.Time, error) {
	var opts []serviceclient.Option
	if roots != nil {
		opts = append(opts, serviceclient.WithRootCAs(roots))
	}
	hc, err := serviceclient.NewHubClock(url, opts...)
	if err != nil {
		return nil, cli.Usagef("--hub-clock: %v", err)
	}
	sctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := hc.Sync(sctx); err != nil {
		return nil, cli.NewError(cli.ExitError, fmt.Errorf("--hub-clock: %w", err),
			"--hub-clock takes the fakehub's service API URL (fakehub serve --http, default https://localhost:8443); a real IoT Hub has no movable clock")
	}
	go hc.Follow(ctx, hubClockInterval)
	return hc.Now, nil
}

// writeSecret replaces path with data, readable by its owner only (whatever the mode of a file
// it replaces).
func writeSecret(path, data string) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return err
	}
	if err := f.Chmod(0o600); err != nil {
		f.Close()
		return err
	}
	if _, err := f.WriteString(data); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// closeClient disconnects, giving handlers a few seconds.
func closeClient(c *device.Client) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = c.Close(ctx)
}

// run is main without the process: it parses args, runs the verb and returns the exit code.
func run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	st := &streams{in: stdin, out: stdout, err: stderr}
	root := &cobra.Command{
		Use:     "devicesim",
		Short:   "A simulated Azure IoT Hub device: telemetry, C2D, twin and direct methods",
		Long:    rootLong,
		Example: rootExample,
	}
	root.AddCommand(
		newSendCmd(st),
		newListenCmd(st),
		newTwinCmd(st),
		newMethodsCmd(st),
		newProvisionCmd(st),
		newLoadCmd(st),
		newVersionCmd(st),
	)
	cmd, err := cli.Execute(ctx, root, args, stdin, stdout, stderr)
	return cli.Report(stderr, cmd, err)
}

func noArgs(cmd *cobra.Command, args []string) error {
	if len(args) > 0 {
		return cli.Usagef("%s takes no arguments, got %q", cmd.CommandPath(), args[0])
	}
	return nil
}

func maxOneArg(what string) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		if len(args) > 1 {
			return cli.Usagef("%s takes at most one argument (%s), got %d: quote it", cmd.CommandPath(), what, len(args))
		}
		return nil
	}
}

func oneArg(what string) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		switch {
		case len(args) == 0:
			return cli.Usagef("%s needs %s", cmd.CommandPath(), what)
		case len(args) > 1:
			return cli.Usagef("%s takes one argument (%s), got %d: quote it", cmd.CommandPath(), what, len(args))
		}
		return nil
	}
}

// answerTimeout is the default --timeout of verbs that wait for one answer from the hub.
const answerTimeout = 30 * time.Second

// listenFlags are the --count and --timeout of a listening verb (listen, twin watch, methods).
type listenFlags struct {
	count   int
	timeout time.Duration
}

// register adds --count and --timeout; items names what the verb counts ("messages").
func (f *listenFlags) register(fs *pflag.FlagSet, items string) {
	fs.IntVarP(&f.count, "count", "n", 0, "exit after this many "+items+" (0: until interrupted)")
	fs.DurationVar(&f.timeout, "timeout", 0, "give up (exit 1) if the "+items+" have not arrived after this long (0: never)")
}

// check is the flags' part of the verb's PreRunE.
func (f *listenFlags) check() error {
	if f.count < 0 {
		return cli.Usagef("--count must not be negative")
	}
	if f.timeout < 0 {
		return cli.Usagef("--timeout %v: want a positive duration such as 30s (0: wait forever)", f.timeout)
	}
	return nil
}

// listen connects with the handlers setup registers, which hand what they receive to q.take,
// and returns once --count items are taken, ctx is done (Ctrl-C) or --timeout has passed; what
// names the awaited items in the time-out error.
func (f *listenFlags) listen(ctx context.Context, st *streams, conn *connFlags, what string, setup func(c *device.Client, q *quota)) error {
	q := newQuota(f.count)
	c, err := conn.client(ctx, st, func(c *device.Client) { setup(c, q) }, true)
	if err != nil {
		return err
	}
	defer closeClient(c)
	return listenUntil(ctx, q.done, f.timeout, what)
}

// listenUntil waits for ctx (Ctrl-C), the count to be reached (done closed) or the timeout.
func listenUntil(ctx context.Context, done <-chan struct{}, timeout time.Duration, what string) error {
	var expire <-chan time.Time
	if timeout > 0 {
		t := time.NewTimer(timeout)
		defer t.Stop()
		expire = t.C
	}
	select {
	case <-ctx.Done():
		return nil // interrupted: a normal way to stop listening
	case <-done:
		return nil
	case <-expire:
		return fmt.Errorf("timed out after %s waiting for %s", timeout, what)
	}
}

// quota counts what a listening verb handled: take runs print for the first count items
// (all of them when count is 0), serialised, and closes done after the last one.
type quota struct {
	mu    sync.Mutex
	count int
	n     int
	done  chan struct{}
}

func newQuota(count int) *quota { return &quota{count: count, done: make(chan struct{})} }

// take reports false, without printing, once the count is reached.
func (q *quota) take(print func()) bool {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.count > 0 && q.n >= q.count {
		return false
	}
	q.n++
	print()
	if q.n == q.count {
		close(q.done)
	}
	return true
}
