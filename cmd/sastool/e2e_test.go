package main

import (
	"bytes"
	"context"
	"encoding/base64"
	"github.com/hubkit/hubkit/pkg/iothub"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hubkit/hubkit/internal/testutil"
	"github.com/hubkit/hubkit/pkg/fakehub"
	"github.com/hubkit/hubkit/pkg/fakehub/fakehubtest"
	"github.com/hubkit/hubkit/pkg/sas"
)

// These tests run what "sastool mqtt" generates (mosquitto_pub, the paho-python script)
// against an in-process fakehub: the output must work, not just look right. They are skipped
// when the clients are not installed (Debian: mosquitto-clients, python3-paho-mqtt), unless
// HUBKIT_REQUIRE_INTEROP=1 (CI), where a missing client fails, as in pkg/fakehub.

const e2eKey = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8="

func startHub(t *testing.T) (*fakehubtest.Hub, string) {
	t.Helper()
	if testing.Short() {
		t.Skip("end-to-end: skipped with -short")
	}
	hub := fakehubtest.Start(t, fakehub.Options{HostName: "localhost"})
	key, _ := base64.StdEncoding.DecodeString(e2eKey)
	if _, err := hub.AddDevice("dev1", key); err != nil {
		t.Fatalf("AddDevice: %v", err)
	}
	return hub, "HostName=localhost;DeviceId=dev1;SharedAccessKey=" + e2eKey
}

// sastoolOut runs sastool in-process and returns stdout, failing the test on a non-zero exit.
func sastoolOut(t *testing.T, args ...string) string {
	t.Helper()
	var stdout, stderr bytes.Buffer
	if code := run(t.Context(), args, strings.NewReader(""), &stdout, &stderr); code != 0 {
		t.Fatalf("sastool %q: exit %d: %s", args, code, stderr.String())
	}
	return stdout.String()
}

// mosquittoCommand returns the shell command in the block of the mosquitto output that runs prog.
func mosquittoCommand(t *testing.T, out, prog string) string {
	t.Helper()
	for block := range strings.SplitSeq(out, "\n\n") {
		var cmd []string
		for l := range strings.SplitSeq(block, "\n") {
			if !strings.HasPrefix(l, "#") {
				cmd = append(cmd, l)
			}
		}
		if c := strings.Join(cmd, "\n"); strings.HasPrefix(c, prog+" ") {
			return c
		}
	}
	t.Fatalf("no %s command in:\n%s", prog, out)
	return ""
}

func TestMosquittoPubAgainstFakehub(t *testing.T) {
	testutil.LookTool(t, "mosquitto_pub", "mosquitto-clients")
	hub, cs := startHub(t)
	out := sastoolOut(t, "mqtt", "-c", cs, "--ca", hub.CAFile, "--port", hub.Port, "--format", "mosquitto")
	pub := mosquittoCommand(t, out, "mosquitto_pub")

	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	telemetry := hub.Telemetry() // positioned before the message
	if b, err := exec.CommandContext(ctx, "sh", "-c", pub).CombinedOutput(); err != nil {
		t.Fatalf("generated mosquitto_pub failed: %v\n%s\ncommand:\n%s", err, b, pub)
	}
	msg, err := telemetry.Next(ctx)
	if err != nil {
		t.Fatalf("no telemetry from mosquitto_pub: %v", err)
	}
	if msg.DeviceID != "dev1" || string(msg.Payload) != `{"hello":"from mosquitto_pub"}` {
		t.Errorf("telemetry = device %q payload %q, want dev1 {\"hello\":\"from mosquitto_pub\"}", msg.DeviceID, msg.Payload)
	}
}

// TestMosquittoExpiredSameVerdict: fakehub refuses an expired password and sastool verify
// gives the same reason for the same token.
func TestMosquittoExpiredSameVerdict(t *testing.T) {
	testutil.LookTool(t, "mosquitto_pub", "mosquitto-clients")
	hub, cs := startHub(t)
	past := time.Now().Add(-3 * time.Hour).Format(time.RFC3339)
	out := sastoolOut(t, "mqtt", "-c", cs, "--ca", hub.CAFile, "--port", hub.Port, "--format", "mosquitto", "--now", past, "--ttl", "1h")
	pub := mosquittoCommand(t, out, "mosquitto_pub")

	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	b, err := exec.CommandContext(ctx, "sh", "-c", pub).CombinedOutput()
	if err == nil {
		t.Fatalf("mosquitto_pub with an expired token succeeded:\n%s", b)
	}
	// The client may see the close before the hub has recorded why: wait for the record.
	if _, err := hub.WaitRejection(ctx, func(r iothub.Rejection) bool { return r.Reason == sas.ReasonExpired }); err != nil {
		t.Fatalf("no %q rejection recorded (have %+v): %v", sas.ReasonExpired, hub.Rejections(), err)
	}

	password := sastoolOut(t, "mqtt", "-c", cs, "--now", past, "--ttl", "1h", "--format", "env")
	_, tok, _ := strings.Cut(password, "HUBKIT_MQTT_PASSWORD='")
	tok, _, _ = strings.Cut(tok, "'")
	var stdout, stderr bytes.Buffer
	code := run(t.Context(), []string{"verify", "-c", cs, tok}, strings.NewReader(""), &stdout, &stderr)
	if code != exitRejected || !strings.HasPrefix(stderr.String(), "sastool: rejected: "+string(sas.ReasonExpired)+": ") {
		t.Errorf("sastool verify = %d, %q; want %d and reason %q like the hub", code, stderr.String(), exitRejected, sas.ReasonExpired)
	}
}

func TestPahoPythonAgainstFakehub(t *testing.T) {
	py := pahoPython()
	if py == "" {
		testutil.MissingTool(t, "python3 with paho-mqtt is not installed (apt-get install python3-paho-mqtt)")
	}
	hub, cs := startHub(t)
	script := filepath.Join(t.TempDir(), "dev1.py")
	out := sastoolOut(t, "mqtt", "-c", cs, "--ca", hub.CAFile, "--port", hub.Port, "--format", "paho-python")
	if err := os.WriteFile(script, []byte(out), 0o600); err != nil {
		t.Fatal(err)
	}

	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	telemetry := hub.Telemetry()
	var pyOut bytes.Buffer
	cmd := exec.CommandContext(ctx, py, script) // killed when ctx ends: the script loops forever
	cmd.Stdout, cmd.Stderr = &pyOut, &pyOut
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	stop := func() { cancel(); _ = cmd.Wait() } // after Wait, pyOut is safe to read
	defer stop()
	msg, err := telemetry.Next(ctx)
	if err != nil {
		stop()
		t.Fatalf("no telemetry from the paho-python script: %v (rejections %+v)\n%s", err, hub.Rejections(), pyOut.String())
	}
	if msg.DeviceID != "dev1" || string(msg.Payload) != `{"hello": "from paho-python"}` {
		t.Errorf("telemetry = device %q payload %q, want dev1 {\"hello\": \"from paho-python\"}", msg.DeviceID, msg.Payload)
	}
}
