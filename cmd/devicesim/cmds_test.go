package main

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"time"

	"github.com/rogpeppe/go-internal/testscript"

	"github.com/hubkit/hubkit/internal/certs"
	"github.com/hubkit/hubkit/pkg/fakehub"
)

func scriptCmds() map[string]func(*testscript.TestScript, bool, []string) {
	return map[string]func(*testscript.TestScript, bool, []string){
		"exits": cmdExits,
		"hub":   cmdHub,
	}
}

// hubs are the in-process fake hubs of running scripts (which run in parallel), by work
// directory.
var (
	hubsMu sync.Mutex
	hubs   = map[string]*fakehub.Server{}
)

// cmdHub drives an in-process fakehub:
//
//	hub start               start one (TLS, fresh CA) with device dev1; sets
//	                        HUBKIT_DEVICE_CONNECTION_STRING, HUB_ENDPOINT and HUB_CA
//	hub telemetry N FILE    wait (10 s) for N telemetry messages and write them to FILE,
//	                        one JSON object per line: deviceId, payload, properties, system
func cmdHub(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) == 0 {
		ts.Fatalf("usage: hub start | hub telemetry N FILE")
	}
	work := ts.Getenv("WORK")
	switch args[0] {
	case "start":
		now := time.Now()
		ca, err := certs.NewCA("devicesim test CA", time.Hour, now, nil)
		ts.Check(err)
		tlsCfg, err := ca.ServerTLS([]string{"localhost", "127.0.0.1"}, time.Hour, now)
		ts.Check(err)
		srv, err := fakehub.NewServer(fakehub.Options{TLS: tlsCfg, Addr: "127.0.0.1:0"})
		ts.Check(err)
		hubsMu.Lock()
		hubs[work] = srv
		hubsMu.Unlock()
		ts.Defer(func() {
			_ = srv.Close()
			hubsMu.Lock()
			delete(hubs, work)
			hubsMu.Unlock()
		})
		key := []byte("devicesim-test-key-0123456789abc")
		_, err = srv.AddDevice("dev1", key)
		ts.Check(err)
		caFile := filepath.Join(work, "hub-ca.pem")
		ts.Check(os.WriteFile(caFile, ca.CertPEM, 0o644))
		ts.Setenv(envConnectionString, "HostName="+srv.HostName()+";DeviceId=dev1;SharedAccessKey="+base64.StdEncoding.EncodeToString(key))
		ts.Setenv("HUB_ENDPOINT", srv.Addr())
		ts.Setenv("HUB_CA", caFile)
	case "telemetry":
		if len(args) != 3 {
			ts.Fatalf("usage: hub telemetry N FILE")
		}
		hubsMu.Lock()
		srv := hubs[work]
		hubsMu.Unlock()
		if srv == nil {
			ts.Fatalf("hub telemetry: no hub started")
		}
		n, err := strconv.Atoi(args[1])
		ts.Check(err)
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
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
