package serviceclient_test

// The client is tested against the real hub: an in-process fakehub (fakehubtest) with its
// service API on a random loopback port, and real devices (pkg/device over MQTT/TLS, or a raw
// CONNECT) on the other side wherever the cloud side needs one.

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"github.com/hubkit/hubkit/internal/testutil"
	"net/http"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/hubkit/hubkit/internal/certs"
	"github.com/hubkit/hubkit/internal/mqttraw"
	"github.com/hubkit/hubkit/pkg/device"
	"github.com/hubkit/hubkit/pkg/fakehub"
	"github.com/hubkit/hubkit/pkg/fakehub/fakehubtest"
	"github.com/hubkit/hubkit/pkg/iothub"
	"github.com/hubkit/hubkit/pkg/sas"
	"github.com/hubkit/hubkit/pkg/serviceclient"
)

// startHub runs a fakehub with its service API and returns it with a client for its
// iothubowner policy.
func startHub(t *testing.T, opts ...serviceclient.Option) (*fakehubtest.Hub, *serviceclient.Client) {
	t.Helper()
	hub := fakehubtest.Start(t, fakehub.Options{ServiceAddr: "127.0.0.1:0"})
	return hub, newClient(t, hub, hub.ServiceConnectionString(), opts...)
}

// newClient returns a client for the hub's service API that trusts its CA.
func newClient(t *testing.T, hub *fakehubtest.Hub, cs string, opts ...serviceclient.Option) *serviceclient.Client {
	t.Helper()
	opts = append([]serviceclient.Option{serviceclient.WithURL(hub.ServiceURL()), serviceclient.WithRootCAs(hub.CAPool)}, opts...)
	c, err := serviceclient.New(cs, opts...)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// policyConnectionString is the connection string of one of the hub's shared access policies.
func policyConnectionString(t *testing.T, hub *fakehubtest.Hub, name string) string {
	t.Helper()
	p, ok := hub.Registry().Policy(name)
	if !ok {
		t.Fatalf("no policy %q", name)
	}
	return sas.ConnectionString{HostName: hub.HostName(), SharedAccessKeyName: p.KeyName, SharedAccessKey: p.PrimaryKey}.String()
}

// testCtx bounds a test's calls.
func testCtx(t *testing.T) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// create creates an identity through the service API.
func create(t *testing.T, c *serviceclient.Client, d iothub.Device) iothub.Device {
	t.Helper()
	created, err := c.CreateDevice(testCtx(t), d)
	if err != nil {
		t.Fatalf("CreateDevice(%s): %v", d.Identity(), err)
	}
	return created
}

// connect connects a pkg/device client as identity d (created through the service API, so it
// carries its keys) after register has set its handlers; it is closed when the test ends.
func connect(t *testing.T, hub *fakehubtest.Hub, d iothub.Device, register func(*device.Client)) *device.Client {
	t.Helper()
	dc, err := device.New(device.Config{
		HostName: hub.HostName(), DeviceID: d.DeviceID, ModuleID: d.ModuleID,
		SharedAccessKey: d.Authentication.SymmetricKey.PrimaryKey,
		Endpoint:        hub.Addr(), RootCAs: hub.CAPool,
	})
	if err != nil {
		t.Fatal(err)
	}
	if register != nil {
		register(dc)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := dc.Connect(ctx); err != nil {
		t.Fatalf("device %s: Connect: %v", d.Identity(), err)
	}
	t.Cleanup(func() { _ = dc.Close(context.Background()) })
	return dc
}

// recv waits up to 10 s for a value on ch.
func recv[T any](t *testing.T, ch <-chan T, what string) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(10 * time.Second):
		t.Fatalf("timed out waiting for %s", what)
		panic("unreachable")
	}
}

var trackingID = regexp.MustCompile(`^[0-9a-f]{32}$`)

// wantErr checks that err is the service error want (by code, with errors.Is) as the client
// decodes it from the hub's answer: an *iothub.Error with that HTTP status and the hub's
// tracking ID.
func wantErr(t *testing.T, err error, want *iothub.Error, status int) *iothub.Error {
	t.Helper()
	var e *iothub.Error
	if !errors.As(err, &e) {
		t.Fatalf("err = %v (%T), want *iothub.Error %v", err, err, want.Code)
	}
	if !errors.Is(err, want) || e.Code != want.Code || e.Status() != status {
		t.Errorf("err = %v (status %d), want %v (status %d)", err, e.Status(), want.Code, status)
	}
	if e.Message == "" {
		t.Errorf("err %v has no message", err)
	}
	if !trackingID.MatchString(e.TrackingID) {
		t.Errorf("TrackingID = %q, want the hub's 32 hex digits", e.TrackingID)
	}
	return e
}

func TestNew(t *testing.T) {
	t.Parallel()
	const secret = "c2VjcmV0LWtleS1ub3QtdG8tYmUtZWNob2Vk" // must never appear in an error
	for _, tc := range []struct{ name, cs, url, want string }{
		{"device-string", "HostName=h;DeviceId=d;SharedAccessKey=" + secret, "", "need a service (shared access policy) connection string"},
		{"module-string", "HostName=h;DeviceId=d;ModuleId=m;SharedAccessKey=" + secret, "", "need a service (shared access policy) connection string"},
		{"garbage", "nonsense", "", "connection string"},
		{"bad-key", "HostName=h;SharedAccessKeyName=p;SharedAccessKey=not*base64" + secret, "", "SharedAccessKey"},
		{"bad-url", "HostName=h;SharedAccessKeyName=p;SharedAccessKey=" + secret, "ftp://x", "want https://host:port"},
		{"no-host-url", "HostName=h;SharedAccessKeyName=p;SharedAccessKey=" + secret, "https://", "want https://host:port"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var opts []serviceclient.Option
			if tc.url != "" {
				opts = append(opts, serviceclient.WithURL(tc.url))
			}
			_, err := serviceclient.New(tc.cs, opts...)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("New(%q) = %v, want an error containing %q", tc.cs, err, tc.want)
			}
			if err != nil && strings.Contains(err.Error(), secret) {
				t.Errorf("the error echoes the key: %v", err)
			}
		})
	}
	c, err := serviceclient.New("HostName=myhub.local;SharedAccessKeyName=iothubowner;SharedAccessKey=" + secret)
	if err != nil || c.URL() != "https://myhub.local:8443" || c.HostName() != "myhub.local" {
		t.Errorf("default URL: %v, %v", c, err)
	}
	c, err = serviceclient.New("HostName=myhub.local;SharedAccessKeyName=iothubowner;SharedAccessKey="+secret, serviceclient.WithURL("https://127.0.0.1:9443/"))
	if err != nil || c.URL() != "https://127.0.0.1:9443" {
		t.Errorf("WithURL with a trailing slash: %v, %v", c, err)
	}
}

func TestRegistry(t *testing.T) {
	t.Parallel()
	hub, c := startHub(t)
	ctx := testCtx(t)
	const id = "dev$'(1)%20" // characters a path must escape, '%' included
	d := create(t, c, iothub.Device{DeviceID: id})
	if d.DeviceID != id || d.Status != iothub.StatusEnabled || d.Authentication.SymmetricKey.PrimaryKey == "" || d.ETag == "" {
		t.Errorf("created = %+v", d)
	}
	if got, err := hub.Device(iothub.Identity{DeviceID: id}); err != nil || got.Authentication != d.Authentication {
		t.Errorf("the hub holds %+v, %v; want the created identity", got, err)
	}
	_, err := c.CreateDevice(ctx, iothub.Device{DeviceID: id})
	wantErr(t, err, iothub.ErrDeviceAlreadyExists, 409)

	d2, err := c.SetDeviceStatus(ctx, id, iothub.StatusDisabled, "maintenance")
	if err != nil || d2.Status != iothub.StatusDisabled || d2.StatusReason != "maintenance" || d2.Authentication != d.Authentication || d2.ETag == d.ETag {
		t.Errorf("disable = %+v, %v", d2, err)
	}
	if got, _ := hub.Device(iothub.Identity{DeviceID: id}); got.Status != iothub.StatusDisabled {
		t.Errorf("the hub holds status %q, want disabled", got.Status)
	}
	_, err = c.UpdateDevice(ctx, d, d.ETag) // the etag before the status change
	wantErr(t, err, iothub.ErrPreconditionFailed, 412)

	// The current etag, bare (the client quotes it) or already quoted, updates.
	d2.Status, d2.StatusReason = iothub.StatusEnabled, ""
	d3, err := c.UpdateDevice(ctx, d2, d2.ETag)
	if err != nil || d3.Status != iothub.StatusEnabled || d3.ETag == d2.ETag {
		t.Fatalf("update with the bare etag = %+v, %v", d3, err)
	}
	d3.StatusReason = "quoted"
	if d4, err := c.UpdateDevice(ctx, d3, `"`+d3.ETag+`"`); err != nil || d4.StatusReason != "quoted" {
		t.Errorf("update with the quoted etag = %+v, %v", d4, err)
	}
	if _, err := c.UpdateDevice(ctx, iothub.Device{DeviceID: id}, ""); err != nil { // "" is If-Match: *
		t.Errorf("unconditional update: %v", err)
	}

	_, err = c.CreateDevice(ctx, iothub.Device{DeviceID: id, ModuleID: "mod/x"})
	wantErr(t, err, iothub.ErrInvalidArgument, 400)
	create(t, c, iothub.Device{DeviceID: id, ModuleID: "mod1"})
	_, err = c.CreateDevice(ctx, iothub.Device{DeviceID: id, ModuleID: "mod1"})
	wantErr(t, err, iothub.ErrModuleAlreadyExists, 409)
	ms, err := c.Modules(ctx, id)
	if err != nil || len(ms) != 1 || ms[0].DeviceID != id || ms[0].ModuleID != "mod1" {
		t.Errorf("Modules = %+v, %v", ms, err)
	}
	if got, err := c.Module(ctx, id, "mod1"); err != nil || got.ModuleID != "mod1" || got.Authentication.SymmetricKey.PrimaryKey == "" {
		t.Errorf("Module = %+v, %v", got, err)
	}
	if err := c.DeleteModule(ctx, id, "mod1"); err != nil {
		t.Error(err)
	}
	_, err = c.Module(ctx, id, "mod1")
	wantErr(t, err, iothub.ErrModuleNotFound, 404)

	ds, err := c.Devices(ctx)
	if err != nil || len(ds) != 1 || ds[0].DeviceID != id {
		t.Errorf("Devices = %+v, %v", ds, err)
	}
	if err := c.DeleteDevice(ctx, id); err != nil {
		t.Error(err)
	}
	_, err = c.Device(ctx, id)
	wantErr(t, err, iothub.ErrDeviceNotFound, 404)
	err = c.DeleteDevice(ctx, id)
	wantErr(t, err, iothub.ErrDeviceNotFound, 404)
	if ds, err := c.Devices(ctx); err != nil || ds == nil || len(ds) != 0 {
		t.Errorf("Devices of an empty registry = %#v, %v; want an empty list", ds, err)
	}
}

func TestTwin(t *testing.T) {
	t.Parallel()
	hub, c := startHub(t)
	ctx := testCtx(t)
	d := create(t, c, iothub.Device{DeviceID: "dev1"})
	desired := make(chan string, 4)
	connect(t, hub, d, func(dc *device.Client) {
		dc.OnDesired(func(_ context.Context, patch json.RawMessage, version int64) {
			desired <- fmt.Sprintf("v%d %s", version, patch)
		})
	})

	tw, err := c.Twin(ctx, "dev1")
	if err != nil || tw.DeviceID != "dev1" || tw.ETag == "" || tw.DesiredVersion() != 1 || tw.ConnectionState != iothub.StateConnected {
		t.Fatalf("Twin = %+v, %v", tw, err)
	}
	tw, err = c.UpdateTwin(ctx, "dev1", iothub.TwinUpdate{Tags: json.RawMessage(`{"site":"lab"}`), Desired: json.RawMessage(`{"fw":"2.0"}`), IfMatch: tw.ETag})
	if err != nil || string(tw.Tags) != `{"site":"lab"}` || !strings.Contains(string(tw.Properties.Desired), `"fw":"2.0"`) || tw.DesiredVersion() != 2 {
		t.Fatalf("UpdateTwin = %+v, %v", tw, err)
	}
	if got := recv(t, desired, "the desired-properties patch at the device"); !strings.HasPrefix(got, "v2 ") || !strings.Contains(got, `"fw":"2.0"`) {
		t.Errorf("device got desired %s, want v2 with fw 2.0", got)
	}

	// An etag already quoted, as read from the ETag header, is accepted too.
	tw, err = c.UpdateTwin(ctx, "dev1", iothub.TwinUpdate{Tags: json.RawMessage(`{"floor":2}`), IfMatch: `"` + tw.ETag + `"`})
	if err != nil || !jsonEqual(tw.Tags, `{"floor":2,"site":"lab"}`) {
		t.Errorf("UpdateTwin with a quoted etag = %s, %v; want the tags merged", tw.Tags, err)
	}
	_, err = c.UpdateTwin(ctx, "dev1", iothub.TwinUpdate{Tags: json.RawMessage(`{}`), IfMatch: "AAAAAAAAAAE="})
	wantErr(t, err, iothub.ErrPreconditionFailed, 412)
	tw, err = c.UpdateTwin(ctx, "dev1", iothub.TwinUpdate{Tags: json.RawMessage(`{"x":1}`), Replace: true})
	if err != nil || string(tw.Tags) != `{"x":1}` {
		t.Errorf("replace = %s, %v; want the tags replaced", tw.Tags, err)
	}
	if got, err := hub.Twin(iothub.Identity{DeviceID: "dev1"}); err != nil || string(got.Tags) != `{"x":1}` {
		t.Errorf("the hub holds tags %s, %v", got.Tags, err)
	}

	create(t, c, iothub.Device{DeviceID: "dev1", ModuleID: "mod1"})
	mt, err := c.UpdateModuleTwin(ctx, "dev1", "mod1", iothub.TwinUpdate{Desired: json.RawMessage(`{"rate":5}`)})
	if err != nil || mt.ModuleID != "mod1" || !strings.Contains(string(mt.Properties.Desired), `"rate":5`) {
		t.Errorf("UpdateModuleTwin = %+v, %v", mt, err)
	}
	if mt2, err := c.ModuleTwin(ctx, "dev1", "mod1"); err != nil || mt2.ETag != mt.ETag || mt2.DesiredVersion() != 2 {
		t.Errorf("ModuleTwin = %+v, %v", mt2, err)
	}
	_, err = c.Twin(ctx, "nodev")
	wantErr(t, err, iothub.ErrDeviceNotFound, 404)
}

func TestMethods(t *testing.T) {
	t.Parallel()
	hub, c := startHub(t)
	ctx := testCtx(t)
	d := create(t, c, iothub.Device{DeviceID: "dev1"})
	reboot := iothub.NewMethodRequest("reboot", json.RawMessage(`{"delay":5}`), 7*time.Second, 0)

	_, err := c.InvokeMethod(ctx, "dev1", reboot)
	wantErr(t, err, iothub.ErrDeviceNotOnline, 404)

	payloads := make(chan string, 1)
	connect(t, hub, d, func(dc *device.Client) {
		dc.OnMethod("reboot", func(_ context.Context, payload []byte) (int, any, error) {
			payloads <- string(payload)
			return 201, json.RawMessage(`{"in":"5s"}`), nil
		})
	})
	res, err := c.InvokeMethod(ctx, "dev1", reboot)
	if err != nil || res.Status != 201 || string(res.Payload) != `{"in":"5s"}` {
		t.Errorf("InvokeMethod = %+v, %v", res, err)
	}
	if got := recv(t, payloads, "the method call at the device"); got != `{"delay":5}` {
		t.Errorf("the device got payload %s, want {\"delay\":5}", got)
	}

	_, err = c.InvokeMethod(ctx, "dev1", iothub.NewMethodRequest("reboot", nil, time.Second, 0)) // under the 5 s minimum
	wantErr(t, err, iothub.ErrInvalidArgument, 400)
	_, err = c.InvokeMethod(ctx, "nodev", reboot)
	wantErr(t, err, iothub.ErrDeviceNotFound, 404)

	// A module's methods.
	m := create(t, c, iothub.Device{DeviceID: "dev1", ModuleID: "mod1"})
	connect(t, hub, m, func(dc *device.Client) {
		dc.OnAnyMethod(func(_ context.Context, name string, _ []byte) (int, any, error) {
			return 200, map[string]string{"module": "mod1", "method": name}, nil
		})
	})
	res, err = c.InvokeModuleMethod(ctx, "dev1", "mod1", iothub.NewMethodRequest("ping", nil, 0, 0))
	if err != nil || res.Status != 200 || string(res.Payload) != `{"method":"ping","module":"mod1"}` {
		t.Errorf("InvokeModuleMethod = %+v, %v", res, err)
	}

	// connectTimeoutInSeconds: the hub waits for a device that is not connected yet. (The
	// call usually reaches the hub before the device does; when it does not, this passes
	// without proving the wait.)
	d2 := create(t, c, iothub.Device{DeviceID: "dev2"})
	if _, err := c.Devices(ctx); err != nil { // a warm connection, so that the call is quick
		t.Fatal(err)
	}
	type outcome struct {
		res iothub.MethodResult
		err error
	}
	done := make(chan outcome, 1)
	go func() {
		res, err := c.InvokeMethod(ctx, "dev2", iothub.NewMethodRequest("reboot", nil, 10*time.Second, 10*time.Second))
		done <- outcome{res, err}
	}()
	connect(t, hub, d2, func(dc *device.Client) {
		dc.OnMethod("reboot", func(context.Context, []byte) (int, any, error) { return 200, nil, nil })
	})
	if o := recv(t, done, "the answer to the method call"); o.err != nil || o.res.Status != 200 {
		t.Errorf("InvokeMethod with a connect timeout = %+v, %v", o.res, o.err)
	}
}

// A device that does not answer in responseTimeoutInSeconds gives 504101. It takes the hub's
// minimum response timeout, 5 s.
func TestMethodTimeout(t *testing.T) {
	t.Parallel()
	hub, c := startHub(t)
	d := create(t, c, iothub.Device{DeviceID: "dev1"})
	release := make(chan struct{})
	connect(t, hub, d, func(dc *device.Client) {
		dc.OnMethod("slow", func(ctx context.Context, _ []byte) (int, any, error) {
			select {
			case <-release:
			case <-ctx.Done():
			}
			return 200, nil, nil
		})
	})
	defer close(release) // before the device's Close (a cleanup) waits for the handler
	// Bounded under the hub's 30 s default, so that a request that lost its timeout fails.
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	_, err := c.InvokeMethod(ctx, "dev1", iothub.NewMethodRequest("slow", nil, iothub.MinMethodTimeout, 0))
	wantErr(t, err, iothub.ErrGatewayTimeout, 504)
}

func TestC2D(t *testing.T) {
	t.Parallel()
	hub, c := startHub(t)
	ctx := testCtx(t)
	d := create(t, c, iothub.Device{DeviceID: "dev1"})

	// The device is offline: messages wait in its queue.
	st, err := c.SendC2D(ctx, "dev1", iothub.C2DMessage{MessageID: "m1", Ack: iothub.AckFull, Payload: []byte("first")})
	if err != nil || st.DeviceID != "dev1" || st.MessageID != "m1" || st.State != iothub.C2DQueued {
		t.Fatalf("SendC2D = %+v, %v", st, err)
	}
	if got, err := c.C2DStatus(ctx, "dev1", "m1"); err != nil || got.State != iothub.C2DQueued {
		t.Errorf("C2DStatus = %+v, %v", got, err)
	}
	_, err = c.C2DStatus(ctx, "dev1", "nope")
	wantErr(t, err, iothub.ErrNotFound, 404)
	for i := 1; i < iothub.MaxC2DQueueDepth; i++ {
		if _, err := c.SendC2D(ctx, "dev1", iothub.C2DMessage{Payload: []byte("x")}); err != nil {
			t.Fatalf("message %d: %v", i+1, err)
		}
	}
	sts, err := c.C2DStatuses(ctx, "dev1")
	if err != nil || len(sts) != iothub.MaxC2DQueueDepth {
		t.Fatalf("C2DStatuses = %d statuses, %v; want %d", len(sts), err, iothub.MaxC2DQueueDepth)
	}
	if sts[0].MessageID != "m1" || sts[1].MessageID == "" || sts[1].MessageID == sts[2].MessageID {
		t.Errorf("C2DStatuses = %+v...; want m1 first, then the IDs the hub generated", sts[:3])
	}
	_, err = c.SendC2D(ctx, "dev1", iothub.C2DMessage{Payload: []byte("one too many")})
	wantErr(t, err, iothub.ErrQueueFull, 403)

	// Purge: the whole queue goes; only m1 asked for feedback.
	if n, err := c.PurgeC2D(ctx, "dev1"); err != nil || n != iothub.MaxC2DQueueDepth {
		t.Errorf("PurgeC2D = %d, %v; want %d", n, err, iothub.MaxC2DQueueDepth)
	}
	if got, err := c.C2DStatus(ctx, "dev1", "m1"); err != nil || got.State != iothub.C2DPurged {
		t.Errorf("status after the purge = %+v, %v", got, err)
	}
	fb, err := c.Feedback(ctx)
	if err != nil || len(fb) != 1 || fb[0].OriginalMessageID != "m1" || fb[0].StatusCode != iothub.FeedbackPurged || fb[0].DeviceID != "dev1" {
		t.Errorf("Feedback = %+v, %v", fb, err)
	}
	_, err = c.PurgeC2D(ctx, "nodev")
	wantErr(t, err, iothub.ErrDeviceNotFound, 404)
	_, err = c.SendC2D(ctx, "nodev", iothub.C2DMessage{Payload: []byte("x")})
	wantErr(t, err, iothub.ErrDeviceNotFound, 404)

	// A connected device receives the message with every property as sent.
	got := make(chan device.C2DMessage, 1)
	connect(t, hub, d, func(dc *device.Client) {
		dc.OnC2D(func(_ context.Context, m device.C2DMessage) { got <- m })
	})
	expiry := time.Now().Add(time.Hour).UTC().Truncate(time.Second)
	msg := iothub.C2DMessage{
		MessageID: "m2", CorrelationID: "c1", UserID: "u", Ack: iothub.AckFull, ExpiryTime: expiry,
		ContentType: "application/json", ContentEncoding: "utf-8",
		Properties: iothub.Properties{{Key: "alertLevel", Value: "high"}, {Key: "with space&amp", Value: "a=b"}},
		Payload:    []byte(`{"on":true}`),
	}
	if _, err := c.SendC2D(ctx, "dev1", msg); err != nil {
		t.Fatal(err)
	}
	m := recv(t, got, "the C2D message at the device")
	want := device.C2DMessage{
		MessageID: "m2", CorrelationID: "c1", UserID: "u", To: "/devices/dev1/messages/deviceBound",
		ContentType: "application/json", ContentEncoding: "utf-8", Ack: "full", Payload: []byte(`{"on":true}`),
		Application: map[string]string{"alertLevel": "high", "with space&amp": "a=b"},
	}
	if diff := cmp.Diff(want, m, cmpIgnore("Topic", "Properties", "Expiry"), cmpopts.IgnoreUnexported(device.C2DMessage{})); diff != "" {
		t.Errorf("message the device got (-want +got):\n%s", diff)
	}
	if exp, err := time.Parse(time.RFC3339Nano, m.Expiry); err != nil || !exp.Equal(expiry) {
		t.Errorf("$.exp = %q, want %s", m.Expiry, expiry.Format(time.RFC3339))
	}
	// Acknowledged when the handler returned: completed, with positive feedback.
	var final iothub.C2DStatus
	testutil.Eventually(t, "m2 completed", func() bool {
		final, err = c.C2DStatus(ctx, "dev1", "m2")
		return err == nil && final.State.Finished()
	})
	if final.State != iothub.C2DCompleted || final.DeliveryCount != 1 {
		t.Errorf("m2 = %+v, want completed after one delivery", final)
	}
	testutil.Eventually(t, "feedback for m2", func() bool { fb, err = c.Feedback(ctx); return err == nil && len(fb) == 2 })
	if fb[1].OriginalMessageID != "m2" || fb[1].StatusCode != iothub.FeedbackSuccess {
		t.Errorf("feedback = %+v, want m2 Success", fb[1])
	}
}

// jsonEqual reports whether a holds the same JSON value as b.
func jsonEqual(a json.RawMessage, b string) bool {
	var va, vb any
	return json.Unmarshal(a, &va) == nil && json.Unmarshal([]byte(b), &vb) == nil && cmp.Equal(va, vb)
}

// cmpIgnore ignores struct fields by name.
func cmpIgnore(names ...string) cmp.Option {
	return cmp.FilterPath(func(p cmp.Path) bool {
		sf, ok := p.Last().(cmp.StructField)
		return ok && slices.Contains(names, sf.Name())
	}, cmp.Ignore())
}

// TestWaitC2D: WaitC2D returns a message's final state (here: expired by the hub's movable
// clock), and when ctx ends first the last state seen with ctx's error.
func TestWaitC2D(t *testing.T) {
	t.Parallel()
	hub, c := startHub(t)
	ctx := testCtx(t)
	create(t, c, iothub.Device{DeviceID: "dev1"})
	st, err := c.SendC2D(ctx, "dev1", iothub.C2DMessage{MessageID: "short", Ack: iothub.AckNegative, ExpiryTime: hub.Clock().Now().Add(2 * time.Minute), Payload: []byte("x")})
	if err != nil {
		t.Fatal(err)
	}
	got := make(chan iothub.C2DStatus, 1)
	go func() {
		fin, err := c.WaitC2D(ctx, "dev1", st.MessageID)
		if err != nil {
			t.Errorf("WaitC2D: %v", err)
		}
		got <- fin
	}()
	hub.Clock().Advance(3 * time.Minute) // the device stays offline past the message's expiry
	if fin := <-got; fin.State != iothub.C2DExpired || fin.MessageID != "short" || fin.FinishedTime.IsZero() {
		t.Errorf("WaitC2D = %+v, want expired", fin)
	}

	// The device stays offline: the wait ends with ctx.
	if _, err := c.SendC2D(ctx, "dev1", iothub.C2DMessage{MessageID: "long", Payload: []byte("y")}); err != nil {
		t.Fatal(err)
	}
	short, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := c.WaitC2D(short, "dev1", "long"); !errors.Is(err, context.Canceled) {
		t.Errorf("WaitC2D with an ended context = %v, want context.Canceled", err)
	}
	_, err = c.WaitC2D(ctx, "dev1", "nope")
	wantErr(t, err, iothub.ErrNotFound, 404)
}

func TestEvents(t *testing.T) {
	t.Parallel()
	hub, c := startHub(t)
	ctx := testCtx(t)
	dev := map[string]*device.Client{}
	for _, id := range []string{"dev1", "dev2", "dev3"} {
		dev[id] = connect(t, hub, create(t, c, iothub.Device{DeviceID: id}), nil)
	}
	send := func(id string, e device.Event) {
		t.Helper()
		if err := dev[id].SendEvent(ctx, e); err != nil {
			t.Fatalf("%s: SendEvent: %v", id, err)
		}
	}
	send("dev1", device.Event{Payload: []byte(`{"t":21.5}`), Properties: iothub.Properties{{Key: "k", Value: "v"}}})
	send("dev2", device.Event{Payload: []byte{0xff, 0x00}})

	// Follow with Since and Count: the messages since then, then it ends without error (a
	// follow stream without Since starts where it opens: docs/iothub-behavior.md §13.6).
	var got []iothub.Event
	collect := func(e iothub.Event) error { got = append(got, e); return nil }
	if err := c.Events(ctx, serviceclient.EventQuery{Follow: true, Count: 2, Since: time.Unix(0, 0)}, collect); err != nil || len(got) != 2 {
		t.Fatalf("Events(follow, count 2) = %d events, %v", len(got), err)
	}
	got = nil
	if err := c.Events(ctx, serviceclient.EventQuery{}, collect); err != nil || len(got) != 2 {
		t.Fatalf("Events = %d events, %v", len(got), err)
	}
	e0, e1 := got[0], got[1]
	if e0.DeviceID != "dev1" || string(e0.Payload) != `{"t":21.5}` || string(e0.PayloadJSON()) != `{"t":21.5}` || e0.Properties["k"] != "v" ||
		!strings.HasPrefix(e0.Topic, "devices/dev1/messages/events/") || e0.EnqueuedTime.IsZero() {
		t.Errorf("event 0 = %+v", e0)
	}
	if e1.DeviceID != "dev2" || string(e1.Payload) != "\xff\x00" || e1.PayloadJSON() != nil || e1.SequenceNumber <= e0.SequenceNumber {
		t.Errorf("binary event = %+v", e1)
	}

	// Filters: one device; since a time.
	got = nil
	if err := c.Events(ctx, serviceclient.EventQuery{DeviceID: "dev2"}, collect); err != nil || len(got) != 1 || got[0].DeviceID != "dev2" {
		t.Errorf("Events(dev2) = %+v, %v", got, err)
	}
	got = nil
	if err := c.Events(ctx, serviceclient.EventQuery{Since: e1.EnqueuedTime}, collect); err != nil || len(got) == 0 || got[len(got)-1].SequenceNumber != e1.SequenceNumber {
		t.Errorf("Events(since event 1) = %+v, %v; want it to end with event 1", got, err)
	}
	got = nil
	if err := c.Events(ctx, serviceclient.EventQuery{Since: e1.EnqueuedTime.Add(time.Nanosecond)}, collect); err != nil || len(got) != 0 {
		t.Errorf("Events(since after event 1) = %+v, %v; want none", got, err)
	}
	got = nil
	if err := c.Events(ctx, serviceclient.EventQuery{Count: 1}, collect); err != nil || len(got) != 1 || got[0].SequenceNumber != e0.SequenceNumber {
		t.Errorf("Events(count 1) = %+v, %v; want the oldest", got, err)
	}

	// Follow: messages sent while the stream is open arrive; ErrStop ends it without error.
	// Since makes the start independent of when the goroutine's request arrives (dev3 has
	// sent nothing before).
	seen := make(chan iothub.Event, 1)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		n := 0
		err := c.Events(ctx, serviceclient.EventQuery{DeviceID: "dev3", Follow: true, Since: time.Unix(0, 0)}, func(e iothub.Event) error {
			seen <- e
			if n++; n == 2 {
				return serviceclient.ErrStop
			}
			return nil
		})
		if err != nil {
			t.Errorf("Events(follow) = %v, want nil after ErrStop", err)
		}
	}()
	for i := range 2 {
		send("dev3", device.Event{Payload: fmt.Appendf(nil, `{"i":%d}`, i)})
		if e := recv(t, seen, "a followed event"); string(e.Payload) != fmt.Sprintf(`{"i":%d}`, i) {
			t.Errorf("followed event %d = %s", i, e.Payload)
		}
	}
	wg.Wait()

	// Follow ends with the context, and returns its error.
	fctx, cancel := context.WithCancel(ctx)
	err := c.Events(fctx, serviceclient.EventQuery{Follow: true, Since: time.Unix(0, 0)}, func(iothub.Event) error { cancel(); return nil })
	if !errors.Is(err, context.Canceled) {
		t.Errorf("Events(follow) after cancel = %v, want context.Canceled", err)
	}
	// A callback error ends the stream and is returned.
	boom := errors.New("boom")
	if err := c.Events(ctx, serviceclient.EventQuery{}, func(iothub.Event) error { return boom }); !errors.Is(err, boom) {
		t.Errorf("Events = %v, want boom", err)
	}
}

func TestRejections(t *testing.T) {
	t.Parallel()
	hub, c := startHub(t)
	ctx := testCtx(t)
	create(t, c, iothub.Device{DeviceID: "dev1"})
	if rs, err := c.Rejections(ctx); err != nil || rs == nil || len(rs) != 0 {
		t.Errorf("Rejections before any = %#v, %v; want an empty list", rs, err)
	}

	// A CONNECT with a token signed by the wrong key.
	tok := sas.Sign(sas.EncodeResource(sas.DeviceResource(hub.HostName(), "dev1")), "", make([]byte, 32), time.Now().Add(time.Hour))
	ack, conn, err := mqttraw.ConnectAndWait(ctx, hub.Addr(), hub.ClientTLS(), mqttraw.ConnectPacket{
		ClientID:     "dev1",
		UserName:     mqttraw.String(hub.HostName() + "/dev1/?api-version=" + iothub.DefaultAPIVersion),
		Password:     mqttraw.String(tok.String()),
		CleanSession: true, KeepAlive: 60,
	})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if ack.ReturnCode != mqttraw.ConnackNotAuthorized {
		t.Errorf("CONNACK %d, want %d", ack.ReturnCode, mqttraw.ConnackNotAuthorized)
	}
	if _, err := hub.WaitRejection(ctx, func(iothub.Rejection) bool { return true }); err != nil {
		t.Fatal(err)
	}

	rs, err := c.Rejections(ctx)
	if err != nil || len(rs) != 1 {
		t.Fatalf("Rejections = %+v, %v", rs, err)
	}
	r := rs[0]
	if r.ClientID != "dev1" || r.DeviceID != "dev1" || r.Reason != sas.ReasonSignatureMismatch || len(r.Hints) == 0 || r.RemoteAddr == "" || r.Time.IsZero() {
		t.Errorf("rejection = %+v", r)
	}
	if strings.Contains(fmt.Sprint(r), tok.Signature) {
		t.Errorf("the rejection carries the token's signature: %+v", r)
	}
	if diff := cmp.Diff(hub.Rejections(), rs); diff != "" {
		t.Errorf("Rejections differ from the hub's record (-hub +client):\n%s", diff)
	}

	// WatchRejections: a filtered listing, then a follow stream that waits for the next one.
	var got []iothub.Rejection
	collect := func(r iothub.Rejection) error { got = append(got, r); return nil }
	if err := c.WatchRejections(ctx, serviceclient.EventQuery{DeviceID: "dev1"}, collect); err != nil || len(got) != 1 {
		t.Errorf("WatchRejections(dev1) = %+v, %v", got, err)
	}
	got = nil
	if err := c.WatchRejections(ctx, serviceclient.EventQuery{DeviceID: "dev2"}, collect); err != nil || len(got) != 0 {
		t.Errorf("WatchRejections(dev2) = %+v, %v; want none", got, err)
	}
	followed := make(chan error, 1)
	got = nil
	go func() {
		followed <- c.WatchRejections(ctx, serviceclient.EventQuery{Follow: true, Since: r.Time}, func(r iothub.Rejection) error {
			if got = append(got, r); len(got) == 2 {
				return serviceclient.ErrStop
			}
			return nil
		})
	}()
	st := hub.RejectionStream()
	ack, conn2, err := mqttraw.ConnectAndWait(ctx, hub.Addr(), hub.ClientTLS(), mqttraw.ConnectPacket{ClientID: "dev1",
		UserName: mqttraw.String(hub.HostName() + "/dev1/?api-version=" + iothub.DefaultAPIVersion), Password: mqttraw.String(tok.String()), CleanSession: true})
	if err != nil || ack.ReturnCode != mqttraw.ConnackNotAuthorized {
		t.Fatalf("second CONNECT: %v, %v", ack, err)
	}
	defer conn2.Close()
	if _, err := st.Next(ctx); err != nil {
		t.Fatal(err)
	}
	if err := <-followed; err != nil || len(got) != 2 || !cmp.Equal(got[0], rs[0]) {
		t.Errorf("WatchRejections(follow, since the first) = %+v, %v; want the first, then the second", got, err)
	}
}

func TestUnauthorized(t *testing.T) {
	t.Parallel()
	hub, _ := startHub(t)
	ctx := testCtx(t)

	// registryRead may read the registry, not write it.
	c := newClient(t, hub, policyConnectionString(t, hub, "registryRead"))
	if _, err := c.Devices(ctx); err != nil {
		t.Errorf("registryRead: Devices: %v", err)
	}
	_, err := c.CreateDevice(ctx, iothub.Device{DeviceID: "dev1"})
	e := wantErr(t, err, iothub.ErrUnauthorized, 401)
	if e.Reason != string(sas.ReasonPolicyPermission) || len(e.Hints) == 0 {
		t.Errorf("registryRead: reason %q, hints %q", e.Reason, e.Hints)
	}
	for _, h := range e.Hints {
		if strings.Contains(e.Message, h) {
			t.Errorf("message %q repeats hint %q (the hints are their own field)", e.Message, h)
		}
	}

	// Each request mints its token with the client's clock: two hours behind the hub's,
	// the token is expired, unless its lifetime covers the difference.
	var mu sync.Mutex
	skew := time.Duration(0)
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return time.Now().Add(skew) }
	setSkew := func(d time.Duration) { mu.Lock(); defer mu.Unlock(); skew = d }
	c = newClient(t, hub, hub.ServiceConnectionString(), serviceclient.WithNow(clock))
	if _, err := c.Devices(ctx); err != nil {
		t.Errorf("clock in time: %v", err)
	}
	setSkew(-2 * time.Hour)
	_, err = c.Devices(ctx)
	if e := wantErr(t, err, iothub.ErrUnauthorized, 401); e.Reason != string(sas.ReasonExpired) {
		t.Errorf("clock 2 h behind: reason %q, want %q", e.Reason, sas.ReasonExpired)
	}
	setSkew(0)
	if _, err := c.Devices(ctx); err != nil {
		t.Errorf("clock back in time: %v", err)
	}
	c = newClient(t, hub, hub.ServiceConnectionString(), serviceclient.WithNow(func() time.Time { return time.Now().Add(-2 * time.Hour) }),
		serviceclient.WithTokenTTL(3*time.Hour))
	if _, err := c.Devices(ctx); err != nil {
		t.Errorf("clock 2 h behind, tokens for 3 h: %v", err)
	}

	// A key the policy does not have.
	c = newClient(t, hub, "HostName="+hub.HostName()+";SharedAccessKeyName=iothubowner;SharedAccessKey=AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=")
	_, err = c.Devices(ctx)
	if e := wantErr(t, err, iothub.ErrUnauthorized, 401); e.Reason != string(sas.ReasonSignatureMismatch) {
		t.Errorf("wrong key: reason %q, want %q", e.Reason, sas.ReasonSignatureMismatch)
	}
	// A policy the hub does not have.
	c = newClient(t, hub, "HostName="+hub.HostName()+";SharedAccessKeyName=nosuch;SharedAccessKey=AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=")
	_, err = c.Devices(ctx)
	if e := wantErr(t, err, iothub.ErrUnauthorized, 401); e.Reason != string(sas.ReasonUnknownPolicy) {
		t.Errorf("unknown policy: reason %q, want %q", e.Reason, sas.ReasonUnknownPolicy)
	}
}

func TestRootCAs(t *testing.T) {
	t.Parallel()
	hub, c := startHub(t)
	ctx := testCtx(t)
	if _, err := c.Devices(ctx); err != nil {
		t.Errorf("trusted hub: %v", err)
	}
	// Without the hub's CA, the system roots do not trust its certificate.
	untrusted, err := serviceclient.New(hub.ServiceConnectionString(), serviceclient.WithURL(hub.ServiceURL()))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := untrusted.Devices(ctx); err == nil || !strings.Contains(err.Error(), "certificate") {
		t.Errorf("untrusted hub: %v, want a certificate error", err)
	}
	// Nor does another CA.
	other, err := certs.NewCA("another CA", time.Hour, time.Now(), nil)
	if err != nil {
		t.Fatal(err)
	}
	wrong := newClient(t, hub, hub.ServiceConnectionString(), serviceclient.WithRootCAs(other.Pool()))
	if _, err := wrong.Devices(ctx); err == nil || !strings.Contains(err.Error(), "certificate") {
		t.Errorf("hub signed by another CA: %v, want a certificate error", err)
	}
	// WithRootCAs sets the roots on WithTLSConfig's configuration.
	tc := newClient(t, hub, hub.ServiceConnectionString(), serviceclient.WithTLSConfig(&tls.Config{RootCAs: other.Pool(), MinVersion: tls.VersionTLS12}))
	if _, err := tc.Devices(ctx); err != nil {
		t.Errorf("WithTLSConfig and WithRootCAs(hub CA): %v", err)
	}
	// WithHTTPClient's client is used as is (the TLS options are ignored).
	tr := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: hub.CAPool, MinVersion: tls.VersionTLS12}}
	defer tr.CloseIdleConnections()
	hc := newClient(t, hub, hub.ServiceConnectionString(), serviceclient.WithRootCAs(other.Pool()), serviceclient.WithHTTPClient(&http.Client{Transport: tr}))
	if _, err := hc.Devices(ctx); err != nil {
		t.Errorf("WithHTTPClient: %v", err)
	}
}

func TestLimits(t *testing.T) {
	t.Parallel()
	hub, c := startHub(t)
	ctx := testCtx(t)
	st, err := c.Limits(ctx)
	if err != nil || st.Limits.D2C.On() || st.Limits.DailyMessages != 0 || st.QuotaDay == "" {
		t.Fatalf("Limits of a hub without limits = %+v, %v", st, err)
	}

	want := iothub.Limits{C2D: iothub.Throttle{PerSecond: 0.01, Burst: 1, Backlog: -1}, DailyMessages: 10, MeterSize: 512}
	st, err = c.SetLimits(ctx, want)
	if err != nil {
		t.Fatal(err)
	}
	if st.Limits != want || hub.Limits() != want {
		t.Errorf("SetLimits answered %+v, the hub holds %+v; want %+v", st.Limits, hub.Limits(), want)
	}
	// In force at once: the burst of one C2D send, then 429002 with Retry-After; the quota
	// counts the sent message in 512-byte chunks (a 600-byte payload is 2).
	create(t, c, iothub.Device{DeviceID: "dev1"})
	if _, err := c.SendC2D(ctx, "dev1", iothub.C2DMessage{Payload: []byte(strings.Repeat("x", 600))}); err != nil {
		t.Fatalf("first SendC2D under the new limits: %v", err)
	}
	_, err = c.SendC2D(ctx, "dev1", iothub.C2DMessage{Payload: []byte("2")})
	if e := wantErr(t, err, iothub.ErrThrottleBacklog, 429); e.RetryAfter < time.Second {
		t.Errorf("429 Retry-After %v, want whole seconds", e.RetryAfter)
	}
	if st, err := c.Limits(ctx); err != nil || st.QuotaUsed != 2 {
		t.Errorf("after one 600-byte C2D message: quota used %d, %v; want 2 (512-byte meter)", st.QuotaUsed, err)
	}

	// Refused: a negative rate. Nothing changes.
	_, err = c.SetLimits(ctx, iothub.Limits{D2C: iothub.Throttle{PerSecond: -1}})
	if e := wantErr(t, err, iothub.ErrInvalidArgument, 400); !strings.Contains(e.Message, "d2c: perSecond -1") {
		t.Errorf("negative rate refused with %q, want the field named", e.Message)
	}
	if hub.Limits() != want {
		t.Errorf("a refused PUT changed the limits to %+v", hub.Limits())
	}

	// The zero Limits removes them: the next C2D send goes through at once.
	if _, err := c.SetLimits(ctx, iothub.Limits{}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.SendC2D(ctx, "dev1", iothub.C2DMessage{Payload: []byte("3")}); err != nil {
		t.Errorf("SendC2D after the limits were removed: %v", err)
	}
}

func TestHubClock(t *testing.T) {
	t.Parallel()
	hub, _ := startHub(t)
	ctx := testCtx(t)
	local := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	hc, err := serviceclient.NewHubClock(hub.ServiceURL(), serviceclient.WithRootCAs(hub.CAPool), serviceclient.WithNow(func() time.Time { return local }))
	if err != nil {
		t.Fatal(err)
	}
	if err := hc.Sync(ctx); err != nil || hc.Offset() != 0 || !hc.Now().Equal(local) {
		t.Fatalf("Sync of an unmoved hub: offset %v, now %v, %v", hc.Offset(), hc.Now(), err)
	}
	hub.Clock().Advance(55 * time.Minute)
	if err := hc.Sync(ctx); err != nil || hc.Offset() != 55*time.Minute || !hc.Now().Equal(local.Add(55*time.Minute)) {
		t.Errorf("after the hub's clock advanced 55m: offset %v, now %v, %v", hc.Offset(), hc.Now(), err)
	}

	// Follow keeps up with later moves.
	fctx, stop := context.WithCancel(ctx)
	defer stop()
	go hc.Follow(fctx, 10*time.Millisecond)
	hub.Clock().Set(local.Add(-time.Hour)) // moved back: the offset is measured from the hub's real clock
	testutil.Eventually(t, "Follow taking the new offset", func() bool { return hc.Offset() != 55*time.Minute })
	if want := hub.Clock().Offset(); hc.Offset().Round(time.Millisecond) != want.Round(time.Millisecond) {
		t.Errorf("followed offset %v, want the hub's %v", hc.Offset(), want)
	}
	stop()

	// Not a fakehub clock: a clear error, no offset.
	bad, err := serviceclient.NewHubClock(hub.ServiceURL()+"/devices", serviceclient.WithRootCAs(hub.CAPool))
	if err != nil {
		t.Fatal(err)
	}
	if err := bad.Sync(ctx); err == nil || !strings.Contains(err.Error(), "is it a fakehub's service API?") || bad.Err() == nil {
		t.Errorf("Sync of %s/devices/hubkit/clock = %v, want an error naming the URL", hub.ServiceURL(), err)
	}
	if bad.Offset() != 0 {
		t.Errorf("offset %v after a failed Sync, want 0", bad.Offset())
	}
	if _, err := serviceclient.NewHubClock("localhost:8443"); err == nil {
		t.Error("NewHubClock(localhost:8443) = nil error, want one asking for https://host:port")
	}
}
