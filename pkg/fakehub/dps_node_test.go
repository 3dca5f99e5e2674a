package fakehub_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/hubkit/hubkit/internal/testutil"
	"github.com/hubkit/hubkit/pkg/fakehub"
	"github.com/hubkit/hubkit/pkg/fakehub/fakehubtest"
	"github.com/hubkit/hubkit/pkg/iothub"
	"github.com/hubkit/hubkit/pkg/iothub/dps"
)

// The official Azure IoT Node SDKs against fakehub's DPS: azure-iot-provisioning-device
// with its MQTT and HTTP transports and azure-iot-security-symmetric-key register a device,
// then azure-iot-device connects to the assigned hub and sends a message
// (testdata/node-dps/provision.js). The npm packages are pinned in
// testdata/node-dps/package-lock.json; `npm ci --prefix testdata/node-dps` installs them
// (.ci/run does).

const nodeDPSDir = "../../testdata/node-dps"

// nodeDPS returns the node binary, or ends the test when node or the packages are missing.
func nodeDPS(t *testing.T) string {
	t.Helper()
	node := testutil.LookTool(t, "node", "nodejs")
	if _, err := os.Stat(filepath.Join(nodeDPSDir, "node_modules", "azure-iot-provisioning-device")); err != nil {
		testutil.MissingTool(t, "the Azure IoT Node SDKs are not installed: npm ci --prefix testdata/node-dps")
	}
	return node
}

type nodeResult struct {
	AssignedHub string          `json:"assignedHub"`
	DeviceID    string          `json:"deviceId"`
	Substatus   string          `json:"substatus"`
	Payload     json.RawMessage `json:"payload"`
	Sent        bool            `json:"sent"`
}

func runNodeProvision(t *testing.T, node string, hub *fakehubtest.Hub, env ...string) nodeResult {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, node, "provision.js")
	cmd.Dir = nodeDPSDir
	_, hubPort, _ := net.SplitHostPort(hub.Addr())
	cmd.Env = append(os.Environ(), "NODE_EXTRA_CA_CERTS="+hub.CAFile, "ID_SCOPE="+hub.DPS().IDScope(),
		"HUB_ADDR=localhost:"+hubPort)
	cmd.Env = append(cmd.Env, env...)
	out, err := cmd.Output()
	if err != nil {
		stderr := ""
		if ee, ok := err.(*exec.ExitError); ok {
			stderr = string(ee.Stderr)
		}
		t.Fatalf("node provision.js: %v\n%s\nrejections: %+v", err, stderr, hub.Rejections())
	}
	var r nodeResult
	if err := json.Unmarshal(out, &r); err != nil {
		t.Fatalf("provision.js printed %q: %v", out, err)
	}
	return r
}

func dpsPort(addr string) string {
	_, p, _ := net.SplitHostPort(addr)
	return p
}

func TestNodeSDKProvisioning(t *testing.T) {
	node := nodeDPS(t)
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
		env                    []string
		payload                string
	}{
		{"individual-mqtt", "node-individual", "mqtt", []string{"DEVICE_KEY=" + devKey}, ""},
		{"individual-http", "node-individual", "http", []string{"DEVICE_KEY=" + devKey}, ""},
		{"group-mqtt", "node-fleet-1", "mqtt", []string{"GROUP_KEY=" + groupKey}, ""},
		{"group-http", "node-fleet-2", "http", []string{"GROUP_KEY=" + groupKey}, ""},
		{"group-custom-payload-mqtt", "node-custom-1", "mqtt", []string{"GROUP_KEY=" + custom.Attestation.SymmetricKey.PrimaryKey, `PAYLOAD={"model":"n-1"}`}, `{"model":"n-1"}`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			addr := d.Addr()
			if tc.transport == "http" {
				addr = d.HTTPAddr()
			}
			stream := hub.TelemetrySince(1).ForDevice(tc.regID, "")
			env := append([]string{"DPS_HOST=localhost:" + dpsPort(addr), "TRANSPORT=" + tc.transport, "REGISTRATION_ID=" + tc.regID}, tc.env...)
			r := runNodeProvision(t, node, hub, env...)
			if r.AssignedHub != hub.HostName() || r.DeviceID != tc.regID || !r.Sent {
				t.Errorf("Node SDK got %+v, want hub %s, device %s", r, hub.HostName(), tc.regID)
			}
			if tc.payload != "" && string(r.Payload) != tc.payload {
				t.Errorf("payload = %s, want %s echoed", r.Payload, tc.payload)
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
