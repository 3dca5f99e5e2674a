package serviceclient_test

import (
	"context"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/hubkit/hubkit/pkg/fakehub/serviceclient"
	"github.com/hubkit/hubkit/pkg/fakehub/serviceclient/servicetest"
	"github.com/hubkit/hubkit/pkg/sas"
)

func newServer(t *testing.T) (*servicetest.Server, *serviceclient.Client) {
	t.Helper()
	s := servicetest.NewServer(servicetest.Options{})
	t.Cleanup(s.Close)
	c, err := s.Client("iothubowner")
	if err != nil {
		t.Fatal(err)
	}
	return s, c
}

func wantCode(t *testing.T, err error, status int, code string) *serviceclient.Error {
	t.Helper()
	var e *serviceclient.Error
	if !errors.As(err, &e) {
		t.Fatalf("err = %v, want *serviceclient.Error %d %s", err, status, code)
	}
	if e.StatusCode != status || e.Code != code || serviceclient.ErrorCode(err) != code {
		t.Errorf("err = %d %s (%v), want %d %s", e.StatusCode, e.Code, err, status, code)
	}
	if len(e.TrackingID) != 32 {
		t.Errorf("TrackingID = %q", e.TrackingID)
	}
	return e
}

func TestNew(t *testing.T) {
	for _, tc := range []struct{ name, cs, opt, want string }{
		{"device-string", "HostName=h;DeviceId=d;SharedAccessKey=AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=", "", "need a service (shared access policy) connection string"},
		{"garbage", "nonsense", "", "connection string"},
		{"bad-url", "HostName=h;SharedAccessKeyName=p;SharedAccessKey=AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=", "ftp://x", "want https://host:port"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var opts []serviceclient.Option
			if tc.opt != "" {
				opts = append(opts, serviceclient.WithURL(tc.opt))
			}
			_, err := serviceclient.New(tc.cs, opts...)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("New(%q) = %v, want error containing %q", tc.cs, err, tc.want)
			}
			if err != nil && strings.Contains(err.Error(), "AAAA") {
				t.Errorf("error echoes the key: %v", err)
			}
		})
	}
	c, err := serviceclient.New("HostName=myhub.local;SharedAccessKeyName=iothubowner;SharedAccessKey=AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=")
	if err != nil || c.URL() != "https://myhub.local:8443" || c.HostName() != "myhub.local" {
		t.Errorf("default URL = %v %v", c, err)
	}
}

func TestRegistry(t *testing.T) {
	ctx := context.Background()
	_, c := newServer(t)
	d, err := c.CreateDevice(ctx, serviceclient.Device{DeviceID: "dev$'(1)"})
	if err != nil {
		t.Fatal(err)
	}
	if d.DeviceID != "dev$'(1)" || d.Status != serviceclient.StatusEnabled || d.PrimaryKey == "" || d.ETag == "" {
		t.Errorf("created = %+v", d)
	}
	_, err = c.CreateDevice(ctx, serviceclient.Device{DeviceID: "dev$'(1)"})
	wantCode(t, err, 409, serviceclient.CodeDeviceAlreadyExists)

	d2, err := c.SetDeviceStatus(ctx, "dev$'(1)", serviceclient.StatusDisabled, "maintenance")
	if err != nil || d2.Status != "disabled" || d2.StatusReason != "maintenance" || d2.PrimaryKey != d.PrimaryKey {
		t.Errorf("disable = %+v, %v", d2, err)
	}
	_, err = c.UpdateDevice(ctx, d, d.ETag) // stale etag
	wantCode(t, err, 412, serviceclient.CodePreconditionFailed)

	m, err := c.CreateDevice(ctx, serviceclient.Device{DeviceID: "dev$'(1)", ModuleID: "mod/x"})
	if err == nil {
		t.Errorf("module id with '/' accepted: %+v", m)
	}
	if _, err := c.CreateDevice(ctx, serviceclient.Device{DeviceID: "dev$'(1)", ModuleID: "mod1"}); err != nil {
		t.Fatal(err)
	}
	ms, err := c.Modules(ctx, "dev$'(1)")
	if err != nil || len(ms) != 1 || ms[0].ModuleID != "mod1" {
		t.Errorf("Modules = %+v, %v", ms, err)
	}
	if got, err := c.Module(ctx, "dev$'(1)", "mod1"); err != nil || got.ModuleID != "mod1" {
		t.Errorf("Module = %+v, %v", got, err)
	}
	if err := c.DeleteModule(ctx, "dev$'(1)", "mod1"); err != nil {
		t.Error(err)
	}
	ds, err := c.Devices(ctx)
	if err != nil || len(ds) != 1 {
		t.Errorf("Devices = %+v, %v", ds, err)
	}
	if err := c.DeleteDevice(ctx, "dev$'(1)"); err != nil {
		t.Error(err)
	}
	_, err = c.Device(ctx, "dev$'(1)")
	wantCode(t, err, 404, serviceclient.CodeDeviceNotFound)
}

func TestTwinAndMethods(t *testing.T) {
	ctx := context.Background()
	s, c := newServer(t)
	if _, err := c.CreateDevice(ctx, serviceclient.Device{DeviceID: "dev1"}); err != nil {
		t.Fatal(err)
	}
	tw, err := c.Twin(ctx, "dev1")
	if err != nil || tw.Version != 1 || string(tw.Desired) != `{"$version":1}` {
		t.Fatalf("Twin = %+v, %v", tw, err)
	}
	tw, err = c.UpdateTwin(ctx, "dev1", serviceclient.TwinPatch{Tags: json.RawMessage(`{"site":"lab"}`), Desired: json.RawMessage(`{"fw":"2.0"}`), IfMatch: tw.ETag})
	if err != nil || string(tw.Tags) != `{"site":"lab"}` || !strings.Contains(string(tw.Desired), `"fw":"2.0"`) {
		t.Errorf("UpdateTwin = %+v, %v", tw, err)
	}
	_, err = c.UpdateTwin(ctx, "dev1", serviceclient.TwinPatch{Tags: json.RawMessage(`{}`), IfMatch: "AAAAAAAAAAE="})
	wantCode(t, err, 412, serviceclient.CodePreconditionFailed)

	_, err = c.InvokeMethod(ctx, "dev1", serviceclient.MethodCall{Name: "reboot"})
	wantCode(t, err, 404, serviceclient.CodeDeviceNotOnline)
	s.SetOnline("dev1", true)
	_, err = c.InvokeMethod(ctx, "dev1", serviceclient.MethodCall{Name: "slow", ResponseTimeout: 5 * time.Second})
	wantCode(t, err, 504, serviceclient.CodeGatewayTimeout)
	s.HandleMethod("reboot", 201, json.RawMessage(`{"in":"5s"}`))
	res, err := c.InvokeMethod(ctx, "dev1", serviceclient.MethodCall{Name: "reboot", Payload: json.RawMessage(`{"delay":5}`), ResponseTimeout: 7 * time.Second, ConnectTimeout: time.Second})
	if err != nil || res.Status != 201 || string(res.Payload) != `{"in":"5s"}` {
		t.Errorf("InvokeMethod = %+v, %v", res, err)
	}
	want := serviceclient.MethodCall{Name: "reboot", Payload: json.RawMessage(`{"delay":5}`), ResponseTimeout: 7 * time.Second, ConnectTimeout: time.Second}
	calls := s.MethodCalls()
	if diff := cmp.Diff(want, calls[len(calls)-1]); diff != "" {
		t.Errorf("call the hub saw (-want +got):\n%s", diff)
	}
	_, err = c.InvokeMethod(ctx, "dev1", serviceclient.MethodCall{Name: "x", ResponseTimeout: time.Second})
	wantCode(t, err, 400, serviceclient.CodeArgumentInvalid)
}

func TestSendC2D(t *testing.T) {
	ctx := context.Background()
	s, c := newServer(t)
	if _, err := c.CreateDevice(ctx, serviceclient.Device{DeviceID: "dev1"}); err != nil {
		t.Fatal(err)
	}
	msg := serviceclient.Message{
		MessageID: "m1", CorrelationID: "c1", UserID: "u", Ack: "full", Expiry: time.Date(2031, 1, 1, 0, 0, 0, 0, time.UTC),
		ContentType: "application/json", ContentEncoding: "utf-8",
		Properties: map[string]string{"alertLevel": "high", "with space&amp": "a=b"}, Body: []byte(`{"on":true}`),
	}
	st, err := c.SendC2D(ctx, "dev1", msg)
	if err != nil || st.MessageID != "m1" || st.State != "queued" {
		t.Fatalf("SendC2D = %+v, %v", st, err)
	}
	msg.To = "/devices/dev1/messages/deviceBound"
	if diff := cmp.Diff(msg, s.C2DMessages("dev1")[0]); diff != "" {
		t.Errorf("message the hub saw (-want +got):\n%s", diff)
	}
	if got, err := c.MessageState(ctx, "dev1", "m1"); err != nil || got.State != "queued" {
		t.Errorf("MessageState = %+v, %v", got, err)
	}
	if sts, err := c.MessageStates(ctx, "dev1"); err != nil || len(sts) != 1 {
		t.Errorf("MessageStates = %+v, %v", sts, err)
	}
	_, err = c.MessageState(ctx, "dev1", "nope")
	wantCode(t, err, 404, serviceclient.CodeMessageNotFound)
	s.SetQueueLimit(1)
	_, err = c.SendC2D(ctx, "dev1", serviceclient.Message{Body: []byte("x")})
	wantCode(t, err, 403, serviceclient.CodeQueueDepthExceeded)

	// Purge: the queued message (ack full) is purged and feedback says so.
	if n, err := c.PurgeC2D(ctx, "dev1"); err != nil || n != 1 {
		t.Errorf("PurgeC2D = %d, %v", n, err)
	}
	if st, _ := c.MessageState(ctx, "dev1", "m1"); st.State != "purged" {
		t.Errorf("state after purge = %+v", st)
	}
	fb, err := c.Feedback(ctx)
	if err != nil || len(fb) != 1 || fb[0].OriginalMessageID != "m1" || fb[0].StatusCode != "Purged" || fb[0].DeviceID != "dev1" {
		t.Errorf("Feedback = %+v, %v", fb, err)
	}
	_, err = c.PurgeC2D(ctx, "nodev")
	wantCode(t, err, 404, serviceclient.CodeDeviceNotFound)
}

func TestEvents(t *testing.T) {
	s, c := newServer(t)
	s.Publish(serviceclient.Event{DeviceID: "dev1", Body: []byte(`{"t":21.5}`), Properties: map[string]string{"k": "v"}})
	s.Publish(serviceclient.Event{DeviceID: "dev2", Body: []byte{0xff, 0x00}})
	var got []serviceclient.Event
	err := c.Events(context.Background(), serviceclient.EventQuery{}, func(e serviceclient.Event) error {
		got = append(got, e)
		return nil
	})
	if err != nil || len(got) != 2 {
		t.Fatalf("Events = %d events, %v", len(got), err)
	}
	if got[0].DeviceID != "dev1" || string(got[0].Payload) != `{"t":21.5}` || string(got[0].Body) != `{"t":21.5}` || got[0].Properties["k"] != "v" || got[0].Topic != "devices/dev1/messages/events/" {
		t.Errorf("event 0 = %+v", got[0])
	}
	if string(got[1].Body) != "\xff\x00" || got[1].Payload != nil {
		t.Errorf("binary event = %+v", got[1])
	}

	// Follow: events published after the call arrive; ErrStop ends it.
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var wg sync.WaitGroup
	seen := make(chan serviceclient.Event)
	wg.Add(1)
	go func() {
		defer wg.Done()
		n := 0
		err := c.Events(ctx, serviceclient.EventQuery{DeviceID: "dev3", Follow: true}, func(e serviceclient.Event) error {
			seen <- e
			if n++; n == 2 {
				return serviceclient.ErrStop
			}
			return nil
		})
		if err != nil {
			t.Errorf("follow Events = %v", err)
		}
		close(seen)
	}()
	for i := range 2 {
		s.Publish(serviceclient.Event{DeviceID: "dev3", Body: fmt.Appendf(nil, `{"i":%d}`, i)})
		if e := <-seen; string(e.Body) != fmt.Sprintf(`{"i":%d}`, i) {
			t.Errorf("followed event %d = %s", i, e.Body)
		}
	}
	wg.Wait()

	// A callback error ends the stream and is returned.
	boom := errors.New("boom")
	if err := c.Events(context.Background(), serviceclient.EventQuery{}, func(serviceclient.Event) error { return boom }); !errors.Is(err, boom) {
		t.Errorf("Events = %v, want boom", err)
	}
	// Count.
	n := 0
	if err := c.Events(context.Background(), serviceclient.EventQuery{Count: 1}, func(serviceclient.Event) error { n++; return nil }); err != nil || n != 1 {
		t.Errorf("Count 1: %d events, %v", n, err)
	}
}

func TestRejections(t *testing.T) {
	s, c := newServer(t)
	at := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	s.AddRejection(serviceclient.Rejection{Time: at, ClientID: "dev1", DeviceID: "dev1", Reason: "expired", Hints: []string{"h"}})
	rs, err := c.Rejections(context.Background())
	want := []serviceclient.Rejection{{Time: at, ClientID: "dev1", DeviceID: "dev1", Reason: "expired", Hints: []string{"h"}}}
	if err != nil || !cmp.Equal(want, rs) {
		t.Errorf("Rejections = %+v, %v", rs, err)
	}
}

func TestUnauthorized(t *testing.T) {
	ctx := context.Background()
	s, _ := newServer(t)
	// registryRead cannot write.
	c, _ := s.Client("registryRead")
	_, err := c.CreateDevice(ctx, serviceclient.Device{DeviceID: "dev1"})
	e := wantCode(t, err, 401, serviceclient.CodeUnauthorized)
	if e.Reason != string(sas.ReasonPolicyPermission) || len(e.Hints) == 0 {
		t.Errorf("reason %q hints %q", e.Reason, e.Hints)
	}
	// A token minted by a clock two hours behind the hub's is expired.
	c, _ = serviceclient.New(s.ConnectionString("iothubowner"), serviceclient.WithURL(s.URL()), serviceclient.WithHTTPClient(s.HTTPClient()),
		serviceclient.WithNow(func() time.Time { return time.Now().Add(-2 * time.Hour) }))
	_, err = c.Devices(ctx)
	if e := wantCode(t, err, 401, serviceclient.CodeUnauthorized); e.Reason != string(sas.ReasonExpired) {
		t.Errorf("reason = %q", e.Reason)
	}
	// Wrong key.
	c, _ = serviceclient.New("HostName=localhost;SharedAccessKeyName=iothubowner;SharedAccessKey=AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=",
		serviceclient.WithURL(s.URL()), serviceclient.WithHTTPClient(s.HTTPClient()))
	_, err = c.Devices(ctx)
	if e := wantCode(t, err, 401, serviceclient.CodeUnauthorized); e.Reason != string(sas.ReasonSignatureMismatch) {
		t.Errorf("reason = %q", e.Reason)
	}
}

func TestRootCAs(t *testing.T) {
	s := servicetest.NewServer(servicetest.Options{})
	defer s.Close()
	// Without trusting the test certificate the TLS handshake fails.
	c, _ := serviceclient.New(s.ConnectionString("iothubowner"), serviceclient.WithURL(s.URL()))
	if _, err := c.Devices(context.Background()); err == nil || !strings.Contains(err.Error(), "certificate") {
		t.Errorf("untrusted server: %v", err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(s.Certificate())
	c, _ = serviceclient.New(s.ConnectionString("iothubowner"), serviceclient.WithURL(s.URL()), serviceclient.WithRootCAs(pool))
	if _, err := c.Devices(context.Background()); err != nil {
		t.Errorf("trusted server: %v", err)
	}
}
