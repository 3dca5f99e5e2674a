package main

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rogpeppe/go-internal/testscript"

	"github.com/hubkit/hubkit/internal/certs"
	"github.com/hubkit/hubkit/internal/cli/clitest"
	"github.com/hubkit/hubkit/pkg/fakehub"
	"github.com/hubkit/hubkit/pkg/iothub"
	"github.com/hubkit/hubkit/pkg/iothub/dps"
	"github.com/hubkit/hubkit/pkg/sas"
)

func scriptCmds() map[string]func(*testscript.TestScript, bool, []string) {
	return map[string]func(*testscript.TestScript, bool, []string){
		"exits":   clitest.Exits,
		"hub":     cmdHub,
		"mode600": cmdMode600,
	}
}

// cmdMode600 is "mode600 FILE": FILE is readable and writable by its owner only.
func cmdMode600(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 1 {
		ts.Fatalf("usage: mode600 FILE")
	}
	fi, err := os.Stat(ts.MkAbs(args[0]))
	ts.Check(err)
	if fi.Mode().Perm() != 0o600 {
		ts.Fatalf("%s has mode %v, want 0600", args[0], fi.Mode().Perm())
	}
}

// hubs are the in-process fake hubs of running scripts (which run in parallel), by work
// directory.
var (
	hubsMu sync.Mutex
	hubs   = map[string]*fakehub.Server{}
	// lastSub is the connection time of the session the last "hub waitsub" matched.
	lastSub = map[string]time.Time{}
	// twinAnswers counts each hub's twin responses; markedAnswers is the count at the last mark.
	twinAnswers   = map[string]*atomic.Int64{}
	markedAnswers = map[string]int64{}
)

// twinAnswerCounter is a slog handler that counts fakehub's "twin response sent" records.
type twinAnswerCounter struct{ n *atomic.Int64 }

func (h twinAnswerCounter) Enabled(context.Context, slog.Level) bool { return true }
func (h twinAnswerCounter) Handle(_ context.Context, r slog.Record) error {
	if r.Message == "twin response sent" {
		h.n.Add(1)
	}
	return nil
}
func (h twinAnswerCounter) WithAttrs([]slog.Attr) slog.Handler { return h }
func (h twinAnswerCounter) WithGroup(string) slog.Handler      { return h }

// cmdHub drives an in-process fakehub:
//
//	hub start [service|dps] start one (TLS, fresh CA) with device dev1; sets
//	                        HUBKIT_DEVICE_CONNECTION_STRING, HUB_ENDPOINT, HUB_WS_ENDPOINT
//	                        (MQTT over WebSockets) and HUB_CA; and the X.509 CA device
//	                        cam1: HUB_X509_CS, HUB_CERT, HUB_KEY
//	                        (service: also the service API, at $HUB_URL)
//	hub start dps           the same with a DPS (DPS_ENDPOINT, DPS_HTTP_ENDPOINT, ID scope
//	                        0ne00000000): X.509 group "line" signed by its own CA, whose
//	                        device sensor-x is in sensor-x.pem/sensor-x-key.pem; an X.509
//	                        individual enrollment cam-7 (cam-7.pem, cam-7-key.pem); and
//	                        stranger.pem/stranger-key.pem, signed by a CA nothing trusts
//	hub clock advance D     move the hub's clock forward by D (a Go duration)
//	hub renewed             wait (10 s) until dev1 is connected with a token valid 50 min past
//	                        the hub's clock, with no expiry recorded (a renewal, not a cut)
//	hub telemetry N FILE    wait (10 s) for N telemetry messages and write them to FILE,
//	                        one JSON object per line: deviceId, payload, properties, system
//	hub mark                sessions connected before now no longer satisfy waitsub
//	                        (put it before "exec ... &" when an earlier command connected)
//	hub waitsub FILTER      wait (10 s) until a dev1 session connected after the last
//	                        mark or match holds the subscription FILTER
//	hub waittwin            wait (10 s) until the hub has answered a twin GET or PATCH
//	                        since the last mark (a client that reads its twin first is ready)
//	hub c2d PAYLOAD [K=V...] send a C2D message to dev1 (message ID c2d-1, c2d-2, ...);
//	                        $.ct=TYPE sets its content type
//	hub invoke NAME PAYLOAD FILE  call a direct method on dev1, write {"status":..,"payload":..} to FILE
//	hub desired PATCH       apply a desired-properties patch to dev1's twin
func cmdHub(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) == 0 {
		ts.Fatalf("usage: hub start | telemetry N FILE | mark | waitsub FILTER | waittwin | c2d PAYLOAD [K=V...] | invoke NAME PAYLOAD FILE | desired PATCH")
	}
	work := ts.Getenv("WORK")
	if args[0] == "start" {
		if len(args) > 2 || len(args) == 2 && args[1] != "service" && args[1] != "dps" {
			ts.Fatalf("usage: hub start [service|dps]")
		}
		now := time.Now()
		ca, err := certs.NewCA("devicesim test CA", time.Hour, now, nil)
		ts.Check(err)
		tlsCfg, err := ca.ServerTLS([]string{"localhost", "127.0.0.1"}, time.Hour, now)
		ts.Check(err)
		answers := new(atomic.Int64)
		opts := fakehub.Options{TLS: tlsCfg, Addr: "127.0.0.1:0", WebSocketAddr: "127.0.0.1:0",
			Logger: slog.New(twinAnswerCounter{answers})}
		withDPS := len(args) == 2 && args[1] == "dps"
		if withDPS {
			opts.DPS = &fakehub.DPSOptions{RetryAfter: time.Second}
		}
		withService := len(args) == 2 && args[1] == "service"
		if withService {
			opts.ServiceAddr = "127.0.0.1:0"
		}
		srv, err := fakehub.NewServer(opts)
		ts.Check(err)
		if withService {
			ts.Setenv("HUB_URL", srv.ServiceURL())
		}
		hubsMu.Lock()
		hubs[work] = srv
		twinAnswers[work] = answers
		hubsMu.Unlock()
		ts.Defer(func() {
			_ = srv.Close()
			hubsMu.Lock()
			delete(hubs, work)
			delete(twinAnswers, work)
			delete(markedAnswers, work)
			delete(lastSub, work)
			hubsMu.Unlock()
		})
		key := []byte("devicesim-test-key-0123456789abc")
		_, err = srv.AddDevice("dev1", key)
		ts.Check(err)
		caFile := filepath.Join(work, "hub-ca.pem")
		ts.Check(os.WriteFile(caFile, ca.CertPEM, 0o644))
		ts.Setenv(envConnectionString, "HostName="+srv.HostName()+";DeviceId=dev1;SharedAccessKey="+base64.StdEncoding.EncodeToString(key))
		ts.Setenv("HUB_ENDPOINT", srv.Addr())
		ts.Setenv("HUB_WS_ENDPOINT", srv.WebSocketAddr())
		ts.Setenv("HUB_CA", caFile)
		// cam1: an X.509 CA device, its certificate in cam1.pem and cam1-key.pem.
		_, err = srv.Registry().PutCertificate("devicesim-ca", string(ca.CertPEM), true, "")
		ts.Check(err)
		_, err = srv.Registry().Add(iothub.Device{DeviceID: "cam1", Authentication: iothub.CAAuth()})
		ts.Check(err)
		leaf, err := ca.IssueDevice("cam1", time.Hour, certs.ECDSAP256, now)
		ts.Check(err)
		certFile, keyFile, err := leaf.Save(work, "cam1")
		ts.Check(err)
		ts.Setenv("HUB_X509_CS", "HostName="+srv.HostName()+";DeviceId=cam1;x509=true")
		ts.Setenv("HUB_CERT", certFile)
		ts.Setenv("HUB_KEY", keyFile)
		if withDPS {
			startDPS(ts, srv, work, now)
		}
		return
	}
	hubsMu.Lock()
	srv := hubs[work]
	hubsMu.Unlock()
	if srv == nil {
		ts.Fatalf("hub %s: no hub started", args[0])
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	dev1 := iothub.Identity{DeviceID: "dev1"}
	switch args[0] {
	case "clock":
		if len(args) != 3 || args[1] != "advance" {
			ts.Fatalf("usage: hub clock advance D")
		}
		d, err := time.ParseDuration(args[2])
		ts.Check(err)
		srv.Clock().Advance(d)
	case "renewed":
		for {
			ok := false
			for _, s := range srv.Sessions() {
				ok = ok || s.Identity == dev1 && s.TokenExpiry.After(srv.Clock().Now().Add(50*time.Minute))
			}
			for _, r := range srv.Rejections() {
				if r.Reason == sas.ReasonExpired {
					ts.Fatalf("hub renewed: the hub cut dev1 for an expired token: %+v", r)
				}
			}
			if ok {
				break
			}
			select {
			case <-ctx.Done():
				ts.Fatalf("hub renewed: dev1 did not renew its token (sessions %+v)", srv.Sessions())
			case <-time.After(10 * time.Millisecond):
			}
		}
	case "mark":
		// The previous command's connection may still be listed until the hub has
		// processed its close; waitsub must not mistake it for the next one.
		hubsMu.Lock()
		lastSub[work] = time.Now()
		markedAnswers[work] = twinAnswers[work].Load()
		hubsMu.Unlock()
	case "waittwin":
		// With CleanSession=0 a reconnecting client inherits its subscriptions at CONNACK,
		// before it has read its twin; a desired change made then is part of what it reads,
		// not a change it is told about. Its twin read is the sign that it is ready.
		hubsMu.Lock()
		answers, marked := twinAnswers[work], markedAnswers[work]
		hubsMu.Unlock()
		for answers.Load() <= marked {
			select {
			case <-ctx.Done():
				ts.Fatalf("hub waittwin: dev1 did not read its twin")
			case <-time.After(10 * time.Millisecond):
			}
		}
		hubsMu.Lock()
		markedAnswers[work] = answers.Load()
		hubsMu.Unlock()
	case "waitsub":
		if len(args) != 2 {
			ts.Fatalf("usage: hub waitsub FILTER")
		}
		// Each waitsub wants a newer connection than the previous one matched, so a
		// session a finished command left behind does not count.
		hubsMu.Lock()
		after := lastSub[work]
		hubsMu.Unlock()
		for {
			at, ok := subscribed(srv, args[1], after)
			if ok {
				hubsMu.Lock()
				lastSub[work] = at
				hubsMu.Unlock()
				break
			}
			select {
			case <-ctx.Done():
				ts.Fatalf("hub waitsub: dev1 did not subscribe to %s", args[1])
			case <-time.After(10 * time.Millisecond):
			}
		}
	case "c2d":
		if len(args) < 2 {
			ts.Fatalf("usage: hub c2d PAYLOAD [K=V...]")
		}
		var props iothub.Properties
		contentType := ""
		for _, kv := range args[2:] {
			k, v, _ := strings.Cut(kv, "=")
			if k == iothub.PropContentType {
				contentType = v
				continue
			}
			props = append(props, iothub.Property{Key: k, Value: v})
		}
		c2dSeq.Add(1)
		_, err := srv.SendC2D(ctx, "dev1", iothub.C2DMessage{
			MessageID: "c2d-" + strconv.FormatInt(c2dSeq.Load(), 10), Payload: []byte(args[1]), Properties: props,
			ContentType: contentType,
		})
		ts.Check(err)
	case "invoke":
		if len(args) != 4 {
			ts.Fatalf("usage: hub invoke NAME PAYLOAD FILE")
		}
		res, err := srv.InvokeMethod(ctx, "dev1", args[1], []byte(args[2]), 5*time.Second)
		ts.Check(err)
		b, err := json.Marshal(res)
		ts.Check(err)
		ts.Check(os.WriteFile(ts.MkAbs(args[3]), append(b, '\n'), 0o644))
	case "desired":
		if len(args) != 2 {
			ts.Fatalf("usage: hub desired PATCH")
		}
		_, err := srv.UpdateDesired(ctx, dev1, []byte(args[1]))
		ts.Check(err)
	case "telemetry":
		if len(args) != 3 {
			ts.Fatalf("usage: hub telemetry N FILE")
		}
		n, err := strconv.Atoi(args[1])
		ts.Check(err)
		stream := srv.TelemetrySince(1)
		var out []byte
		for range n {
			m, err := stream.Next(ctx)
			ts.Check(err)
			b, err := json.Marshal(map[string]any{
				"deviceId": m.DeviceID, "payload": string(m.Payload),
				"properties": m.Properties, "system": m.SystemProperties,
			})
			ts.Check(err)
			out = append(append(out, b...), '\n')
		}
		ts.Check(os.WriteFile(ts.MkAbs(args[2]), out, 0o644))
	default:
		ts.Fatalf("hub: unknown subcommand %q", args[0])
	}
}

// c2dSeq numbers the C2D messages scripts send.
var c2dSeq atomic.Int64

// subscribed returns the connection time of a session connected after after that holds filter.
func subscribed(srv *fakehub.Server, filter string, after time.Time) (time.Time, bool) {
	for _, s := range srv.Sessions() {
		if _, ok := s.Subscriptions[filter]; ok && s.ConnectedAt.After(after) {
			return s.ConnectedAt, true
		}
	}
	return time.Time{}, false
}

// startDPS enrolls hub start dps's X.509 devices and writes their certificates.
func startDPS(ts *testscript.TestScript, srv *fakehub.Server, work string, now time.Time) {
	issue := func(ca *certs.CA, id string) string {
		leaf, err := ca.IssueDevice(id, time.Hour, certs.ECDSAP256, now)
		ts.Check(err)
		_, _, err = leaf.Save(work, id)
		ts.Check(err)
		return string(leaf.CertPEM())
	}
	x509Att := func(individual bool, pem string) dps.Attestation {
		set := &dps.X509Certificates{Primary: &dps.X509CertificateWithInfo{Certificate: pem}}
		if individual {
			return dps.Attestation{Type: dps.AttestationX509, X509: &dps.X509Attestation{ClientCertificates: set}}
		}
		return dps.Attestation{Type: dps.AttestationX509, X509: &dps.X509Attestation{SigningCertificates: set}}
	}
	lineCA, err := certs.NewCA("line CA", time.Hour, now, nil)
	ts.Check(err)
	_, err = srv.DPS().SetGroup(dps.EnrollmentGroup{EnrollmentGroupID: "line", Attestation: x509Att(false, string(lineCA.CertPEM))})
	ts.Check(err)
	issue(lineCA, "sensor-x")
	_, err = srv.DPS().SetEnrollment(dps.Enrollment{RegistrationID: "cam-7", Attestation: x509Att(true, issue(lineCA, "cam-7"))})
	ts.Check(err)
	otherCA, err := certs.NewCA("unknown CA", time.Hour, now, nil)
	ts.Check(err)
	issue(otherCA, "stranger")
	ts.Setenv("DPS_ENDPOINT", srv.DPS().Addr())
	ts.Setenv("DPS_HTTP_ENDPOINT", srv.DPS().HTTPAddr())
}
