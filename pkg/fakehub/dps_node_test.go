package fakehub_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"maps"
	"net"
	"testing"
	"time"

	"github.com/hubkit/hubkit/internal/nodetest"
	"github.com/hubkit/hubkit/pkg/fakehub"
	"github.com/hubkit/hubkit/pkg/fakehub/fakehubtest"
	"github.com/hubkit/hubkit/pkg/iothub"
	"github.com/hubkit/hubkit/pkg/iothub/dps"
)

// The official Azure IoT Node SDKs against fakehub's DPS: azure-iot-provisioning-device
// with its MQTT and HTTP transports and azure-iot-security-symmetric-key register a device,
// then azure-iot-device connects to the assigned hub and sends a message
// (testdata/node/provision.js, run by internal/nodetest; the npm packages are pinned in
// testdata/node/package-lock.json).

// runNodeProvision runs provision.js with env and returns its "registered" event.
func runNodeProvision(t *testing.T, hub *fakehubtest.Hub, env map[string]string) nodetest.Event {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	_, hubPort, _ := net.SplitHostPort(hub.Addr())
	env["NODE_EXTRA_CA_CERTS"] = hub.CAFile
	env["HUBKIT_ID_SCOPE"] = hub.DPS().IDScope()
	env["HUBKIT_HUB_ADDR"] = "localhost:" + hubPort
	p := nodetest.Start(t, "provision.js", env)
	reg := p.Next(ctx, "registered")
	p.Next(ctx, "sent")
	p.Wait(ctx)
	return reg
}

func dpsPort(addr string) string {
	_, p, _ := net.SplitHostPort(addr)
	return p
}

func TestNodeSDKProvisioning(t *testing.T) {
	nodetest.Install(t)
	hub := fakehubtest.Start(t, fakehub.Options{DPS: &fakehub.DPSOptions{RetryAfter: time.Second}})
	d := hub.DPS()
	devKey := base64.StdEncoding.EncodeToString([]byte("node-individual-key-0123456789ab"))
	if _, err := d.SetEnrollment(dps.Enrollment{RegistrationID: "node-individual", Attestation: dps.SymmetricKeyAttestation(devKey, "")}); err != nil {
		t.Fatal(err)
	}
	groupKey := base64.StdEncoding.EncodeToString([]byte("node-group-key-0123456789abcdef-0123456789abcdef"))
	if _, err := d.SetGroup(dps.EnrollmentGroup{EnrollmentGroupID: "node-fleet", Attestation: dps.SymmetricKeyAttestation(groupKey, "")}); err != nil {
		t.Fatal(err)
	}
	if _, err := d.SetGroup(dps.EnrollmentGroup{EnrollmentGroupID: "node-custom", AllocationPolicy: dps.AllocationCustom,
		Attestation: dps.SymmetricKeyAttestation(base64.StdEncoding.EncodeToString([]byte("node-custom-key-0123456789abcdef")), "")}); err != nil {
		t.Fatal(err)
	}
	custom, _ := d.Group("node-custom")
	for _, tc := range []struct {
		name, regID, transport string
		env                    map[string]string
		payload                string
	}{
		{"individual-mqtt", "node-individual", "mqtt", map[string]string{"HUBKIT_DEVICE_KEY": devKey}, ""},
		{"individual-http", "node-individual", "http", map[string]string{"HUBKIT_DEVICE_KEY": devKey}, ""},
		{"group-mqtt", "node-fleet-1", "mqtt", map[string]string{"HUBKIT_GROUP_KEY": groupKey}, ""},
		{"group-http", "node-fleet-2", "http", map[string]string{"HUBKIT_GROUP_KEY": groupKey}, ""},
		{"group-custom-payload-mqtt", "node-custom-1", "mqtt", map[string]string{"HUBKIT_GROUP_KEY": custom.Attestation.SymmetricKey.PrimaryKey,
			"HUBKIT_PAYLOAD": `{"model":"n-1"}`}, `{"model":"n-1"}`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			addr := d.Addr()
			if tc.transport == "http" {
				addr = d.HTTPAddr()
			}
			stream := hub.TelemetrySince(1).ForDevice(tc.regID, "")
			env := map[string]string{"HUBKIT_DPS_HOST": "localhost:" + dpsPort(addr), "HUBKIT_TRANSPORT": tc.transport, "HUBKIT_REGISTRATION_ID": tc.regID}
			maps.Copy(env, tc.env)
			r := runNodeProvision(t, hub, env)
			if r.Fields["assignedHub"] != hub.HostName() || r.Fields["deviceId"] != tc.regID {
				t.Errorf("Node SDK registered %s, want hub %s, device %s", r.Raw, hub.HostName(), tc.regID)
			}
			if payload, _ := json.Marshal(r.Fields["payload"]); tc.payload != "" && string(payload) != tc.payload {
				t.Errorf("payload = %s, want %s echoed", payload, tc.payload)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			m, err := stream.Next(ctx)
			if err != nil {
				t.Fatalf("no telemetry from %s after provisioning: %v", tc.regID, err)
			}
			if m.SystemProperties[iothub.PropMessageID] != "node-dps-1" {
				t.Errorf("telemetry %+v, want the Node device SDK's message node-dps-1", m)
			}
		})
	}
}
