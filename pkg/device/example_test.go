package device_test

import (
	"context"
	"encoding/json"
	"fmt"
	"log"
	"time"

	"github.com/hubkit/hubkit/pkg/device"
	"github.com/hubkit/hubkit/pkg/iothub"
)

// Connect with a device connection string (here to a local fake hub whose CA is in pool) and
// send one telemetry message. SendEvent returns once the hub has acknowledged it (QoS 1).
func ExampleFromConnectionString() {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	c, err := device.FromConnectionString(
		"HostName=localhost;DeviceId=dev1;SharedAccessKey=AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=",
		device.WithEndpoint("127.0.0.1:8883"), // dial address, when it differs from HostName
		// device.WithRootCAs(pool),           // trust the fake hub's CA instead of the system roots
	)
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close(context.Background())

	if err := c.Connect(ctx); err != nil {
		log.Fatal(err) // errors.Is(err, device.ErrNotAuthorized) for a refused SAS token
	}
	if err := c.SendEvent(ctx, device.Event{Payload: []byte(`{"temperature":21.5}`)}); err != nil {
		log.Fatal(err)
	}
}

// Telemetry with system and application properties.
func ExampleClient_SendEvent() {
	var c *device.Client // from FromConnectionString or New, connected
	ctx := context.Background()

	err := c.SendEvent(ctx, device.Event{
		Payload:         []byte(`{"temperature":21.5}`),
		MessageID:       "msg-0001",
		ContentType:     "application/json",
		ContentEncoding: "utf-8",
		CreationTime:    time.Now(),
		Properties:      iothub.Properties{{Key: "alert", Value: "false"}},
	})
	if err != nil {
		log.Fatal(err)
	}
}

// Handlers are registered before Connect, which then subscribes to what they need.
func ExampleClient_OnMethod() {
	var c *device.Client // from FromConnectionString or New, not yet connected

	c.OnMethod("reboot", func(ctx context.Context, payload []byte) (int, any, error) {
		return 200, map[string]string{"status": "rebooting"}, nil
	})
	c.OnC2D(func(ctx context.Context, m device.C2DMessage) {
		fmt.Printf("C2D %s: %s\n", m.MessageID, m.Payload) // acknowledged when this returns
	})
	c.OnDesired(func(ctx context.Context, patch json.RawMessage, version int64) {
		fmt.Printf("desired v%d: %s\n", version, patch)
	})
	if err := c.Connect(context.Background()); err != nil {
		log.Fatal(err)
	}
}
