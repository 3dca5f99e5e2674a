package fakehub_test

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hubkit/hubkit/internal/testutil"
	"github.com/hubkit/hubkit/pkg/fakehub"
	"github.com/hubkit/hubkit/pkg/fakehub/fakehubtest"
	"github.com/hubkit/hubkit/pkg/iothub"
)

// The official Azure IoT Node device SDK (azure-iot-device, azure-iot-device-mqtt) against
// fakehub: testdata/node-device holds its package.json, package-lock.json and the client
// (device.js). npm ci installs it into testdata/node-device/node_modules (git-ignored) once;
// a stamp with the lock file's SHA-256 says it is current, so later runs install nothing
// (`make node-deps` does the same ahead of time).

// nodeDeviceDir is the npm folder of the Node device interop client.
const nodeDeviceDir = "../../testdata/node-device"

// nodeStamp is written into node_modules after a successful npm ci.
const nodeStamp = ".hubkit-lock-sha256"

var nodeInstall = struct {
	sync.Mutex
	done bool
}{}

// nodeDevice returns the node executable with the SDK installed, installing it when the
// stamp is missing or stale; it skips (fails under HUBKIT_REQUIRE_INTEROP=1) without node,
// npm or the registry.
func nodeDevice(t *testing.T) string {
	t.Helper()
	node := testutil.LookTool(t, "node", "nodejs")
	nodeInstall.Lock()
	defer nodeInstall.Unlock()
	if nodeInstall.done {
		return node
	}
	lock, err := os.ReadFile(filepath.Join(nodeDeviceDir, "package-lock.json"))
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(lock)
	want := hex.EncodeToString(sum[:])
	stamp := filepath.Join(nodeDeviceDir, "node_modules", nodeStamp)
	if got, err := os.ReadFile(stamp); err != nil || strings.TrimSpace(string(got)) != want {
		npm := testutil.LookTool(t, "npm", "npm")
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
		defer cancel()
		cmd := exec.CommandContext(ctx, npm, "ci", "--no-audit", "--no-fund", "--loglevel=error")
		cmd.Dir = nodeDeviceDir
		if out, err := cmd.CombinedOutput(); err != nil {
			testutil.MissingTool(t, "npm ci in %s failed (%v): %s", nodeDeviceDir, err, out)
		}
		if err := os.WriteFile(stamp, []byte(want+"\n"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	nodeInstall.done = true
	return node
}

// nodeRun is a running device.js: its JSON lines arrive on lines.
type nodeRun struct {
	lines  chan map[string]any
	done   chan struct{}
	err    error
	stderr strings.Builder
}

func startNode(t *testing.T, node string, env ...string) *nodeRun {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	t.Cleanup(cancel)
	cmd := exec.CommandContext(ctx, node, "device.js")
	cmd.Dir = nodeDeviceDir
	cmd.Env = append(os.Environ(), env...)
	r := &nodeRun{lines: make(chan map[string]any, 16), done: make(chan struct{})}
	cmd.Stderr = &r.stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			var m map[string]any
			if json.Unmarshal(sc.Bytes(), &m) == nil {
				r.lines <- m
			}
		}
		r.err = cmd.Wait()
		close(r.done)
	}()
	t.Cleanup(func() { cancel(); <-r.done })
	return r
}

// expect waits for the next line holding key.
func (r *nodeRun) expect(t *testing.T, key string) any {
	t.Helper()
	timeout := time.After(45 * time.Second)
	for {
		select {
		case m := <-r.lines:
			if v, ok := m[key]; ok {
				return v
			}
		case <-r.done:
			t.Fatalf("device.js ended (%v) before printing %q; stderr:\n%s", r.err, key, r.stderr.String())
		case <-timeout:
			t.Fatalf("device.js printed no %q in 45 s; stderr:\n%s", key, r.stderr.String())
		}
	}
}

func (r *nodeRun) wait(t *testing.T) {
	t.Helper()
	select {
	case <-r.done:
		if r.err != nil {
			t.Fatalf("device.js: %v; stderr:\n%s", r.err, r.stderr.String())
		}
	case <-time.After(30 * time.Second):
		t.Fatal("device.js did not exit")
	}
}

// TestInteropNodeSDK runs the Node device SDK with MqttWs (through an HTTP proxy, with a
// SAS key and with an X.509 certificate) and with Mqtt and X.509: connect, telemetry, a
// reported-properties patch, a direct method and a C2D message, each seen by the hub.
func TestInteropNodeSDK(t *testing.T) {
	t.Parallel()
	node := nodeDevice(t)
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
	t.Run("devices", func(t *testing.T) { nodeDevices(t, node, h, proxy, tcpHost, sasCS, caCert, selfCert) })
	if got := proxy.Targets(); len(got) < 2 || got[0] != "localhost:443" {
		t.Errorf("the proxy tunnelled %v, want CONNECT localhost:443 for each MqttWs device", got)
	}
}

// nodeDevices runs the Node SDK devices of TestInteropNodeSDK in parallel, each with its
// own identity.
func nodeDevices(t *testing.T, node string, h *fakehubtest.Hub, proxy *testutil.ConnectProxy, tcpHost string,
	sasCS func(host, id string) string, caCert, selfCert fakehubtest.DeviceCert) {
	for _, tc := range []struct {
		name, id string
		env      []string
	}{
		{"mqttws-sas-proxy", "node-sas-ws", []string{"HUB_TRANSPORT=mqttws", "HUB_PROXY=" + proxy.URL, "HUB_CS=" + sasCS("localhost", "node-sas-ws")}},
		{"mqttws-x509-proxy", "node-ca", []string{"HUB_TRANSPORT=mqttws", "HUB_PROXY=" + proxy.URL, "HUB_CS=HostName=localhost;DeviceId=node-ca;x509=true",
			"HUB_CERT=" + caCert.CertFile, "HUB_KEY=" + caCert.KeyFile}},
		{"mqtt-x509-self-signed", "node-self", []string{"HUB_TRANSPORT=mqtt", "HUB_CS=HostName=" + tcpHost + ";DeviceId=node-self;x509=true",
			"HUB_CERT=" + selfCert.CertFile, "HUB_KEY=" + selfCert.KeyFile}},
		{"mqtt-sas", "node-sas-tcp", []string{"HUB_TRANSPORT=mqtt", "HUB_CS=" + sasCS(tcpHost, "node-sas-tcp")}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			id := iothub.Identity{DeviceID: tc.id}
			st := h.TelemetrySince(0).ForDevice(tc.id, "")
			r := startNode(t, node, append(tc.env, "HUB_CA="+h.CAFile)...)
			r.expect(t, "connected")
			r.expect(t, "sent")
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
			r.expect(t, "twin")
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
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			res, err := h.InvokeMethodOn(ctx, id, "reboot", []byte(`{"delay":1}`), 10*time.Second)
			if err != nil || res.Status != 200 || !strings.Contains(string(res.Payload), "rebooting") {
				t.Errorf("method reboot = %+v, %v", res, err)
			}
			r.expect(t, "method")
			msgID, err := h.SendC2DTo(ctx, id, iothub.C2DMessage{Payload: []byte("hello node")})
			if err != nil {
				t.Fatal(err)
			}
			if got := r.expect(t, "c2d"); got != "hello node" {
				t.Errorf("C2D = %v", got)
			}
			r.wait(t)
			waitState(t, h, msgID, iothub.C2DCompleted)
		})
	}
	// A certificate for a device registered for another certificate: CONNACK 5, "not authorized".
	t.Run("wrong-certificate-refused", func(t *testing.T) {
		t.Parallel()
		r := startNode(t, node, "HUB_TRANSPORT=mqtt", "HUB_CS=HostName="+tcpHost+";DeviceId=node-self;x509=true",
			"HUB_CERT="+caCert.CertFile, "HUB_KEY="+caCert.KeyFile, "HUB_CA="+h.CAFile)
		<-r.done
		if r.err == nil || !strings.Contains(strings.ToLower(r.stderr.String()), "not authorized") {
			t.Errorf("device.js with the wrong certificate: %v; stderr:\n%s", r.err, r.stderr.String())
		}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if _, err := h.WaitRejection(ctx, func(r iothub.Rejection) bool {
			return r.DeviceID == "node-self" && r.Reason == fakehub.ReasonX509UnknownThumbprint
		}); err != nil {
			t.Errorf("no x509-unknown-thumbprint rejection for node-self: %v", err)
		}
	})
}
