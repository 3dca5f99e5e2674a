package fakehub_test

import (
	"bytes"
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/hubkit/hubkit/internal/certs"
	"github.com/hubkit/hubkit/internal/mqttraw"
	"github.com/hubkit/hubkit/internal/testutil"
	"github.com/hubkit/hubkit/pkg/fakehub"
	"github.com/hubkit/hubkit/pkg/fakehub/fakehubtest"
	"github.com/hubkit/hubkit/pkg/sas"
)

func TestNewServerOptions(t *testing.T) {
	if _, err := fakehub.NewServer(fakehub.Options{}); err == nil || !strings.Contains(err.Error(), "TLS is required") {
		t.Errorf("NewServer without TLS: %v", err)
	}
	s, err := fakehub.NewServer(fakehub.Options{InsecureAddr: "127.0.0.1:0"})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if s.Addr() != s.InsecureAddr() || s.HostName() != "localhost" {
		t.Errorf("Addr %q InsecureAddr %q HostName %q", s.Addr(), s.InsecureAddr(), s.HostName())
	}
	if _, err := s.AddDevice("dev1", keyDev1A); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	ack, c, err := mqttraw.ConnectAndWait(ctx, s.Addr(), nil, goodConnect(dev1, keyDev1A))
	if err != nil || ack.ReturnCode != 0 {
		t.Fatalf("plaintext connect: %v %+v", err, ack)
	}
	c.Close()
}

func TestServiceAPIWithoutTLSNeedsConsent(t *testing.T) {
	_, err := fakehub.NewServer(fakehub.Options{InsecureAddr: "127.0.0.1:0", ServiceAddr: "127.0.0.1:0"})
	if err == nil || !strings.Contains(err.Error(), "InsecureService") {
		t.Fatalf("NewServer(ServiceAddr without TLS) = %v, want a refusal naming InsecureService", err)
	}
	s, err := fakehub.NewServer(fakehub.Options{InsecureAddr: "127.0.0.1:0", ServiceAddr: "127.0.0.1:0", InsecureService: true})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if u := s.ServiceURL(); !strings.HasPrefix(u, "http://") {
		t.Errorf("ServiceURL %q, want http://", u)
	}
}

func TestCloseIsIdempotentAndPrompt(t *testing.T) {
	h := startHub(t, fakehub.Options{})
	rawSession(t, h, goodConnect(dev1, keyDev1A))
	idle, err := net.Dial("tcp", h.Addr()) // never handshakes
	if err != nil {
		t.Fatal(err)
	}
	defer idle.Close()
	start := time.Now()
	if err := h.Close(); err != nil {
		t.Fatal(err)
	}
	if err := h.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	if d := time.Since(start); d > 3*time.Second {
		t.Errorf("Close took %v with an idle socket open", d)
	}
	if _, err := net.DialTimeout("tcp", h.Addr(), time.Second); err == nil {
		t.Error("still accepting after Close")
	}
}

func TestTCPWithoutTLSHandshakeTimesOut(t *testing.T) {
	h := startHub(t, fakehub.Options{ConnectTimeout: 200 * time.Millisecond})
	c, err := net.Dial("tcp", h.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
	if n, err := c.Read(make([]byte, 1)); err == nil {
		t.Fatalf("read %d bytes, want the hub to close", n)
	}
	waitRejection(t, h, 0, fakehub.ReasonConnectTimeout)
}

func TestPacketOverMochiLimit(t *testing.T) {
	h := startHub(t, fakehub.Options{})
	c := rawSession(t, h, goodConnect(dev1, keyDev1A))
	// The hub closes after the fixed header: the write itself may fail.
	_ = c.Publish(mqttraw.PublishPacket{Topic: "devices/dev1/messages/events/", Payload: bytes.Repeat([]byte("x"), 400*1024)})
	expectClosedSilently(t, c)
	waitRejection(t, h, 0, fakehub.ReasonMessageTooLarge)
}

func TestWillOnHubCloseQuirk(t *testing.T) {
	clock := testutil.NewClock(time.Now())
	h := startHub(t, fakehub.Options{Now: clock.Now, Quirks: fakehub.Quirks{WillOnHubClose: true}})
	st := h.Telemetry()
	p := goodConnect(dev1, keyDev1A)
	p.Password = mqttraw.String(token("localhost/devices/dev1", "", keyDev1A, clock.Now().Add(time.Minute)))
	p.Will = &mqttraw.Will{Topic: "devices/dev1/messages/events/", Payload: []byte("expired")}
	c := rawSession(t, h, p)
	clock.Advance(time.Hour)
	h.CheckTokens()
	expectClosedSilently(t, c)
	if m := nextMessage(t, st); string(m.Payload) != "expired" || m.Properties["iothub-MessageType"] != "Will" {
		t.Errorf("will %+v", m)
	}
	waitRejection(t, h, 0, sas.ReasonExpired)
}

func ExampleNewServer() {
	// A plaintext hub for the example; tests use TLS (see fakehubtest.Start).
	s, err := fakehub.NewServer(fakehub.Options{HostName: "myhub.azure-devices.net", InsecureAddr: "127.0.0.1:0"})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer s.Close()
	d, _ := s.AddDevice("thermostat", bytes.Repeat([]byte{1}, 32))
	fmt.Println(s.HostName(), d.DeviceID, d.Status, d.Authentication.SymmetricKey.PrimaryKey)
	// Devices connect to s.Addr(); then:
	//   m, err := s.Telemetry().Next(ctx)      // the next telemetry message
	//   r, err := s.WaitRejection(ctx, nil)    // why a connection was refused
	// Output: myhub.azure-devices.net thermostat enabled AQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQE=
}

func FuzzLoadRegistry(f *testing.F) {
	f.Add(azDeviceList)
	f.Add("hostname: h\ndevices:\n- deviceId: d\n  modules: [{moduleId: m}]\npolicies:\n- keyName: p\n  rights: DeviceConnect\n")
	f.Add("[]")
	f.Fuzz(func(t *testing.T, file string) {
		r, err := fakehub.LoadRegistry(strings.NewReader(file), bytes.NewReader(bytes.Repeat([]byte{3}, 1<<16)))
		if err != nil {
			return
		}
		for _, d := range r.Registry.Devices() {
			if _, err := sas.DecodeKey(d.Authentication.SymmetricKey.PrimaryKey); err != nil {
				t.Errorf("device %q has an undecodable key: %v", d.DeviceID, err)
			}
		}
	})
}

func TestTLSBelow12Refused(t *testing.T) {
	ca, err := certs.NewCA("test CA", time.Hour, time.Now(), nil)
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := ca.ServerTLS([]string{"localhost", "127.0.0.1"}, time.Hour, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	cfg.MinVersion = tls.VersionTLS10 // asks for less than IoT Hub's 1.2: still 1.2
	h := fakehubtest.Start(t, fakehub.Options{TLS: cfg, ServiceAddr: "127.0.0.1:0"})
	old := &tls.Config{InsecureSkipVerify: true, MinVersion: tls.VersionTLS10, MaxVersion: tls.VersionTLS11} //nolint:gosec // the point of the test
	for _, addr := range []string{h.Addr(), h.ServiceAddr()} {
		if c, err := tls.Dial("tcp", addr, old); err == nil {
			c.Close()
			t.Errorf("TLS 1.1 handshake with %s succeeded", addr)
		}
	}
	modern := &tls.Config{InsecureSkipVerify: true, MinVersion: tls.VersionTLS12} //nolint:gosec // handshake only
	c, err := tls.Dial("tcp", h.ServiceAddr(), modern)
	if err != nil {
		t.Fatalf("TLS 1.2+ handshake: %v", err)
	}
	c.Close()
}

// TestFailedNewServerFreesItsPorts: when NewServer fails after it has opened listeners,
// it closes them: their ports can be bound again at once (a test that retries on a fixed
// port, or fakehub started twice by a script, must not find them held).
func TestFailedNewServerFreesItsPorts(t *testing.T) {
	ca, err := certs.NewCA("test CA", time.Hour, time.Now(), nil)
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := ca.ServerTLS([]string{"localhost", "127.0.0.1"}, time.Hour, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	busy, err := net.Listen("tcp", "127.0.0.1:0") // held for the whole test
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	// freeAddr returns a loopback address nobody listens on right now.
	freeAddr := func() string {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer l.Close()
		return l.Addr().String()
	}
	assertFree := func(what, addr string) {
		t.Helper()
		l, err := net.Listen("tcp", addr)
		if err != nil {
			t.Errorf("after the failed NewServer, %s %s is still held: %v", what, addr, err)
			return
		}
		l.Close()
	}
	t.Run("plaintext-listener-fails", func(t *testing.T) {
		addr := freeAddr()
		_, err := fakehub.NewServer(fakehub.Options{TLS: cfg, Addr: addr, InsecureAddr: busy.Addr().String()})
		if err == nil || !strings.Contains(err.Error(), "listen "+busy.Addr().String()) {
			t.Fatalf("NewServer(InsecureAddr busy) = %v, want the listen error", err)
		}
		assertFree("the TLS listener", addr)
	})
	t.Run("service-listener-fails", func(t *testing.T) {
		addr, plain := freeAddr(), freeAddr()
		_, err := fakehub.NewServer(fakehub.Options{TLS: cfg, Addr: addr, InsecureAddr: plain, ServiceAddr: busy.Addr().String()})
		if err == nil || !strings.Contains(err.Error(), "service API: listen") {
			t.Fatalf("NewServer(ServiceAddr busy) = %v, want the service listen error", err)
		}
		assertFree("the TLS listener", addr)
		assertFree("the plaintext listener", plain)
	})
}
