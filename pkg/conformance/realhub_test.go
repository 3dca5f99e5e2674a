package conformance_test

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"github.com/hubkit/hubkit/pkg/iothub"
	"log/slog"
	"net"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hubkit/hubkit/pkg/conformance"
	"github.com/hubkit/hubkit/pkg/fakehub"
	"github.com/hubkit/hubkit/pkg/sas"
	"github.com/hubkit/hubkit/pkg/serviceclient"
)

// Real-hub configuration: either a JSON file named by HUBKIT_CONFORMANCE_CONFIG,
// or the two variables below (the file wins). See the package documentation
// of this test file's TestConformanceRealHub.
const (
	envConfig   = "HUBKIT_CONFORMANCE_CONFIG"
	envService  = "HUBKIT_CONFORMANCE_SERVICE"
	envDevices  = "HUBKIT_CONFORMANCE_DEVICES"
	realHubHelp = "set " + envService + " to a service connection string with RegistryWrite and ServiceConnect " +
		"(e.g. the iothubowner policy's), or " + envDevices + " to device connection strings separated by newlines or '|', " +
		"or " + envConfig + " to a JSON file {\"service\":..., \"devices\":[...], \"policies\":{...}}"
)

// realHubConfig is the JSON file's shape.
type realHubConfig struct {
	// Service is a service connection string (HostName, SharedAccessKeyName,
	// SharedAccessKey) of a policy with RegistryWrite and ServiceConnect: cases
	// then get fresh devices (created and deleted per case), modules,
	// disabled devices, twins and direct methods.
	Service string `json:"service"`
	// ServiceURL is the REST endpoint, default https://{HostName}.
	ServiceURL string `json:"serviceUrl"`
	// Devices are device connection strings, used one per case when there
	// is no Service (cases beyond the list skip).
	Devices []string `json:"devices"`
	// KeepDevices leaves the devices the suite created in the hub (to
	// inspect them); by default each is deleted when its case ends.
	KeepDevices bool `json:"keepDevices"`
	// Addr overrides the MQTT address, default {HostName}:8883.
	Addr string `json:"addr"`
	// CAFile is a PEM file of the CA to trust instead of the system roots,
	// for MQTT and the service API (a fakehub started with --ca, an IoT
	// Edge gateway).
	CAFile string `json:"caFile"`
	// HubkitService says the service API is fakehub's, which also takes
	// cloud-to-device messages over HTTPS (IoT Hub takes them over AMQP)
	// and reports captured telemetry and refused connections.
	HubkitService bool `json:"hubkitService"`
	// Policies with and without DeviceConnect, for the policy-token cases,
	// e.g. {"deviceConnect":{"name":"device","key":"..."},
	//       "noDeviceConnect":{"name":"registryRead","key":"..."}}.
	Policies struct {
		DeviceConnect   *conformance.Policy `json:"deviceConnect"`
		NoDeviceConnect *conformance.Policy `json:"noDeviceConnect"`
	} `json:"policies"`
	// DPS, when set, runs the dps/ cases against a Device Provisioning Service linked to the
	// hub: {"idScope":"0ne…","service":"HostName={dps}.azure-devices-provisioning.net;SharedAccessKeyName=provisioningserviceowner;SharedAccessKey=…"}
	// (each case creates its enrollment there and deletes it afterwards). globalEndpoint
	// (default global.azure-devices-provisioning.net), addr and httpsAddr (default its ports
	// 8883 and 443) and serviceUrl (default https://{HostName}) are optional.
	DPS *realDPSConfig `json:"dps"`
}

type realDPSConfig struct {
	IDScope        string `json:"idScope"`
	Service        string `json:"service"`
	ServiceURL     string `json:"serviceUrl"`
	GlobalEndpoint string `json:"globalEndpoint"`
	Addr           string `json:"addr"`
	HTTPSAddr      string `json:"httpsAddr"`
}

func loadRealHubConfig() (realHubConfig, bool, error) {
	var c realHubConfig
	if p := os.Getenv(envConfig); p != "" {
		b, err := os.ReadFile(p)
		if err != nil {
			return c, true, err
		}
		if err := json.Unmarshal(b, &c); err != nil {
			return c, true, fmt.Errorf("%s: %w", p, err)
		}
		return c, true, nil
	}
	c.Service = strings.TrimSpace(os.Getenv(envService))
	c.Devices = splitDevices(os.Getenv(envDevices))
	return c, c.Service != "" || len(c.Devices) > 0, nil
}

// splitDevices splits a list of connection strings on newlines and '|'
// (connection strings contain ';' but never '|').
func splitDevices(s string) []string {
	var out []string
	for _, f := range strings.FieldsFunc(s, func(r rune) bool { return r == '\n' || r == '|' }) {
		if f = strings.TrimSpace(f); f != "" {
			out = append(out, f)
		}
	}
	return out
}

// realHub is a real IoT hub reached with system roots.
type realHub struct {
	ep       conformance.Endpoint
	policies map[bool]*conformance.Policy
	keep     bool // KeepDevices

	dps *realDPS // nil: the dps/ cases skip

	mu      sync.Mutex
	devices []conformance.DeviceIdentity
	used    int
}

func (h *realHub) Endpoint() conformance.Endpoint { return h.ep }

func (h *realHub) NewDevice(t testing.TB) conformance.DeviceIdentity {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.used >= len(h.devices) {
		t.Skipf("all %d devices of %s are used by other cases; list more, or set %s for fresh devices", len(h.devices), envDevices, envService)
	}
	h.used++
	return h.devices[h.used-1]
}

func (h *realHub) Policy(_ testing.TB, deviceConnect bool) (conformance.Policy, bool) {
	p := h.policies[deviceConnect]
	if p == nil {
		return conformance.Policy{}, false
	}
	return *p, true
}

// realHubService adds fresh devices and the service side.
type realHubService struct {
	*realHub
	serviceCaps
}

func (h *realHubService) NewDevice(t testing.TB) conformance.DeviceIdentity {
	return h.NewDeviceWithID(t, "hubkit-conf-"+randomHex(6))
}

func (h *realHubService) NewDeviceWithID(t testing.TB, id string) conformance.DeviceIdentity {
	return h.create(t, iothub.Device{DeviceID: id})
}

func (h *realHubService) NewDisabledDevice(t testing.TB) conformance.DeviceIdentity {
	return h.create(t, iothub.Device{DeviceID: "hubkit-conf-" + randomHex(6), Status: iothub.StatusDisabled})
}

func (h *realHubService) NewModule(t testing.TB) (conformance.DeviceIdentity, conformance.DeviceIdentity) {
	dev := h.NewDevice(t)
	return dev, h.create(t, iothub.Device{DeviceID: dev.DeviceID, ModuleID: "conformance"})
}

func (h *realHubService) create(t testing.TB, d iothub.Device) conformance.DeviceIdentity {
	t.Helper()
	// Keys are made here: a real hub accepts given keys, and whether it
	// generates missing ones from empty strings is not something to rely on.
	d.Authentication.Type = iothub.AuthSAS
	for _, k := range []*string{&d.Authentication.SymmetricKey.PrimaryKey, &d.Authentication.SymmetricKey.SecondaryKey} {
		key, err := sas.NewKey(rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		*k = key
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	got, err := h.svc.CreateDevice(ctx, d)
	if err != nil {
		t.Fatalf("creating %s/%s on the hub: %v", d.DeviceID, d.ModuleID, err)
	}
	if d.ModuleID == "" && !h.keep {
		t.Cleanup(func() {
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			if err := h.svc.DeleteDevice(ctx, d.DeviceID); err != nil {
				t.Logf("deleting test device %s: %v", d.DeviceID, err)
			}
		})
	}
	return conformance.DeviceIdentity{DeviceID: got.DeviceID, ModuleID: got.ModuleID, PrimaryKey: got.Authentication.SymmetricKey.PrimaryKey, SecondaryKey: got.Authentication.SymmetricKey.SecondaryKey}
}

func newRealHub(c realHubConfig) (conformance.Target, error) {
	h := &realHub{policies: map[bool]*conformance.Policy{true: c.Policies.DeviceConnect, false: c.Policies.NoDeviceConnect}, keep: c.KeepDevices}
	var roots *x509.CertPool
	if c.CAFile != "" {
		pem, err := os.ReadFile(c.CAFile)
		if err != nil {
			return nil, err
		}
		roots = x509.NewCertPool()
		if !roots.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("caFile %s: no PEM certificate", c.CAFile)
		}
	}
	for i, s := range c.Devices {
		cs, err := sas.ParseConnectionString(s)
		if err != nil {
			return nil, fmt.Errorf("device connection string #%d: %w", i+1, err)
		}
		if cs.DeviceID == "" || cs.SharedAccessKey == "" || cs.SharedAccessKeyName != "" {
			return nil, fmt.Errorf("device connection string #%d (%s): want HostName, DeviceId and SharedAccessKey", i+1, cs.Redacted())
		}
		h.devices = append(h.devices, conformance.DeviceIdentity{DeviceID: cs.DeviceID, ModuleID: cs.ModuleID, PrimaryKey: cs.SharedAccessKey, ConnectionString: s})
		h.ep.HostName = cs.HostName
	}
	var svc *serviceclient.Client
	if c.Service != "" {
		cs, err := sas.ParseConnectionString(c.Service)
		if err != nil {
			return nil, fmt.Errorf("service connection string: %w", err)
		}
		u := c.ServiceURL
		if u == "" {
			u = "https://" + cs.HostName
		}
		if svc, err = serviceclient.New(c.Service, serviceclient.WithURL(u), serviceclient.WithRootCAs(roots)); err != nil {
			return nil, err
		}
		h.ep.HostName = cs.HostName
		if h.policies[true] == nil && strings.EqualFold(cs.SharedAccessKeyName, "iothubowner") {
			h.policies[true] = &conformance.Policy{Name: cs.SharedAccessKeyName, Key: cs.SharedAccessKey}
		}
	}
	h.ep.Addr = c.Addr
	if h.ep.Addr == "" {
		h.ep.Addr = net.JoinHostPort(h.ep.HostName, "8883")
	}
	h.ep.TLS = &tls.Config{ServerName: h.ep.HostName, MinVersion: tls.VersionTLS12, RootCAs: roots}
	if c.DPS != nil {
		d, err := newRealDPS(*c.DPS, roots)
		if err != nil {
			return nil, err
		}
		h.dps = d
	}
	switch {
	case svc == nil:
		return h, nil
	case c.HubkitService:
		return &hubkitService{realHubService{realHub: h, serviceCaps: serviceCaps{svc: svc}}, c2dCaps{svc: svc},
			&hubkitReaders{svc: svc, read: map[string]int{}}}, nil
	}
	return &realHubService{realHub: h, serviceCaps: serviceCaps{svc: svc}}, nil
}

// hubkitService is a hub whose service API is fakehub's: C2D over HTTPS,
// captured telemetry and refusals too.
type hubkitService struct {
	realHubService
	c2dCaps
	*hubkitReaders
}

// TestConformanceRealHub runs the suite against a real IoT hub named by the
// environment (see realHubHelp); it skips without one. Cases needing
// fakehub-only capabilities (telemetry capture, C2D over HTTPS, refusal
// reasons) skip there.
func TestConformanceRealHub(t *testing.T) {
	cfg, ok, err := loadRealHubConfig()
	if !ok {
		t.Skip("no real hub configured: " + realHubHelp)
	}
	if err != nil {
		t.Fatal(err)
	}
	target, err := newRealHub(cfg)
	if err != nil {
		t.Fatal(err)
	}
	conformance.Run(t, target)
}

// TestRealHubTargetOnFakehub runs the suite through the real-hub target,
// pointed at an in-process fakehub's MQTT and service API (CA file, REST
// device creation, twins, methods, C2D over HTTPS): the code path a real
// hub uses, checked offline.
func TestRealHubTargetOnFakehub(t *testing.T) {
	t.Parallel()
	f := startFakeTarget(t, fakehub.Options{HostName: fakeHostName, ServiceAddr: "127.0.0.1:0", Logger: slog.New(slog.DiscardHandler),
		DPS: &fakehub.DPSOptions{RetryAfter: time.Second}})
	d := f.hub.DPS()
	target, err := newRealHub(realHubConfig{
		DPS: &realDPSConfig{IDScope: d.IDScope(), Service: d.ServiceConnectionString(), ServiceURL: "https://" + d.HTTPAddr(),
			GlobalEndpoint: fakeHostName, Addr: d.Addr(), HTTPSAddr: d.HTTPAddr()},
		Service:       f.hub.ServiceConnectionString(),
		ServiceURL:    "https://" + f.hub.ServiceAddr(),
		Addr:          f.hub.Addr(),
		CAFile:        f.hub.CAFile,
		HubkitService: true,
		// Deleting a device while its client disconnects races inside
		// fakehub (hubClose vs mochi's will reset; reported to its owner).
		KeepDevices: true,
	})
	if err != nil {
		t.Fatal(err)
	}
	conformance.Run(t, target)
}

func TestRealHubConfig(t *testing.T) {
	if got := splitDevices("HostName=h;DeviceId=a;SharedAccessKey=AA==|HostName=h;DeviceId=b;SharedAccessKey=AA==\n\n HostName=h;DeviceId=c;SharedAccessKey=AA== "); len(got) != 3 || got[2] != "HostName=h;DeviceId=c;SharedAccessKey=AA==" {
		t.Errorf("splitDevices = %q, want 3 connection strings", got)
	}
	tg, err := newRealHub(realHubConfig{Devices: []string{"HostName=myhub.azure-devices.net;DeviceId=dev1;SharedAccessKey=AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8="}})
	if err != nil {
		t.Fatal(err)
	}
	if ep := tg.Endpoint(); ep.Addr != "myhub.azure-devices.net:8883" || ep.HostName != "myhub.azure-devices.net" || ep.TLS.RootCAs != nil {
		t.Errorf("Endpoint = %+v, want myhub.azure-devices.net:8883 with the system roots", ep)
	}
	if _, ok := tg.(conformance.MethodInvoker); ok {
		t.Error("a device-list target claims MethodInvoker, want it only with a service connection string")
	}
	tg, err = newRealHub(realHubConfig{Service: "HostName=myhub.azure-devices.net;SharedAccessKeyName=iothubowner;SharedAccessKey=AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8="})
	if err != nil {
		t.Fatal(err)
	}
	for name, ok := range map[string]bool{
		"MethodInvoker": is[conformance.MethodInvoker](tg), "TwinEditor": is[conformance.TwinEditor](tg),
		"ModuleProvisioner": is[conformance.ModuleProvisioner](tg), "DeviceDisabler": is[conformance.DeviceDisabler](tg),
		"NamedDevices": is[conformance.NamedDevices](tg),
	} {
		if !ok {
			t.Errorf("a target with a service connection string lacks %s", name)
		}
	}
	for name, ok := range map[string]bool{
		"CloudToDevice": is[conformance.CloudToDevice](tg), "TelemetryReader": is[conformance.TelemetryReader](tg),
		"RejectionReader": is[conformance.RejectionReader](tg),
	} {
		if ok {
			t.Errorf("a real-hub target claims %s, which only fakehub offers", name)
		}
	}
	if _, err := newRealHub(realHubConfig{Devices: []string{"HostName=h;SharedAccessKeyName=device;SharedAccessKey=AA=="}}); err == nil {
		t.Error("a policy connection string was accepted as a device")
	}
}

func is[T any](v any) bool {
	_, ok := v.(T)
	return ok
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
