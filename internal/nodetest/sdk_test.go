package nodetest_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/hubkit/hubkit/internal/nodetest"
	"github.com/hubkit/hubkit/pkg/device"
	"github.com/hubkit/hubkit/pkg/fakehub"
	"github.com/hubkit/hubkit/pkg/fakehub/fakehubtest"
	"github.com/hubkit/hubkit/pkg/iothub"
	"github.com/hubkit/hubkit/pkg/sas"
)

// The official Azure IoT Node.js SDKs (npm: azure-iot-device + azure-iot-device-mqtt,
// azure-iothub; versions pinned in testdata/node/package-lock.json) against an in-process
// fakehub. Nobody here wrote them, so what they accept is what the real hub's clients accept.

const key1 = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8="

// flowTimeout bounds one SDK flow (node start-up, TLS, a few round trips) on a loaded machine.
const flowTimeout = 90 * time.Second

// deviceCS is the identity's connection string with GatewayHostName=localhost:{port}: the
// Node device SDK dials mqtts://{GatewayHostName} and signs for HostName.
func deviceCS(hub *fakehubtest.Hub, id iothub.Identity, key string) string {
	cs := sas.ConnectionString{HostName: hub.HostName(), DeviceID: id.DeviceID, ModuleID: id.ModuleID, SharedAccessKey: key,
		GatewayHostName: net.JoinHostPort("localhost", hub.Port)}
	return cs.String()
}

func nodeEnv(hub *fakehubtest.Hub, extra map[string]string) map[string]string {
	env := map[string]string{"NODE_EXTRA_CA_CERTS": hub.CAFile}
	for k, v := range extra {
		env[k] = v
	}
	return env
}

func TestNodeDeviceSDK(t *testing.T) {
	nodetest.Install(t)
	hub := fakehubtest.Start(t, fakehub.Options{})
	id := iothub.Identity{DeviceID: "node-dev"}
	if _, err := hub.Registry().Add(iothub.Device{DeviceID: id.DeviceID, Authentication: iothub.SASAuth(key1, "")}); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), flowTimeout)
	defer cancel()
	events := hub.Telemetry()
	p := nodetest.Start(t, "device.js", nodeEnv(hub, map[string]string{"HUBKIT_DEVICE_CS": deviceCS(hub, id, key1)}))
	p.Next(ctx, "ready")

	// Telemetry, with the SDK's system properties and an application property.
	m, err := events.Next(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if m.DeviceID != id.DeviceID || string(m.Payload) != `{"temperature":21.5}` || m.Properties["source"] != "node" ||
		m.SystemProperties["$.mid"] != "node-1" || m.SystemProperties["$.ct"] != "application/json" || m.SystemProperties["$.ce"] != "utf-8" {
		t.Errorf("telemetry = %+v (payload %s)", m, m.Payload)
	}
	// Twin: the GET answered (a new twin: both versions 1), the reported PATCH stored.
	tw := p.Events()
	if got := findEvent(tw, "twin"); got == nil || fmt.Sprint(got["desired"].(map[string]any)["$version"]) != "1" {
		t.Errorf("twin event %v", got)
	}
	twin, err := hub.Twin(id)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(twin.Properties.Reported), `"firmware":"node-1.0"`) {
		t.Errorf("reported = %s", twin.Properties.Reported)
	}

	// C2D: delivered with its properties and completed by the SDK's PUBACK.
	msgID, err := hub.SendC2D(ctx, id.DeviceID, iothub.C2DMessage{MessageID: "c2d-1", Payload: []byte("hello node"),
		Properties: iothub.Properties{{Key: "color", Value: "red"}}})
	if err != nil {
		t.Fatal(err)
	}
	c2d := p.Next(ctx, "c2d")
	if c2d.Fields["body"] != "hello node" || c2d.Fields["messageId"] != "c2d-1" || c2d.Fields["properties"].(map[string]any)["color"] != "red" {
		t.Errorf("c2d event %s", c2d.Raw)
	}
	if st, err := hub.WaitC2DState(ctx, msgID, nil); err != nil || st.State != iothub.C2DCompleted {
		t.Errorf("C2D state %+v, %v; want completed", st, err)
	}

	// Desired properties: the SDK reports the patch with its $version.
	if _, err := hub.UpdateDesired(ctx, id, []byte(`{"interval":10}`)); err != nil {
		t.Fatal(err)
	}
	for {
		ev := p.Next(ctx, "desired")
		patch, _ := ev.Fields["patch"].(map[string]any)
		if patch["interval"] == float64(10) {
			if patch["$version"] != float64(2) {
				t.Errorf("desired patch %s: want $version 2", ev.Raw)
			}
			break
		}
	}

	// A direct method.
	res, err := hub.InvokeMethod(ctx, id.DeviceID, "echo", []byte(`{"n":1}`), 20*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if res.Status != 200 || string(res.Payload) != `{"echo":{"n":1}}` {
		t.Errorf("method result %d %s", res.Status, res.Payload)
	}
	p.Close(ctx)
	for _, r := range hub.Rejections() {
		if r.DeviceID == id.DeviceID {
			t.Errorf("the hub refused or closed the SDK's connection: %+v", r)
		}
	}
}

func findEvent(evs []nodetest.Event, name string) map[string]any {
	for _, ev := range evs {
		if ev.Name == name {
			return ev.Fields
		}
	}
	return nil
}

func TestNodeModuleSDK(t *testing.T) {
	nodetest.Install(t)
	hub := fakehubtest.Start(t, fakehub.Options{})
	id := iothub.Identity{DeviceID: "node-edge", ModuleID: "node-mod"}
	if _, err := hub.Registry().Add(iothub.Device{DeviceID: id.DeviceID}); err != nil {
		t.Fatal(err)
	}
	if _, err := hub.Registry().Add(iothub.Device{DeviceID: id.DeviceID, ModuleID: id.ModuleID, Authentication: iothub.SASAuth(key1, "")}); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), flowTimeout)
	defer cancel()
	events := hub.Telemetry()
	p := nodetest.Start(t, "device.js", nodeEnv(hub, map[string]string{"HUBKIT_DEVICE_CS": deviceCS(hub, id, key1)}))
	p.Next(ctx, "ready")
	m, err := events.Next(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if m.Identity() != id || m.Annotations[iothub.PropConnectionModuleID] != id.ModuleID || m.Properties["source"] != "node" {
		t.Errorf("module telemetry = %+v", m)
	}
	twin, err := hub.Twin(id)
	if err != nil || !strings.Contains(string(twin.Properties.Reported), `"firmware":"node-1.0"`) {
		t.Errorf("module twin %s, %v", twin.Properties.Reported, err)
	}
	if _, err := hub.UpdateDesired(ctx, id, []byte(`{"mode":"eco"}`)); err != nil {
		t.Fatal(err)
	}
	for {
		ev := p.Next(ctx, "desired")
		if patch, _ := ev.Fields["patch"].(map[string]any); patch["mode"] == "eco" {
			break
		}
	}
	res, err := hub.InvokeMethodOn(ctx, id, "echo", []byte(`"hi"`), 20*time.Second)
	if err != nil || res.Status != 200 || string(res.Payload) != `{"echo":"hi"}` {
		t.Errorf("module method %+v, %v", res, err)
	}
	p.Close(ctx)
}

// TestNodeDeviceTokenRenewal: the SDK renews its SAS token before it expires (here every 3 s
// for 6 s tokens) by reconnecting, and the hub, with no grace after expiry, never has to drop
// it: telemetry sent after the first token's expiry arrives and no expiry is recorded.
func TestNodeDeviceTokenRenewal(t *testing.T) {
	nodetest.Install(t)
	hub := fakehubtest.Start(t, fakehub.Options{TokenExpiryGrace: -1})
	id := iothub.Identity{DeviceID: "node-renew"}
	if _, err := hub.Registry().Add(iothub.Device{DeviceID: id.DeviceID, Authentication: iothub.SASAuth(key1, "")}); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), flowTimeout)
	defer cancel()
	p := nodetest.Start(t, "device.js", nodeEnv(hub, map[string]string{"HUBKIT_DEVICE_CS": deviceCS(hub, id, key1),
		"HUBKIT_TOKEN_TTL": "6", "HUBKIT_TOKEN_MARGIN": "3"}))
	p.Next(ctx, "ready")
	first, err := hub.Device(id)
	if err != nil {
		t.Fatal(err)
	}
	p.Next(ctx, "token-renewed")
	p.Next(ctx, "token-renewed") // 6 s in: the first token has expired
	events := hub.Telemetry()
	p.Send(map[string]string{"cmd": "send", "body": "after renewal", "messageId": "after-renewal"})
	p.Next(ctx, "sent")
	for {
		m, err := events.Next(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if m.SystemProperties["$.mid"] == "after-renewal" {
			break
		}
	}
	now, err := hub.Device(id)
	if err != nil || now.ConnectionState != iothub.StateConnected || !now.ConnectionStateUpdatedTime.After(first.ConnectionStateUpdatedTime) {
		t.Errorf("after renewal the device is %v since %v (first connection %v), %v: want a newer connection",
			now.ConnectionState, now.ConnectionStateUpdatedTime, first.ConnectionStateUpdatedTime, err)
	}
	p.Close(ctx)
	for _, r := range hub.Rejections() {
		if r.DeviceID == id.DeviceID && r.Reason == sas.ReasonExpired {
			t.Errorf("the hub dropped the SDK for an expired token: %+v", r)
		}
	}
}

func TestNodeServiceSDK(t *testing.T) {
	nodetest.Install(t)
	hub := fakehubtest.Start(t, fakehub.Options{ServiceAddr: "127.0.0.1:0"})
	for _, d := range []string{"node-online", "node-offline"} {
		if _, err := hub.Registry().Add(iothub.Device{DeviceID: d, Authentication: iothub.SASAuth(key1, "")}); err != nil {
			t.Fatal(err)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), flowTimeout)
	defer cancel()
	online, err := device.FromConnectionString(sas.ConnectionString{HostName: hub.HostName(), DeviceID: "node-online", SharedAccessKey: key1}.String(),
		device.WithEndpoint(hub.Addr()), device.WithRootCAs(hub.CAPool))
	if err != nil {
		t.Fatal(err)
	}
	online.OnMethod("ping", func(_ context.Context, payload []byte) (int, any, error) {
		return 200, map[string]json.RawMessage{"pong": payload}, nil
	})
	if err := online.Connect(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = online.Close(context.Background()) })

	_, port, _ := net.SplitHostPort(hub.ServiceAddr())
	p := nodetest.Start(t, "service.js", nodeEnv(hub, map[string]string{
		"HUBKIT_SERVICE_CS": hub.ServiceConnectionString(), "HUBKIT_SERVICE_PORT": port,
		"HUBKIT_ONLINE_DEVICE": "node-online", "HUBKIT_OFFLINE_DEVICE": "node-offline"}))
	p.Next(ctx, "done")
	p.Wait(ctx)
	var steps []string
	for _, ev := range p.Events() {
		if ev.Name == "step" {
			steps = append(steps, ev.Fields["name"].(string))
		}
	}
	want := "create get list update errors twin-update-etag twin-update-star twin-stale-etag query method method-offline delete"
	if got := strings.Join(steps, " "); got != want {
		t.Errorf("steps %q, want %q", got, want)
	}
	// What the SDK did is in the hub.
	if _, ok := hub.Registry().Get(iothub.Identity{DeviceID: "node-svc-1"}); ok {
		t.Error("node-svc-1 is still registered after Registry.delete")
	}
	tw, err := hub.Twin(iothub.Identity{DeviceID: "node-online"})
	if err != nil || !strings.Contains(string(tw.Tags), `"site":"lab"`) {
		t.Errorf("node-online tags %s, %v", tw.Tags, err)
	}
}
