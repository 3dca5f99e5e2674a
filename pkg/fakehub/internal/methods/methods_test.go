package methods

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hubkit/hubkit/pkg/iothub"
)

var dev1 = iothub.Identity{DeviceID: "dev1"}

// fakeTimers hands out timers that fire only when the test says so. started receives the
// duration of each timer as Invoke starts waiting, which is the test's signal that the request
// was sent and the call is in its select.
type fakeTimers struct {
	started chan time.Duration
	mu      sync.Mutex
	fire    []chan time.Time
}

func newFakeTimers() *fakeTimers { return &fakeTimers{started: make(chan time.Duration, 100)} }

func (f *fakeTimers) NewTimer(d time.Duration) (<-chan time.Time, func() bool) {
	c := make(chan time.Time, 1)
	f.mu.Lock()
	f.fire = append(f.fire, c)
	f.mu.Unlock()
	f.started <- d
	return c, func() bool { return true }
}

func (f *fakeTimers) FireAll() {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, c := range f.fire {
		c <- time.Time{}
	}
	f.fire = nil
}

// newRegistry returns a registry whose Send forwards requests to the returned channel.
func newRegistry(t *testing.T, timers *fakeTimers) (*Registry, <-chan Request) {
	t.Helper()
	sent := make(chan Request, 100)
	r, err := New(Options{
		Send:     func(_ context.Context, req Request) error { sent <- req; return nil },
		NewTimer: timers.NewTimer,
		Now:      func() time.Time { return time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC) },
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	return r, sent
}

type invokeResult struct {
	res iothub.MethodResult
	err error
}

func goInvoke(ctx context.Context, r *Registry, id iothub.Identity, name, payload string, timeout time.Duration) <-chan invokeResult {
	ch := make(chan invokeResult, 1)
	go func() {
		res, err := r.Invoke(ctx, id, name, []byte(payload), timeout)
		ch <- invokeResult{res, err}
	}()
	return ch
}

func wantCode(t *testing.T, err error, code iothub.ErrorCode) *iothub.Error {
	t.Helper()
	var e *iothub.Error
	if !errors.As(err, &e) {
		t.Fatalf("error = %v, want *iothub.Error with code %v", err, code)
	}
	if e.Code != code || e.Status() != code.HTTPStatus() {
		t.Fatalf("error = %+v, want code %v status %d", e, code, code.HTTPStatus())
	}
	return e
}

func TestInvokeResponse(t *testing.T) {
	timers := newFakeTimers()
	r, sent := newRegistry(t, timers)
	done := goInvoke(context.Background(), r, dev1, "reboot", `{"delay":5}`, 0)
	req := <-sent
	if want := (Request{Identity: dev1, Name: "reboot", RID: "1", Payload: []byte(`{"delay":5}`)}); req.Identity != want.Identity ||
		req.Name != want.Name || req.RID != want.RID || string(req.Payload) != string(want.Payload) {
		t.Fatalf("sent %+v, want %+v", req, want)
	}
	if d := <-timers.started; d != DefaultTimeout {
		t.Errorf("timer = %v, want the default %v", d, DefaultTimeout)
	}
	if got := r.Pending(); len(got) != 1 || got[0].RID != "1" || got[0].Timeout != DefaultTimeout {
		t.Errorf("Pending() = %+v, want one call with rid 1", got)
	}
	if !r.Respond(dev1, "1", 201, []byte(`{"ok":true}`)) {
		t.Fatal("Respond(dev1, 1) = false, want true")
	}
	got := <-done
	if got.err != nil {
		t.Fatalf("Invoke error = %v", got.err)
	}
	b, _ := json.Marshal(got.res)
	if want := `{"status":201,"payload":{"ok":true}}`; string(b) != want {
		t.Errorf("result = %s, want %s", b, want)
	}
	if r.Respond(dev1, "1", 200, nil) {
		t.Error("second Respond(dev1, 1) = true, want false (call already ended)")
	}
	if n := len(r.Pending()); n != 0 {
		t.Errorf("Pending() has %d calls after the answer, want 0", n)
	}
}

func TestAnswerBeforeSendReturns(t *testing.T) {
	var r *Registry
	r, err := New(Options{Send: func(_ context.Context, req Request) error {
		r.Respond(req.Identity, req.RID, 200, nil)
		return nil
	}})
	if err != nil {
		t.Fatal(err)
	}
	res, err := r.Invoke(context.Background(), dev1, "m", nil, time.Minute)
	if err != nil || res.Status != 200 || string(res.Payload) != "null" {
		t.Fatalf("Invoke = %+v, %v; want status 200, payload null", res, err)
	}
}

func TestInvokeTimeout(t *testing.T) {
	timers := newFakeTimers()
	r, sent := newRegistry(t, timers)
	done := goInvoke(context.Background(), r, dev1, "slow", "", 5*time.Second)
	req := <-sent
	if d := <-timers.started; d != 5*time.Second {
		t.Errorf("timer = %v, want 5s", d)
	}
	timers.FireAll()
	got := <-done
	wantCode(t, got.err, iothub.CodeGatewayTimeout)
	if r.Respond(dev1, req.RID, 200, nil) {
		t.Error("Respond after the time-out = true, want false")
	}
}

func TestInvokeOffline(t *testing.T) {
	offline := errors.New("dev1 is not connected")
	r, err := New(Options{Send: func(context.Context, Request) error { return offline }})
	if err != nil {
		t.Fatal(err)
	}
	_, err = r.Invoke(context.Background(), dev1, "m", nil, 0)
	wantCode(t, err, iothub.CodeDeviceNotOnline)
	if !errors.Is(err, offline) {
		t.Errorf("errors.Is(%v, send error) = false, want true", err)
	}
	if n := len(r.Pending()); n != 0 {
		t.Errorf("Pending() has %d calls after a failed send, want 0", n)
	}
}

func TestInvokeContextCanceled(t *testing.T) {
	timers := newFakeTimers()
	r, sent := newRegistry(t, timers)
	ctx, cancel := context.WithCancel(context.Background())
	done := goInvoke(ctx, r, dev1, "m", "", 0)
	req := <-sent
	<-timers.started
	cancel()
	if got := <-done; !errors.Is(got.err, context.Canceled) {
		t.Fatalf("Invoke error = %v, want context.Canceled", got.err)
	}
	if r.Respond(dev1, req.RID, 200, nil) {
		t.Error("Respond after cancellation = true, want false")
	}
}

func TestRespondIgnored(t *testing.T) {
	timers := newFakeTimers()
	r, sent := newRegistry(t, timers)
	done := goInvoke(context.Background(), r, dev1, "m", "", 0)
	req := <-sent
	tests := []struct {
		name string
		id   iothub.Identity
		rid  string
	}{
		{"unknown-rid", dev1, "ff"},
		{"empty-rid", dev1, ""},
		{"other-device", iothub.Identity{DeviceID: "dev2"}, req.RID},
		{"module-of-the-device", iothub.Identity{DeviceID: "dev1", ModuleID: "m"}, req.RID},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if r.Respond(tt.id, tt.rid, 200, nil) {
				t.Errorf("Respond(%v, %q) = true, want false", tt.id, tt.rid)
			}
		})
	}
	if !r.Respond(dev1, req.RID, 200, nil) {
		t.Fatal("Respond with the right rid = false")
	}
	if got := <-done; got.err != nil || got.res.Status != 200 {
		t.Fatalf("Invoke = %+v, %v", got.res, got.err)
	}
}

func TestRIDsAreLowerCaseHexOfACounter(t *testing.T) {
	var rids []string
	r, err := New(Options{Send: func(_ context.Context, req Request) error {
		rids = append(rids, req.RID)
		return errors.New("offline")
	}})
	if err != nil {
		t.Fatal(err)
	}
	for range 17 {
		r.Invoke(context.Background(), dev1, "m", nil, 0)
	}
	want := "1 2 3 4 5 6 7 8 9 a b c d e f 10 11"
	if got := strings.Join(rids, " "); got != want {
		t.Errorf("rids = %s, want %s", got, want)
	}
}

func TestValidateRequest(t *testing.T) {
	big := `"` + strings.Repeat("x", MaxPayloadSize-2) + `"`
	tests := []struct {
		name    string
		method  string
		payload string
		timeout time.Duration
		want    time.Duration // 0: error expected
	}{
		{"default-timeout", "m", "", 0, DefaultTimeout},
		{"min-timeout", "m", "", 5 * time.Second, 5 * time.Second},
		{"below-min-timeout", "m", "", 5*time.Second - time.Millisecond, 0},
		{"max-timeout", "m", "", 300 * time.Second, 300 * time.Second},
		{"above-max-timeout", "m", "", 301 * time.Second, 0},
		{"negative-timeout", "m", "", -time.Second, 0},
		{"empty-name", "", "", 0, 0},
		{"slash-in-name", "a/b", "", 0, 0},
		{"wildcard-in-name", "a#", "", 0, 0},
		{"json-object", "m", `{"a":1}`, 0, DefaultTimeout},
		{"json-scalar", "m", `42`, 0, DefaultTimeout},
		{"not-json", "m", `hello`, 0, 0},
		{"payload-at-limit", "m", big, 0, DefaultTimeout},
		{"payload-over-limit", "m", big + " ", 0, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ValidateRequest(tt.method, []byte(tt.payload), tt.timeout)
			if tt.want == 0 {
				wantCode(t, err, iothub.CodeArgumentInvalid)
				return
			}
			if err != nil || got != tt.want {
				t.Errorf("ValidateRequest(%q, %d bytes, %v) = %v, %v; want %v, nil", tt.method, len(tt.payload), tt.timeout, got, err, tt.want)
			}
		})
	}
}

func TestInvalidRequestIsNotSent(t *testing.T) {
	r, err := New(Options{Send: func(context.Context, Request) error {
		t.Error("Send called for an invalid request")
		return nil
	}})
	if err != nil {
		t.Fatal(err)
	}
	_, err = r.Invoke(context.Background(), dev1, "m", []byte("{"), 0)
	wantCode(t, err, iothub.CodeArgumentInvalid)
}

func TestResponsePayload(t *testing.T) {
	tests := []struct {
		name    string
		payload string
		want    string
		code    iothub.ErrorCode
	}{
		{"empty-is-null", "", "null", 0},
		{"json-kept", `{"a":[1,2]}`, `{"a":[1,2]}`, 0},
		{"json-string-kept", `"done"`, `"done"`, 0},
		{"text-wrapped-as-string", `done "ok"`, `"done \"ok\""`, 0},
		{"over-limit", strings.Repeat("1", MaxPayloadSize+1), "", iothub.CodeMessageTooLarge},
		{"at-limit", strings.Repeat("1", MaxPayloadSize), strings.Repeat("1", MaxPayloadSize), 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var r *Registry
			r, _ = New(Options{Send: func(_ context.Context, req Request) error {
				r.Respond(req.Identity, req.RID, 200, []byte(tt.payload))
				return nil
			}})
			res, err := r.Invoke(context.Background(), dev1, "m", nil, 0)
			if tt.code != 0 {
				wantCode(t, err, tt.code)
				return
			}
			if err != nil || string(res.Payload) != tt.want {
				t.Errorf("payload %q gave %s, %v; want %s", tt.payload, res.Payload, err, tt.want)
			}
		})
	}
}

func TestConcurrentInvocations(t *testing.T) {
	const n = 40
	var r *Registry
	r, err := New(Options{Send: func(_ context.Context, req Request) error {
		go func() { // the device answers from its own goroutine, echoing the request
			var status int
			json.Unmarshal(req.Payload, &status)
			r.Respond(req.Identity, req.RID, status, req.Payload)
		}()
		return nil
	}})
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i := range n {
		wg.Go(func() {
			id := iothub.Identity{DeviceID: fmt.Sprintf("dev%d", i%4)}
			res, err := r.Invoke(context.Background(), id, "echo", []byte(fmt.Sprint(200+i)), 0)
			if err != nil || res.Status != 200+i || string(res.Payload) != fmt.Sprint(200+i) {
				errs <- fmt.Errorf("call %d: %+v, %v", i, res, err)
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

func TestDisconnectedAndClose(t *testing.T) {
	timers := newFakeTimers()
	r, sent := newRegistry(t, timers)
	dev2 := iothub.Identity{DeviceID: "dev2"}
	a := goInvoke(context.Background(), r, dev1, "m", "", 0)
	<-sent
	<-timers.started
	b := goInvoke(context.Background(), r, dev2, "m", "", 0)
	<-sent
	<-timers.started
	if n := r.Disconnected(dev1); n != 1 {
		t.Errorf("Disconnected(dev1) = %d, want 1", n)
	}
	wantCode(t, (<-a).err, iothub.CodeDeviceConnectionClosedRemotely)
	r.Close()
	got := (<-b).err
	wantCode(t, got, iothub.CodeServiceUnavailable)
	if !errors.Is(got, ErrClosed) {
		t.Errorf("errors.Is(%v, ErrClosed) = false", got)
	}
	_, err := r.Invoke(context.Background(), dev1, "m", nil, 0)
	wantCode(t, err, iothub.CodeServiceUnavailable)
}

func TestNewRequiresSend(t *testing.T) {
	if _, err := New(Options{}); err == nil {
		t.Error("New(Options{}) succeeded, want an error")
	}
}
