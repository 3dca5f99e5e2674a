package fakehub_test

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"strings"
	"syscall"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
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
	d := net.Dialer{Timeout: 5 * time.Second, Control: func(_, _ string, rc syscall.RawConn) error {
		var serr error
		err := rc.Control(func(fd uintptr) { serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, 2048) })
		return errors.Join(err, serr)
	}}
	raw, err := d.Dial("tcp", h.Addr())
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

// slowReader connects id with keep-alive 0, subscribes to twin answers and
// desired patches, reads the SUBACK, then sends a ~28 KB reported patch and
// n twin GETs and never reads again.
func slowReader(t testing.TB, h *fakehubtest.Hub, id iothub.Identity, key []byte, n int) {
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
