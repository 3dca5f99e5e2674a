package grade_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/hubkit/hubkit/pkg/device"
	"github.com/hubkit/hubkit/pkg/fakehub"
	"github.com/hubkit/hubkit/pkg/fakehub/fakehubtest"
	"github.com/hubkit/hubkit/pkg/grade"
	"github.com/hubkit/hubkit/pkg/iothub"
)

// TestReferenceClientPasses grades pkg/device, hubkit's reference device client, used as
// an application would use it (C2D, desired properties, a method, telemetry every second,
// a reported-properties update every 5 s), with its defaults (1 h tokens renewed at 85 %,
// back-off from 1 s with jitter) but a 10 s back-off cap, and the grader's default timing
// but for shorter waits where pkg/device is quick anyway (reconnects, telemetry, a 6 s
// throttle); with its 30 s default cap and the whole default timing it passes as well, in
// about four minutes: too long for make test. (A cap of 5 s is too close to the waits after
// two closes, 2 s and 4 s, for their growth to show through 0-50 % jitter.) It passes
// every case an in-process hub without DPS can put it through (it trusts the roots of the
// root-change drill, as a device ready for a root migration does). The client reads the
// hub's clock, so the token case moves the clock instead of waiting an hour.
func TestReferenceClientPasses(t *testing.T) {
	if testing.Short() {
		t.Skip("grades in real time (about two minutes)")
	}
	t.Parallel()
	hub := fakehubtest.Start(t, fakehub.Options{})
	id := iothub.Identity{DeviceID: "ref"}
	if _, err := hub.AddDevice(id.DeviceID, testKey); err != nil {
		t.Fatal(err)
	}
	cs := "HostName=" + hub.HostName() + ";DeviceId=" + id.DeviceID + ";SharedAccessKey=" + base64.StdEncoding.EncodeToString(testKey)
	c, err := device.FromConnectionString(cs, device.WithEndpoint(hub.Addr()), device.WithRootCAs(hub.DrillTLS().RootCAs),
		func(cfg *device.Config) { cfg.Now, cfg.MaxReconnectInterval = hub.Clock().Now, 10*time.Second })
	if err != nil {
		t.Fatal(err)
	}
	ctx, stop := context.WithCancel(context.Background())
	t.Cleanup(func() { stop(); _ = c.Close(context.Background()) })
	c.OnC2D(func(context.Context, device.C2DMessage) {})
	c.OnDesired(func(context.Context, json.RawMessage, int64) {})
	c.OnMethod("echo", func(_ context.Context, payload []byte) (int, any, error) { return 200, json.RawMessage(payload), nil })
	if err := c.Connect(ctx); err != nil {
		t.Fatalf("Connect: %v", err)
	}
	go func() { // telemetry every second, as a sensor would; errors (throttled, offline) are retried next tick
		tick := time.NewTicker(time.Second)
		defer tick.Stop()
		for n := 0; ; n++ {
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
			}
			sctx, cancel := context.WithTimeout(ctx, 5*time.Second)
			_ = c.SendEvent(sctx, device.Event{Payload: []byte(`{"n":` + strconv.Itoa(n) + `}`), ContentType: "application/json", ContentEncoding: "utf-8"})
			if n%5 == 0 {
				_, _ = c.UpdateReported(sctx, map[string]any{"sent": n})
			}
			cancel()
		}
	}()

	gctx, cancel := context.WithTimeout(context.Background(), 8*time.Minute)
	defer cancel()
	timing := grade.Timing{Settle: 500 * time.Millisecond, Reconnect: 30 * time.Second, Telemetry: 10 * time.Second,
		Throttle: 6 * time.Second, QuotaHold: 2 * time.Second}
	rep, err := grade.Run(gctx, hub.GradeHub(), grade.Options{Identity: id, Method: "echo", WaitConnect: 30 * time.Second, Timing: timing})
	if err != nil {
		t.Fatalf("grade.Run: %v", err)
	}
	if got := verdicts(rep, iothub.GradeFail); len(got) > 0 {
		t.Errorf("pkg/device failed %v, want none\n%s", got, text(rep))
	}
	if got := verdicts(rep, iothub.GradeNotExercised); !slices.Equal(got, notExercisedOnFakehub) {
		t.Errorf("not exercised %v, want %v\n%s", got, notExercisedOnFakehub, text(rep))
	}
	t.Logf("graded in %.1f s of real time\n%s", rep.Seconds, text(rep))
	checkJUnit(t, rep)
}
