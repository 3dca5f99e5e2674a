// Package fakehubtest starts in-process fake IoT hubs for tests: a fresh CA,
// a TLS listener on 127.0.0.1 with a random port, and Close registered with
// t.Cleanup. It is the only fakehub package that imports testing.
package fakehubtest

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hubkit/hubkit/internal/certs"
	"github.com/hubkit/hubkit/pkg/fakehub"
)

// Hub is a running fake hub and what a client needs to trust it.
type Hub struct {
	*fakehub.Server
	// CAPool trusts the hub's certificate.
	CAPool *x509.CertPool
	// CAFile is a PEM file of the CA (for mosquitto --cafile, Python tls_set).
	CAFile string
	// Host and Port to dial (127.0.0.1 and the random port).
	Host string
	Port string
	// WSPort is the port of MQTT over WebSockets (Server.WebSocketURL), "" without it.
	WSPort string

	t        testing.TB
	now      time.Time
	deviceMu sync.Mutex
	deviceCA *certs.CA // signs CA-authenticated device certificates; registered on first use
	drills   *drillSet // the TLS drills the hub presents (nil: opts.TLS was the caller's)
}

// DrillTLS returns a client TLS configuration trusting what a device graded with the TLS
// drill cases trusts (the root-change drill's trust file: the hub's CA, the old and the
// new root) and verifying the hub's host name. It fails the test when the hub's TLS
// configuration was the caller's (no drills).
func (h *Hub) DrillTLS() *tls.Config {
	h.t.Helper()
	if h.drills == nil {
		h.t.Fatal("fakehubtest: DrillTLS: the hub was started with the caller's TLS configuration (no TLS drills)")
	}
	d, err := h.drills.drill(certs.DrillRootChange)
	if err != nil {
		h.t.Fatalf("fakehubtest: DrillTLS: %v", err)
	}
	return &tls.Config{RootCAs: d.TrustPool(), ServerName: h.HostName(), MinVersion: tls.VersionTLS12}
}

// DrillTrustFile writes the roots DrillTLS trusts (the root-change drill's trust file: the
// hub's CA, the old and the new root) to a PEM file in a temporary folder and returns its
// path, for a device in another process (NODE_EXTRA_CA_CERTS, Paho's tls_set).
func (h *Hub) DrillTrustFile() string {
	h.t.Helper()
	if h.drills == nil {
		h.t.Fatal("fakehubtest: DrillTrustFile: the hub was started with the caller's TLS configuration (no TLS drills)")
	}
	d, err := h.drills.drill(certs.DrillRootChange)
	if err != nil {
		h.t.Fatalf("fakehubtest: DrillTrustFile: %v", err)
	}
	path := filepath.Join(h.t.TempDir(), "root-change-trust.pem")
	if err := d.WriteTrust(path); err != nil {
		h.t.Fatalf("fakehubtest: DrillTrustFile: %v", err)
	}
	return path
}

// drillSet builds the hub's TLS drills on first use, from its CA and the shaped test roots
// (one set per test process).
type drillSet struct {
	ca    *certs.CA
	hosts []string
	now   time.Time
	mu    sync.Mutex
	built map[string]*certs.Drill
}

var (
	drillStoreOnce sync.Once
	drillStore     certs.CAStore
)

func (d *drillSet) drill(name string) (*certs.Drill, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if dr, ok := d.built[name]; ok {
		return dr, nil
	}
	drillStoreOnce.Do(func() { drillStore = certs.MemoryStore(d.now) })
	dr, err := certs.NewDrill(name, d.hosts, d.ca, drillStore, d.now)
	if err != nil {
		return nil, err
	}
	if d.built == nil {
		d.built = map[string]*certs.Drill{}
	}
	d.built[name] = dr
	return dr, nil
}

// certificate is Options.TLSDrills: the chain a grade presents for the drill.
func (d *drillSet) certificate(name string) (tls.Certificate, error) {
	dr, err := d.drill(name)
	if err != nil {
		return tls.Certificate{}, err
	}
	return dr.Presented(), nil
}

// ClientTLS returns a client TLS configuration trusting the hub and
// verifying its host name.
func (h *Hub) ClientTLS() *tls.Config {
	return &tls.Config{RootCAs: h.CAPool, ServerName: h.HostName(), MinVersion: tls.VersionTLS12}
}

// LogLevel is the level of the log Start sends to t.Log when a test runs
// with -v: Info (connections, refusals with their reasons, cloud-side
// steps). Set it to slog.LevelDebug, e.g. in a TestMain, to see mochi's
// packet-level lines too.
var LogLevel slog.Leveler = slog.LevelInfo

// Start runs a hub for the test. opts may set anything; Addr and WebSocketAddr
// default to 127.0.0.1:0 (MQTT over TLS and over WebSockets), TLS is filled from
// a fresh CA (leaf for the host name, the device host name, localhost, 127.0.0.1
// and ::1) with TLSDrills built from it on first use (DrillTLS), and Logger defaults to t.Log at LogLevel (Info) when the test runs
// with -v, else discarded.
func Start(t testing.TB, opts fakehub.Options) *Hub {
	t.Helper()
	now := time.Now()
	ca, err := certs.NewCA("fakehubtest CA", 24*time.Hour, now, nil)
	if err != nil {
		t.Fatalf("fakehubtest: NewCA: %v", err)
	}
	var drills *drillSet
	host := opts.HostName
	if host == "" {
		host = "localhost"
	}
	if opts.TLS == nil && opts.InsecureAddr == "" {
		hosts := append([]string{host, "localhost", "127.0.0.1", "::1"}, opts.Aliases...)
		if opts.DeviceHostName != "" {
			hosts = append(hosts, opts.DeviceHostName)
		}
		cfg, err := ca.ServerTLS(hosts, 24*time.Hour, now)
		if err != nil {
			t.Fatalf("fakehubtest: ServerTLS: %v", err)
		}
		opts.TLS = cfg
		drills = &drillSet{ca: ca, hosts: hosts, now: now}
		if opts.TLSDrills == nil {
			opts.TLSDrills = drills.certificate
		}
	}
	if opts.Addr == "" {
		opts.Addr = "127.0.0.1:0"
	}
	if opts.WebSocketAddr == "" && opts.TLS != nil {
		opts.WebSocketAddr = "127.0.0.1:0"
	}
	if opts.Logger == nil && testing.Verbose() {
		tl := &tlog{t: t}
		t.Cleanup(tl.stop) // runs after Close: mochi goroutines may still log
		opts.Logger = slog.New(slog.NewTextHandler(tl, &slog.HandlerOptions{Level: LogLevel}))
	}
	srv, err := fakehub.NewServer(opts)
	if err != nil {
		t.Fatalf("fakehubtest: NewServer: %v", err)
	}
	t.Cleanup(func() { _ = srv.Close() })
	caFile := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(caFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: ca.Cert.Raw}), 0o644); err != nil {
		t.Fatalf("fakehubtest: %v", err)
	}
	h := &Hub{Server: srv, CAPool: ca.Pool(), CAFile: caFile, Host: "127.0.0.1", t: t, now: now, drills: drills}
	_, h.Port, _ = splitHostPort(srv.Addr())
	if a := srv.WebSocketAddr(); a != "" {
		_, h.WSPort, _ = splitHostPort(a)
	}
	return h
}

// tlog writes log lines to t.Log until the test ends.
type tlog struct {
	mu      sync.Mutex
	t       testing.TB
	stopped bool
}

func (l *tlog) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if !l.stopped {
		l.t.Log(strings.TrimSuffix(string(p), "\n"))
	}
	return len(p), nil
}

func (l *tlog) stop() {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.stopped = true
}

func splitHostPort(a string) (string, string, error) { return net.SplitHostPort(a) }
