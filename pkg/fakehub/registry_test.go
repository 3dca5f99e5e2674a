package fakehub_test

import (
	"bytes"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/hubkit/hubkit/pkg/fakehub"
	"github.com/hubkit/hubkit/pkg/fakehub/fakehubtest"
	"github.com/hubkit/hubkit/pkg/iothub"
)

const (
	keyA = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8="
	keyB = "ICEiIyQlJicoKSorLC0uLzAxMjM0NTY3ODk6Ozw9Pj8="
)

func TestLoadRegistryYAML(t *testing.T) {
	const file = `
hostname: myhub.azure-devices.net
devices:
  - deviceId: dev1
    authentication:
      symmetricKey:
        primaryKey: ` + keyA + `
        secondaryKey: ` + keyB + `
    modules:
      - moduleId: mod1
        authentication:
          symmetricKey:
            primaryKey: ` + keyB + `
  - deviceId: spare
    status: disabled
policies:
  - keyName: device
    primaryKey: ` + keyA + `
    rights: DeviceConnect
  - keyName: owner
    rights: RegistryWrite, ServiceConnect, DeviceConnect
`
	f, err := fakehub.LoadRegistry(strings.NewReader(file), bytes.NewReader(bytes.Repeat([]byte{7}, 4096)))
	if err != nil {
		t.Fatal(err)
	}
	if f.HostName != "myhub.azure-devices.net" {
		t.Errorf("HostName %q", f.HostName)
	}
	d, ok := f.Registry.Get(iothub.Identity{DeviceID: "dev1"})
	if !ok || d.Authentication.SymmetricKey.PrimaryKey != keyA || d.Authentication.SymmetricKey.SecondaryKey != keyB || d.Status != iothub.StatusEnabled {
		t.Errorf("dev1 = %+v", d)
	}
	m, ok := f.Registry.Get(iothub.Identity{DeviceID: "dev1", ModuleID: "mod1"})
	if !ok || m.Authentication.SymmetricKey.PrimaryKey != keyB || m.Authentication.SymmetricKey.SecondaryKey == "" {
		t.Errorf("mod1 = %+v (want a generated secondary key)", m)
	}
	if d, _ := f.Registry.Get(iothub.Identity{DeviceID: "spare"}); d.Status != iothub.StatusDisabled || d.Authentication.SymmetricKey.PrimaryKey == "" {
		t.Errorf("spare = %+v", d)
	}
	var names []string
	for _, p := range f.Registry.Policies() {
		names = append(names, p.KeyName+": "+p.Rights.String())
	}
	if diff := cmp.Diff([]string{"device: DeviceConnect", "owner: RegistryWrite, ServiceConnect, DeviceConnect"}, names); diff != "" {
		t.Errorf("policies (-want +got):\n%s", diff)
	}
}

// The shape `az iot hub device-identity list` prints (abridged but with its extra fields).
const azDeviceList = `[
  {
    "authenticationType": "sas",
    "capabilities": {"iotEdge": false},
    "cloudToDeviceMessageCount": 0,
    "connectionState": "Disconnected",
    "deviceEtag": "NzQ4NjY5NTk1",
    "deviceId": "thermostat-1",
    "etag": "AAAAAAAAAAE=",
    "generationId": "638000000000000001",
    "status": "enabled",
    "statusReason": null,
    "authentication": {
      "symmetricKey": {"primaryKey": "` + keyA + `", "secondaryKey": "` + keyB + `"},
      "type": "sas",
      "x509Thumbprint": {"primaryThumbprint": null, "secondaryThumbprint": null}
    },
    "version": 2
  },
  {
    "deviceId": "thermostat-2",
    "status": "disabled",
    "authentication": {"symmetricKey": {"primaryKey": "` + keyB + `", "secondaryKey": "` + keyA + `"}, "type": "sas"}
  }
]`

func TestLoadRegistryAzJSON(t *testing.T) {
	f, err := fakehub.LoadRegistry(strings.NewReader(azDeviceList), nil)
	if err != nil {
		t.Fatal(err)
	}
	d, ok := f.Registry.Get(iothub.Identity{DeviceID: "thermostat-1"})
	if !ok || d.Authentication.SymmetricKey.PrimaryKey != keyA || d.GenerationID != "638000000000000001" {
		t.Errorf("thermostat-1 = %+v", d)
	}
	if d, _ := f.Registry.Get(iothub.Identity{DeviceID: "thermostat-2"}); d.Status != iothub.StatusDisabled {
		t.Errorf("thermostat-2 = %+v", d)
	}
	if _, ok := f.Registry.Policy("iothubowner"); !ok {
		t.Error("built-in policies missing when the file has none")
	}
}

func TestLoadRegistryErrors(t *testing.T) {
	tests := []struct {
		name, file, want string
	}{
		{"bad-base64", "devices:\n- deviceId: d1\n  authentication: {symmetricKey: {primaryKey: 'not base64!'}}",
			`devices[0] (deviceId "d1"): authentication.symmetricKey.primaryKey:`},
		{"missing-device-id", "devices:\n- status: enabled", "devices[0]: deviceId: missing"},
		{"bad-status", "devices:\n- deviceId: d1\n  status: sleeping", `devices[0] (deviceId "d1"): status: "sleeping"`},
		{"bad-device-id", "devices:\n- deviceId: 'a b'", `devices[0] (deviceId "a b")`},
		{"duplicate-device", "devices:\n- deviceId: d1\n- deviceId: d1", `devices[1] (deviceId "d1"): deviceId: duplicate`},
		{"x509-device-without-thumbprint", "devices:\n- deviceId: d1\n  authentication: {type: selfSigned}", "a \"selfSigned\" identity needs a primaryThumbprint"},
		{"bad-thumbprint", "devices:\n- deviceId: d1\n  authentication: {type: selfSigned, x509Thumbprint: {primaryThumbprint: xyz}}", "authentication.x509Thumbprint.primaryThumbprint: thumbprint \"xyz\": not hexadecimal"},
		{"auth-none", "devices:\n- deviceId: d1\n  authentication: {type: none}", `authentication.type: "none" is not supported`},
		{"module-without-id", "devices:\n- deviceId: d1\n  modules: [{}]", `devices[0] (deviceId "d1"): modules[0]: moduleId: missing`},
		{"module-bad-key", "devices:\n- deviceId: d1\n  modules: [{moduleId: m, authentication: {symmetricKey: {secondaryKey: '@@'}}}]",
			`modules[0] (moduleId "m"): authentication.symmetricKey.secondaryKey:`},
		{"policy-bad-right", "policies:\n- keyName: p\n  rights: DeviceConnect, Fly", `policies[0] (keyName "p"): rights: unknown right "Fly"`},
		{"policy-without-name", "policies:\n- rights: DeviceConnect", "policies[0]: keyName: missing"},
		{"not-yaml", "devices: [", "devices file:"},
		{"wrong-type", "devices: 3", "devices file:"},
		{"yaml-boolean-id", "devices:\n- deviceId: off", "quote the value"},
		// Typos are errors with the line, not silently ignored fields.
		{"typo-in-key-field", "devices:\n- deviceId: d1\n  authentication:\n    symmetricKey:\n      primaryKye: " + keyA,
			`devices file: line 5: devices[0].authentication.symmetricKey: unknown field "primaryKye" (did you mean primaryKey?)`},
		{"typo-in-status", "devices:\n- deviceId: d1\n  statuss: disabled",
			`devices file: line 3: devices[0]: unknown field "statuss" (did you mean status?)`},
		{"typo-top-level", "hostname: h\ndevice:\n- deviceId: d1", `devices file: line 2: top level: unknown field "device" (did you mean devices?)`},
		{"typo-in-module", "devices:\n- deviceId: d1\n  modules:\n  - modulId: m", `line 4: devices[0].modules[0]: unknown field "modulId" (did you mean moduleId?)`},
		{"typo-in-policy", "policies:\n- keyName: p\n  right: DeviceConnect", `line 3: policies[0]: unknown field "right" (did you mean rights?)`},
		{"typo-in-json", "[\n {\"deviceId\": \"d1\",\n  \"Authentication\": {}}]", `line 3: devices[0]: unknown field "Authentication" (did you mean authentication?)`},
		{"unknown-field", "devices:\n- deviceId: d1\n  colour: red", `line 3: devices[0]: unknown field "colour" (want one of deviceId, status,`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := fakehub.LoadRegistry(strings.NewReader(tt.file), nil)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("LoadRegistry(%q) = %v, want an error containing %q", tt.file, err, tt.want)
			}
		})
	}
}

func TestRegistryOperations(t *testing.T) {
	r := fakehub.NewRegistry(bytes.NewReader(bytes.Repeat([]byte{1}, 8192)))
	if _, err := r.Add(iothub.Device{DeviceID: "d"}); err != nil {
		t.Fatal(err)
	}
	if _, err := r.Add(iothub.Device{DeviceID: "d"}); !errors.Is(err, iothub.ErrDeviceAlreadyExists) {
		t.Errorf("second Add: %v, want ErrDeviceAlreadyExists", err)
	}
	if _, err := r.Add(iothub.Device{DeviceID: "nope", ModuleID: "m"}); !errors.Is(err, iothub.ErrDeviceNotFound) {
		t.Errorf("AddModule to a missing device: %v", err)
	}
	if _, err := r.Add(iothub.Device{DeviceID: "d", ModuleID: "m"}); err != nil {
		t.Fatal(err)
	}
	if _, err := r.Add(iothub.Device{DeviceID: "d", ModuleID: "m"}); !errors.Is(err, iothub.ErrModuleAlreadyExists) {
		t.Errorf("second module Add: %v, want ErrModuleAlreadyExists", err)
	}
	k, err := r.SetKeys(iothub.Identity{DeviceID: "d", ModuleID: "m"}, iothub.SymmetricKey{PrimaryKey: keyA})
	if m, _ := r.Get(iothub.Identity{DeviceID: "d", ModuleID: "m"}); err != nil || m.Authentication.SymmetricKey != k || k.PrimaryKey != keyA || k.SecondaryKey == "" {
		t.Errorf("SetKeys = %+v, %v; module keys %+v", k, err, m.Authentication.SymmetricKey)
	}
	if _, err := r.SetKeys(iothub.Identity{DeviceID: "nope"}, iothub.SymmetricKey{}); !errors.Is(err, iothub.ErrDeviceNotFound) {
		t.Errorf("SetKeys on a missing device: %v", err)
	}
	if err := r.SetStatus("d", "sleeping"); err == nil {
		t.Error("SetStatus(sleeping) succeeded")
	}
	if err := r.Delete(iothub.Identity{DeviceID: "d", ModuleID: "m"}, ""); err != nil {
		t.Fatal(err)
	}
	if err := r.Delete(iothub.Identity{DeviceID: "d"}, ""); err != nil {
		t.Fatal(err)
	}
	if err := r.Delete(iothub.Identity{DeviceID: "d"}, ""); !errors.Is(err, iothub.ErrDeviceNotFound) {
		t.Errorf("Delete twice: %v", err)
	}
	rights, err := iothub.ParseRights("registryread,DeviceConnect")
	if err != nil || rights != iothub.RegistryRead|iothub.DeviceConnect || rights.String() != "RegistryRead, DeviceConnect" {
		t.Errorf("ParseRights = %v %v", rights, err)
	}
	var got []string
	for _, p := range r.Policies() {
		got = append(got, p.KeyName+": "+p.Rights.String())
	}
	want := []string{"device: DeviceConnect", "iothubowner: RegistryWrite, ServiceConnect, DeviceConnect",
		"registryRead: RegistryRead", "registryReadWrite: RegistryWrite", "service: ServiceConnect"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("built-in policies (-want +got):\n%s", diff)
	}
}

// TestStatusUpdatedTime: a new identity shows the zero time, as IoT Hub's registry does, and
// a status change stamps the hub's clock.
func TestStatusUpdatedTime(t *testing.T) {
	now := time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)
	h := fakehubtest.Start(t, fakehub.Options{Now: func() time.Time { return now }})
	reg := h.Registry()
	d, err := reg.Add(iothub.Device{DeviceID: "d1"})
	if err != nil || !d.StatusUpdatedTime.IsZero() {
		t.Fatalf("new device: %v %v", d.StatusUpdatedTime, err)
	}
	if err := reg.SetStatus("d1", iothub.StatusDisabled); err != nil {
		t.Fatal(err)
	}
	d, _ = reg.Get(iothub.Identity{DeviceID: "d1"})
	if !d.StatusUpdatedTime.Equal(now) || d.Status != iothub.StatusDisabled {
		t.Errorf("after disable: %v %v, want %v", d.Status, d.StatusUpdatedTime, now)
	}
	before := d.StatusUpdatedTime
	if _, err := reg.SetKeys(iothub.Identity{DeviceID: "d1"}, iothub.SymmetricKey{}); err != nil {
		t.Fatal(err)
	}
	if d, _ = reg.Get(iothub.Identity{DeviceID: "d1"}); !d.StatusUpdatedTime.Equal(before) {
		t.Errorf("a key change moved statusUpdatedTime to %v", d.StatusUpdatedTime)
	}
}
