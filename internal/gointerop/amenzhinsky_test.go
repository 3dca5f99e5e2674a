package gointerop_test

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/amenzhinsky/iothub/iotdevice"
	mqtttransport "github.com/amenzhinsky/iothub/iotdevice/transport/mqtt"
	"github.com/amenzhinsky/iothub/iotservice"
	"github.com/amenzhinsky/iothub/logger"
	paho "github.com/eclipse/paho.mqtt.golang"

	"github.com/hubkit/hubkit/pkg/fakehub"
	"github.com/hubkit/hubkit/pkg/fakehub/fakehubtest"
	"github.com/hubkit/hubkit/pkg/iothub"
	"github.com/hubkit/hubkit/pkg/sas"
)

// github.com/amenzhinsky/iothub v0.9.1 (the community Go SDK, pinned in go.mod) against an
// in-process fakehub, over TLS with the hub's test CA. Its device client speaks MQTT 3.1.1
// with the legacy user name {host}/{device}/api-version=2020-09-30 and signs its SAS token
// for sr={host} with the device key (docs/iothub-behavior.md §2.4, §1.11); its service
// client calls the REST API over HTTPS. Nothing in the library is changed: the test only
// tells it where fakehub listens (the library dials {HostName}:8883 and https://{HostName}
// on 443) and which CA to trust.

const key1 = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8="

// flowTimeout bounds one flow (a few MQTT and HTTPS round trips) on a loaded machine.
const flowTimeout = 60 * time.Second

// tlogger is the library's logger.Logger on t.Log; it goes quiet when the test ends
// (paho's goroutines may still log while the client closes).
type tlogger struct {
	mu   sync.Mutex
	t    testing.TB
	done bool
}

func newLogger(t testing.TB) *tlogger {
	l := &tlogger{t: t}
	t.Cleanup(func() { l.mu.Lock(); l.done = true; l.mu.Unlock() })
	return l
}

func (l *tlogger) logf(level, format string, v ...any) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if !l.done {
		l.t.Logf("amenzhinsky/iothub %s: %s", level, fmt.Sprintf(format, v...))
	}
}

func (l *tlogger) Errorf(format string, v ...any) { l.logf("ERROR", format, v...) }
func (l *tlogger) Warnf(format string, v ...any)  { l.logf("WARN", format, v...) }
func (l *tlogger) Infof(format string, v ...any)  { l.logf("INFO", format, v...) }
func (l *tlogger) Debugf(string, ...any)          {}

var _ logger.Logger = (*tlogger)(nil)

// newDevice returns an iotdevice client for the connection string, on the library's MQTT
// transport, dialling the hub's MQTT listener with the hub's CA. Only the broker address and
// the trust change (WithClientOptionsConfig, the library's hook for connection settings);
// the user name, the token and the topics stay the library's own. Reconnects are off: a
// refused CONNECT must surface, not be retried.
func newDevice(t *testing.T, hub *fakehubtest.Hub, cs string) *iotdevice.Client {
	t.Helper()
	tr := mqtttransport.New(mqtttransport.WithClientOptionsConfig(func(o *paho.ClientOptions) {
		o.Servers = nil
		o.AddBroker("tls://" + hub.Addr())
		o.SetTLSConfig(hub.ClientTLS())
		o.SetAutoReconnect(false)
		o.SetConnectTimeout(10 * time.Second)
	}))
	c, err := iotdevice.NewFromConnectionString(tr, cs, iotdevice.WithLogger(newLogger(t)))
	if err != nil {
		t.Fatalf("iotdevice.NewFromConnectionString: %v", err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// newService returns an iotservice client whose HTTPS requests to https://{HostName} (port
// 443, as the library builds its URLs) reach the hub's service listener, trusting its CA.
func newService(t *testing.T, hub *fakehubtest.Hub) *iotservice.Client {
	t.Helper()
	want := net.JoinHostPort(hub.HostName(), "443")
	d := &net.Dialer{Timeout: 10 * time.Second}
	hc := &http.Client{Timeout: flowTimeout, Transport: &http.Transport{
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			if addr != want {
				return nil, fmt.Errorf("the service client dialled %s, want %s", addr, want)
			}
			return d.DialContext(ctx, network, hub.ServiceAddr())
		},
		TLSClientConfig: &tls.Config{RootCAs: hub.CAPool, MinVersion: tls.VersionTLS12},
	}}
	c, err := iotservice.NewFromConnectionString(hub.ServiceConnectionString(),
		iotservice.WithHTTPClient(hc), iotservice.WithLogger(newLogger(t)))
	if err != nil {
		t.Fatalf("iotservice.NewFromConnectionString: %v", err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

func deviceCS(hub *fakehubtest.Hub, id, key string) string {
	return sas.ConnectionString{HostName: hub.HostName(), DeviceID: id, SharedAccessKey: key}.String()
}

// TestAmenzhinskyDevice runs the device client's flows: connect, telemetry with properties,
// a C2D message completed by its PUBACK, a direct method invoked by the library's own
// service client, the twin read, a reported patch, and a desired-properties notification.
func TestAmenzhinskyDevice(t *testing.T) {
	hub := fakehubtest.Start(t, fakehub.Options{ServiceAddr: "127.0.0.1:0"})
	id := iothub.Identity{DeviceID: "go-dev"}
	if _, err := hub.Registry().Add(iothub.Device{DeviceID: id.DeviceID, Authentication: iothub.SASAuth(key1, "")}); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), flowTimeout)
	defer cancel()
	dev := newDevice(t, hub, deviceCS(hub, id.DeviceID, key1))
	svc := newService(t, hub)

	if err := dev.Connect(ctx); err != nil {
		t.Fatalf("Connect: %v (hub's rejections: %+v)", err, hub.Rejections())
	}
	if !hub.Connected(id) {
		t.Fatal("the hub has no connection for go-dev after Connect")
	}

	t.Run("telemetry", func(t *testing.T) {
		events := hub.Telemetry().ForDevice(id.DeviceID, "")
		if err := dev.SendEvent(ctx, []byte(`{"temperature":21.5}`),
			iotdevice.WithSendMessageID("go-1"), iotdevice.WithSendCorrelationID("corr-1"),
			iotdevice.WithSendProperty("source", "amenzhinsky")); err != nil {
			t.Fatalf("SendEvent: %v", err) // returns after the hub's PUBACK (QoS 1)
		}
		m, err := events.Next(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if string(m.Payload) != `{"temperature":21.5}` || m.SystemProperties["$.mid"] != "go-1" ||
			m.SystemProperties["$.cid"] != "corr-1" || m.Properties["source"] != "amenzhinsky" {
			t.Errorf("captured %+v (payload %s), want the payload, $.mid=go-1, $.cid=corr-1, source=amenzhinsky", m, m.Payload)
		}
	})

	t.Run("c2d", func(t *testing.T) {
		sub, err := dev.SubscribeEvents(ctx)
		if err != nil {
			t.Fatalf("SubscribeEvents: %v", err)
		}
		msgID, err := hub.SendC2D(ctx, id.DeviceID, iothub.C2DMessage{MessageID: "c2d-1", CorrelationID: "corr-2",
			Payload: []byte("hello from the cloud"), Properties: iothub.Properties{{Key: "color", Value: "red"}}})
		if err != nil {
			t.Fatal(err)
		}
		select {
		case m, ok := <-sub.C():
			if !ok {
				t.Fatalf("the subscription closed: %v", sub.Err())
			}
			if string(m.Payload) != "hello from the cloud" || m.MessageID != "c2d-1" || m.CorrelationID != "corr-2" ||
				m.Properties["color"] != "red" || !strings.EqualFold(m.To, "/devices/go-dev/messages/devicebound") {
				t.Errorf("received %+v (payload %q)", m, m.Payload)
			}
		case <-ctx.Done():
			t.Fatal("no C2D message arrived")
		}
		st, err := hub.WaitC2DState(ctx, msgID, nil) // the library's paho client PUBACKs it
		if err != nil || st.State != iothub.C2DCompleted {
			t.Errorf("C2D state %+v, %v; want completed", st, err)
		}
	})

	t.Run("method", func(t *testing.T) {
		if err := dev.RegisterMethod(ctx, "reboot", func(p map[string]any) (int, map[string]any, error) {
			return 200, map[string]any{"rebooting": true, "delay": p["delay"]}, nil
		}); err != nil {
			t.Fatalf("RegisterMethod: %v", err)
		}
		res, err := svc.CallDeviceMethod(ctx, id.DeviceID, &iotservice.MethodCall{MethodName: "reboot",
			ResponseTimeout: 30, Payload: map[string]any{"delay": 5}})
		if err != nil {
			t.Fatalf("CallDeviceMethod: %v", err)
		}
		if res.Status != 200 || res.Payload["rebooting"] != true || res.Payload["delay"] != float64(5) {
			t.Errorf("method result %+v, want 200 {rebooting:true, delay:5}", res)
		}
	})

	t.Run("twin", func(t *testing.T) {
		desired, reported, err := dev.RetrieveTwinState(ctx)
		if err != nil {
			t.Fatalf("RetrieveTwinState: %v", err)
		}
		if desired.Version() != 1 || reported.Version() != 1 {
			t.Errorf("a new twin: desired %v, reported %v; want both at $version 1", desired, reported)
		}
		v, err := dev.UpdateTwinState(ctx, iotdevice.TwinState{"firmware": "go-1.0"})
		if err != nil {
			t.Fatalf("UpdateTwinState: %v (hub's rejections: %+v)", err, hub.Rejections())
		}
		if v != 2 {
			t.Errorf("reported $version after the first patch = %d, want 2", v)
		}
		tw, err := svc.GetDeviceTwin(ctx, id.DeviceID)
		if err != nil {
			t.Fatal(err)
		}
		if tw.Properties == nil || tw.Properties.Reported["firmware"] != "go-1.0" {
			t.Errorf("the service reads reported %+v, want firmware go-1.0", tw.Properties)
		}

		sub, err := dev.SubscribeTwinUpdates(ctx)
		if err != nil {
			t.Fatalf("SubscribeTwinUpdates: %v", err)
		}
		// The library's service client patches the desired properties with If-Match "*"
		// (an empty etag), then with the twin's quoted etag.
		tw, err = svc.UpdateDeviceTwin(ctx, &iotservice.Twin{DeviceID: id.DeviceID, ETag: tw.ETag,
			Properties: &iotservice.Properties{Desired: map[string]any{"interval": 10}}})
		if err != nil {
			t.Fatalf("UpdateDeviceTwin: %v", err)
		}
		select {
		case s, ok := <-sub.C():
			if !ok {
				t.Fatalf("the twin subscription closed: %v", sub.Err())
			}
			if s["interval"] != float64(10) || s.Version() != 2 {
				t.Errorf("desired notification %v, want interval 10 at $version 2", s)
			}
		case <-ctx.Done():
			t.Fatal("no desired-properties notification arrived")
		}
		if tw.Properties == nil || tw.Properties.Desired["interval"] != float64(10) {
			t.Errorf("UpdateDeviceTwin answered %+v", tw.Properties)
		}
	})

	if rs := hub.Rejections(); len(rs) != 0 {
		t.Errorf("the hub refused or closed something: %+v", rs)
	}
}

// TestAmenzhinskyHubScopedToken pins why the library connects at all: it signs sr={host}
// with the device key. IoT Hub accepts that (a prefix match; the key binds the identity),
// so fakehub does by default; IoT Edge hub's exact rule (Quirks.ExactDeviceKeyScope)
// refuses it, and the library's CONNECT then fails with CONNACK 5 and a scope-mismatch
// rejection (docs/iothub-behavior.md §2.4).
func TestAmenzhinskyHubScopedToken(t *testing.T) {
	hub := fakehubtest.Start(t, fakehub.Options{Quirks: fakehub.Quirks{ExactDeviceKeyScope: true}})
	id := "go-strict"
	if _, err := hub.Registry().Add(iothub.Device{DeviceID: id, Authentication: iothub.SASAuth(key1, "")}); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), flowTimeout)
	defer cancel()
	err := newDevice(t, hub, deviceCS(hub, id, key1)).Connect(ctx)
	if err == nil {
		t.Fatal("Connect succeeded under ExactDeviceKeyScope, want CONNACK 5")
	}
	r, werr := hub.WaitRejection(ctx, func(r iothub.Rejection) bool { return r.DeviceID == id })
	if werr != nil {
		t.Fatalf("no rejection recorded: %v (Connect: %v)", werr, err)
	}
	if r.Reason != sas.ReasonScopeMismatch || !strings.Contains(r.UserName, "/api-version=2020-09-30") {
		t.Errorf("rejection %+v, want %s for the library's legacy user name", r, sas.ReasonScopeMismatch)
	}
}

// TestAmenzhinskyService runs the service client's HTTPS operations: the registry
// (create, get, list, update and delete with quoted If-Match, modules), twins (get, patch
// with and without an etag, a stale etag refused with 412), a paged query, the C2D purge,
// and a method to an offline device. What it does over AMQP (C2D send, feedback, file
// notifications, the Event Hubs-compatible telemetry endpoint) has no counterpart in
// fakehub; the REST routes fakehub does not serve answer a 4xx in IoT Hub's error shape,
// never a 5xx (docs/iothub-behavior.md §13.8).
func TestAmenzhinskyService(t *testing.T) {
	hub := fakehubtest.Start(t, fakehub.Options{ServiceAddr: "127.0.0.1:0"})
	ctx, cancel := context.WithTimeout(context.Background(), flowTimeout)
	defer cancel()
	svc := newService(t, hub)

	// Registry: create (keys generated by the hub), get, list.
	created, err := svc.CreateDevice(ctx, &iotservice.Device{DeviceID: "go-svc-1",
		Authentication: &iotservice.Authentication{Type: iotservice.AuthSAS}})
	if err != nil {
		t.Fatalf("CreateDevice: %v", err)
	}
	if created.ETag == "" || created.Authentication == nil || created.Authentication.SymmetricKey == nil ||
		created.Authentication.SymmetricKey.PrimaryKey == "" || created.Status != iotservice.Enabled {
		t.Fatalf("CreateDevice answered %+v", created)
	}
	got, err := svc.GetDevice(ctx, "go-svc-1")
	if err != nil || got.ETag != created.ETag {
		t.Fatalf("GetDevice = %+v, %v; want etag %q", got, err, created.ETag)
	}
	if _, err := svc.CreateDevice(ctx, &iotservice.Device{DeviceID: "go-svc-2"}); err != nil {
		t.Fatal(err)
	}
	list, err := svc.ListDevices(ctx)
	if err != nil {
		t.Fatalf("ListDevices: %v", err)
	}
	var ids []string
	for _, d := range list {
		ids = append(ids, d.DeviceID)
	}
	if strings.Join(ids, ",") != "go-svc-1,go-svc-2" {
		t.Errorf("ListDevices = %v, want go-svc-1, go-svc-2", ids)
	}

	// The generated key works for a device connection (the library's own helper builds it).
	cs, err := svc.DeviceConnectionString(created, false)
	if err != nil {
		t.Fatal(err)
	}
	if err := newDevice(t, hub, cs).Connect(ctx); err != nil {
		t.Errorf("a device with the connection string of DeviceConnectionString: %v (rejections %+v)", err, hub.Rejections())
	}

	// Update with the quoted etag (disable), then a stale etag is refused.
	upd := *got
	upd.Status, upd.StatusReason = iotservice.Disabled, "maintenance"
	disabled, err := svc.UpdateDevice(ctx, &upd)
	if err != nil {
		t.Fatalf("UpdateDevice: %v", err)
	}
	if disabled.Status != iotservice.Disabled || disabled.ETag == got.ETag {
		t.Errorf("UpdateDevice answered status %q etag %q (was %q)", disabled.Status, disabled.ETag, got.ETag)
	}
	if _, err := svc.UpdateDevice(ctx, &upd); !isStatus(err, http.StatusPreconditionFailed) {
		t.Errorf("UpdateDevice with the stale etag: %v, want 412", err)
	}

	// Modules.
	if _, err := svc.CreateModule(ctx, &iotservice.Module{DeviceID: "go-svc-1", ModuleID: "sensor"}); err != nil {
		t.Fatalf("CreateModule: %v", err)
	}
	mods, err := svc.ListModules(ctx, "go-svc-1")
	if err != nil || len(mods) != 1 || mods[0].ModuleID != "sensor" {
		t.Errorf("ListModules = %+v, %v", mods, err)
	}
	mod, err := svc.GetModule(ctx, "go-svc-1", "sensor")
	if err != nil {
		t.Fatal(err)
	}
	if err := svc.DeleteModule(ctx, mod); err != nil {
		t.Errorf("DeleteModule with its etag: %v", err)
	}

	// Twins: tags with If-Match "*", desired with the quoted etag, a stale etag refused.
	tw, err := svc.GetDeviceTwin(ctx, "go-svc-2")
	if err != nil {
		t.Fatalf("GetDeviceTwin: %v", err)
	}
	stale := tw.ETag
	tw, err = svc.UpdateDeviceTwin(ctx, &iotservice.Twin{DeviceID: "go-svc-2", Tags: map[string]any{"site": "lab"}})
	if err != nil {
		t.Fatalf("UpdateDeviceTwin (If-Match *): %v", err)
	}
	tw, err = svc.UpdateDeviceTwin(ctx, &iotservice.Twin{DeviceID: "go-svc-2", ETag: tw.ETag,
		Properties: &iotservice.Properties{Desired: map[string]any{"interval": 5}}})
	if err != nil {
		t.Fatalf("UpdateDeviceTwin (etag): %v", err)
	}
	if tw.Tags["site"] != "lab" || tw.Properties.Desired["interval"] != float64(5) {
		t.Errorf("twin after both patches: tags %v, properties %+v", tw.Tags, tw.Properties)
	}
	if _, err := svc.UpdateDeviceTwin(ctx, &iotservice.Twin{DeviceID: "go-svc-2", ETag: stale,
		Tags: map[string]any{"site": "other"}}); !isStatus(err, http.StatusPreconditionFailed) {
		t.Errorf("UpdateDeviceTwin with a stale etag: %v, want 412", err)
	}

	// Query: the library follows x-ms-continuation; both devices are in one SELECT *, the
	// WHERE on a tag finds one.
	var all, lab []string
	if err := svc.QueryDevices(ctx, "SELECT * FROM devices", func(v map[string]any) error {
		all = append(all, fmt.Sprint(v["deviceId"]))
		return nil
	}); err != nil {
		t.Fatalf("QueryDevices: %v", err)
	}
	if err := svc.QueryDevices(ctx, "SELECT * FROM devices WHERE tags.site = 'lab'", func(v map[string]any) error {
		lab = append(lab, fmt.Sprint(v["deviceId"]))
		return nil
	}); err != nil {
		t.Fatalf("QueryDevices WHERE: %v", err)
	}
	if strings.Join(all, ",") != "go-svc-1,go-svc-2" || strings.Join(lab, ",") != "go-svc-2" {
		t.Errorf("queries found %v and %v, want go-svc-1,go-svc-2 and go-svc-2", all, lab)
	}

	// C2D: the library sends over AMQP, so the test queues through the hub, and the
	// library purges over HTTPS.
	if _, err := hub.SendC2D(ctx, "go-svc-2", iothub.C2DMessage{Payload: []byte("later")}); err != nil {
		t.Fatal(err)
	}
	pr, err := svc.PurgeQueue(ctx, "go-svc-2")
	if err != nil || pr.TotalMessagesPurged != 1 {
		t.Errorf("PurgeQueue = %+v, %v; want 1 purged", pr, err)
	}

	// A method to a device that is not connected: 404 (404103 DeviceNotOnline).
	if _, err := svc.CallDeviceMethod(ctx, "go-svc-2", &iotservice.MethodCall{MethodName: "reboot", ResponseTimeout: 5}); !isStatus(err, http.StatusNotFound) {
		t.Errorf("CallDeviceMethod to an offline device: %v, want 404", err)
	}

	// Delete with the quoted etag; the device is gone.
	if err := svc.DeleteDevice(ctx, disabled); err != nil {
		t.Fatalf("DeleteDevice: %v", err)
	}
	if _, err := svc.GetDevice(ctx, "go-svc-1"); !isStatus(err, http.StatusNotFound) {
		t.Errorf("GetDevice after DeleteDevice: %v, want 404", err)
	}

	// REST operations fakehub does not emulate: a clear 4xx, not a 5xx.
	t.Run("unsupported", func(t *testing.T) {
		for name, call := range map[string]func() error{
			"DeviceStats": func() error { _, err := svc.DeviceStats(ctx); return err },
			"ListConfigurations": func() error {
				_, err := svc.ListConfigurations(ctx)
				return err
			},
			"CreateDevices (bulk)": func() error {
				_, err := svc.CreateDevices(ctx, []*iotservice.Device{{DeviceID: "bulk-1"}})
				return err
			},
			"ListJobs": func() error { _, err := svc.ListJobs(ctx); return err },
		} {
			err := call()
			var re *iotservice.RequestError
			if !errors.As(err, &re) || re.Code < 400 || re.Code >= 500 || !strings.Contains(string(re.Body), "ErrorCode:") {
				t.Errorf("%s: %v, want a 4xx in IoT Hub's error shape", name, err)
			}
		}
	})
}

// isStatus reports whether err is the library's error for an HTTP status.
func isStatus(err error, status int) bool {
	var re *iotservice.RequestError
	if errors.As(err, &re) {
		return re.Code == status
	}
	var bre *iotservice.BadRequestError
	return status == http.StatusBadRequest && errors.As(err, &bre)
}
