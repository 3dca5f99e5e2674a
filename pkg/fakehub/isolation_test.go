package fakehub_test

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"github.com/hubkit/hubkit/internal/testutil"
	"go.uber.org/goleak"
	"net"
	"os"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
	"github.com/gorilla/websocket"
	"github.com/hubkit/hubkit/internal/mqttraw"
	"github.com/hubkit/hubkit/pkg/fakehub"
	"github.com/hubkit/hubkit/pkg/fakehub/fakehubtest"
	"github.com/hubkit/hubkit/pkg/iothub"
	"github.com/hubkit/hubkit/pkg/sas"
	"slices"
)

// dialSmallWindow opens a TLS connection whose receive buffer is tiny, so
// that the hub's writes to it block as soon as the client stops reading.
func dialSmallWindow(t testing.TB, h *fakehubtest.Hub) *tls.Conn {
	t.Helper()
	raw, err := smallWindow.Dial("tcp", h.Addr())
	if err != nil {
		t.Fatal(err)
	}
	c := tls.Client(raw, h.ClientTLS())
	t.Cleanup(func() { raw.Close() })
	if err := c.Handshake(); err != nil {
		t.Fatal(err)
	}
	return c
}

// smallWindow dials with a tiny receive buffer.
var smallWindow = net.Dialer{Timeout: 5 * time.Second, Control: func(_, _ string, rc syscall.RawConn) error {
	var serr error
	err := rc.Control(func(fd uintptr) { serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, 2048) })
	return errors.Join(err, serr)
}}

// slowReader connects id with keep-alive 0, subscribes to twin answers and
// desired patches, reads the SUBACK, then sends a ~28 KB reported patch and
// n twin GETs and never reads again. It returns the connection.
func slowReader(t testing.TB, h *fakehubtest.Hub, id iothub.Identity, key []byte, n int) net.Conn {
	t.Helper()
	c := dialSmallWindow(t, h)
	p := goodConnect(id, key)
	p.KeepAlive = 0
	must := func(b []byte, err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		_ = c.SetWriteDeadline(time.Now().Add(5 * time.Second))
		if _, err := c.Write(b); err != nil {
			t.Fatal(err)
		}
	}
	must(p.Encode())
	must(mqttraw.EncodeSubscribe(1, mqttraw.Subscription{Filter: iothub.TwinResponseFilter}, mqttraw.Subscription{Filter: iothub.TwinDesiredFilter}))
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
	buf := make([]byte, 9) // CONNACK (4) + SUBACK (6) = 10 bytes; reading 9 is enough to know both came
	if _, err := c.Read(buf); err != nil {
		t.Fatal(err)
	}
	var parts []string
	for i := range 7 { // seven 4000-byte strings (the limit per value is 4 KB)
		parts = append(parts, fmt.Sprintf(`"blob%d":"%s"`, i, strings.Repeat("x", 4000)))
	}
	patch := "{" + strings.Join(parts, ",") + "}"
	must(mqttraw.PublishPacket{Topic: iothub.TwinPatchReportedTopic("1"), Payload: []byte(patch)}.Encode())
	for i := 0; i < n; i++ {
		must(mqttraw.PublishPacket{Topic: iothub.TwinGetTopic("g")}.Encode())
	}
	return c
}

// Defect: one device that stops reading stalled desired-property updates
// (and C2D sends) for every device, until its write deadline (up to 1767 s).
// Now the slow device is disconnected on its own and the others' updates,
// notifications and C2D go on.
func TestSlowReaderDoesNotStallOthers(t *testing.T) {
	h := startHub(t, fakehub.Options{WriteTimeout: time.Second})
	since := len(h.Rejections())
	// dev2 is a healthy device listening for desired patches.
	r, err := pahoConnect(t, h, dev2, userName("localhost", dev2), deviceToken("localhost", dev2, keyDev2A))
	if err != nil {
		t.Fatal(err)
	}
	got := make(chan string, 4)
	if tok := r.c.Subscribe(iothub.TwinDesiredFilter, 0, func(_ paho.Client, m paho.Message) { got <- m.Topic() }); !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
		t.Fatalf("subscribe: %v", tok.Error())
	}
	slowReader(t, h, dev1, keyDev1A, 600)

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	done := make(chan error, 3)
	go func() { _, err := h.UpdateDesired(ctx, dev1, []byte(`{"slow":1}`)); done <- err }()
	go func() { _, err := h.SendC2D(ctx, "dev1", iothub.C2DMessage{Payload: []byte("x")}); done <- err }()
	go func() { _, err := h.UpdateDesired(ctx, dev2, []byte(`{"fast":1}`)); done <- err }()
	for range 3 {
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("service call: %v", err)
			}
		case <-ctx.Done():
			t.Fatal("a service call is still blocked behind the slow device")
		}
	}
	select {
	case topic := <-got:
		if !strings.HasPrefix(topic, "$iothub/twin/PATCH/properties/desired/") {
			t.Errorf("dev2 got %q", topic)
		}
	case <-ctx.Done():
		t.Fatal("dev2's desired notification never arrived")
	}
	rj := waitRejectionAny(t, h, since, fakehub.ReasonWriteBacklog, fakehub.ReasonWriteTimeout)
	if rj.DeviceID != "dev1" {
		t.Errorf("rejection %+v, want dev1's", rj)
	}
}

// The write time-out holds over MQTT over WebSockets too: a WebSocket
// device that stops reading is disconnected with ReasonWriteTimeout (its
// outbox is large enough never to fill), and the hub goes on serving others.
func TestSlowWebSocketReaderTimesOut(t *testing.T) {
	h := startHub(t, fakehub.Options{WriteTimeout: time.Second, OutboxSize: 100000})
	since := len(h.Rejections())
	d := websocket.Dialer{TLSClientConfig: h.ClientTLS(), Subprotocols: []string{"mqtt"}, HandshakeTimeout: 5 * time.Second, NetDialContext: smallWindow.DialContext}
	ws, _, err := d.Dial(h.WebSocketURL(), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer ws.Close()
	send := func(b []byte, err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		_ = ws.SetWriteDeadline(time.Now().Add(5 * time.Second))
		if err := ws.WriteMessage(websocket.BinaryMessage, b); err != nil {
			t.Fatal(err)
		}
	}
	p := goodConnect(dev1, keyDev1A)
	p.KeepAlive = 0
	send(p.Encode())
	send(mqttraw.EncodeSubscribe(1, mqttraw.Subscription{Filter: iothub.TwinResponseFilter}))
	_ = ws.SetReadDeadline(time.Now().Add(5 * time.Second))
	for range 2 { // CONNACK, SUBACK
		if _, _, err := ws.ReadMessage(); err != nil {
			t.Fatal(err)
		}
	}
	patch := `{"blob":"` + strings.Repeat("x", 4000) + `"}`
	send(mqttraw.PublishPacket{Topic: iothub.TwinPatchReportedTopic("1"), Payload: []byte(patch)}.Encode())
	for range 2000 { // ~4 KB answers each, never read
		send(mqttraw.PublishPacket{Topic: iothub.TwinGetTopic("g")}.Encode())
	}
	rj := waitRejectionAny(t, h, since, fakehub.ReasonWriteBacklog, fakehub.ReasonWriteTimeout)
	if rj.Reason != fakehub.ReasonWriteTimeout || rj.DeviceID != "dev1" {
		t.Errorf("rejection %+v, want dev1's %s", rj, fakehub.ReasonWriteTimeout)
	}
	if _, err := pahoConnect(t, h, dev2, userName("localhost", dev2), deviceToken("localhost", dev2, keyDev2A)); err != nil {
		t.Errorf("another device after the slow one: %v", err)
	}
}

// waitRejectionAny waits for a rejection with one of the reasons.
func waitRejectionAny(t testing.TB, h *fakehubtest.Hub, since int, reasons ...sas.Reason) iothub.Rejection {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	seen := 0
	r, err := h.WaitRejection(ctx, func(r iothub.Rejection) bool { seen++; return seen > since && slices.Contains(reasons, r.Reason) })
	if err != nil {
		t.Fatalf("no rejection %v: %v; have %+v", reasons, err, h.Rejections())
	}
	return r
}

// victim is a healthy device (dev2) whose latencies the isolation tests
// measure: connect (of dev10), telemetry PUBACK, C2D, desired notification,
// direct method.
type victim struct {
	h       *fakehubtest.Hub
	r       *pahoResult
	c2d     chan struct{}
	desired chan struct{}
}

func newVictim(t *testing.T, h *fakehubtest.Hub) *victim {
	v := &victim{h: h, c2d: make(chan struct{}, 64), desired: make(chan struct{}, 64)}
	r, err := pahoConnect(t, h, dev2, userName("localhost", dev2), deviceToken("localhost", dev2, keyDev2A))
	if err != nil {
		t.Fatal(err)
	}
	v.r = r
	subs := map[string]paho.MessageHandler{
		iothub.C2DFilter(dev2):   func(paho.Client, paho.Message) { v.c2d <- struct{}{} },
		iothub.TwinDesiredFilter: func(paho.Client, paho.Message) { v.desired <- struct{}{} },
		iothub.MethodsFilter: func(c paho.Client, m paho.Message) {
			_, rid, _ := strings.Cut(m.Topic(), "$rid=")
			c.Publish(iothub.MethodResponseTopic(200, rid), 0, false, `{}`)
		},
	}
	for f, hd := range subs {
		q := byte(0)
		if f == iothub.C2DFilter(dev2) {
			q = 1
		}
		if tok := r.c.Subscribe(f, q, hd); !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
			t.Fatalf("subscribe %s: %v", f, tok.Error())
		}
	}
	return v
}

// measure returns the median latency of each operation over n rounds.
func (v *victim) measure(t *testing.T, n int) map[string]time.Duration {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	wait := func(ch chan struct{}, what string) {
		select {
		case <-ch:
		case <-ctx.Done():
			t.Fatalf("the victim's %s never arrived", what)
		}
	}
	ops := map[string]func(){
		"connect": func() {
			r, err := pahoConnect(t, v.h, iothub.Identity{DeviceID: "dev10"}, userName("localhost", iothub.Identity{DeviceID: "dev10"}), deviceToken("localhost", iothub.Identity{DeviceID: "dev10"}, keyDev10))
			if err != nil {
				t.Fatalf("connect: %v", err)
			}
			r.c.Disconnect(0)
		},
		"telemetry": func() {
			if tok := v.r.c.Publish(iothub.TelemetryTopic(dev2, nil), 1, false, `{"t":1}`); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
				t.Fatalf("telemetry: %v", tok.Error())
			}
		},
		"c2d": func() {
			if _, err := v.h.SendC2D(ctx, "dev2", iothub.C2DMessage{Payload: []byte("x")}); err != nil {
				t.Fatalf("c2d: %v", err)
			}
			wait(v.c2d, "C2D message")
		},
		"twin": func() {
			if _, err := v.h.UpdateDesired(ctx, dev2, []byte(`{"n":1}`)); err != nil {
				t.Fatalf("twin: %v", err)
			}
			wait(v.desired, "desired notification")
		},
		"method": func() {
			if _, err := v.h.InvokeMethod(ctx, "dev2", "ping", nil, 10*time.Second); err != nil {
				t.Fatalf("method: %v", err)
			}
		},
	}
	out := map[string]time.Duration{}
	for name, op := range ops {
		var ds []time.Duration
		for range n {
			start := time.Now()
			op()
			ds = append(ds, time.Since(start))
		}
		slices.Sort(ds)
		out[name] = ds[len(ds)/2]
	}
	return out
}

// fdCount is the number of open file descriptors of the process.
func fdCount() int {
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		return -1
	}
	return len(ents)
}

// attacks against which TestIsolation measures the victim. Each starts
// its attack and returns a stop function.
var attacks = []struct {
	name  string
	start func(t *testing.T, h *fakehubtest.Hub) (stop func())
}{
	{"slow-readers", func(t *testing.T, h *fakehubtest.Hub) func() {
		var cs []net.Conn
		for _, id := range []iothub.Identity{dev1, mod1} {
			key := keyDev1A
			if id.IsModule() {
				key = keyModA
			}
			cs = append(cs, slowReader(t, h, id, key, 600))
		}
		return func() {
			for _, c := range cs {
				c.Close()
			}
		}
	}},
	{"half-open-sockets", func(t *testing.T, h *fakehubtest.Hub) func() {
		var cs []net.Conn
		for range 100 {
			c, err := net.DialTimeout("tcp", h.Addr(), 5*time.Second)
			if err != nil {
				t.Fatal(err)
			}
			cs = append(cs, c) // no TLS handshake, nothing sent
		}
		return func() {
			for _, c := range cs {
				c.Close()
			}
		}
	}},
	{"slowloris", func(t *testing.T, h *fakehubtest.Hub) func() {
		stop := make(chan struct{})
		done := make(chan struct{})
		var cs []*mqttraw.Conn
		for range 50 {
			cs = append(cs, rawDial(t, h))
		}
		conn, _ := goodConnect(dev1, keyDev1A).Encode()
		go func() {
			defer close(done)
			for i := 0; i < len(conn)-1; i++ {
				for _, c := range cs {
					_ = c.WriteRaw(conn[i : i+1]) // one byte of CONNECT at a time, never the last
				}
				select {
				case <-stop:
					return
				case <-time.After(20 * time.Millisecond):
				}
			}
		}()
		return func() {
			close(stop)
			<-done
			for _, c := range cs {
				c.Close()
			}
		}
	}},
	{"twin-get-flood", func(t *testing.T, h *fakehubtest.Hub) func() {
		d := connectDevice(t, h, dev1, keyDev1A, true)
		d.subscribe(t, iothub.TwinResponseFilter, 0)
		stop := make(chan struct{})
		done := make(chan struct{})
		go func() {
			defer close(done)
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				d.c.Publish(iothub.TwinGetTopic(strconv.Itoa(i)), 0, false, nil).WaitTimeout(time.Second)
				select {
				case <-d.msgs:
				default:
				}
			}
		}()
		return func() { close(stop); <-done; d.c.Disconnect(0) }
	}},
	{"big-property-bag", func(t *testing.T, h *fakehubtest.Hub) func() {
		d := connectDevice(t, h, dev1, keyDev1A, true)
		var props iothub.Properties
		for i := range 2000 {
			props = append(props, iothub.Property{Key: fmt.Sprintf("k%04d", i), Value: strings.Repeat("v", 100)})
		}
		topic := iothub.TelemetryTopic(dev1, props)
		stop := make(chan struct{})
		done := make(chan struct{})
		go func() {
			defer close(done)
			for {
				select {
				case <-stop:
					return
				default:
				}
				d.c.Publish(topic, 1, false, "x").WaitTimeout(5 * time.Second)
			}
		}()
		return func() { close(stop); <-done; d.c.Disconnect(0) }
	}},
}

// TestIsolation: under each attack, the victim's connect, telemetry, C2D,
// twin and method latencies are measured against the same hub idle and
// reported as ratios (go test -v -run TestIsolation shows them; the machine
// is shared, so the test asserts only that every operation completes). After
// each attack the hub is closed and the goroutines and file descriptors
// return to what they were before it started.
func TestIsolation(t *testing.T) {
	if testing.Short() {
		t.Skip("measures latencies under attack")
	}
	for _, a := range attacks {
		t.Run(a.name, func(t *testing.T) {
			fds := fdCount()
			leaks := goleak.IgnoreCurrent()
			h := startHub(t, fakehub.Options{WriteTimeout: 2 * time.Second, ConnectTimeout: 3 * time.Second})
			v := newVictim(t, h)
			idle := v.measure(t, 11)
			stop := a.start(t, h)
			loaded := v.measure(t, 11)
			stop()
			var b strings.Builder
			for _, op := range []string{"connect", "telemetry", "c2d", "twin", "method"} {
				fmt.Fprintf(&b, " %s %.2f× (%v → %v)", op, float64(loaded[op])/float64(idle[op]), idle[op].Round(10*time.Microsecond), loaded[op].Round(10*time.Microsecond))
			}
			t.Logf("%s: latency under attack / idle:%s", a.name, b.String())
			v.r.c.Disconnect(0)
			_ = h.Close()
			goleak.VerifyNone(t, leaks, goleak.IgnoreTopFunction("time.Sleep"))
			if !testutil.Poll(5*time.Second, func() bool { return fdCount() <= fds }) {
				t.Errorf("file descriptors: %d after the attack, %d before", fdCount(), fds)
			}
		})
	}
}
