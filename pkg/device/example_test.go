package device_test

import (
	"context"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"log"
	"time"

	"github.com/hubkit/hubkit/internal/certs"
	"github.com/hubkit/hubkit/pkg/device"
	"github.com/hubkit/hubkit/pkg/fakehub"
	"github.com/hubkit/hubkit/pkg/iothub"
)

// exampleHub starts an in-process fake IoT Hub (pkg/fakehub, TLS on a loopback port,
// a fresh CA) with one device, dev1, and returns it with dev1's connection string and
// the CA pool to trust. With the real hub, the connection string comes from the portal
// (or az iot hub device-identity connection-string show) and the system roots are
// trusted: no WithEndpoint, no WithRootCAs.
func exampleHub() (hub *fakehub.Server, connectionString string, roots *x509.CertPool) {
	now := time.Now()
	ca, err := certs.NewCA("example CA", time.Hour, now, nil)
	if err != nil {
		log.Fatal(err)
	}
	tlsConfig, err := ca.ServerTLS([]string{"localhost"}, time.Hour, now)
	if err != nil {
		log.Fatal(err)
	}
	hub, err = fakehub.NewServer(fakehub.Options{TLS: tlsConfig, Addr: "127.0.0.1:0"})
	if err != nil {
		log.Fatal(err)
	}
	key := []byte("an example key of 32 bytes......")
	if _, err := hub.AddDevice("dev1", key); err != nil {
		log.Fatal(err)
	}
	return hub, "HostName=localhost;DeviceId=dev1;SharedAccessKey=" + base64.StdEncoding.EncodeToString(key), ca.Pool()
}

// exampleDevice is exampleHub plus dev1's client, not connected yet (as
// ExampleFromConnectionString makes it).
func exampleDevice() (*fakehub.Server, *device.Client) {
	hub, connectionString, roots := exampleHub()
	c, err := device.FromConnectionString(connectionString, device.WithEndpoint(hub.Addr()), device.WithRootCAs(roots))
	if err != nil {
		log.Fatal(err)
	}
	return hub, c
}

// Connect with a device connection string and send one telemetry message. SendEvent
// returns once the hub has acknowledged it (QoS 1).
func ExampleFromConnectionString() {
	hub, connectionString, roots := exampleHub()
	defer hub.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	c, err := device.FromConnectionString(connectionString,
		device.WithEndpoint(hub.Addr()), // dial address, when it differs from HostName
		device.WithRootCAs(roots),       // trust the fake hub's CA instead of the system roots
	)
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close(context.Background())

	if err := c.Connect(ctx); err != nil {
		log.Fatal(err) // errors.Is(err, device.ErrNotAuthorized) for a refused SAS token
	}
	received := hub.Telemetry() // what the hub captures from now on
	if err := c.SendEvent(ctx, device.Event{Payload: []byte(`{"temperature":21.5}`)}); err != nil {
		log.Fatal(err)
	}

	m, err := received.Next(ctx)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("the hub received from %s: %s\n", m.DeviceID, m.Payload)
	// Output:
	// the hub received from dev1: {"temperature":21.5}
}

// Telemetry with system and application properties: the hub sees them in the topic's
// property bag.
func ExampleClient_SendEvent() {
	hub, c := exampleDevice()
	defer hub.Close()
	defer c.Close(context.Background())
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := c.Connect(ctx); err != nil {
		log.Fatal(err)
	}
	received := hub.Telemetry()

	err := c.SendEvent(ctx, device.Event{
		Payload:         []byte(`{"temperature":21.5}`),
		MessageID:       "msg-0001",
		ContentType:     "application/json",
		ContentEncoding: "utf-8",
		Properties:      iothub.Properties{{Key: "alert", Value: "false"}},
	})
	if err != nil {
		log.Fatal(err)
	}

	m, err := received.Next(ctx)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("message ID %s, content type %s; %s, alert=%s\n",
		m.SystemProperties["$.mid"], m.SystemProperties["$.ct"], m.SystemProperties["$.ce"], m.Properties["alert"])
	// Output:
	// message ID msg-0001, content type application/json; utf-8, alert=false
}

// Handlers are registered before Connect, which then subscribes to what they need; the
// cloud side (here the fake hub's Go API) invokes a method, sends a C2D message and
// changes a desired property.
func ExampleClient_OnMethod() {
	hub, c := exampleDevice()
	defer hub.Close()
	defer c.Close(context.Background())
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	c.OnMethod("reboot", func(ctx context.Context, payload []byte) (int, any, error) {
		return 200, map[string]string{"status": "rebooting"}, nil
	})
	c.OnC2D(func(ctx context.Context, m device.C2DMessage) {
		fmt.Printf("C2D %s: %s\n", m.MessageID, m.Payload) // acknowledged when this returns
	})
	desired := make(chan struct{})
	c.OnDesired(func(ctx context.Context, patch json.RawMessage, version int64) {
		var p struct {
			Interval int `json:"interval"`
		}
		_ = json.Unmarshal(patch, &p)
		fmt.Printf("desired v%d: interval %d\n", version, p.Interval)
		close(desired)
	})
	if err := c.Connect(ctx); err != nil {
		log.Fatal(err)
	}

	res, err := hub.InvokeMethod(ctx, "dev1", "reboot", []byte(`{"delay":5}`), 10*time.Second)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("method answered %d %s\n", res.Status, res.Payload)

	id, err := hub.SendC2D(ctx, "dev1", iothub.C2DMessage{MessageID: "c2d-1", Payload: []byte(`{"led":"on"}`)})
	if err != nil {
		log.Fatal(err)
	}
	if _, err := hub.WaitC2DState(ctx, id, nil); err != nil { // completed: the device acknowledged it
		log.Fatal(err)
	}

	if _, err := hub.UpdateDesired(ctx, iothub.Identity{DeviceID: "dev1"}, []byte(`{"interval":10}`)); err != nil {
		log.Fatal(err)
	}
	<-desired
	// Output:
	// method answered 200 {"status":"rebooting"}
	// C2D c2d-1: {"led":"on"}
	// desired v2: interval 10
}
