package fakehub_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/hubkit/hubkit/pkg/fakehub"
	"github.com/hubkit/hubkit/pkg/fakehub/fakehubtest"
	"github.com/hubkit/hubkit/pkg/iothub"
)

func TestReset(t *testing.T) {
	hub := fakehubtest.Start(t, fakehub.Options{})
	id := iothub.Identity{DeviceID: "dev1"}
	if _, err := hub.AddDevice(id.DeviceID); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	msgID, err := hub.SendC2D(ctx, id.DeviceID, iothub.C2DMessage{Payload: []byte("queued while offline")})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := hub.UpdateTwin(ctx, id, iothub.TwinUpdate{Tags: []byte(`{"site":"lab"}`), Desired: []byte(`{"interval":5}`)}); err != nil {
		t.Fatal(err)
	}
	// Only the twins: the C2D message stays.
	hub.Reset(fakehub.ResetTwins)
	tw, err := hub.Twin(id)
	if err != nil || strings.Contains(string(tw.Tags), "site") || tw.DesiredVersion() != 1 || tw.Version != 1 {
		t.Errorf("twin after reset: tags %s, desired v%d, version %d, %v", tw.Tags, tw.DesiredVersion(), tw.Version, err)
	}
	if d, _ := hub.Device(id); d.CloudToDeviceMessageCount != 1 {
		t.Errorf("C2D queue after a twins reset = %d, want 1", d.CloudToDeviceMessageCount)
	}
	// Everything: the C2D message and its state go, the device stays.
	hub.Reset()
	if d, err := hub.Device(id); err != nil || d.CloudToDeviceMessageCount != 0 {
		t.Errorf("after Reset: %+v, %v", d, err)
	}
	if _, ok := hub.C2DState(msgID); ok {
		t.Error("the C2D message's state survived Reset")
	}
	if len(hub.C2DFeedback()) != 0 || len(hub.Rejections()) != 0 || len(hub.TelemetryFrom(time.Time{}).All()) != 0 {
		t.Error("feedback, rejections or telemetry survived Reset")
	}
	if _, err := fakehub.ParseResetParts("telemetry, C2D"); err != nil {
		t.Error(err)
	}
	if _, err := fakehub.ParseResetParts("devices"); err == nil || !strings.Contains(err.Error(), `unknown reset part "devices"`) {
		t.Errorf("ParseResetParts(devices) = %v", err)
	}
}
