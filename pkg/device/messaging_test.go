package device

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	mqtt "github.com/mochi-mqtt/server/v2"

	"github.com/hubkit/hubkit/internal/testutil"
	"github.com/hubkit/hubkit/pkg/iothub"
)

func TestSendEvent(t *testing.T) {
	tests := []struct {
		name      string
		event     Event
		wantTopic string
	}{
		{
			name:      "bare",
			event:     Event{Payload: []byte(`{"t":1}`)},
			wantTopic: "devices/dev1/messages/events/",
		},
		{
			name: "system-and-application-properties",
			event: Event{
				Payload: []byte(`{"t":2}`), MessageID: "m-1", CorrelationID: "c 1", ContentType: "application/json",
				ContentEncoding: "utf-8", CreationTime: time.Date(2021, 4, 21, 11, 30, 16, 0, time.UTC),
				Properties: iothub.Properties{{Key: "zone", Value: "b/2"}, {Key: "alert", Value: "true"}},
			},
			wantTopic: "devices/dev1/messages/events/%24.mid=m-1&%24.cid=c%201&%24.ct=application%2Fjson&%24.ce=utf-8" +
				"&%24.ctime=2021-04-21T11%3A30%3A16Z&zone=b%2F2&alert=true",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := newPeer(t)
			c := connect(t, p.config())
			if err := c.SendEvent(context.Background(), tt.event); err != nil {
				t.Fatalf("SendEvent: %v", err)
			}
			pubs := p.publishes()
			if len(pubs) != 1 {
				t.Fatalf("peer saw %d publishes, want 1", len(pubs))
			}
			got := pubs[0]
			if got.TopicName != tt.wantTopic {
				t.Errorf("topic = %q\nwant    %q", got.TopicName, tt.wantTopic)
			}
			if got.FixedHeader.Qos != 1 || string(got.Payload) != string(tt.event.Payload) {
				t.Errorf("QoS %d payload %q, want 1 %q", got.FixedHeader.Qos, got.Payload, tt.event.Payload)
			}
			_, props, err := iothub.ParseTelemetryTopic(got.TopicName)
			if err != nil {
				t.Fatalf("the hub's parser refuses the topic: %v", err)
			}
			if tt.event.MessageID != "" {
				if v, _ := props.Get(iothub.PropMessageID); v != tt.event.MessageID {
					t.Errorf("$.mid = %q, want %q", v, tt.event.MessageID)
				}
			}
		})
	}
}

func TestSendEventResentAfterLoss(t *testing.T) {
	p := newPeer(t)
	p.dropNext = "devices/dev1/messages/events/"
	c := connect(t, p.config())
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := c.SendEvent(ctx, Event{Payload: []byte("important")}); err != nil {
		t.Fatalf("SendEvent across a lost connection: %v", err)
	}
	var n int
	for _, pk := range p.publishes() {
		if string(pk.Payload) == "important" {
			n++
		}
	}
	if n != 2 || len(p.connectRecords()) != 2 {
		t.Errorf("peer saw the message %d times over %d connections, want 2 over 2 (resent on the new connection)", n, len(p.connectRecords()))
	}
}

func TestTwinConnectionLost(t *testing.T) {
	p := newPeer(t)
	c := connect(t, p.config())
	p.dropNext = "$iothub/twin/GET/"
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := c.GetTwin(ctx); !errors.Is(err, ErrConnectionLost) {
		t.Fatalf("GetTwin across a lost connection = %v, want ErrConnectionLost", err)
	}
	if _, err := c.GetTwin(ctx); err != nil { // after the reconnect
		t.Fatalf("GetTwin after the reconnect: %v", err)
	}
}

func TestSendEventTooLarge(t *testing.T) {
	p := newPeer(t)
	c := connect(t, p.config())
	err := c.SendEvent(context.Background(), Event{Payload: make([]byte, iothub.MaxTelemetrySize), Properties: iothub.Properties{{Key: "k", Value: "v"}}})
	if !errors.Is(err, ErrTooLarge) {
		t.Fatalf("SendEvent = %v, want ErrTooLarge", err)
	}
}

func TestC2DAckedAfterHandler(t *testing.T) {
	p := newPeer(t)
	got := make(chan C2DMessage, 1)
	release := make(chan struct{})
	connect(t, p.config(), func(c *Client) {
		c.OnC2D(func(ctx context.Context, m C2DMessage) {
			got <- m
			<-release
		})
	})
	topic := iothub.C2DTopic(iothub.Identity{DeviceID: "dev1"}, iothub.Properties{
		{Key: iothub.PropMessageID, Value: "mid-1"},
		{Key: iothub.PropTo, Value: "/devices/dev1/messages/devicebound"},
		{Key: iothub.PropCorrelationID, Null: true},
		{Key: iothub.PropAck, Value: "full"},
		{Key: "color", Value: "red blue"},
	})
	id := p.write(topic, 1, []byte("hello"))
	var m C2DMessage
	select {
	case m = <-got:
	case <-time.After(5 * time.Second):
		t.Fatal("the C2D handler was not called")
	}
	if p.hasPuback(id) {
		t.Fatal("PUBACK sent while the handler was still running")
	}
	close(release)
	testutil.Eventually(t, "the PUBACK after the handler returned", func() bool { return p.hasPuback(id) })
	want := C2DMessage{
		Topic: topic, Payload: []byte("hello"), MessageID: "mid-1", To: "/devices/dev1/messages/devicebound",
		Ack: "full", Application: map[string]string{"color": "red blue"},
	}
	if diff := cmp.Diff(want, m, cmpIgnoreProps); diff != "" {
		t.Errorf("C2D message (-want +got):\n%s", diff)
	}
}

// A handler that completes its message and then lets its program Close (as devicesim listen
// --count does) must see the PUBACK go out, though it returns only after Close began.
func TestC2DCompleteBeforeClose(t *testing.T) {
	p := newPeer(t)
	completed := make(chan error, 1)
	c := connect(t, p.config(), func(c *Client) {
		c.OnC2D(func(ctx context.Context, m C2DMessage) {
			err := m.Complete(ctx)
			if err == nil {
				err = m.Complete(ctx) // a second call sends nothing more
			}
			completed <- err
			<-ctx.Done() // returns after Close began: without Complete, no PUBACK
		})
	})
	id := p.write(iothub.C2DTopic(c.Identity(), nil), 1, []byte("last one"))
	select {
	case err := <-completed:
		if err != nil {
			t.Fatalf("Complete = %v, want nil", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the C2D handler was not called")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := c.Close(ctx); err != nil {
		t.Fatalf("Close: %v", err)
	}
	testutil.Eventually(t, "the PUBACK of the completed message", func() bool { return p.hasPuback(id) })
	n := 0
	for _, e := range p.readOrder() {
		if e == "puback" {
			n++
		}
	}
	if n != 1 {
		t.Errorf("PUBACKs = %d, want 1 (read order %q)", n, p.readOrder())
	}
	if err := (C2DMessage{MessageID: "m"}).Complete(ctx); err == nil {
		t.Error("Complete on a message the client did not deliver = nil, want an error")
	}
}

var cmpIgnoreProps = cmp.Options{
	cmp.FilterPath(func(p cmp.Path) bool { return p.Last().String() == ".Properties" }, cmp.Ignore()),
	cmpopts.IgnoreUnexported(C2DMessage{}),
}

func TestC2DBeforeSubscribeOnPersistentReconnect(t *testing.T) {
	p := newPeer(t)
	got := make(chan string, 4)
	connect(t, p.config(), func(c *Client) {
		c.OnC2D(func(ctx context.Context, m C2DMessage) { got <- m.MessageID })
	})
	topic := iothub.C2DTopic(iothub.Identity{DeviceID: "dev1"}, iothub.Properties{{Key: iothub.PropMessageID, Value: "queued"}})
	ids := make(chan uint16, 1)
	p.mu.Lock()
	p.order = nil
	p.onSession = func(cl *mqtt.Client) { // the hub flushes the queue right after CONNACK
		ids <- writeTo(t, cl, topic, 1, []byte("while you were away"))
	}
	p.mu.Unlock()
	p.kick()
	select {
	case mid := <-got:
		if mid != "queued" {
			t.Fatalf("handler got %q, want queued", mid)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the C2D message delivered before SUBSCRIBE was not handled")
	}
	id := <-ids
	testutil.Eventually(t, "the PUBACK", func() bool { return p.hasPuback(id) })
	order := p.readOrder()
	if i := slices.Index(order, "subscribe"); i >= 0 && i < slices.Index(order, "puback") {
		t.Logf("read order %v: the SUBSCRIBE came before the PUBACK (fine, but the message was sent before it)", order)
	}
}

func TestTwinGetAndUpdate(t *testing.T) {
	p := newPeer(t)
	p.setDesired(3, map[string]any{"fan": "on"})
	c := connect(t, p.config())
	ctx := context.Background()
	tw, err := c.GetTwin(ctx)
	if err != nil {
		t.Fatalf("GetTwin: %v", err)
	}
	if tw.DesiredVersion != 3 || tw.ReportedVersion != 1 || !strings.Contains(string(tw.Desired), `"fan":"on"`) {
		t.Errorf("GetTwin = desired %s v%d reported %s v%d", tw.Desired, tw.DesiredVersion, tw.Reported, tw.ReportedVersion)
	}
	v, err := c.UpdateReported(ctx, map[string]any{"temp": 21})
	if err != nil || v != 2 {
		t.Fatalf("UpdateReported = %d, %v; want 2, nil", v, err)
	}
	_, err = c.UpdateReported(ctx, json.RawMessage(`{"bad":1}`))
	var se *StatusError
	if !errors.As(err, &se) || se.Status != 400 {
		t.Fatalf("UpdateReported(bad) = %v, want *StatusError 400", err)
	}
	var subs []string
	p.mu.Lock()
	for _, s := range p.subscribes {
		subs = append(subs, s...)
	}
	p.mu.Unlock()
	if !slices.Equal(subs, []string{iothub.TwinResponseFilter}) {
		t.Errorf("subscriptions = %v, want only %s", subs, iothub.TwinResponseFilter)
	}
}

func TestTwinRIDCorrelation(t *testing.T) {
	p := newPeer(t)
	c := connect(t, p.config())
	if _, err := c.GetTwin(context.Background()); err != nil { // subscribes first
		t.Fatal(err)
	}
	p.mu.Lock()
	p.twinBatch = 3 // hold three answers and send them in reverse order
	p.mu.Unlock()
	var wg sync.WaitGroup
	versions := make([]int64, 3)
	errs := make([]error, 3)
	for i := range 3 {
		wg.Go(func() {
			versions[i], errs[i] = c.UpdateReported(context.Background(), map[string]int{fmt.Sprint("k", i): i})
		})
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("UpdateReported %d: %v", i, err)
		}
	}
	slices.Sort(versions)
	if !slices.Equal(versions, []int64{2, 3, 4}) {
		t.Errorf("versions = %v, want each request matched to its own answer: 2 3 4", versions)
	}
	rids := map[string]bool{}
	for _, pk := range p.publishes() {
		if rid, err := iothub.ParseTwinPatchReportedTopic(pk.TopicName); err == nil {
			if rids[rid] {
				t.Errorf("$rid %q reused", rid)
			}
			rids[rid] = true
		}
	}
}

type desiredRecorder struct {
	mu       sync.Mutex
	versions []int64
	bodies   []string
}

func (r *desiredRecorder) handle(_ context.Context, patch json.RawMessage, v int64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.versions = append(r.versions, v)
	r.bodies = append(r.bodies, string(patch))
}

func (r *desiredRecorder) got() []int64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.versions)
}

func TestDesiredOrdering(t *testing.T) {
	p := newPeer(t)
	p.setDesired(5, map[string]any{"a": 1})
	// Notifications racing the first GET: v5 (not newer than the GET) must be dropped, v6 kept.
	p.beforeGetAnswer = func(cl *mqtt.Client) {
		p.mu.Lock()
		p.beforeGetAnswer = nil
		p.mu.Unlock()
		writeTo(t, cl, iothub.TwinDesiredPatchTopic(5), 0, []byte(`{"a":1,"$version":5}`))
		writeTo(t, cl, iothub.TwinDesiredPatchTopic(6), 0, []byte(`{"a":2,"$version":6}`))
	}
	var rec desiredRecorder
	connect(t, p.config(), func(c *Client) { c.OnDesired(rec.handle) })
	for _, v := range []int64{4, 6, 7, 7, 8} {
		p.write(iothub.TwinDesiredPatchTopic(v), 0, fmt.Appendf(nil, `{"a":%d,"$version":%d}`, v, v))
	}
	testutil.Eventually(t, "desired v8", func() bool { return slices.Contains(rec.got(), 8) })
	if got, want := rec.got(), []int64{6, 7, 8}; !slices.Equal(got, want) {
		t.Errorf("desired handler saw versions %v, want %v (stale and duplicate versions dropped)", got, want)
	}

	// After a reconnect the client GETs again and hands over the full desired properties
	// when they moved while it was away.
	p.setDesired(9, map[string]any{"a": 9})
	p.kick()
	testutil.Eventually(t, "desired v9 after the reconnect", func() bool { return slices.Contains(rec.got(), 9) })
	rec.mu.Lock()
	last := rec.bodies[len(rec.bodies)-1]
	rec.mu.Unlock()
	if !strings.Contains(last, `"a":9`) || !strings.Contains(last, `"$version":9`) {
		t.Errorf("after reconnect the handler got %s, want the full desired properties", last)
	}
}

func TestMethods(t *testing.T) {
	tests := []struct {
		name       string
		method     string
		payload    string
		wantStatus int
		wantBody   string
	}{
		{"handled", "reboot", `{"delay":1}`, 200, `{"echo":{"delay":1}}`},
		{"handler-error", "fail", ``, 500, `{"message":"disk on fire"}`},
		{"handler-status", "teapot", ``, 418, ``},
		{"catch-all", "other", `"x"`, 202, `{"name":"other"}`},
	}
	p := newPeer(t)
	connect(t, p.config(), func(c *Client) {
		c.OnMethod("reboot", func(ctx context.Context, payload []byte) (int, any, error) {
			return 200, map[string]json.RawMessage{"echo": payload}, nil
		})
		c.OnMethod("fail", func(ctx context.Context, payload []byte) (int, any, error) {
			return 0, nil, errors.New("disk on fire")
		})
		c.OnMethod("teapot", func(ctx context.Context, payload []byte) (int, any, error) { return 418, nil, nil })
		c.OnAnyMethod(func(ctx context.Context, name string, payload []byte) (int, any, error) {
			return 202, map[string]string{"name": name}, nil
		})
	})
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rid := fmt.Sprintf("%x", i+10)
			p.write(iothub.MethodRequestTopic(tt.method, rid), 0, []byte(tt.payload))
			status, body := waitMethodResponse(t, p, rid)
			if status != tt.wantStatus || body != tt.wantBody {
				t.Errorf("response = %d %s, want %d %s", status, body, tt.wantStatus, tt.wantBody)
			}
		})
	}
}

func TestUnknownMethod(t *testing.T) {
	tests := []struct {
		name   string
		status int
		want   int
	}{
		{"default-404", 0, 404},
		{"configured-501", 501, 501},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := newPeer(t)
			cfg := p.config()
			cfg.UnknownMethodStatus = tt.status
			connect(t, cfg, func(c *Client) {
				c.OnMethod("known", func(context.Context, []byte) (int, any, error) { return 200, nil, nil })
			})
			p.write(iothub.MethodRequestTopic("nope", "1"), 0, nil)
			status, body := waitMethodResponse(t, p, "1")
			if status != tt.want || !strings.Contains(body, "not implemented") {
				t.Errorf("response = %d %s, want %d and a message", status, body, tt.want)
			}
		})
	}
}

func waitMethodResponse(t *testing.T, p *peer, rid string) (int, string) {
	t.Helper()
	var status int
	var body string
	testutil.Eventually(t, "the method response for rid "+rid, func() bool {
		for _, pk := range p.publishes() {
			if s, r, err := iothub.ParseMethodResponseTopic(pk.TopicName); err == nil && r == rid {
				status, body = s, string(pk.Payload)
				return true
			}
		}
		return false
	})
	return status, body
}

func TestCloseLeavesNoGoroutines(t *testing.T) {
	p := newPeer(t)
	before := runtime.NumGoroutine()
	c, err := New(p.config())
	if err != nil {
		t.Fatal(err)
	}
	started := make(chan struct{})
	c.OnC2D(func(ctx context.Context, m C2DMessage) { close(started); <-ctx.Done() }) // blocks until Close
	c.OnDesired(func(context.Context, json.RawMessage, int64) {})
	c.OnMethod("m", func(context.Context, []byte) (int, any, error) { return 200, nil, nil })
	if err := c.Connect(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := c.SendEvent(context.Background(), Event{Payload: []byte("x")}); err != nil {
		t.Fatal(err)
	}
	p.write(iothub.C2DTopic(c.Identity(), nil), 1, []byte("c2d"))
	<-started
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := c.Close(ctx); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if err := c.SendEvent(context.Background(), Event{}); !errors.Is(err, ErrClosed) {
		t.Errorf("SendEvent after Close = %v, want ErrClosed", err)
	}
	if !testutil.Poll(testutil.DefaultTimeout, func() bool { return runtime.NumGoroutine() <= before }) {
		buf := make([]byte, 1<<20)
		t.Fatalf("%d goroutines after Close, %d before:\n%s", runtime.NumGoroutine(), before, buf[:runtime.Stack(buf, true)])
	}
}

func TestHandlerRegisteredAfterConnect(t *testing.T) {
	p := newPeer(t)
	c := connect(t, p.config())
	c.OnMethod("late", func(context.Context, []byte) (int, any, error) { return 201, nil, nil })
	testutil.Eventually(t, "the methods subscription", func() bool {
		p.mu.Lock()
		defer p.mu.Unlock()
		for _, fs := range p.subscribes {
			if slices.Contains(fs, iothub.MethodsFilter) {
				return true
			}
		}
		return false
	})
	p.write(iothub.MethodRequestTopic("late", "7"), 0, nil)
	if status, _ := waitMethodResponse(t, p, "7"); status != 201 {
		t.Errorf("status = %d, want 201", status)
	}
}

func TestModuleTopics(t *testing.T) {
	p := newPeer(t)
	p.resource = "hub.example.test/devices/dev1/modules/mod1"
	cfg := p.config()
	cfg.ModuleID = "mod1"
	got := make(chan C2DMessage, 1)
	c := connect(t, cfg, func(c *Client) { c.OnC2D(func(_ context.Context, m C2DMessage) { got <- m }) })
	if err := c.SendEvent(context.Background(), Event{Payload: []byte("m")}); err != nil {
		t.Fatal(err)
	}
	if topic := p.publishes()[0].TopicName; topic != "devices/dev1/modules/mod1/messages/events/" {
		t.Errorf("module telemetry topic = %q", topic)
	}
	p.write(iothub.C2DTopic(c.Identity(), iothub.Properties{{Key: iothub.PropMessageID, Value: "x"}}), 1, []byte("to module"))
	select {
	case m := <-got:
		if string(m.Payload) != "to module" {
			t.Errorf("module C2D payload = %q", m.Payload)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("module C2D not delivered")
	}
}

func TestMethodAnsweredDuringClose(t *testing.T) {
	p := newPeer(t)
	called := make(chan struct{})
	c := connect(t, p.config(), func(c *Client) {
		c.OnMethod("last", func(ctx context.Context, _ []byte) (int, any, error) {
			close(called)
			<-ctx.Done() // returns only once Close began
			return 200, map[string]bool{"bye": true}, nil
		})
	})
	p.write(iothub.MethodRequestTopic("last", "9"), 0, nil)
	<-called
	if err := c.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	if status, body := waitMethodResponse(t, p, "9"); status != 200 || body != `{"bye":true}` {
		t.Errorf("response = %d %s, want 200 {\"bye\":true}", status, body)
	}
}

func TestCloseDeadline(t *testing.T) {
	p := newPeer(t)
	stuck := make(chan struct{})
	started := make(chan struct{})
	c := connect(t, p.config(), func(c *Client) {
		c.OnC2D(func(context.Context, C2DMessage) { close(started); <-stuck }) // ignores ctx
	})
	p.write(iothub.C2DTopic(c.Identity(), nil), 1, []byte("x"))
	<-started
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if err := c.Close(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Close with a stuck handler = %v, want DeadlineExceeded", err)
	}
	close(stuck)
}
