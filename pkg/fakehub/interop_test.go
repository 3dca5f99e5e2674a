package fakehub_test

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/hubkit/hubkit/internal/testutil"
	"github.com/hubkit/hubkit/pkg/fakehub"
	"github.com/hubkit/hubkit/pkg/fakehub/fakehubtest"
	"github.com/hubkit/hubkit/pkg/iothub"
	"github.com/hubkit/hubkit/pkg/sas"
)

// Interop tests drive fakehub with third-party clients. They skip when the
// client is missing, unless HUBKIT_REQUIRE_INTEROP=1 (CI), where they fail.

// runTool runs a client and returns its exit code and combined output.
func runTool(t *testing.T, name string, args ...string) (int, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, name, args...).CombinedOutput()
	var ee *exec.ExitError
	switch {
	case err == nil:
		return 0, string(out)
	case errors.As(err, &ee):
		return ee.ExitCode(), string(out)
	default:
		t.Fatalf("%s: %v", name, err)
		return -1, ""
	}
}

// waitSubscribed waits until id holds filter, then delivers one C2D message.
func deliverWhenSubscribed(t *testing.T, h *fakehubtest.Hub, id iothub.Identity, filter string, props iothub.Properties, body string) {
	t.Helper()
	testutil.Eventually(t, id.String()+" subscribed to "+filter, func() bool {
		for _, s := range h.Sessions() {
			if _, ok := s.Subscriptions[filter]; ok && s.Identity == id {
				return true
			}
		}
		return false
	})
	if _, err := fakehub.Deliver(h.Server, id, iothub.C2DTopic(id, props), []byte(body), 1); err != nil {
		t.Fatal(err)
	}
}

func mosquittoArgs(h *fakehubtest.Hub, id iothub.Identity, password string) []string {
	return []string{"-h", "localhost", "-p", h.Port, "--cafile", h.CAFile, "-V", "mqttv311",
		"-i", id.ClientID(), "-u", userName("localhost", id), "-P", password}
}

func TestInteropMosquitto(t *testing.T) {
	testutil.LookTool(t, "mosquitto_pub", "mosquitto-clients")
	testutil.LookTool(t, "mosquitto_sub", "mosquitto-clients")
	h := startHub(t, fakehub.Options{})
	good := deviceToken("localhost", dev1, keyDev1A)

	t.Run("publish-telemetry", func(t *testing.T) {
		st := h.Telemetry()
		code, out := runTool(t, "mosquitto_pub", append(mosquittoArgs(h, dev1, good),
			"-q", "1", "-t", "devices/dev1/messages/events/%24.ct=application%2Fjson&color=blue", "-m", `{"t":1}`)...)
		if code != 0 {
			t.Fatalf("mosquitto_pub exit %d: %s; rejections %+v", code, out, h.Rejections())
		}
		m := nextMessage(t, st)
		if string(m.Payload) != `{"t":1}` || m.SystemProperties["$.ct"] != "application/json" || m.Properties["color"] != "blue" {
			t.Errorf("captured %+v", m)
		}
	})
	t.Run("subscribe-c2d", func(t *testing.T) {
		done := make(chan struct{})
		var code int
		var out string
		go func() {
			defer close(done)
			code, out = runTool(t, "mosquitto_sub", append(mosquittoArgs(h, dev2, deviceToken("localhost", dev2, keyDev2A)),
				"-q", "1", "-t", "devices/dev2/messages/devicebound/#", "-v", "-C", "1", "-W", "20")...)
		}()
		deliverWhenSubscribed(t, h, dev2, "devices/dev2/messages/devicebound/#",
			iothub.Properties{{Key: iothub.PropMessageID, Value: "c2d-1"}}, "hello device")
		<-done
		if code != 0 || !strings.Contains(out, "devices/dev2/messages/devicebound/%24.mid=c2d-1 hello device") {
			t.Errorf("mosquitto_sub exit %d: %q", code, out)
		}
	})
	refusals := []struct {
		name, clientID, password string
		reason                   sas.Reason
	}{
		{"wrong-key", "dev1", deviceToken("localhost", dev1, keyWrong), sas.ReasonSignatureMismatch},
		{"expired", "dev1", token("localhost/devices/dev1", "", keyDev1A, time.Now().Add(-time.Hour)), sas.ReasonExpired},
		{"wrong-client-id", "dev2", good, sas.ReasonUserNameMismatch},
	}
	for _, tt := range refusals {
		t.Run(tt.name, func(t *testing.T) {
			mark := len(h.Rejections())
			args := mosquittoArgs(h, dev1, tt.password)
			args[9] = tt.clientID // -i
			code, out := runTool(t, "mosquitto_pub", append(args, "-t", "devices/dev1/messages/events/", "-m", "x")...)
			if code != 5 {
				t.Errorf("mosquitto_pub exit %d, want 5 (CONNACK 5): %s", code, out)
			}
			waitRejection(t, h, mark, tt.reason)
		})
	}
	t.Run("qos-2-publish-loses-connection", func(t *testing.T) {
		mark := len(h.Rejections())
		code, out := runTool(t, "mosquitto_pub", append(mosquittoArgs(h, dev1, good), "-q", "2", "-t", "devices/dev1/messages/events/", "-m", "x")...)
		if code == 0 {
			t.Errorf("mosquitto_pub -q 2 succeeded: %s", out)
		}
		waitRejection(t, h, mark, fakehub.ReasonQoS2Publish)
	})
}

// pahoPython is a Paho for Python (1.x or 2.x) client: it connects, prints
// the CONNACK code (and exits with it when not 0), subscribes to C2D,
// publishes one telemetry message at QoS 1 and prints the first C2D message.
const pahoPython = `
import ssl, sys
import paho.mqtt.client as mqtt
host, port, ca, cid, user, pw = sys.argv[1:7]
try:
    c = mqtt.Client(mqtt.CallbackAPIVersion.VERSION1, client_id=cid, clean_session=True, protocol=mqtt.MQTTv311)
except AttributeError:
    c = mqtt.Client(client_id=cid, clean_session=True, protocol=mqtt.MQTTv311)
c.tls_set(ca_certs=ca, tls_version=ssl.PROTOCOL_TLS_CLIENT)
c.username_pw_set(user, pw)
state = {"rc": None, "done": False}
def on_connect(cl, ud, flags, rc):
    state["rc"] = rc
    print("connack", rc, flush=True)
    if rc != 0:
        cl.disconnect()
        return
    cl.subscribe([("devices/%s/messages/devicebound/#" % cid, 1)])
def on_subscribe(cl, ud, mid, granted):
    print("suback", list(granted), flush=True)
    cl.publish("devices/%s/messages/events/source=python" % cid, b'{"py":1}', qos=1)
def on_publish(cl, ud, mid):
    print("puback", flush=True)
    state["puback"] = True
    if state.get("done"):
        cl.disconnect()
def on_message(cl, ud, msg):
    print("c2d", msg.topic, msg.payload.decode(), flush=True)
    state["done"] = True
    if state.get("puback"):  # the C2D may overtake the PUBACK
        cl.disconnect()
c.on_connect, c.on_subscribe, c.on_publish, c.on_message = on_connect, on_subscribe, on_publish, on_message
c.connect(host, int(port), keepalive=30)
c.loop_forever()
sys.exit(0 if state["done"] else (state["rc"] or 1))
`

func TestInteropPahoPython(t *testing.T) {
	const python = "/usr/bin/python3"
	haveIt := false
	if _, err := os.Stat(python); err == nil {
		haveIt = exec.Command(python, "-c", "import paho.mqtt.client").Run() == nil
	}
	if !haveIt {
		testutil.MissingTool(t, "Paho for Python is not installed (apt-get install python3-paho-mqtt)")
	}
	h := startHub(t, fakehub.Options{})
	args := func(id iothub.Identity, pw string) []string {
		return []string{"-c", pahoPython, "localhost", h.Port, h.CAFile, id.ClientID(), userName("localhost", id), pw}
	}
	t.Run("connect-publish-receive-c2d", func(t *testing.T) {
		st := h.Telemetry()
		done := make(chan struct{})
		var code int
		var out string
		go func() {
			defer close(done)
			code, out = runTool(t, python, args(dev1, deviceToken("localhost", dev1, keyDev1A))...)
		}()
		m := nextMessage(t, st)
		if string(m.Payload) != `{"py":1}` || m.Properties["source"] != "python" {
			t.Errorf("captured %+v", m)
		}
		deliverWhenSubscribed(t, h, dev1, "devices/dev1/messages/devicebound/#", nil, "to python")
		<-done
		for _, want := range []string{"connack 0", "suback [1]", "puback", "c2d devices/dev1/messages/devicebound/ to python"} {
			if !strings.Contains(out, want) {
				t.Errorf("output lacks %q: exit %d\n%s", want, code, out)
			}
		}
	})
	t.Run("bad-token-refused-with-5", func(t *testing.T) {
		mark := len(h.Rejections())
		code, out := runTool(t, python, args(dev1, deviceToken("localhost", dev1, keyWrong))...)
		if code != 5 || !strings.Contains(out, "connack 5") {
			t.Errorf("exit %d, want 5: %s", code, out)
		}
		waitRejection(t, h, mark, sas.ReasonSignatureMismatch)
	})
}
