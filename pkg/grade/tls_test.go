package grade_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/hubkit/hubkit/internal/testutil"
	"github.com/hubkit/hubkit/pkg/fakehub"
	"github.com/hubkit/hubkit/pkg/fakehub/fakehubtest"
	"github.com/hubkit/hubkit/pkg/grade"
	"github.com/hubkit/hubkit/pkg/grade/internal/modeldevice"
	"github.com/hubkit/hubkit/pkg/iothub"
)

// TestTLSDrillAttribution: with another identity connected from the device's IP, the
// handshakes the device refuses cannot be told from that identity's, so refuses-wrong-san
// is not exercised (never a pass); a handshake whose connection sends the device's
// CONNECT is still the device's, so accepts-migrated-root passes.
func TestTLSDrillAttribution(t *testing.T) {
	t.Parallel()
	hub := fakehubtest.Start(t, fakehub.Options{})
	for _, id := range []string{"model", "neighbour"} {
		if _, err := hub.AddDevice(id, testKey); err != nil {
			t.Fatal(err)
		}
		dev := modeldevice.Start(modeldevice.Config{Addr: hub.Addr(), TLS: hub.DrillTLS(), HostName: hub.HostName(),
			Identity: iothub.Identity{DeviceID: id}, Key: testKey, Now: hub.Clock().Now})
		t.Cleanup(dev.Stop)
	}
	testutil.Eventually(t, "the neighbour is connected", func() bool { return hub.Connected(iothub.Identity{DeviceID: "neighbour"}) })
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	rep, err := grade.Run(ctx, hub.GradeHub(), grade.Options{Identity: iothub.Identity{DeviceID: "model"}, Cases: []string{"device/tls"},
		Timing: fastTiming, WaitConnect: 20 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]iothub.GradeVerdict{"device/tls/accepts-migrated-root": iothub.GradePass, "device/tls/refuses-wrong-san": iothub.GradeNotExercised}
	for _, c := range rep.Cases {
		if c.Verdict != want[c.ID] {
			t.Errorf("%s = %s (%s), want %s\n%s", c.ID, c.Verdict, c.Reason, want[c.ID], text(rep))
		}
		if c.ID == "device/tls/refuses-wrong-san" && (!strings.Contains(c.Reason, "cannot be attributed") || !strings.Contains(c.Reason, "neighbour")) {
			t.Errorf("%s reason %q, want it to say the handshakes cannot be attributed, naming the neighbour", c.ID, c.Reason)
		}
	}
}
