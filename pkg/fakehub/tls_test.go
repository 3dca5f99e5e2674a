package fakehub_test

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"strings"
	"testing"
	"time"

	"github.com/hubkit/hubkit/internal/mqttraw"
	"github.com/hubkit/hubkit/pkg/fakehub"
	"github.com/hubkit/hubkit/pkg/fakehub/fakehubtest"
	"github.com/hubkit/hubkit/pkg/iothub"
)

const (
	classicHost = "tls-test.azure-devices.net"
	deviceHost  = "tls-test.device.azure-devices.net"
)

// negotiated dials addr with SNI serverName and returns the TLS version agreed.
func negotiated(t *testing.T, addr, serverName string, roots *x509.CertPool, maxVersion uint16) uint16 {
	t.Helper()
	c, err := tls.Dial("tcp", addr, &tls.Config{RootCAs: roots, ServerName: serverName, MinVersion: tls.VersionTLS12, MaxVersion: maxVersion})
	if err != nil {
		t.Fatalf("TLS to %s as %s: %v", addr, serverName, err)
	}
	defer c.Close()
	return c.ConnectionState().Version
}

// TestTLSVersionsByHostName: TLS 1.3 only for clients naming the device host name; the
// classic name (and an IP) gets TLS 1.2, unless ClassicTLSMaxVersion says otherwise; both
// listeners apply the same rule.
func TestTLSVersionsByHostName(t *testing.T) {
	t.Parallel()
	h := fakehubtest.Start(t, fakehub.Options{HostName: classicHost, DeviceHostName: deviceHost})
	for _, addr := range []string{h.Addr(), h.WebSocketAddr()} {
		if v := negotiated(t, addr, classicHost, h.CAPool, 0); v != tls.VersionTLS12 {
			t.Errorf("%s classic name: %s, want TLS 1.2", addr, tls.VersionName(v))
		}
		if v := negotiated(t, addr, "127.0.0.1", h.CAPool, 0); v != tls.VersionTLS12 {
			t.Errorf("%s by IP: %s, want TLS 1.2", addr, tls.VersionName(v))
		}
		if v := negotiated(t, addr, strings.ToUpper(deviceHost), h.CAPool, 0); v != tls.VersionTLS13 {
			t.Errorf("%s device host name: %s, want TLS 1.3", addr, tls.VersionName(v))
		}
		if v := negotiated(t, addr, deviceHost, h.CAPool, tls.VersionTLS12); v != tls.VersionTLS12 {
			t.Errorf("%s device host name, client capped at 1.2: %s", addr, tls.VersionName(v))
		}
	}
	h13 := fakehubtest.Start(t, fakehub.Options{HostName: classicHost, ClassicTLSMaxVersion: tls.VersionTLS13})
	if v := negotiated(t, h13.Addr(), classicHost, h13.CAPool, 0); v != tls.VersionTLS13 {
		t.Errorf("ClassicTLSMaxVersion 1.3: %s, want TLS 1.3", tls.VersionName(v))
	}
}

// TestDeviceHostNameInCredentials: the device host name is accepted like the classic one in
// the user name and in the token's sr (docs/iothub-behavior.md §1.26, §11.14).
func TestDeviceHostNameInCredentials(t *testing.T) {
	t.Parallel()
	h := fakehubtest.Start(t, fakehub.Options{HostName: classicHost, DeviceHostName: deviceHost})
	key := keyDev1A
	if _, err := h.AddDevice("dev1", key); err != nil {
		t.Fatal(err)
	}
	cfg := h.ClientTLS()
	cfg.ServerName = deviceHost
	for _, tc := range []struct{ user, sr string }{
		{deviceHost, deviceHost}, {deviceHost, classicHost}, {classicHost, deviceHost},
	} {
		p := mqttraw.ConnectPacket{ClientID: "dev1", UserName: mqttraw.String(userName(tc.user, dev1)),
			Password: mqttraw.String(deviceToken(tc.sr, dev1, key)), CleanSession: true, KeepAlive: 60}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		ack, c, err := mqttraw.ConnectAndWait(ctx, h.Addr(), cfg, p)
		cancel()
		if err != nil || ack.ReturnCode != 0 {
			t.Errorf("user name host %s, sr host %s: CONNACK %d, %v (%+v)", tc.user, tc.sr, ack.ReturnCode, err, h.Rejections())
		}
		if c != nil {
			c.Close()
		}
	}
}

// TestTLSHandshakeRejection: a device that refuses the hub's certificate leaves a
// rejection saying so.
func TestTLSHandshakeRejection(t *testing.T) {
	t.Parallel()
	h := fakehubtest.Start(t, fakehub.Options{})
	since := len(h.Rejections())
	if c, err := tls.Dial("tcp", h.Addr(), &tls.Config{RootCAs: x509.NewCertPool(), ServerName: "localhost"}); err == nil {
		c.Close()
		t.Fatal("handshake succeeded without trusting the CA")
	}
	r := waitRejection(t, h, since, fakehub.ReasonTLSHandshake)
	if !strings.Contains(r.Detail, "certificate") || len(r.Hints) == 0 {
		t.Errorf("rejection %+v, want the alert and a hint", r)
	}
	_ = iothub.DefaultAPIVersion
}
