package fakehub_test

import (
	"os"
	"os/exec"
	"strings"
	"testing"

	"github.com/hubkit/hubkit/internal/testutil"
	"github.com/hubkit/hubkit/pkg/fakehub"
	"github.com/hubkit/hubkit/pkg/fakehub/fakehubtest"
	"github.com/hubkit/hubkit/pkg/iothub"
)

// TestInteropMosquittoX509: mosquitto with --cert/--key and no password, for a
// certificateAuthority device and a selfSigned one; a certificate the hub does not know
// gets CONNACK 5 (mosquitto's exit code 5) and the reason.
func TestInteropMosquittoX509(t *testing.T) {
	testutil.LookTool(t, "mosquitto_pub", "mosquitto-clients")
	testutil.LookTool(t, "mosquitto_sub", "mosquitto-clients")
	h := fakehubtest.Start(t, fakehub.Options{})
	ca := h.AddCADevice(iothub.Identity{DeviceID: "mq-ca"})
	self := h.AddSelfSignedDevice(iothub.Identity{DeviceID: "mq-self"})
	args := func(id string, cert fakehubtest.DeviceCert) []string {
		return []string{"-h", "localhost", "-p", h.Port, "--cafile", h.CAFile, "-V", "mqttv311", "-i", id,
			"-u", userName("localhost", iothub.Identity{DeviceID: id}), "--cert", cert.CertFile, "--key", cert.KeyFile}
	}
	for _, tc := range []struct {
		id   string
		cert fakehubtest.DeviceCert
	}{{"mq-ca", ca}, {"mq-self", self}} {
		t.Run("publish-"+tc.id, func(t *testing.T) {
			st := h.Telemetry()
			code, out := runTool(t, "mosquitto_pub", append(args(tc.id, tc.cert), "-q", "1", "-t", "devices/"+tc.id+"/messages/events/", "-m", `{"mq":1}`)...)
			if code != 0 {
				t.Fatalf("mosquitto_pub exit %d: %s; rejections %+v", code, out, h.Rejections())
			}
			if m := nextMessage(t, st); m.DeviceID != tc.id || !strings.Contains(m.Annotations[iothub.PropConnectionAuthMethod], `"type":"x509"`) {
				t.Errorf("captured %+v", m)
			}
		})
	}
	t.Run("subscribe-c2d", func(t *testing.T) {
		done := make(chan struct{})
		var code int
		var out string
		go func() {
			defer close(done)
			code, out = runTool(t, "mosquitto_sub", append(args("mq-ca", ca), "-q", "1", "-t", "devices/mq-ca/messages/devicebound/#", "-v", "-C", "1", "-W", "20")...)
		}()
		id := iothub.Identity{DeviceID: "mq-ca"}
		deliverWhenSubscribed(t, h, id, "devices/mq-ca/messages/devicebound/#", nil, "to a certificate")
		<-done
		if code != 0 || !strings.Contains(out, "to a certificate") {
			t.Errorf("mosquitto_sub exit %d: %q", code, out)
		}
	})
	t.Run("unknown-thumbprint-refused", func(t *testing.T) {
		mark := len(h.Rejections())
		code, out := runTool(t, "mosquitto_pub", append(args("mq-self", ca), "-t", "devices/mq-self/messages/events/", "-m", "x")...)
		if code != 5 {
			t.Errorf("mosquitto_pub exit %d, want 5 (CONNACK 5): %s", code, out)
		}
		waitRejection(t, h, mark, fakehub.ReasonX509UnknownThumbprint)
	})
}

// pahoPythonWS is Paho for Python over WebSockets (transport="websockets",
// ws_set_options(path="/$iothub/websocket"), as the Python SDK does), with a SAS token or a
// client certificate: it connects, prints the CONNACK code (exiting with it when not 0),
// publishes one telemetry message at QoS 1 and exits after its PUBACK.
const pahoPythonWS = `
import ssl, sys
import paho.mqtt.client as mqtt
host, port, ca, cid, user, pw, cert, key = sys.argv[1:9]
try:
    c = mqtt.Client(mqtt.CallbackAPIVersion.VERSION1, client_id=cid, clean_session=True, protocol=mqtt.MQTTv311, transport="websockets")
except AttributeError:
    c = mqtt.Client(client_id=cid, clean_session=True, protocol=mqtt.MQTTv311, transport="websockets")
c.ws_set_options(path="/$iothub/websocket")
if cert != "-":
    c.tls_set(ca_certs=ca, certfile=cert, keyfile=key, tls_version=ssl.PROTOCOL_TLS_CLIENT)
else:
    c.tls_set(ca_certs=ca, tls_version=ssl.PROTOCOL_TLS_CLIENT)
c.username_pw_set(user, pw if pw != "-" else None)
state = {"rc": None, "done": False}
def on_connect(cl, ud, flags, rc):
    state["rc"] = rc
    print("connack", rc, flush=True)
    if rc != 0:
        cl.disconnect()
        return
    cl.publish("devices/%s/messages/events/source=python-ws" % cid, b'{"ws":1}', qos=1)
def on_publish(cl, ud, mid):
    print("puback", flush=True)
    state["done"] = True
    cl.disconnect()
c.on_connect, c.on_publish = on_connect, on_publish
c.connect(host, int(port), keepalive=30)
c.loop_forever()
sys.exit(0 if state["done"] else (state["rc"] or 1))
`

func pahoPythonPath(t *testing.T) string {
	const python = "/usr/bin/python3"
	if _, err := os.Stat(python); err != nil || exec.Command(python, "-c", "import paho.mqtt.client").Run() != nil {
		testutil.MissingTool(t, "Paho for Python is not installed (apt-get install python3-paho-mqtt)")
	}
	return python
}

// TestInteropPahoPythonWebSocket: Paho for Python over wss://.../$iothub/websocket with a
// SAS token and with an X.509 certificate; a bad token is refused with CONNACK 5.
func TestInteropPahoPythonWebSocket(t *testing.T) {
	python := pahoPythonPath(t)
	h := startHub(t, fakehub.Options{})
	cert := h.AddCADevice(iothub.Identity{DeviceID: "py-x509"})
	run := func(id iothub.Identity, pw, certFile, keyFile string) (int, string) {
		return runTool(t, python, "-c", pahoPythonWS, "localhost", h.WSPort, h.CAFile, id.ClientID(), userName("localhost", id), pw, certFile, keyFile)
	}
	for _, tc := range []struct {
		name      string
		id        iothub.Identity
		pw        string
		cert, key string
	}{
		{"sas", dev1, deviceToken("localhost", dev1, keyDev1A), "-", "-"},
		{"x509", iothub.Identity{DeviceID: "py-x509"}, "-", cert.CertFile, cert.KeyFile},
	} {
		t.Run(tc.name, func(t *testing.T) {
			st := h.Telemetry()
			code, out := run(tc.id, tc.pw, tc.cert, tc.key)
			if code != 0 || !strings.Contains(out, "connack 0") || !strings.Contains(out, "puback") {
				t.Fatalf("exit %d: %s; rejections %+v", code, out, h.Rejections())
			}
			if m := nextMessage(t, st); m.Identity() != tc.id || m.Properties["source"] != "python-ws" {
				t.Errorf("captured %+v", m)
			}
		})
	}
	t.Run("bad-token-refused-with-5", func(t *testing.T) {
		mark := len(h.Rejections())
		code, out := run(dev1, deviceToken("localhost", dev1, keyWrong), "-", "-")
		if code != 5 || !strings.Contains(out, "connack 5") {
			t.Errorf("exit %d, want 5: %s", code, out)
		}
		waitRejection(t, h, mark, "signature-mismatch")
	})
}
