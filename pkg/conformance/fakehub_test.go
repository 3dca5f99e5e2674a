package conformance_test

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"flag"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hubkit/hubkit/internal/certs"
	"github.com/hubkit/hubkit/pkg/conformance"
	"github.com/hubkit/hubkit/pkg/device"
	"github.com/hubkit/hubkit/pkg/fakehub"
	"github.com/hubkit/hubkit/pkg/fakehub/fakehubtest"
	"github.com/hubkit/hubkit/pkg/iothub"
)

// fakeTarget runs the suite against an in-process fakehub and offers every
// capability fakehub has today.
type fakeTarget struct {
	hub   *fakehubtest.Hub
	n     atomic.Int64
	grace time.Duration
	ws    bool // devices connect over MQTT over WebSockets

	mu      sync.Mutex
	streams map[string]*fakehub.Stream
}

// The host name is a real-looking hub name: clients dial 127.0.0.1 and
// verify the certificate for this name, as they would for Azure.
const fakeHostName = "conformance.azure-devices.net"

// fakeExpiryGrace is the in-process hub's clock-skew allowance and delay
// before dropping a connection whose token expired (IoT Hub's is 5 min; a
// short one lets connect/sas/expiry-disconnects run in seconds).
const fakeExpiryGrace = 500 * time.Millisecond

// TokenExpiryGrace says how soon fakehub drops an expired connection.
func (f *fakeTarget) TokenExpiryGrace() time.Duration { return f.grace }

var hubLog = flag.Bool("hublog", false, "log what the in-process fakehub does (with -v)")

func newFakeTarget(t testing.TB) *fakeTarget {
	opts := fakehub.Options{HostName: fakeHostName, TokenExpiryGrace: fakeExpiryGrace, DPS: &fakehub.DPSOptions{RetryAfter: time.Second}}
	if !*hubLog {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	return startFakeTarget(t, opts)
}

func startFakeTarget(t testing.TB, opts fakehub.Options) *fakeTarget {
	hub := fakehubtest.Start(t, opts)
	grace := opts.TokenExpiryGrace
	if grace == 0 {
		grace = 5 * time.Minute // fakehub's default, sas.DefaultSkew
	}
	return &fakeTarget{hub: hub, grace: max(grace, 0), streams: map[string]*fakehub.Stream{}}
}

func (f *fakeTarget) Endpoint() conformance.Endpoint {
	if f.ws {
		return conformance.Endpoint{Addr: f.hub.WebSocketAddr(), HostName: f.hub.HostName(), TLS: f.hub.ClientTLS(), Transport: device.TransportWebSocket}
	}
	return conformance.Endpoint{Addr: f.hub.Addr(), HostName: f.hub.HostName(), TLS: f.hub.ClientTLS()}
}

// NewSelfSignedDevice registers a selfSigned device for cert (its SHA-256 thumbprint).
func (f *fakeTarget) NewSelfSignedDevice(t testing.TB, cert *x509.Certificate) conformance.DeviceIdentity {
	t.Helper()
	id := fmt.Sprintf("conf-x509-%03d", f.n.Add(1))
	_, s256 := iothub.Thumbprints(cert.Raw)
	if _, err := f.hub.Registry().Add(iothub.Device{DeviceID: id, Authentication: iothub.X509Auth(s256, "")}); err != nil {
		t.Fatalf("fakehub: adding %s: %v", id, err)
	}
	return conformance.DeviceIdentity{DeviceID: id}
}

// NewCADevice registers a certificateAuthority device; certificates come from the hub's
// registered (verified) test device CA.
func (f *fakeTarget) NewCADevice(t testing.TB) (conformance.DeviceIdentity, func(cn string) tls.Certificate) {
	t.Helper()
	id := fmt.Sprintf("conf-ca-%03d", f.n.Add(1))
	f.hub.AddCADevice(iothub.Identity{DeviceID: id})
	return conformance.DeviceIdentity{DeviceID: id}, func(cn string) tls.Certificate { return f.hub.DeviceCertificate(cn).TLS }
}

// drillCAs are the CAs of the TLS drills, shared by every case of the test binary. The
// shaped roots have RSA 4096 keys, which take seconds on a loaded machine: they are all
// made here, before the suite's cases (and their deadlines) start.
var drillCAs = sync.OnceValues(func() (*certs.CA, certs.CAStore) {
	now := time.Now()
	ca, err := certs.NewCA("conformance drill hub CA", 24*time.Hour, now, nil)
	if err != nil {
		panic(err)
	}
	store := certs.MemoryStore(now)
	for _, d := range certs.Drills {
		if _, err := certs.NewDrill(d.Name, []string{fakeHostName}, ca, store, now); err != nil {
			panic(err)
		}
	}
	return ca, store
})

// TLSDrill starts a hub of its own behind the drill's certificates.
func (f *fakeTarget) TLSDrill(t testing.TB, name string) (conformance.Endpoint, conformance.DeviceIdentity, *x509.Certificate, bool) {
	t.Helper()
	ca, store := drillCAs()
	d, err := certs.NewDrill(name, []string{fakeHostName, "localhost", "127.0.0.1", "::1"}, ca, store, time.Now())
	if err != nil {
		return conformance.Endpoint{}, conformance.DeviceIdentity{}, nil, false
	}
	hub := fakehubtest.Start(t, fakehub.Options{HostName: fakeHostName, TLS: d.ServerTLS(), Logger: slog.New(slog.DiscardHandler)})
	dev, err := hub.Registry().Add(iothub.Device{DeviceID: "drill-dev"})
	if err != nil {
		t.Fatal(err)
	}
	ep := conformance.Endpoint{Addr: hub.Addr(), HostName: fakeHostName, TLS: &tls.Config{RootCAs: d.TrustPool(), ServerName: fakeHostName, MinVersion: tls.VersionTLS12}}
	if f.ws {
		ep.Addr, ep.Transport = hub.WebSocketAddr(), device.TransportWebSocket
	}
	var old *x509.Certificate
	if name == certs.DrillRootChange {
		old = d.Roots[0]
	}
	return ep, conformance.DeviceIdentity{DeviceID: dev.DeviceID, PrimaryKey: dev.Authentication.SymmetricKey.PrimaryKey}, old, true
}

func (f *fakeTarget) NewDevice(t testing.TB) conformance.DeviceIdentity {
	return f.NewDeviceWithID(t, fmt.Sprintf("conf-dev-%03d", f.n.Add(1)))
}

func (f *fakeTarget) NewDeviceWithID(t testing.TB, id string) conformance.DeviceIdentity {
	t.Helper()
	d, err := f.hub.Registry().Add(iothub.Device{DeviceID: id})
	if err != nil {
		t.Fatalf("fakehub: adding device %q: %v", id, err)
	}
	return conformance.DeviceIdentity{DeviceID: d.DeviceID, PrimaryKey: d.Authentication.SymmetricKey.PrimaryKey, SecondaryKey: d.Authentication.SymmetricKey.SecondaryKey}
}

func (f *fakeTarget) NewModule(t testing.TB) (conformance.DeviceIdentity, conformance.DeviceIdentity) {
	t.Helper()
	dev := f.NewDevice(t)
	m, err := f.hub.Registry().Add(iothub.Device{DeviceID: dev.DeviceID, ModuleID: "mod1"})
	if err != nil {
		t.Fatalf("fakehub: adding module: %v", err)
	}
	return dev, conformance.DeviceIdentity{DeviceID: dev.DeviceID, ModuleID: m.ModuleID, PrimaryKey: m.Authentication.SymmetricKey.PrimaryKey, SecondaryKey: m.Authentication.SymmetricKey.SecondaryKey}
}

func (f *fakeTarget) NewDisabledDevice(t testing.TB) conformance.DeviceIdentity {
	t.Helper()
	d := f.NewDevice(t)
	if err := f.hub.Registry().SetStatus(d.DeviceID, iothub.StatusDisabled); err != nil {
		t.Fatalf("fakehub: disabling %s: %v", d.DeviceID, err)
	}
	return d
}

func (f *fakeTarget) Policy(t testing.TB, deviceConnect bool) (conformance.Policy, bool) {
	name := "registryRead"
	if deviceConnect {
		name = "device"
	}
	p, ok := f.hub.Registry().Policy(name)
	if !ok {
		return conformance.Policy{}, false
	}
	return conformance.Policy{Name: p.KeyName, Key: p.PrimaryKey}, true
}

func (f *fakeTarget) Rejection(ctx context.Context, clientID string) (iothub.Rejection, error) {
	return f.hub.WaitRejection(ctx, func(r iothub.Rejection) bool { return r.ClientID == clientID })
}

func (f *fakeTarget) NextTelemetry(ctx context.Context, deviceID string) (iothub.Event, error) {
	f.mu.Lock()
	st, ok := f.streams[deviceID]
	if !ok {
		st = f.hub.TelemetrySince(0).ForDevice(deviceID, "")
		f.streams[deviceID] = st
	}
	f.mu.Unlock()
	return st.Next(ctx)
}

func (f *fakeTarget) SendC2D(ctx context.Context, deviceID string, m iothub.C2DMessage) error {
	_, err := f.hub.SendC2D(ctx, deviceID, m)
	return err
}

func (f *fakeTarget) InvokeMethod(ctx context.Context, deviceID, name string, payload []byte, timeout time.Duration) (int, []byte, error) {
	res, err := f.hub.InvokeMethod(ctx, deviceID, name, payload, timeout)
	return res.Status, res.Payload, err
}

func (f *fakeTarget) UpdateDesired(ctx context.Context, deviceID string, patch []byte) error {
	_, err := f.hub.UpdateDesired(ctx, iothub.Identity{DeviceID: deviceID}, patch)
	return err
}

// TestConformance runs the whole suite against an in-process fakehub.
func TestConformance(t *testing.T) {
	t.Parallel()
	drillCAs()
	conformance.Run(t, newFakeTarget(t))
}

// TestConformanceWebSocket runs the whole suite again with every device (the reference
// client and the raw one) on MQTT over WebSockets.
func TestConformanceWebSocket(t *testing.T) {
	t.Parallel()
	drillCAs()
	f := newFakeTarget(t)
	f.ws = true
	conformance.Run(t, f)
}
