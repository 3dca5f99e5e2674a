package main

import (
	"bytes"
	"context"
	"crypto/x509"
	"encoding/base64"
	"fmt"
	"os"
	"os/exec"
	"testing"
	"time"

	"github.com/hubkit/hubkit/internal/testutil"
	"github.com/hubkit/hubkit/pkg/device"
	"github.com/hubkit/hubkit/pkg/fakehub"
	"github.com/hubkit/hubkit/pkg/fakehub/fakehubtest"
	"github.com/hubkit/hubkit/pkg/iothub"
	"github.com/hubkit/hubkit/pkg/sas"
	"github.com/hubkit/hubkit/pkg/serviceclient"
)

// TestMain lets the test binary play a device in another process (see childDevice).
func TestMain(m *testing.M) {
	if os.Getenv("HUBKIT_TEST_CHILD_DEVICE") == "1" {
		os.Exit(childDevice())
	}
	os.Exit(m.Run())
}

// childDevice is a device in its own process whose clock follows the hub's
// (serviceclient.HubClock reads GET /hubkit/clock, as a device would ask a time server):
// pkg/device with a 1 h token, renewing at 85 %. It runs until stdin closes. devicesim
// --hub-clock does the same (cmd/devicesim/testdata/hubclock.txtar).
func childDevice() int {
	pem, err := os.ReadFile(os.Getenv("HUBKIT_TEST_CA"))
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(pem)
	hc, err := serviceclient.NewHubClock(os.Getenv("HUBKIT_TEST_SERVICE_URL"), serviceclient.WithRootCAs(pool))
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	if err := hc.Sync(context.Background()); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	go hc.Follow(context.Background(), 50*time.Millisecond)
	now := hc.Now
	c, err := device.FromConnectionString(os.Getenv("HUBKIT_DEVICE_CONNECTION_STRING"),
		device.WithEndpoint(os.Getenv("HUBKIT_TEST_ENDPOINT")), device.WithRootCAs(pool), device.WithNow(now))
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := c.Connect(ctx); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	_, _ = os.Stdin.Read(make([]byte, 1)) // until the parent closes stdin
	_ = c.Close(context.Background())
	return 0
}

// TestRenewalOutOfProcess: a device in another process, a 1 h token, and `fakehub clock
// advance 55m` from the CLI: the device renews (reconnects with a fresh token) in seconds,
// before the hub would have had to cut it.
func TestRenewalOutOfProcess(t *testing.T) {
	hub := fakehubtest.Start(t, fakehub.Options{ServiceAddr: "127.0.0.1:0"})
	key := []byte("0123456789abcdef0123456789abcdef")
	if _, err := hub.AddDevice("far", key); err != nil {
		t.Fatal(err)
	}
	child := exec.Command(os.Args[0], "-test.run=^$")
	child.Env = append(os.Environ(), "HUBKIT_TEST_CHILD_DEVICE=1", "HUBKIT_TEST_CA="+hub.CAFile,
		"HUBKIT_TEST_SERVICE_URL="+hub.ServiceURL(), "HUBKIT_TEST_ENDPOINT="+hub.Addr(),
		"HUBKIT_DEVICE_CONNECTION_STRING=HostName="+hub.HostName()+";DeviceId=far;SharedAccessKey="+base64.StdEncoding.EncodeToString(key))
	stdin, err := child.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr bytes.Buffer
	child.Stderr = &stderr
	if err := child.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = stdin.Close()
		done := make(chan error, 1)
		go func() { done <- child.Wait() }()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			_ = child.Process.Kill()
		}
	})
	id := iothub.Identity{DeviceID: "far"}
	if !testutil.Poll(20*time.Second, func() bool { return hub.Connected(id) }) {
		t.Fatalf("the child device never connected: %s", stderr.String())
	}
	first := hub.Sessions()[0].TokenExpiry

	var out, errOut bytes.Buffer
	code := run(context.Background(), []string{"clock", "advance", "55m", "--hub-url", hub.ServiceURL(), "--ca", hub.CAFile,
		"-c", hub.ServiceConnectionString()}, nil, &out, &errOut, func(string) string { return "" })
	if code != 0 {
		t.Fatalf("fakehub clock advance 55m: exit %d: %s", code, errOut.String())
	}
	testutil.Eventually(t, "the device renewing its token", func() bool {
		s := hub.Sessions()
		return len(s) == 1 && s[0].TokenExpiry.After(first.Add(50*time.Minute))
	})
	for _, r := range hub.Rejections() {
		if r.Reason == sas.ReasonExpired {
			t.Errorf("the hub had to cut the device: %+v", r)
		}
	}
}
