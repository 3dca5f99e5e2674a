package main

import (
	"context"
	"log/slog"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/hubkit/hubkit/internal/mqttraw"
	"github.com/hubkit/hubkit/pkg/fakehub"
	"github.com/hubkit/hubkit/pkg/fakehub/fakehubtest"
	"github.com/hubkit/hubkit/pkg/sas"
)

// A few messages are logged one by one; a flood is logged at
// telemetryLogRate lines a second and the rest counted in a summary: every
// message is either logged or counted, once.
func TestLogTelemetryBoundsTheLinesPerSecond(t *testing.T) {
	for _, tc := range []struct {
		name string
		n    int
	}{{"trickle", 3}, {"flood", 400}} {
		t.Run(tc.name, func(t *testing.T) {
			hub := fakehubtest.Start(t, fakehub.Options{})
			key := []byte("fakehub-telemetry-log-test-key-0")
			if _, err := hub.AddDevice("dev1", key); err != nil {
				t.Fatal(err)
			}
			var logs syncBuffer
			ctx, cancel := context.WithCancel(context.Background())
			done := make(chan struct{})
			go func() {
				defer close(done)
				logTelemetry(ctx, hub.Server, slog.New(slog.NewTextHandler(&logs, nil)))
			}()
			cctx, ccancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer ccancel()
			ack, c, err := mqttraw.ConnectAndWait(cctx, hub.Addr(), hub.ClientTLS(), mqttraw.ConnectPacket{
				ClientID: "dev1", UserName: mqttraw.String("localhost/dev1/?api-version=2021-04-12"), CleanSession: true,
				Password: mqttraw.String(sas.Sign(sas.EncodeResource("localhost/devices/dev1"), "", key, time.Now().Add(time.Hour)).String()),
			})
			if err != nil || ack.ReturnCode != 0 {
				t.Fatalf("connect: %v, CONNACK %d", err, ack.ReturnCode)
			}
			defer c.Close()
			for i := range tc.n {
				if err := c.Publish(mqttraw.PublishPacket{Topic: "devices/dev1/messages/events/n=" + strconv.Itoa(i), Payload: []byte("x")}); err != nil {
					t.Fatal(err)
				}
			}
			deadline := time.Now().Add(10 * time.Second)
			for len(hub.TelemetrySince(1).All()) < tc.n {
				if time.Now().After(deadline) {
					t.Fatalf("the hub captured %d of %d messages", len(hub.TelemetrySince(1).All()), tc.n)
				}
				time.Sleep(10 * time.Millisecond)
			}
			if tc.n < telemetryLogRate {
				for strings.Count(logs.String(), "msg=telemetry ") < tc.n && time.Now().Before(deadline) {
					time.Sleep(10 * time.Millisecond)
				}
			}
			start := time.Now()
			cancel()
			<-done
			out := logs.String()
			lines := strings.Count(out, "msg=telemetry ")
			counted := 0
			for _, m := range regexp.MustCompile(`msg="telemetry not logged one by one" messages=(\d+)`).FindAllStringSubmatch(out, -1) {
				n, _ := strconv.Atoi(m[1])
				counted += n
			}
			if lines+counted != tc.n {
				t.Errorf("%d messages logged and %d counted, want %d in all:\n%s", lines, counted, tc.n, out)
			}
			if tc.n < telemetryLogRate && (lines != tc.n || counted != 0) {
				t.Errorf("%d of %d messages logged one by one, want all", lines, tc.n)
			}
			if limit := telemetryLogRate * (2 + int(time.Since(start).Seconds())); lines > limit {
				t.Errorf("%d lines for a flood of %d, want at most about %d", lines, tc.n, limit)
			}
		})
	}
}
