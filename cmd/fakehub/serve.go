package main

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"runtime/debug"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/hubkit/hubkit/internal/certs"
	"github.com/hubkit/hubkit/internal/cli"
	"github.com/hubkit/hubkit/pkg/fakehub"
	"github.com/hubkit/hubkit/pkg/iothub"
	"github.com/hubkit/hubkit/pkg/sas"
)

const serveLong = `fakehub runs a fake Azure IoT Hub device endpoint: MQTT 3.1.1 over TLS that
authenticates and polices devices like IoT Hub (SAS tokens, client ID and user
name rules, topic rules, QoS 2, 256 KB, one connection per identity, token
expiry, keep-alive) and logs WHY it refused or closed a connection.

The --ca folder holds ca.pem and ca-key.pem; fakehub mints its server
certificate from it at start for the host names plus localhost, 127.0.0.1 and
::1. If the folder has no CA, fakehub creates one there and says so. Devices
trust DIR/ca.pem.

Devices come from --devices FILE (YAML or JSON: top-level hostname, devices,
policies, in IoT Hub's own JSON shapes, so "az iot hub device-identity list"
output loads as is) and from --device ID[=KEY] (ID may be deviceId/moduleId;
without KEY a key is generated and printed).

The service REST API (IoT Hub's registry, twin and direct-method paths, plus
C2D, telemetry and rejection extensions) listens on --http (default :8443,
"off" disables) over HTTPS with the same certificate; the client verbs (send,
events, invoke, twin, devices, rejections) use it. Without --ca it is off:
--http-insecure ADDR serves it over plain HTTP, where policy tokens and
device keys cross the network in the clear.

stdout carries the start banner: the listen address, the CA to trust, the
service API URL and its connection string (iothubowner) and, per device, a
connection string and a ready "sastool mqtt" command. Logs (each
connection, telemetry message and refusal with its reason) go to stderr.
SIGINT or SIGTERM stops the hub.

Exit codes:
  0  the hub stopped on a signal
  1  error: cannot listen, unreadable or invalid devices file or CA
  2  usage: unknown command or flag, bad flag value`

const serveExample = `  # the committed test CA, one device with a generated key
  fakehub --ca testdata/certs --device demo-device

  # a device with a known key, a module, and a real hub's name
  fakehub --ca testdata/certs --hostname myhub.azure-devices.net \
    --device thermostat=AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8= --device thermostat/sensor

  # the devices of a real hub (keys included), JSON logs
  az iot hub device-identity list --hub-name myhub > devices.json
  fakehub --ca testdata/certs --devices devices.json --log-format json

  # then, in another shell: send the device a C2D message, read its telemetry
  export HUBKIT_SERVICE_CONNECTION_STRING='HostName=localhost;SharedAccessKeyName=iothubowner;SharedAccessKey=...'
  fakehub send demo-device 'hello' --ca testdata/certs
  fakehub events --follow --ca testdata/certs

  # ready mosquitto_pub/mosquitto_sub commands for a device
  sastool mqtt -c "HostName=localhost;DeviceId=demo-device;SharedAccessKey=..." \
    --ca testdata/certs/ca.pem --format mosquitto`

type serveFlags struct {
	ca             string
	hostNames      []string
	listen         string
	http           string
	httpSet        bool // --http given explicitly
	httpInsecure   string
	devicesFile    string
	devices        []string
	insecureTCP    string
	logFormat      string
	logLevel       string
	connectTimeout time.Duration
	tokenGrace     time.Duration
	exitAfterStart bool
}

func newServeCmd(stdout, stderr io.Writer) *cobra.Command {
	f := &serveFlags{}
	cmd := &cobra.Command{
		Use:     "fakehub",
		Short:   "A fake Azure IoT Hub for offline device tests",
		Long:    serveLong,
		Example: serveExample,
		Args: func(cmd *cobra.Command, args []string) error {
			if len(args) > 0 {
				return cli.Usagef("unknown command %q for %q", args[0], cmd.CommandPath())
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, _ []string) error {
			f.httpSet = cmd.Flags().Changed("http")
			return serve(cmd.Context(), f, stdout, stderr)
		},
	}
	cmd.CompletionOptions.HiddenDefaultCmd = false
	fs := cmd.Flags()
	fs.SortFlags = false
	fs.StringVar(&f.ca, "ca", "", "`DIR` holding ca.pem and ca-key.pem (created if missing)")
	fs.StringArrayVar(&f.hostNames, "hostname", nil, "host `NAME` devices use (repeatable; default the devices file's hostname, else localhost)")
	fs.StringVar(&f.listen, "listen", ":8883", "MQTT over TLS listen `ADDR`")
	fs.StringVar(&f.http, "http", ":8443", "service REST API (HTTPS) listen `ADDR`, or off (off without --ca)")
	fs.StringVar(&f.httpInsecure, "http-insecure", "", "serve the service REST API over plain HTTP on `ADDR` (no --ca; keys readable on the network)")
	fs.StringVar(&f.devicesFile, "devices", "", "devices `FILE` (YAML or JSON)")
	fs.StringArrayVar(&f.devices, "device", nil, "add a device `ID[=KEY]` or module DEVICE/MODULE[=KEY] (repeatable)")
	fs.StringVar(&f.insecureTCP, "insecure-tcp", "", "also listen for plaintext MQTT on `ADDR` (IoT Hub has no such port)")
	fs.StringVar(&f.logFormat, "log-format", "text", "log `FORMAT` on stderr: text or json")
	fs.StringVar(&f.logLevel, "log-level", "info", "log `LEVEL`: debug, info, warn or error")
	fs.DurationVar(&f.connectTimeout, "connect-timeout", fakehub.DefaultConnectTimeout, "close connections without TLS handshake and CONNECT within this `DURATION`")
	fs.DurationVar(&f.tokenGrace, "token-grace", sas.DefaultSkew, "clock skew allowed at CONNECT and delay after token expiry before the drop (0: none)")
	fs.BoolVar(&f.exitAfterStart, "exit-after-start", false, "print the banner and exit (for tests)")
	_ = fs.MarkHidden("exit-after-start")
	return cmd
}

// deviceFlag is one parsed --device value.
type deviceFlag struct {
	id  iothub.Identity
	key string // base64, "" = generate
}

func parseDeviceFlag(v string) (deviceFlag, error) {
	idPart, key, hasKey := strings.Cut(v, "=")
	id, err := iothub.ParseClientID(idPart)
	if err != nil {
		return deviceFlag{}, cli.Usagef("--device %q: %v", idPart, err) // not v: it may hold the key
	}
	if hasKey {
		if _, err := sas.DecodeKey(key); err != nil {
			return deviceFlag{}, cli.Usagef("--device %s: key: %v", idPart, err)
		}
		if key == "" {
			return deviceFlag{}, cli.Usagef("--device %s=: empty key (leave out '=' to generate one)", idPart)
		}
	}
	return deviceFlag{id: id, key: key}, nil
}

func newLogger(w io.Writer, format, level string) (*slog.Logger, error) {
	var lv slog.Level
	if err := lv.UnmarshalText([]byte(level)); err != nil {
		return nil, cli.Usagef("--log-level %q: want debug, info, warn or error", level)
	}
	o := &slog.HandlerOptions{Level: lv}
	switch format {
	case "text":
		return slog.New(slog.NewTextHandler(w, o)), nil
	case "json":
		return slog.New(slog.NewJSONHandler(w, o)), nil
	}
	return nil, cli.Usagef("--log-format %q: want text or json", format)
}

func serve(ctx context.Context, f *serveFlags, stdout, stderr io.Writer) error {
	log, err := newLogger(stderr, f.logFormat, f.logLevel)
	if err != nil {
		return err
	}
	if f.ca == "" && f.insecureTCP == "" {
		return cli.Usage(errors.New("--ca is required"), "--ca testdata/certs uses the committed test CA; a new folder gets a new CA")
	}
	var devs []deviceFlag
	for _, v := range f.devices {
		d, err := parseDeviceFlag(v)
		if err != nil {
			return err
		}
		devs = append(devs, d)
	}
	now := time.Now()

	reg := fakehub.NewRegistry(rand.Reader)
	fileHost := ""
	if f.devicesFile != "" {
		fh, err := os.Open(f.devicesFile)
		if err != nil {
			return err
		}
		rf, err := fakehub.LoadRegistry(fh, rand.Reader)
		fh.Close()
		if err != nil {
			return fmt.Errorf("%s: %w", f.devicesFile, err)
		}
		reg, fileHost = rf.Registry, rf.HostName
		debug.FreeOSMemory() // the file's parsing garbage: the hub's idle RSS is its registry, not that
	}
	for _, d := range devs {
		if err := addDevice(reg, d); err != nil {
			return err
		}
	}
	hosts := f.hostNames
	if len(hosts) == 0 && fileHost != "" {
		hosts = []string{fileHost}
	}
	if len(hosts) == 0 {
		hosts = []string{"localhost"}
	}

	opts := fakehub.Options{
		HostName: hosts[0], Aliases: hosts[1:], Registry: reg, Logger: log,
		ConnectTimeout: f.connectTimeout, TokenExpiryGrace: f.tokenGrace,
		InsecureAddr: f.insecureTCP,
	}
	if f.tokenGrace == 0 {
		opts.TokenExpiryGrace = -1
	}
	caFile := ""
	caNote := ""
	if f.ca != "" {
		ca, created, err := certs.LoadOrCreateCA(f.ca, now)
		if err != nil {
			return fmt.Errorf("CA in %s: %w", f.ca, err)
		}
		if created {
			caNote = " (new CA created in " + f.ca + ")"
			log.Warn("created a new CA", "dir", f.ca)
		}
		caFile = filepath.Join(f.ca, "ca.pem")
		tlsConf, err := ca.ServerTLS(append(append([]string(nil), hosts...), "localhost", "127.0.0.1", "::1"), 90*24*time.Hour, now)
		if err != nil {
			return fmt.Errorf("server certificate: %w", err)
		}
		opts.TLS = tlsConf
		opts.Addr = f.listen
	}
	switch {
	case f.httpInsecure != "" && f.ca != "":
		return cli.Usagef("--http-insecure: with --ca the service API is HTTPS; use --http")
	case f.httpInsecure != "":
		opts.ServiceAddr, opts.InsecureService = f.httpInsecure, true // NewServer logs a WARN
	case f.ca == "" && f.httpSet && f.http != "off" && f.http != "":
		return cli.Usage(errors.New("--http needs --ca: the service API is HTTPS"), "--http-insecure ADDR serves it over plain HTTP (keys readable on the network)")
	case f.ca != "" && f.http != "off" && f.http != "":
		opts.ServiceAddr = f.http
	}
	srv, err := fakehub.NewServer(opts)
	if err != nil {
		return err
	}
	defer srv.Close()
	printBanner(stdout, srv, reg, caFile, caNote, f.ca != "")
	if f.exitAfterStart {
		return nil
	}
	go logTelemetry(ctx, srv, log)
	<-ctx.Done()
	log.Info("stopping")
	return nil
}

func addDevice(reg *fakehub.Registry, d deviceFlag) error {
	keys := fakehub.Keys{Primary: d.key}
	if !d.id.IsModule() {
		if _, ok := reg.Device(d.id.DeviceID); ok {
			if d.key == "" {
				return nil // already in the devices file
			}
			return cli.Usagef("--device %s: already in the devices file", d.id)
		}
		_, err := reg.AddDevice(fakehub.Device{ID: d.id.DeviceID, Keys: keys})
		return err
	}
	if _, ok := reg.Device(d.id.DeviceID); !ok {
		if _, err := reg.AddDevice(fakehub.Device{ID: d.id.DeviceID}); err != nil {
			return err
		}
	}
	if _, ok := reg.Module(d.id.DeviceID, d.id.ModuleID); ok && d.key == "" {
		return nil
	}
	_, err := reg.AddModule(fakehub.Module{DeviceID: d.id.DeviceID, ID: d.id.ModuleID, Keys: keys})
	return err
}

// maxBannerDevices bounds the per-device lines of the banner.
const maxBannerDevices = 20

func printBanner(w io.Writer, srv *fakehub.Server, reg *fakehub.Registry, caFile, caNote string, tls bool) {
	if tls {
		fmt.Fprintf(w, "fakehub: MQTT over TLS on %s for host name %s\n", srv.Addr(), srv.HostName())
		fmt.Fprintf(w, "trust:   %s%s\n", caFile, caNote)
	}
	if a := srv.InsecureAddr(); a != "" {
		fmt.Fprintf(w, "fakehub: plaintext MQTT on %s (testing only)\n", a)
	}
	if u := srv.ServiceURL(); u != "" {
		fmt.Fprintf(w, "service: %s (REST API, listening on %s)\n", u, srv.ServiceAddr())
		fmt.Fprintf(w, "  connection string: %s\n", srv.ServiceConnectionString())
		hubURL := ""
		if _, p, _ := net.SplitHostPort(srv.ServiceAddr()); p != "8443" {
			hubURL = " --hub-url " + u
		}
		caFlag := ""
		if tls {
			caFlag = " --ca " + caFile
		}
		fmt.Fprintf(w, "  fakehub events --follow -c '%s'%s%s\n", srv.ServiceConnectionString(), caFlag, hubURL)
	}
	_, port, _ := net.SplitHostPort(srv.Addr())
	portFlag := ""
	if port != strconv.Itoa(iothub.DefaultPort) {
		portFlag = " --port " + port
	}
	type entry struct {
		id  iothub.Identity
		key string
	}
	var entries []entry
	for _, d := range reg.Devices() {
		entries = append(entries, entry{iothub.Identity{DeviceID: d.ID}, d.Keys.Primary})
		for _, m := range d.Modules {
			entries = append(entries, entry{iothub.Identity{DeviceID: d.ID, ModuleID: m.ID}, m.Keys.Primary})
		}
	}
	if len(entries) == 0 {
		fmt.Fprintln(w, "devices: none (add with --device ID or --devices FILE)")
		return
	}
	fmt.Fprintln(w, "devices:")
	for i, e := range entries {
		if i == maxBannerDevices {
			fmt.Fprintf(w, "  ... and %d more\n", len(entries)-i)
			break
		}
		cs := sas.ConnectionString{HostName: srv.HostName(), DeviceID: e.id.DeviceID, ModuleID: e.id.ModuleID, SharedAccessKey: e.key}
		fmt.Fprintf(w, "  %s\n", e.id)
		fmt.Fprintf(w, "    %s\n", cs.String())
		if tls {
			fmt.Fprintf(w, "    sastool mqtt -c '%s' --ca %s%s --format mosquitto\n", cs.String(), caFile, portFlag)
		}
	}
}
