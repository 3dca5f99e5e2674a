package fakehub

import (
	"context"
	"testing"
	"time"

	"github.com/hubkit/hubkit/internal/mqttraw"
	"github.com/hubkit/hubkit/pkg/iothub"
	"github.com/hubkit/hubkit/pkg/sas"
)

// TestC2DDuringReconnectHandshake: a C2D message sent while a
// CleanSession=0 reconnect is between entering the session table and its
// CONNACK (the stored C2D subscription not inherited yet) stays queued and
// flows right after the CONNACK; it used to be rejected as sent to a
// device connected without a subscription.
func TestC2DDuringReconnectHandshake(t *testing.T) {
	s := startPlain(t, Options{})
	if _, err := s.AddDevice("d1", testKey); err != nil {
		t.Fatal(err)
	}
	p := mqttraw.ConnectPacket{
		ClientID: "d1", UserName: mqttraw.String("localhost/d1/?api-version=2021-04-12"), KeepAlive: 60,
		Password: mqttraw.String(sas.Sign(sas.EncodeResource("localhost/devices/d1"), "", testKey, time.Now().Add(time.Hour)).String()),
	}
	connect := func() (mqttraw.Connack, *mqttraw.Conn) {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		ack, c, err := mqttraw.ConnectAndWait(ctx, s.Addr(), nil, p)
		if err != nil || ack.ReturnCode != 0 {
			t.Fatalf("connect: %v %+v", err, ack)
		}
		t.Cleanup(func() { c.Close() })
		return ack, c
	}
	_, c := connect()
	if err := c.Subscribe(1, mqttraw.Subscription{Filter: iothub.C2DFilter(iothub.Identity{DeviceID: "d1"}), QoS: 1}); err != nil {
		t.Fatal(err)
	}
	if pk, err := c.ReadPacket(5 * time.Second); err != nil || pk.Type != mqttraw.TypeSuback {
		t.Fatalf("got %v, %v, want SUBACK", pk, err)
	}
	_ = c.Disconnect()
	if err := c.ExpectClosed(5 * time.Second); err != nil {
		t.Fatal(err)
	}

	sent := make(chan string, 1)
	hook := func(*session) {
		id, err := s.SendC2D(context.Background(), "d1", iothub.C2DMessage{Payload: []byte("handshake")})
		if err != nil {
			t.Error(err)
		}
		sent <- id
	}
	s.lifecycle.inTable.Store(&hook)
	ack, c2 := connect()
	if !ack.SessionPresent {
		t.Fatalf("CONNACK %+v, want session present", ack)
	}
	pk, err := c2.ReadPacket(5 * time.Second)
	if err != nil || string(pk.Publish.Payload) != "handshake" {
		rec, _ := s.C2DState(<-sent)
		t.Fatalf("got %v, %v, want the C2D sent during the handshake (its record: %+v)", pk, err, rec)
	}
}
