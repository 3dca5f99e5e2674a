package main

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rogpeppe/go-internal/testscript"

	"github.com/hubkit/hubkit/internal/certs"
	"github.com/hubkit/hubkit/internal/mqttraw"
	"github.com/hubkit/hubkit/internal/testutil"
	"github.com/hubkit/hubkit/pkg/device"
	"github.com/hubkit/hubkit/pkg/fakehub"
	"github.com/hubkit/hubkit/pkg/iothub"
	"github.com/hubkit/hubkit/pkg/sas"
)

const hubKey = "fakehub-hub"

// TestServiceScripts runs testdata/service_*.txtar against an in-process
// fakehub (MQTT and the service API) served over TLS with a leaf of the
// committed test CA (testdata/certs), so --ca DIR is exercised. The hub's
// clock stands still at the second the script starts, so the times it stamps
// are known: scripts get them as $NOW and $YESTERDAY (24 h earlier), with
// $HUB_URL, $SERVICE_CS (iothubowner), $READ_CS (registryRead), $RW_CS (registryReadWrite,
// which holds only RegistryWrite, as on IoT Hub) and $CA_DIR.
//
// The hub command drives real devices (pkg/device clients) against it:
//
//	hub online DEV                connect DEV (added to the registry if missing) until the script ends;
//	                              ! hub online DEV expects the hub to refuse it (CONNACK 5, not authorized),
//	                              ! hub online DEV unavailable a CONNACK 3 (server unavailable)
//	hub method NAME STATUS JSON   the connected devices answer method NAME so (unknown methods: no answer)
//	hub publish DEV BODY [k=v...] DEV sends telemetry with those application properties; waits until the hub captured it
//	hub reject DEV expired        DEV connects with a token that expired at $YESTERDAY; waits for the hub's rejection
//	hub c2d DEV                   bring DEV online, wait until it settled every C2D message the hub holds for it,
//	                              and print what it received, one JSON object per message (topic properties decoded)
//
//	hub silent DEV                connect DEV with a raw MQTT client that subscribes to nothing (until the script ends)
//	hub follows N                 wait until N follow streams (?follow=true) of the service API are open,
//	                              their answers' headers sent: a stream started in the background is positioned
//
// exitcode N checks the exit code of the last fakehub run. "fakehub ARGS... &NAME&" runs
// fakehub in the background (bounded to 30 s, like any run); "fakehubwait NAME" waits for it
// and makes its output and exit code those of the last run ("! fakehubwait NAME": it failed).
func TestServiceScripts(t *testing.T) {
	caDir, err := filepath.Abs("../../testdata/certs")
	if err != nil {
		t.Fatal(err)
	}
	ca, err := certs.LoadCA(caDir)
	if err != nil {
		t.Fatal(err)
	}
	files, _ := filepath.Glob("testdata/service_*.txtar")
	testscript.Run(t, testscript.Params{
		Files: files,
		Setup: func(env *testscript.Env) error {
			h, err := startScriptHub(ca)
			if err != nil {
				return err
			}
			env.Defer(h.close)
			env.Values[hubKey] = h
			read, ok := h.srv.Registry().Policy("registryRead")
			if !ok {
				return errors.New("the hub has no registryRead policy")
			}
			env.Setenv("HUB_URL", h.url)
			env.Setenv("SERVICE_CS", h.srv.ServiceConnectionString())
			env.Setenv("READ_CS", sas.ConnectionString{HostName: h.srv.HostName(), SharedAccessKeyName: read.KeyName, SharedAccessKey: read.PrimaryKey}.String())
			rw, _ := h.srv.Registry().Policy("registryReadWrite")
			env.Setenv("RW_CS", sas.ConnectionString{HostName: h.srv.HostName(), SharedAccessKeyName: rw.KeyName, SharedAccessKey: rw.PrimaryKey}.String())
			env.Setenv("CA_DIR", caDir)
			env.Setenv("DPS_CS", h.srv.DPS().ServiceConnectionString())
			env.Setenv("DPS_URL", h.srv.DPS().URL())
			env.Setenv("NOW", h.now.Format(time.RFC3339))
			env.Setenv("YESTERDAY", h.now.Add(-24*time.Hour).Format(time.RFC3339))
			return nil
		},
		Cmds: map[string]func(ts *testscript.TestScript, neg bool, args []string){
			"fakehub":     cmdFakehub,
			"fakehubwait": cmdFakehubWait,
			"exitcode":    cmdExitCode,
			"hub":         cmdHub,
			// sign CODE_FILE OUT: a proof-of-possession certificate (CN = the code in
			// CODE_FILE) signed by the committed test CA, written to OUT.
			"sign": func(ts *testscript.TestScript, neg bool, args []string) {
				if len(args) != 2 || neg {
					ts.Fatalf("usage: sign CODE_FILE OUT")
				}
				code := strings.TrimSpace(ts.ReadFile(args[0]))
				l, err := ca.IssueVerification(code, time.Now())
				ts.Check(err)
				ts.Check(os.WriteFile(ts.MkAbs(args[1]), l.CertPEM(), 0o644))
			},
		},
	})
}

// scriptHub is one script's fakehub and the devices the script brought online. Its
// service API is served by the test (srv.ServiceHandler behind watchFollows) so that a
// script can wait for a background follow stream to be open.
type scriptHub struct {
	srv  *fakehub.Server
	http *http.Server
	url  string // the service API, https://localhost:{port}
	ca   *certs.CA
	now  time.Time // the hub's clock

	mu      sync.Mutex
	devices map[string]*scriptDevice
	answers map[string]methodAnswer   // by method name
	bg      map[string]*backgroundRun // by name
	follows int                       // open follow streams whose headers were sent
	changed chan struct{}             // closed and replaced when follows changes
}

// backgroundRun is a fakehub run started with "&NAME&".
type backgroundRun struct {
	done           chan struct{}
	code           int
	stdout, stderr bytes.Buffer
}

// watchFollows counts the follow streams (?follow=true) that have sent their headers and
// are still open.
func (h *scriptHub) watchFollows(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Query().Get("follow") != "true" {
			next.ServeHTTP(w, r)
			return
		}
		fw := &followWriter{ResponseWriter: w, h: h}
		defer func() {
			if fw.counted {
				h.addFollows(-1)
			}
		}()
		next.ServeHTTP(fw, r)
	})
}

func (h *scriptHub) addFollows(n int) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.follows += n
	close(h.changed)
	h.changed = make(chan struct{})
}

// followWriter counts its stream once the headers are written.
type followWriter struct {
	http.ResponseWriter
	h       *scriptHub
	counted bool
}

func (w *followWriter) WriteHeader(code int) {
	w.ResponseWriter.WriteHeader(code)
	if code == http.StatusOK && !w.counted {
		w.counted = true
		w.h.addFollows(1)
	}
}

func (w *followWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter } // for http.ResponseController's Flush

type methodAnswer struct {
	status  int
	payload json.RawMessage
}

// scriptDevice is a connected device and the C2D messages it received.
type scriptDevice struct {
	c   *device.Client
	mu  sync.Mutex
	c2d []device.C2DMessage
}

func startScriptHub(ca *certs.CA) (*scriptHub, error) {
	tlsConf, err := ca.ServerTLS([]string{"localhost", "127.0.0.1"}, time.Hour, time.Now())
	if err != nil {
		return nil, err
	}
	now := time.Now().UTC().Truncate(time.Second)
	srv, err := fakehub.NewServer(fakehub.Options{TLS: tlsConf, Now: func() time.Time { return now },
		DPS: &fakehub.DPSOptions{RetryAfter: time.Second}})
	if err != nil {
		return nil, err
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		_ = srv.Close()
		return nil, err
	}
	h := &scriptHub{srv: srv, ca: ca, now: now, devices: map[string]*scriptDevice{}, answers: map[string]methodAnswer{},
		bg: map[string]*backgroundRun{}, changed: make(chan struct{})}
	h.http = &http.Server{Handler: h.watchFollows(srv.ServiceHandler()), TLSConfig: tlsConf.Clone(), ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = h.http.ServeTLS(ln, "", "") }()
	_, port, _ := net.SplitHostPort(ln.Addr().String())
	h.url = "https://" + net.JoinHostPort(srv.HostName(), port)
	return h, nil
}

func (h *scriptHub) close() {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	h.mu.Lock()
	devs := h.devices
	h.devices = nil
	h.mu.Unlock()
	for _, d := range devs {
		_ = d.c.Close(ctx)
	}
	_ = h.http.Close() // ends follow streams, so background runs return
	_ = h.srv.Close()
	h.mu.Lock()
	bg := h.bg
	h.mu.Unlock()
	for _, b := range bg {
		<-b.done
	}
}

// deviceConfig returns the configuration of a client for id, adding id to
// the registry when it is not there.
func (h *scriptHub) deviceConfig(id string) (device.Config, error) {
	d, err := h.srv.Device(iothub.Identity{DeviceID: id})
	if errors.Is(err, iothub.ErrDeviceNotFound) {
		d, err = h.srv.AddDevice(id)
	}
	if err != nil {
		return device.Config{}, err
	}
	return device.Config{HostName: h.srv.HostName(), DeviceID: id, SharedAccessKey: d.Authentication.SymmetricKey.PrimaryKey,
		Endpoint: h.srv.Addr(), RootCAs: h.ca.Pool(), ConnectTimeout: 10 * time.Second}, nil
}

// online returns the connected client of id, connecting it first if needed.
func (h *scriptHub) online(ctx context.Context, id string) (*scriptDevice, error) {
	h.mu.Lock()
	d, ok := h.devices[id]
	h.mu.Unlock()
	if ok {
		return d, nil
	}
	cfg, err := h.deviceConfig(id)
	if err != nil {
		return nil, err
	}
	c, err := device.New(cfg)
	if err != nil {
		return nil, err
	}
	d = &scriptDevice{c: c}
	c.OnC2D(func(_ context.Context, m device.C2DMessage) {
		d.mu.Lock()
		d.c2d = append(d.c2d, m)
		d.mu.Unlock()
	})
	c.OnAnyMethod(func(ctx context.Context, name string, _ []byte) (int, any, error) {
		h.mu.Lock()
		a, ok := h.answers[name]
		h.mu.Unlock()
		if !ok { // stay silent: the caller meets its timeout
			<-ctx.Done()
			return 0, nil, ctx.Err()
		}
		return a.status, a.payload, nil
	})
	if err := c.Connect(ctx); err != nil {
		_ = c.Close(ctx)
		return nil, fmt.Errorf("connecting %s: %w", id, err)
	}
	h.mu.Lock()
	h.devices[id] = d
	h.mu.Unlock()
	return d, nil
}

func cmdFakehub(ts *testscript.TestScript, neg bool, args []string) {
	if n := len(args); n > 0 && len(args[n-1]) > 2 && strings.HasPrefix(args[n-1], "&") && strings.HasSuffix(args[n-1], "&") {
		if neg {
			ts.Fatalf("usage: fakehub ARGS... &NAME& (negate fakehubwait instead)")
		}
		h := ts.Value(hubKey).(*scriptHub)
		name, args := args[n-1][1:len(args[n-1])-1], args[:n-1]
		b := &backgroundRun{done: make(chan struct{})}
		h.mu.Lock()
		if _, dup := h.bg[name]; dup {
			h.mu.Unlock()
			ts.Fatalf("fakehub: a background run %q exists", name)
		}
		h.bg[name] = b
		h.mu.Unlock()
		getenv := ts.Getenv // read now: the script's environment may change meanwhile
		env := map[string]string{}
		for _, k := range []string{envServiceConnectionString, envDPSConnectionString} {
			env[k] = getenv(k)
		}
		go func() {
			defer close(b.done)
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			b.code = run(ctx, args, strings.NewReader(""), &b.stdout, &b.stderr, func(k string) string { return env[k] })
		}()
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	code := run(ctx, args, strings.NewReader(""), ts.Stdout(), ts.Stderr(), ts.Getenv)
	checkExit(ts, neg, code)
}

// cmdFakehubWait waits for a background run and takes its output and exit code.
func cmdFakehubWait(ts *testscript.TestScript, neg bool, args []string) {
	if len(args) != 1 {
		ts.Fatalf("usage: [!] fakehubwait NAME")
	}
	h := ts.Value(hubKey).(*scriptHub)
	h.mu.Lock()
	b, ok := h.bg[args[0]]
	delete(h.bg, args[0])
	h.mu.Unlock()
	if !ok {
		ts.Fatalf("fakehubwait: no background run %q", args[0])
	}
	<-b.done // bounded: the run has a 30 s context
	_, _ = ts.Stdout().Write(b.stdout.Bytes())
	_, _ = ts.Stderr().Write(b.stderr.Bytes())
	checkExit(ts, neg, b.code)
}

// checkExit records a fakehub run's exit code for exitcode and checks it against neg.
func checkExit(ts *testscript.TestScript, neg bool, code int) {
	ts.Setenv("FAKEHUB_EXIT", strconv.Itoa(code))
	switch {
	case neg && code == 0:
		ts.Fatalf("fakehub succeeded unexpectedly")
	case !neg && code != 0:
		ts.Fatalf("fakehub failed: exit %d", code)
	}
}

func cmdExitCode(ts *testscript.TestScript, neg bool, args []string) {
	if len(args) != 1 || neg {
		ts.Fatalf("usage: exitcode N")
	}
	if got := ts.Getenv("FAKEHUB_EXIT"); got != args[0] {
		ts.Fatalf("exit code = %s, want %s", got, args[0])
	}
}

func cmdHub(ts *testscript.TestScript, neg bool, args []string) {
	h := ts.Value(hubKey).(*scriptHub)
	if len(args) < 2 || neg && args[0] != "online" {
		ts.Fatalf("usage: hub online|method|publish|reject|c2d|provision ARGS (only online may be negated)")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	switch args[0] {
	case "follows": // hub follows N: wait until N follow streams are open
		n, err := strconv.Atoi(args[1])
		ts.Check(err)
		for {
			h.mu.Lock()
			got, ch := h.follows, h.changed
			h.mu.Unlock()
			if got == n {
				break
			}
			select {
			case <-ch:
			case <-ctx.Done():
				ts.Fatalf("hub follows %d: %d open", n, got)
			}
		}
	case "silent": // hub silent DEV: connected, no subscriptions
		if len(args) != 2 {
			ts.Fatalf("usage: hub silent DEV")
		}
		cfg, err := h.deviceConfig(args[1])
		ts.Check(err)
		key, err := sas.DecodeKey(cfg.SharedAccessKey)
		ts.Check(err)
		tok := sas.Sign(sas.EncodeResource(sas.DeviceResource(cfg.HostName, args[1])), "", key, h.now.Add(time.Hour))
		tlsConf := &tls.Config{RootCAs: h.ca.Pool(), ServerName: cfg.HostName}
		ack, conn, err := mqttraw.ConnectAndWait(ctx, h.srv.Addr(), tlsConf, mqttraw.ConnectPacket{ClientID: args[1], CleanSession: true, KeepAlive: 60,
			UserName: mqttraw.String(cfg.HostName + "/" + args[1] + "/?api-version=" + iothub.DefaultAPIVersion), Password: mqttraw.String(tok.String())})
		ts.Check(err)
		ts.Defer(func() { _ = conn.Close() })
		if ack.ReturnCode != 0 {
			ts.Fatalf("hub silent %s: CONNACK %d", args[1], ack.ReturnCode)
		}
		if !testutil.Poll(10*time.Second, func() bool { return h.srv.Connected(iothub.Identity{DeviceID: args[1]}) }) {
			ts.Fatalf("hub silent %s: the hub has no connection for it", args[1])
		}
	case "provision": // hub provision REGISTRATION_ID KEY: register with the DPS (pkg/device.Provision)
		if len(args) != 3 {
			ts.Fatalf("usage: hub provision REGISTRATION_ID KEY")
		}
		d := h.srv.DPS()
		p, err := device.Provision(ctx, device.ProvisionConfig{GlobalEndpoint: "localhost", Endpoint: d.Addr(), RootCAs: h.ca.Pool(),
			IDScope: d.IDScope(), RegistrationID: args[1], SymmetricKey: args[2]})
		ts.Check(err)
		ts.Logf("provisioned %s: %s on %s", args[1], p.DeviceID, p.AssignedHub)
	case "online":
		want := device.ErrNotAuthorized
		switch {
		case neg && len(args) == 3 && args[2] == "unavailable":
			want = device.ErrServerUnavailable
		case len(args) != 2:
			ts.Fatalf("usage: [!] hub online DEV, or ! hub online DEV unavailable")
		}
		_, err := h.online(ctx, args[1])
		switch {
		case neg && err == nil:
			ts.Fatalf("hub online %s: connected, want a refusal", args[1])
		case neg && !errors.Is(err, want):
			ts.Fatalf("hub online %s: %v, want %v", args[1], err, want)
		case !neg:
			ts.Check(err)
		}
	case "method":
		if len(args) != 4 {
			ts.Fatalf("usage: hub method NAME STATUS JSON")
		}
		status, err := strconv.Atoi(args[2])
		ts.Check(err)
		if !json.Valid([]byte(args[3])) {
			ts.Fatalf("hub method: %q is not JSON", args[3])
		}
		h.mu.Lock()
		h.answers[args[1]] = methodAnswer{status, json.RawMessage(args[3])}
		h.mu.Unlock()
	case "publish":
		if len(args) < 3 {
			ts.Fatalf("usage: hub publish DEV BODY [k=v...]")
		}
		d, err := h.online(ctx, args[1])
		ts.Check(err)
		e := device.Event{Payload: []byte(args[2])}
		for _, kv := range args[3:] {
			k, v, ok := strings.Cut(kv, "=")
			if !ok {
				ts.Fatalf("hub publish: property %q: want k=v", kv)
			}
			e.Properties = e.Properties.Set(k, v)
		}
		captured := h.srv.Telemetry().ForDevice(args[1], "")
		ts.Check(d.c.SendEvent(ctx, e))
		_, err = captured.Next(ctx)
		ts.Check(err)
	case "reject":
		if len(args) != 3 || args[2] != "expired" {
			ts.Fatalf("usage: hub reject DEV expired")
		}
		cfg, err := h.deviceConfig(args[1])
		ts.Check(err)
		// A token minted 25 h before the hub's clock with a 1 h lifetime.
		cfg.Now = func() time.Time { return h.now.Add(-25 * time.Hour) }
		cfg.TokenTTL = time.Hour
		c, err := device.New(cfg)
		ts.Check(err)
		err = c.Connect(ctx)
		_ = c.Close(ctx)
		if !errors.Is(err, device.ErrNotAuthorized) {
			ts.Fatalf("hub reject: connect = %v, want %v", err, device.ErrNotAuthorized)
		}
		_, err = h.srv.WaitRejection(ctx, func(r iothub.Rejection) bool {
			return r.ClientID == args[1] && r.Reason == sas.ReasonExpired
		})
		ts.Check(err)
	case "c2d":
		if len(args) != 2 {
			ts.Fatalf("usage: hub c2d DEV")
		}
		d, err := h.online(ctx, args[1])
		ts.Check(err)
		for _, m := range h.srv.C2DMessages(iothub.Identity{DeviceID: args[1]}) {
			st, err := h.srv.WaitC2DState(ctx, m.MessageID, nil)
			ts.Check(err)
			if st.State != iothub.C2DCompleted {
				ts.Fatalf("hub c2d: message %s is %s, want %s", st.MessageID, st.State, iothub.C2DCompleted)
			}
		}
		d.mu.Lock()
		got := append([]device.C2DMessage(nil), d.c2d...)
		d.mu.Unlock()
		var buf bytes.Buffer
		enc := json.NewEncoder(&buf)
		enc.SetEscapeHTML(false)
		for _, m := range got {
			ts.Check(enc.Encode(map[string]any{"messageId": m.MessageID, "correlationId": m.CorrelationID, "userId": m.UserID,
				"to": m.To, "ack": m.Ack, "expiry": m.Expiry, "contentType": m.ContentType, "contentEncoding": m.ContentEncoding,
				"properties": m.Application, "body": string(m.Payload)}))
		}
		_, err = ts.Stdout().Write(buf.Bytes())
		ts.Check(err)
	default:
		ts.Fatalf("hub: unknown subcommand %q", args[0])
	}
}

func TestShortDuration(t *testing.T) {
	for d, want := range map[time.Duration]string{
		30 * time.Second: "30s", time.Minute: "1m", 90 * time.Second: "1m30s", 48 * time.Hour: "48h",
		90 * time.Minute: "1h30m", 10 * time.Second: "10s", 1500 * time.Millisecond: "1.5s",
	} {
		if got := shortDuration(d); got != want {
			t.Errorf("shortDuration(%v) = %q, want %q", d, got, want)
		}
	}
}
