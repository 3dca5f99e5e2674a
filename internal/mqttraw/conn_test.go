package mqttraw

import (
	"context"
	"errors"
	"io"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hubkit/hubkit/internal/brokertest"
	"github.com/hubkit/hubkit/internal/certs"
)

const wait = 5 * time.Second // generous: only reached when a test fails

// connect opens a connection that the test closes at cleanup (before the
// broker's cleanup, which was registered earlier).
func connect(t *testing.T, addr, clientID string) *Conn {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	ack, c, err := ConnectAndWait(ctx, addr, nil, ConnectPacket{ClientID: clientID, CleanSession: true, KeepAlive: 30})
	if err != nil {
		t.Fatalf("ConnectAndWait(%s): %v", clientID, err)
	}
	t.Cleanup(func() { c.Close() })
	if ack != (Connack{}) {
		t.Fatalf("CONNACK = %+v, want accepted without session", ack)
	}
	return c
}

// next reads the next packet and checks its type.
func next(t *testing.T, c *Conn, want PacketType) Packet {
	t.Helper()
	p, err := c.ReadPacket(wait)
	if err != nil {
		t.Fatalf("ReadPacket: %v (want %v)", err, want)
	}
	if p.Type != want {
		t.Fatalf("ReadPacket = %v, want %v", p, want)
	}
	return p
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func TestBrokerSession(t *testing.T) {
	addr := brokertest.Start(t, brokertest.Options{}).Addr
	sub, pub := connect(t, addr, "sub"), connect(t, addr, "pub")

	must(t, sub.Subscribe(1, Subscription{"a/#", 1}, Subscription{"b", 0}, Subscription{"c", 2}))
	if got := next(t, sub, TypeSuback).Suback; got.PacketID != 1 || string(got.Codes) != "\x01\x00\x02" {
		t.Fatalf("SUBACK = %+v, want id 1, codes [1 0 2]", got)
	}

	t.Run("publish-qos0", func(t *testing.T) {
		must(t, pub.Publish(PublishPacket{Topic: "a/x", Payload: []byte("zero")}))
		got := next(t, sub, TypePublish).Publish
		if got.Topic != "a/x" || string(got.Payload) != "zero" || got.QoS != 0 {
			t.Errorf("received %+v, want a/x \"zero\" at QoS 0", got)
		}
	})
	t.Run("publish-qos1", func(t *testing.T) {
		must(t, pub.Publish(PublishPacket{Topic: "a/y", Payload: []byte("one"), QoS: 1, PacketID: 7}))
		if got := next(t, pub, TypePuback).Puback.PacketID; got != 7 {
			t.Errorf("PUBACK id = %d, want 7", got)
		}
		got := next(t, sub, TypePublish).Publish
		if got.Topic != "a/y" || string(got.Payload) != "one" || got.QoS != 1 || got.PacketID == 0 {
			t.Errorf("received %+v, want a/y \"one\" at QoS 1 with an id", got)
		}
		must(t, sub.Puback(got.PacketID))
	})
	t.Run("downgraded-to-subscription-qos", func(t *testing.T) {
		must(t, pub.Publish(PublishPacket{Topic: "b", Payload: []byte("x"), QoS: 1, PacketID: 8}))
		next(t, pub, TypePuback)
		if got := next(t, sub, TypePublish).Publish; got.QoS != 0 {
			t.Errorf("received QoS %d on a QoS 0 subscription", got.QoS)
		}
	})
	t.Run("pingreq", func(t *testing.T) {
		must(t, pub.Pingreq())
		next(t, pub, TypePingresp)
	})
	t.Run("unsubscribe", func(t *testing.T) {
		must(t, sub.Unsubscribe(9, "b"))
		if got := next(t, sub, TypeUnsuback).Unsuback.PacketID; got != 9 {
			t.Errorf("UNSUBACK id = %d, want 9", got)
		}
	})
	t.Run("timeout", func(t *testing.T) {
		if _, err := sub.ReadPacket(20 * time.Millisecond); !errors.Is(err, ErrTimeout) {
			t.Errorf("ReadPacket on a quiet connection = %v, want ErrTimeout", err)
		}
	})
	t.Run("still-open", func(t *testing.T) {
		must(t, pub.Pingreq())
		err := pub.ExpectClosed(200 * time.Millisecond)
		if err == nil || !strings.Contains(err.Error(), "kept the connection open") || !strings.Contains(err.Error(), "PINGRESP") {
			t.Errorf("ExpectClosed on an open connection = %v, want an error naming the PINGRESP", err)
		}
	})
	t.Run("disconnect", func(t *testing.T) {
		must(t, pub.Disconnect())
		if err := pub.ExpectClosed(wait); err != nil {
			t.Errorf("ExpectClosed after DISCONNECT: %v", err)
		}
		if _, err := pub.ReadPacket(wait); !errors.Is(err, io.EOF) {
			t.Errorf("ReadPacket after the close = %v, want io.EOF again", err)
		}
	})
}

func TestBrokerClosesOnBadPackets(t *testing.T) {
	addr := brokertest.Start(t, brokertest.Options{}).Addr
	for _, tc := range []struct {
		name string
		send func(c *Conn) error
	}{
		{"publish-qos3", func(c *Conn) error { return c.Publish(PublishPacket{Topic: "t", QoS: 3, PacketID: 1}) }},
		{"reserved-type-0", func(c *Conn) error { return c.WriteRaw([]byte{0x00, 0x00}) }},
		{"subscribe-bad-flags", func(c *Conn) error {
			b, err := Frame(TypeSubscribe, 0, []byte{0, 1, 0, 1, 'a', 0})
			if err != nil {
				return err
			}
			return c.WriteRaw(b)
		}},
		{"second-connect", func(c *Conn) error { return c.Connect(ConnectPacket{ClientID: "again"}) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := connect(t, addr, tc.name)
			must(t, tc.send(c))
			if err := c.ExpectClosed(wait); err != nil {
				t.Errorf("ExpectClosed: %v", err)
			}
		})
	}
}

// TestStockMochiConnect pins what stock mochi v2.7.9 answers to CONNECTs
// that break MQTT 3.1.1 or IoT Hub rules, as seen through this client (see
// reference/mochi-and-paho.md §2a). The 0x80/0x82 codes are not valid 3.1.1
// return codes: fakehub has to answer these itself. The rows show that
// mqttraw can send each case.
func TestStockMochiConnect(t *testing.T) {
	addr := brokertest.Start(t, brokertest.Options{}).Addr
	const noConnack = -1
	for _, tc := range []struct {
		name string
		p    ConnectPacket
		want int // CONNACK return code, or noConnack
	}{
		{"protocol-name-mqtx", ConnectPacket{ProtocolName: "MQTX", ClientID: "a"}, 0x82},
		{"protocol-level-3", ConnectPacket{ProtocolLevel: 3, ClientID: "a"}, 0x82},
		{"protocol-level-5", ConnectPacket{ProtocolLevel: 5, ClientID: "a"}, noConnack}, // read as a v5 CONNECT without properties
		{"empty-client-id-persistent", ConnectPacket{}, 0x80},
		{"will-empty-payload", ConnectPacket{ClientID: "a", Will: &Will{Topic: "w"}}, 0x82},
		{"will-qos3", ConnectPacket{ClientID: "a", Will: &Will{Topic: "w", Payload: []byte("x"), QoS: 3}}, 0x82},
		{"reserved-flag", ConnectPacket{ClientID: "a", ReservedFlag: true}, 0x82},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), wait)
			defer cancel()
			ack, c, err := ConnectAndWait(ctx, addr, nil, tc.p)
			if tc.want == noConnack {
				if !errors.Is(err, io.EOF) {
					t.Errorf("ConnectAndWait = %+v, %v; want a close without CONNACK", ack, err)
				}
				return
			}
			if err != nil {
				t.Fatalf("ConnectAndWait: %v", err)
			}
			defer c.Close()
			if int(ack.ReturnCode) != tc.want {
				t.Errorf("CONNACK return code %#x, want %#x", ack.ReturnCode, tc.want)
			}
			if err := c.ExpectClosed(wait); err != nil {
				t.Errorf("ExpectClosed after refusal: %v", err)
			}
		})
	}
	t.Run("password-without-user-name-accepted", func(t *testing.T) {
		// [MQTT-3.1.2-22] says the server must refuse this; stock mochi accepts it.
		ack, c, err := ConnectAndWait(context.Background(), addr, nil, ConnectPacket{ClientID: "p", Password: String("x")})
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		if ack.ReturnCode != ConnackAccepted {
			t.Errorf("CONNACK return code %#x, want 0 (stock mochi)", ack.ReturnCode)
		}
	})
}

func TestBrokerWill(t *testing.T) {
	addr := brokertest.Start(t, brokertest.Options{}).Addr
	sub := connect(t, addr, "watcher")
	must(t, sub.Subscribe(1, Subscription{"wills/#", 0}))
	next(t, sub, TypeSuback)

	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	_, dev, err := ConnectAndWait(ctx, addr, nil, ConnectPacket{ClientID: "dev", UserName: String("u"), Password: String("p"),
		Will: &Will{Topic: "wills/dev", Payload: []byte("gone")}})
	if err != nil {
		t.Fatal(err)
	}
	dev.Close() // abrupt: no DISCONNECT, so the will is published
	if got := next(t, sub, TypePublish).Publish; got.Topic != "wills/dev" || string(got.Payload) != "gone" {
		t.Errorf("will = %+v, want wills/dev \"gone\"", got)
	}
}

func TestBrokerTLS(t *testing.T) {
	now := time.Now()
	ca, err := certs.NewCA("mqttraw test CA", time.Hour, now, nil)
	must(t, err)
	serverTLS, err := ca.ServerTLS([]string{"localhost", "127.0.0.1"}, time.Hour, now)
	must(t, err)
	addr := brokertest.Start(t, brokertest.Options{TLS: serverTLS}).Addr

	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	ack, c, err := ConnectAndWait(ctx, addr, ca.ClientTLS("localhost"), ConnectPacket{ClientID: "tls"})
	if err != nil {
		t.Fatalf("ConnectAndWait over TLS: %v", err)
	}
	defer c.Close()
	if ack.ReturnCode != ConnackAccepted {
		t.Errorf("CONNACK return code %d, want 0", ack.ReturnCode)
	}
	must(t, c.Publish(PublishPacket{Topic: "t", QoS: 3}))
	if err := c.ExpectClosed(wait); err != nil {
		t.Errorf("ExpectClosed over TLS: %v", err)
	}

	// An empty ServerName is taken from the address; 127.0.0.1 is in the leaf.
	cfg := ca.ClientTLS("")
	c2, err := Dial(ctx, addr, cfg)
	must(t, err)
	c2.Close()
	// A name not in the leaf fails the handshake.
	if _, err := Dial(ctx, addr, ca.ClientTLS("myhub.azure-devices.net")); err == nil {
		t.Error("Dial with a wrong ServerName succeeded")
	}
}

// TestNoBroker covers what needs no broker: a server that closes without
// CONNACK, one that answers something else, and a local Close.
func TestNoBroker(t *testing.T) {
	serve := func(t *testing.T, answer []byte) string {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		must(t, err)
		var wg sync.WaitGroup
		t.Cleanup(func() { ln.Close(); wg.Wait() })
		wg.Add(1)
		go func() {
			defer wg.Done()
			c, err := ln.Accept()
			if err != nil {
				return
			}
			defer c.Close()
			_, _ = ReadPacket(c) // the CONNECT
			_, _ = c.Write(answer)
		}()
		return ln.Addr().String()
	}
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()

	t.Run("close-without-connack", func(t *testing.T) {
		_, c, err := ConnectAndWait(ctx, serve(t, nil), nil, ConnectPacket{ClientID: "x"})
		var closed *ClosedError
		if !errors.Is(err, io.EOF) || !errors.As(err, &closed) || c != nil {
			t.Errorf("ConnectAndWait = %v, %v; want a *ClosedError (io.EOF) and no Conn", c, err)
		}
	})
	t.Run("suback-instead", func(t *testing.T) {
		_, c, err := ConnectAndWait(ctx, serve(t, []byte{0x90, 3, 0, 1, 0}), nil, ConnectPacket{ClientID: "x"})
		if err == nil || !strings.Contains(err.Error(), "want CONNACK") || c != nil {
			t.Errorf("ConnectAndWait = %v, %v; want a \"want CONNACK\" error", c, err)
		}
	})
	t.Run("refused", func(t *testing.T) {
		ack, c, err := ConnectAndWait(ctx, serve(t, []byte{0x20, 2, 0, 5}), nil, ConnectPacket{ClientID: "x"})
		if err != nil || ack.ReturnCode != ConnackNotAuthorized {
			t.Fatalf("ConnectAndWait = %+v, %v; want return code 5", ack, err)
		}
		defer c.Close()
		if err := c.ExpectClosed(wait); err != nil {
			t.Errorf("ExpectClosed after a refusal: %v", err)
		}
	})
	t.Run("garbage", func(t *testing.T) {
		_, _, err := ConnectAndWait(ctx, serve(t, []byte{0x20, 3, 0, 0, 0}), nil, ConnectPacket{ClientID: "x"})
		if !errors.Is(err, ErrMalformed) {
			t.Errorf("ConnectAndWait = %v, want ErrMalformed", err)
		}
	})
	t.Run("local-close", func(t *testing.T) {
		c, err := Dial(ctx, serve(t, nil), nil)
		must(t, err)
		must(t, c.Close())
		if err := c.Close(); err != nil {
			t.Errorf("second Close = %v, want nil", err)
		}
		if _, err := c.ReadPacket(wait); !errors.Is(err, ErrClosed) {
			t.Errorf("ReadPacket after Close = %v, want ErrClosed", err)
		}
		if err := c.Pingreq(); !errors.Is(err, ErrClosed) {
			t.Errorf("Pingreq after Close = %v, want ErrClosed", err)
		}
	})
}
