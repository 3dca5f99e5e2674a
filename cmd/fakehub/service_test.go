package main

import (
	"bytes"
	"context"
	"encoding/json"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/rogpeppe/go-internal/testscript"

	"github.com/hubkit/hubkit/internal/certs"
	"github.com/hubkit/hubkit/pkg/fakehub/serviceclient"
	"github.com/hubkit/hubkit/pkg/fakehub/serviceclient/servicetest"
)

const hubKey = "servicetest-hub"

// TestServiceScripts runs testdata/service_*.txtar against servicetest's
// in-memory hub served over TLS with a leaf of the committed test CA
// (testdata/certs), so --ca DIR is exercised. Scripts get $HUB_URL,
// $SERVICE_CS (iothubowner), $READ_CS (registryRead), $CA_DIR and commands to
// drive the hub: hub online DEV, hub method NAME STATUS JSON, hub publish DEV
// BODY [k=v...], hub reject CLIENTID REASON DETAIL [HINT...], hub c2d DEV
// (prints what the hub received), and exitcode N (of the last fakehub run).
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
			tlsConf, err := ca.ServerTLS([]string{"localhost", "127.0.0.1"}, time.Hour, time.Now())
			if err != nil {
				return err
			}
			s := servicetest.NewServer(servicetest.Options{TLS: tlsConf})
			env.Defer(s.Close)
			env.Values[hubKey] = s
			env.Setenv("HUB_URL", s.URL())
			env.Setenv("SERVICE_CS", s.ConnectionString("iothubowner"))
			env.Setenv("READ_CS", s.ConnectionString("registryRead"))
			env.Setenv("CA_DIR", caDir)
			return nil
		},
		Cmds: map[string]func(ts *testscript.TestScript, neg bool, args []string){
			"fakehub":  cmdFakehub,
			"exitcode": cmdExitCode,
			"hub":      cmdHub,
		},
	})
}

func cmdFakehub(ts *testscript.TestScript, neg bool, args []string) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	code := run(ctx, args, strings.NewReader(""), ts.Stdout(), ts.Stderr(), ts.Getenv)
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
	s := ts.Value(hubKey).(*servicetest.Server)
	if neg || len(args) < 2 {
		ts.Fatalf("usage: hub online|method|publish|reject|c2d ARGS")
	}
	switch args[0] {
	case "online":
		s.SetOnline(args[1], true)
	case "method":
		if len(args) != 4 {
			ts.Fatalf("usage: hub method NAME STATUS JSON")
		}
		status, err := strconv.Atoi(args[2])
		ts.Check(err)
		s.HandleMethod(args[1], status, json.RawMessage(args[3]))
	case "publish":
		e := serviceclient.Event{DeviceID: args[1], Body: []byte(args[2]), EnqueuedTime: time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)}
		for _, kv := range args[3:] {
			k, v, _ := strings.Cut(kv, "=")
			if e.Properties == nil {
				e.Properties = map[string]string{}
			}
			e.Properties[k] = v
		}
		s.Publish(e)
	case "reject":
		if len(args) < 4 {
			ts.Fatalf("usage: hub reject CLIENTID REASON DETAIL [HINT...]")
		}
		s.AddRejection(serviceclient.Rejection{Time: time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC), ClientID: args[1],
			DeviceID: args[1], Reason: args[2], Detail: args[3], Hints: args[4:]})
	case "c2d":
		var buf bytes.Buffer
		enc := json.NewEncoder(&buf)
		enc.SetEscapeHTML(false)
		for _, m := range s.C2DMessages(args[1]) {
			exp := ""
			if !m.Expiry.IsZero() {
				exp = m.Expiry.UTC().Format(time.RFC3339)
			}
			ts.Check(enc.Encode(map[string]any{"messageId": m.MessageID, "correlationId": m.CorrelationID, "userId": m.UserID,
				"to": m.To, "ack": m.Ack, "expiry": exp, "contentType": m.ContentType, "contentEncoding": m.ContentEncoding,
				"properties": m.Properties, "body": string(m.Body)}))
		}
		_, err := ts.Stdout().Write(buf.Bytes())
		ts.Check(err)
	default:
		ts.Fatalf("hub: unknown subcommand %q", args[0])
	}
}
