package fakehub_test

import (
	"bytes"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/hubkit/hubkit/pkg/fakehub"
	"github.com/hubkit/hubkit/pkg/iothub"
)

// TestWriteRegistryRoundTrip: what WriteRegistry writes, LoadRegistry reads back with the same
// keys, generation IDs, statuses, modules and policies (fakehub serve --state relies on it).
func TestWriteRegistryRoundTrip(t *testing.T) {
	reg := fakehub.NewRegistry(nil)
	for _, d := range []iothub.Device{{DeviceID: "dev1"}, {DeviceID: "dev1", ModuleID: "m1"},
		{DeviceID: "dev2", Status: iothub.StatusDisabled, StatusReason: "spare"}} {
		if _, err := reg.Add(d); err != nil {
			t.Fatal(err)
		}
	}
	var buf bytes.Buffer
	if err := fakehub.WriteRegistry(&buf, "myhub.azure-devices.net", reg); err != nil {
		t.Fatal(err)
	}
	f, err := fakehub.LoadRegistry(strings.NewReader(buf.String()), nil)
	if err != nil {
		t.Fatalf("LoadRegistry(WriteRegistry()): %v\n%s", err, buf.String())
	}
	if f.HostName != "myhub.azure-devices.net" {
		t.Errorf("hostname %q", f.HostName)
	}
	if diff := cmp.Diff(reg.Devices(), f.Registry.Devices()); diff != "" {
		t.Errorf("devices (-written +read):\n%s", diff)
	}
	m1, _ := reg.Modules("dev1")
	m2, _ := f.Registry.Modules("dev1")
	if diff := cmp.Diff(m1, m2); diff != "" {
		t.Errorf("modules (-written +read):\n%s", diff)
	}
	if diff := cmp.Diff(reg.Policies(), f.Registry.Policies()); diff != "" {
		t.Errorf("policies (-written +read):\n%s", diff)
	}
}
