package fakehub_test

import (
	"context"
	"encoding/base64"
	"strings"
	"testing"
	"time"

	"github.com/hubkit/hubkit/internal/nodetest"
	"github.com/hubkit/hubkit/internal/testutil"
	"github.com/hubkit/hubkit/pkg/fakehub"
	"github.com/hubkit/hubkit/pkg/fakehub/fakehubtest"
	"github.com/hubkit/hubkit/pkg/iothub"
)

// The official Azure IoT Node device SDK (azure-iot-device, azure-iot-device-mqtt, with
// https-proxy-agent for the proxy) against fakehub over both MQTT transports: the script is
// testdata/node/transport.js, run by internal/nodetest from the one npm project testdata/node
// (versions pinned in its package-lock.json, installed once per lock file).

// nodeFlowTimeout bounds one SDK flow (node start-up, TLS, a few round trips) on a loaded machine.
const nodeFlowTimeout = 90 * time.Second

// TestInteropNodeSDK runs the Node device SDK with MqttWs (through an HTTP proxy, with a
// SAS key and with an X.509 certificate) and with Mqtt and X.509: connect, telemetry, a
// reported-properties patch, a direct method and a C2D message, each seen by the hub.
func TestInteropNodeSDK(t *testing.T) {
	t.Parallel()
	nodetest.Install(t)
	h := fakehubtest.Start(t, fakehub.Options{})
	key := keyDev1A
	for _, id := range []string{"node-sas-ws", "node-sas-tcp"} {
		if _, err := h.AddDevice(id, key); err != nil {
			t.Fatal(err)
		}
	}
	caCert := h.AddCADevice(iothub.Identity{DeviceID: "node-ca"})
	selfCert := h.AddSelfSignedDevice(iothub.Identity{DeviceID: "node-self"})
	// MqttWs always dials {host}:443; the proxy tunnels that to the hub's WebSocket port.
	proxy := testutil.StartConnectProxy(t, map[string]string{"localhost:443": h.WebSocketAddr()})
	tcpHost := "localhost:" + h.Port // Mqtt dials mqtts://{HostName}: the port rides in the host name
	sasCS := func(host, id string) string {
		return "HostName=" + host + ";DeviceId=" + id + ";SharedAccessKey=" + base64.StdEncoding.EncodeToString(key)
	}
	t.Run("devices", func(t *testing.T) { nodeDevices(t, h, proxy, tcpHost, sasCS, caCert, selfCert) })
	if got := proxy.Targets(); len(got) < 2 || got[0] != "localhost:443" {
		t.Errorf("the proxy tunnelled %v, want CONNECT localhost:443 for each MqttWs device", got)
	}
}

// nodeDevices runs the Node SDK devices of TestInteropNodeSDK in parallel, each with its
// own identity.
func nodeDevices(t *testing.T, h *fakehubtest.Hub, proxy *testutil.ConnectProxy, tcpHost string,
	sasCS func(host, id string) string, caCert, selfCert fakehubtest.DeviceCert) {
	for _, tc := range []struct {
		name, id string
		env      map[string]string
	}{
		{"mqttws-sas-proxy", "node-sas-ws", map[string]string{"HUBKIT_TRANSPORT": "mqttws", "HUBKIT_PROXY": proxy.URL,
			"HUBKIT_DEVICE_CS": sasCS("localhost", "node-sas-ws")}},
		{"mqttws-x509-proxy", "node-ca", map[string]string{"HUBKIT_TRANSPORT": "mqttws", "HUBKIT_PROXY": proxy.URL,
			"HUBKIT_DEVICE_CS": "HostName=localhost;DeviceId=node-ca;x509=true", "HUBKIT_DEVICE_CERT": caCert.CertFile, "HUBKIT_DEVICE_KEY": caCert.KeyFile}},
		{"mqtt-x509-self-signed", "node-self", map[string]string{"HUBKIT_TRANSPORT": "mqtt",
			"HUBKIT_DEVICE_CS": "HostName=" + tcpHost + ";DeviceId=node-self;x509=true", "HUBKIT_DEVICE_CERT": selfCert.CertFile, "HUBKIT_DEVICE_KEY": selfCert.KeyFile}},
		{"mqtt-sas", "node-sas-tcp", map[string]string{"HUBKIT_TRANSPORT": "mqtt", "HUBKIT_DEVICE_CS": sasCS(tcpHost, "node-sas-tcp")}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			id := iothub.Identity{DeviceID: tc.id}
			st := h.TelemetrySince(0).ForDevice(tc.id, "")
			ctx, cancel := context.WithTimeout(context.Background(), nodeFlowTimeout)
			defer cancel()
			tc.env["NODE_EXTRA_CA_CERTS"] = h.CAFile
			p := nodetest.Start(t, "transport.js", tc.env)
			p.Next(ctx, "connected")
			p.Next(ctx, "sent")
			m := nextMessage(t, st)
			if m.Identity() != id || !strings.Contains(string(m.Payload), `"node"`) {
				t.Errorf("captured %+v", m)
			}
			wantType := `"type":"sas"`
			if strings.Contains(tc.name, "x509") {
				wantType = `"type":"x509"`
			}
			if am := m.Annotations[iothub.PropConnectionAuthMethod]; !strings.Contains(am, wantType) {
				t.Errorf("auth method %s, want %s", am, wantType)
			}
			p.Next(ctx, "twin")
			tw, err := h.Twin(id)
			if err != nil || !strings.Contains(string(tw.Properties.Reported), `"sdk":"node"`) {
				t.Errorf("reported properties %v, %v", tw.Properties.Reported, err)
			}
			testutil.Eventually(t, tc.id+" subscribed to methods", func() bool {
				for _, s := range h.Sessions() {
					if _, ok := s.Subscriptions["$iothub/methods/POST/#"]; ok && s.Identity == id {
						return true
					}
				}
				return false
			})
			res, err := h.InvokeMethodOn(ctx, id, "reboot", []byte(`{"delay":1}`), 10*time.Second)
			if err != nil || res.Status != 200 || !strings.Contains(string(res.Payload), "rebooting") {
				t.Errorf("method reboot = %+v, %v", res, err)
			}
			if ev := p.Next(ctx, "method"); ev.Fields["name"] != "reboot" {
				t.Errorf("method event %s, want reboot", ev.Raw)
			}
			msgID, err := h.SendC2DTo(ctx, id, iothub.C2DMessage{Payload: []byte("hello node")})
			if err != nil {
				t.Fatal(err)
			}
			if ev := p.Next(ctx, "c2d"); ev.Fields["body"] != "hello node" {
				t.Errorf("C2D event %s, want body \"hello node\"", ev.Raw)
			}
			p.Wait(ctx)
			waitState(t, h, msgID, iothub.C2DCompleted)
		})
	}
	// A certificate for a device registered for another certificate: CONNACK 5, "not authorized".
	t.Run("wrong-certificate-refused", func(t *testing.T) {
		t.Parallel()
		ctx, cancel := context.WithTimeout(context.Background(), nodeFlowTimeout)
		defer cancel()
		p := nodetest.Start(t, "transport.js", map[string]string{"HUBKIT_TRANSPORT": "mqtt", "NODE_EXTRA_CA_CERTS": h.CAFile,
			"HUBKIT_DEVICE_CS":   "HostName=" + tcpHost + ";DeviceId=node-self;x509=true",
			"HUBKIT_DEVICE_CERT": caCert.CertFile, "HUBKIT_DEVICE_KEY": caCert.KeyFile})
		if err := p.Exit(ctx); err == nil || !strings.Contains(strings.ToLower(p.Stderr()), "not authorized") {
			t.Errorf("transport.js with the wrong certificate: %v; stderr:\n%s", err, p.Stderr())
		}
		if _, err := h.WaitRejection(ctx, func(r iothub.Rejection) bool {
			return r.DeviceID == "node-self" && r.Reason == fakehub.ReasonX509UnknownThumbprint
		}); err != nil {
			t.Errorf("no x509-unknown-thumbprint rejection for node-self: %v", err)
		}
	})
}
