package main

import (
	"context"
	"fmt"
	"regexp"
	"strings"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"

	"github.com/hubkit/hubkit/internal/certs"
	"github.com/hubkit/hubkit/internal/testutil"
	"github.com/hubkit/hubkit/pkg/iothub"
	"github.com/hubkit/hubkit/pkg/sas"
)

// startFakehub runs "fakehub ARGS" in-process until the test ends and
// returns its banner once printed.
func startFakehub(t *testing.T, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	var stdout, stderr syncBuffer
	done := make(chan int, 1)
	go func() {
		done <- run(ctx, args, strings.NewReader(""), &stdout, &stderr, func(string) string { return "" })
	}()
	t.Cleanup(func() {
		cancel()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			t.Error("fakehub did not stop")
		}
	})
	exited, code := false, 0
	if !testutil.Poll(10*time.Second, func() bool {
		select {
		case code = <-done:
			exited = true
			return true
		default:
		}
		return strings.Contains(stdout.String(), "devices:")
	}) {
		t.Fatalf("no banner; stdout %q stderr %q", stdout.String(), stderr.String())
	}
	if exited {
		done <- code // for the cleanup, which waits for the exit
		t.Fatalf("fakehub exited %d: %s", code, stderr.String())
	}
	return stdout.String()
}

// fakehubCLI runs a client verb in-process and returns its exit code,
// stdout and stderr.
func fakehubCLI(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	var stdout, stderr syncBuffer
	code := run(ctx, args, strings.NewReader(""), &stdout, &stderr, func(string) string { return "" })
	return code, stdout.String(), stderr.String()
}

func match(t *testing.T, re, s string) string {
	t.Helper()
	m := regexp.MustCompile(re).FindStringSubmatch(s)
	if m == nil {
		t.Fatalf("no %s in %q", re, s)
	}
	return m[1]
}

// TestCLIRoundTrip starts fakehub with --http, connects a paho device and
// drives it with fakehub send, events and invoke.
func TestCLIRoundTrip(t *testing.T) {
	const key = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8="
	caDir := "../../testdata/certs"
	banner := startFakehub(t, "--ca", caDir, "--listen", "127.0.0.1:0", "--ws", "127.0.0.1:0", "--http", "127.0.0.1:0", "--device", "dev1="+key)
	mqttAddr := match(t, `MQTT over TLS on (\S+) `, banner)
	hubURL := match(t, `service: (https://\S+) `, banner)
	cs := match(t, `connection string: (\S+)`, banner)
	svc := []string{"-c", cs, "--hub-url", hubURL, "--ca", caDir}

	ca, err := certs.LoadCA(caDir)
	if err != nil {
		t.Fatal(err)
	}
	k, _ := sas.DecodeKey(key)
	msgs := make(chan paho.Message, 10)
	o := paho.NewClientOptions().AddBroker("ssl://" + mqttAddr).SetClientID("dev1").SetProtocolVersion(4).
		SetUsername("localhost/dev1/?api-version=" + iothub.DefaultAPIVersion).
		SetPassword(sas.Sign(sas.EncodeResource("localhost/devices/dev1"), "", k, time.Now().Add(time.Hour)).String()).
		SetTLSConfig(ca.ClientTLS("localhost")).SetAutoReconnect(false)
	c := paho.NewClient(o)
	if tok := c.Connect(); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Fatalf("connect: %v", tok.Error())
	}
	defer c.Disconnect(0)
	dev1 := iothub.Identity{DeviceID: "dev1"}
	subs := map[string]paho.MessageHandler{
		iothub.C2DFilter(dev1): func(_ paho.Client, m paho.Message) { msgs <- m },
		iothub.MethodsFilter: func(c paho.Client, m paho.Message) {
			name, rid, _ := iothub.ParseMethodRequestTopic(m.Topic())
			c.Publish(iothub.MethodResponseTopic(200, rid), 0, false, fmt.Sprintf(`{"method":%q,"got":%s}`, name, m.Payload()))
		},
	}
	for f, h := range subs {
		if tok := c.Subscribe(f, 1, h); !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
			t.Fatalf("subscribe %s: %v", f, tok.Error())
		}
	}

	t.Run("send", func(t *testing.T) {
		code, out, errOut := fakehubCLI(t, append([]string{"send", "dev1", "hello device", "--property", "color=red"}, svc...)...)
		if code != 0 {
			t.Fatalf("send: exit %d: %s %s", code, out, errOut)
		}
		select {
		case m := <-msgs:
			_, props, _ := iothub.ParseC2DTopic(m.Topic())
			if v, _ := props.Get("color"); string(m.Payload()) != "hello device" || v != "red" {
				t.Errorf("device got %s %q", m.Topic(), m.Payload())
			}
		case <-time.After(5 * time.Second):
			t.Fatal("the device got no C2D message")
		}
	})
	t.Run("events", func(t *testing.T) {
		if tok := c.Publish("devices/dev1/messages/events/unit=C", 1, false, `{"temp":21.5}`); !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
			t.Fatal(tok.Error())
		}
		code, out, errOut := fakehubCLI(t, append([]string{"events", "--device", "dev1", "--follow", "--since", "1h", "--count", "1"}, svc...)...)
		if code != 0 || !strings.Contains(out, `"temp":21.5`) || !strings.Contains(out, "dev1") {
			t.Errorf("events: exit %d: %s %s", code, out, errOut)
		}
	})
	t.Run("invoke", func(t *testing.T) {
		code, out, errOut := fakehubCLI(t, append([]string{"invoke", "dev1", "reboot", `{"delay":1}`, "--timeout", "10s"}, svc...)...)
		if code != 0 || !strings.Contains(out, `"status":200`) || !strings.Contains(out, `"got":{"delay":1}`) {
			t.Errorf("invoke: exit %d: %q %s", code, out, errOut)
		}
	})
}
