package fakehub_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/hubkit/hubkit/internal/mqttraw"
	"github.com/hubkit/hubkit/internal/testutil"
	"github.com/hubkit/hubkit/pkg/fakehub"
	"github.com/hubkit/hubkit/pkg/fakehub/fakehubtest"
	"github.com/hubkit/hubkit/pkg/iothub"
	"github.com/hubkit/hubkit/pkg/sas"
)

// persistentConnect opens a CleanSession=0 raw session of dev1.
func persistentConnect(t *testing.T, h *fakehubtest.Hub) (mqttraw.Connack, *mqttraw.Conn) {
	t.Helper()
	p := goodConnect(dev1, keyDev1A)
	p.CleanSession = false
	ack, c := rawConnect(t, h, p)
	if ack.ReturnCode != 0 {
		t.Fatalf("CONNACK %d", ack.ReturnCode)
	}
	return ack, c
}

func nextPublish(t *testing.T, c *mqttraw.Conn) mqttraw.PublishPacket {
	t.Helper()
	for {
		p, err := c.ReadPacket(5 * time.Second)
		if err != nil {
			t.Fatal(err)
		}
		if p.Type == mqttraw.TypePublish {
			return p.Publish
		}
	}
}

// A device that disconnects after receiving a C2D message but before its
// PUBACK gets it again on its next (CleanSession=0) connection: redelivered,
// not lost, and completed by the second PUBACK.
func TestFaultDisconnectMidC2D(t *testing.T) {
	h := startHub(t, fakehub.Options{})
	_, c := persistentConnect(t, h)
	if err := c.Subscribe(1, mqttraw.Subscription{Filter: iothub.C2DFilter(dev1), QoS: 1}); err != nil {
		t.Fatal(err)
	}
	if p, err := c.ReadPacket(5 * time.Second); err != nil || p.Type != mqttraw.TypeSuback {
		t.Fatalf("SUBACK: %v %v", p, err)
	}
	id := sendC2D(t, h, dev1, iothub.C2DMessage{MessageID: "m-1", Payload: []byte("once")})
	first := nextPublish(t, c)
	_ = c.Close() // no PUBACK
	testutil.Eventually(t, "dev1 gone", func() bool { return !h.Connected(dev1) })
	ack, c2 := persistentConnect(t, h)
	if !ack.SessionPresent {
		t.Error("session-present = 0 after a CleanSession=0 reconnect")
	}
	again := nextPublish(t, c2)
	if again.Topic != first.Topic || string(again.Payload) != "once" {
		t.Fatalf("redelivered %q %q, want %q", again.Topic, again.Payload, first.Topic)
	}
	if err := c2.Puback(again.PacketID); err != nil {
		t.Fatal(err)
	}
	waitState(t, h, id, iothub.C2DCompleted)
}

// A hub restarted on the same Registry keeps the registry (identities,
// keys, policies) and nothing else: a CleanSession=0 device reconnects with
// session-present=0 (its subscriptions are gone), queued C2D messages and
// twins are gone. This is what README's "What survives a restart" says.
func TestFaultRestartWithPersistentSessions(t *testing.T) {
	reg := fakehub.NewRegistry(nil)
	h := startHub(t, fakehub.Options{Registry: reg})
	addr := h.Addr()
	_, c := persistentConnect(t, h)
	if err := c.Subscribe(1, mqttraw.Subscription{Filter: iothub.C2DFilter(dev1), QoS: 1}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.ReadPacket(5 * time.Second); err != nil {
		t.Fatal(err)
	}
	if _, err := h.UpdateDesired(context.Background(), dev1, []byte(`{"kept":false}`)); err != nil {
		t.Fatal(err)
	}
	_ = c.Close()
	testutil.Eventually(t, "dev1 gone", func() bool { return !h.Connected(dev1) })
	queued := sendC2D(t, h, dev1, iothub.C2DMessage{Payload: []byte("queued")})
	if err := h.Close(); err != nil {
		t.Fatal(err)
	}

	h2 := fakehubtest.Start(t, fakehub.Options{Registry: reg, Addr: addr})
	ack, _ := persistentConnect(t, h2)
	if ack.SessionPresent {
		t.Error("session-present = 1 after a restart: stored sessions do not survive it")
	}
	if _, ok := h2.C2DState(queued); ok {
		t.Error("a C2D message queued before the restart is still known")
	}
	tw, err := h2.Twin(dev1)
	if err != nil {
		t.Fatal(err)
	}
	if tw.DesiredVersion() != 1 {
		t.Errorf("desired $version %d after a restart, want 1 (a fresh twin)", tw.DesiredVersion())
	}
}

// A token that expires while the device is sending: the connection is
// closed (expired), and every message the hub acknowledged was captured.
func TestFaultTokenExpiryDuringSend(t *testing.T) {
	clock := testutil.NewClock(time.Now())
	h := startHub(t, fakehub.Options{Now: clock.Now, TokenExpiryGrace: -1})
	p := goodConnect(dev1, keyDev1A)
	p.Password = mqttraw.String(token("localhost/devices/dev1", "", keyDev1A, clock.Now().Add(time.Minute)))
	c := rawSession(t, h, p)
	st := h.Telemetry().ForDevice("dev1", "")
	acked := 0
	for i := 1; i <= 200; i++ {
		if i == 100 {
			clock.Advance(2 * time.Minute)
			h.CheckTokens()
		}
		if err := c.Publish(mqttraw.PublishPacket{Topic: iothub.TelemetryTopic(dev1, nil), Payload: []byte("m"), QoS: 1, PacketID: uint16(i)}); err != nil {
			break
		}
		pk, err := c.ReadPacket(2 * time.Second)
		if err != nil {
			break
		}
		if pk.Type == mqttraw.TypePuback {
			acked++
		}
	}
	if acked < 99 || acked >= 200 {
		t.Errorf("%d PUBACKs, want the 99 before the expiry and not all 200", acked)
	}
	waitRejection(t, h, 0, sas.ReasonExpired)
	captured := len(st.All())
	if captured < acked {
		t.Errorf("%d messages captured, %d acknowledged: an acknowledged message was lost", captured, acked)
	}
}

// A takeover while a direct method waits for the device: the call ends at
// once with 404104 DeviceConnectionClosedRemotely (the answer cannot come on
// the new connection), not at its time-out.
func TestFaultTakeoverDuringMethod(t *testing.T) {
	h := startHub(t, fakehub.Options{})
	c := rawSession(t, h, goodConnect(dev1, keyDev1A))
	if err := c.Subscribe(1, mqttraw.Subscription{Filter: iothub.MethodsFilter}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.ReadPacket(5 * time.Second); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() {
		_, err := h.InvokeMethod(context.Background(), "dev1", "slow", nil, 30*time.Second)
		done <- err
	}()
	req := nextPublish(t, c)
	if !strings.HasPrefix(req.Topic, "$iothub/methods/POST/slow/") {
		t.Fatalf("method request on %q", req.Topic)
	}
	_ = rawSession(t, h, goodConnect(dev1, keyDev1A)) // the takeover
	select {
	case err := <-done:
		if !errors.Is(err, iothub.ErrDeviceDisconnected) {
			t.Errorf("InvokeMethod = %v, want 404104 DeviceConnectionClosedRemotely", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the method call still waits after the takeover")
	}
	waitRejection(t, h, 0, fakehub.ReasonReplaced)
}

// A device that reconnects the instant Server.Restart closes its connection gets a fresh
// session (session-present=0), as after a real restart: its CONNECT waits for the restart
// to forget the stored sessions instead of racing it.
func TestRestartForgetsSessionOfInstantReconnect(t *testing.T) {
	h := startHub(t, fakehub.Options{})
	for round := range 5 {
		_, c := persistentConnect(t, h)
		if err := c.Subscribe(1, mqttraw.Subscription{Filter: iothub.C2DFilter(dev1), QoS: 1}); err != nil {
			t.Fatal(err)
		}
		if p, err := c.ReadPacket(5 * time.Second); err != nil || p.Type != mqttraw.TypeSuback {
			t.Fatalf("SUBACK: %v %v", p, err)
		}
		done := make(chan struct{})
		go func() { defer close(done); h.Restart(true) }()
		for {
			if _, err := c.ReadPacket(5 * time.Second); err != nil {
				break // closed by the restart
			}
		}
		ack, c2 := persistentConnect(t, h)
		<-done
		if ack.SessionPresent {
			t.Fatalf("round %d: session-present = 1 on a CONNECT sent the instant the restart closed the connection: the forgotten session was inherited", round)
		}
		_ = c2.Close()
		testutil.Eventually(t, "dev1 gone", func() bool { return !h.Connected(dev1) })
	}
}
