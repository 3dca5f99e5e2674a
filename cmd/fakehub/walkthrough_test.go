package main

import (
	"context"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/hubkit/hubkit/internal/testutil"
	"github.com/hubkit/hubkit/pkg/sas"
)

// TestWalkthroughMosquitto is the README walk-through as an interop test:
// start fakehub, connect a device with mosquitto_sub, send it a C2D message
// with "fakehub send", publish telemetry with mosquitto_pub and read it with
// "fakehub events". It skips without the mosquitto clients unless
// HUBKIT_REQUIRE_INTEROP=1, where it fails.
func TestWalkthroughMosquitto(t *testing.T) {
	testutil.LookTool(t, "mosquitto_sub", "mosquitto-clients")
	testutil.LookTool(t, "mosquitto_pub", "mosquitto-clients")
	const key = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8="
	caDir := "../../testdata/certs"
	banner := startFakehub(t, "--ca", caDir, "--listen", "127.0.0.1:0", "--ws", "127.0.0.1:0", "--http", "127.0.0.1:0", "--device", "demo-device="+key)
	port := match(t, `MQTT over TLS on 127\.0\.0\.1:(\d+) `, banner)
	svc := []string{"-c", match(t, `connection string: (\S+)`, banner), "--hub-url", match(t, `service: (https://\S+) `, banner), "--ca", caDir}

	// The device's password, as `sastool gen --uri localhost/devices/demo-device --key KEY` mints it.
	k, _ := sas.DecodeKey(key)
	password := sas.Sign(sas.EncodeResource("localhost/devices/demo-device"), "", k, time.Now().Add(time.Hour)).String()
	conn := []string{"-h", "localhost", "-p", port, "--cafile", caDir + "/ca.pem", "-V", "mqttv311",
		"-i", "demo-device", "-u", "localhost/demo-device/?api-version=2021-04-12", "-P", password, "-q", "1"}

	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	// The message is sent first: it waits in the device's queue and flows
	// when mosquitto_sub subscribes (mosquitto_sub's output is buffered, so
	// the test cannot see its SUBACK to send afterwards; by hand, either
	// order works).
	code, stdout, stderr := fakehubCLI(t, append([]string{"send", "demo-device", "hello from the cloud", "--property", "color=red"}, svc...)...)
	if code != 0 {
		t.Fatalf("fakehub send: exit %d %s %s", code, stdout, stderr)
	}
	msgID := strings.TrimSpace(stdout)
	b, err := exec.CommandContext(ctx, "mosquitto_sub", append(conn, "-t", "devices/demo-device/messages/devicebound/#", "-v", "-C", "1")...).CombinedOutput()
	if err != nil {
		t.Fatalf("mosquitto_sub: %v %s", err, b)
	}
	l := string(b)
	for _, want := range []string{"devices/demo-device/messages/devicebound/", "%24.mid=" + msgID, "color=red", " hello from the cloud\n"} {
		if !strings.Contains(l, want) {
			t.Errorf("mosquitto_sub printed %q, want %q in it", l, want)
		}
	}

	pub := exec.CommandContext(ctx, "mosquitto_pub", append(conn, "-t", "devices/demo-device/messages/events/", "-m", `{"temp":21.5}`)...)
	if b, err := pub.CombinedOutput(); err != nil {
		t.Fatalf("mosquitto_pub: %v %s", err, b)
	}
	code, stdout, stderr = fakehubCLI(t, append([]string{"events", "--device", "demo-device", "--count", "1"}, svc...)...)
	if code != 0 || !strings.Contains(stdout, `demo-device {"temp":21.5}`) {
		t.Errorf("fakehub events: exit %d %q %s", code, stdout, stderr)
	}
}
