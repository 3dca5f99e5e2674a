package brokertest_test

import (
	"bytes"
	"io"
	"net"
	"testing"
	"time"

	mqtt "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/packets"

	"github.com/hubkit/hubkit/internal/brokertest"
)

// connect is an MQTT 3.1.1 CONNECT for client ID "c", clean session, keep-alive 30 s.
var connect = []byte{0x10, 13, 0, 4, 'M', 'Q', 'T', 'T', 4, 0x02, 0, 30, 0, 1, 'c'}

// handshake dials addr, sends CONNECT and returns the connection and the CONNACK's four
// bytes. The caller closes the connection.
func handshake(t *testing.T, addr string) (net.Conn, []byte) {
	t.Helper()
	c, ack, err := tryHandshake(t, addr)
	if err != nil {
		c.Close()
		t.Fatalf("reading CONNACK: %v", err)
	}
	return c, ack
}

// tryHandshake is handshake that returns the error reading the CONNACK.
func tryHandshake(t *testing.T, addr string) (net.Conn, []byte, error) {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := c.Write(connect); err != nil {
		c.Close()
		t.Fatal(err)
	}
	ack := make([]byte, 4)
	_, err = io.ReadFull(c, ack)
	return c, ack, err
}

// The broker's cleanup stops a client the test left connected, and returns (the subtest
// would fail if the client did not drain).
func TestStartAllowsAndStopsClientsAtCleanup(t *testing.T) {
	var conn net.Conn
	t.Run("broker", func(t *testing.T) {
		b := brokertest.Start(t, brokertest.Options{})
		var ack []byte
		conn, ack = handshake(t, b.Addr)
		if want := []byte{0x20, 2, 0, 0}; !bytes.Equal(ack, want) {
			t.Fatalf("CONNACK = % x, want % x (accepted)", ack, want)
		}
	})
	if conn == nil {
		return
	}
	defer conn.Close()
	_ = conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	if n, err := conn.Read(make([]byte, 1)); err != io.EOF {
		t.Fatalf("after the broker's cleanup: Read = %d, %v; want EOF (the broker closed the connection)", n, err)
	}
}

// refuseAll refuses every CONNECT from OnConnect; mochi then closes the connection without
// a CONNACK.
type refuseAll struct{ mqtt.HookBase }

func (*refuseAll) ID() string           { return "refuse-all" }
func (*refuseAll) Provides(b byte) bool { return b == mqtt.OnConnect }
func (*refuseAll) OnConnect(*mqtt.Client, packets.Packet) error {
	return packets.ErrNotAuthorized
}

func TestHooksAreAdded(t *testing.T) {
	b := brokertest.Start(t, brokertest.Options{Hooks: []mqtt.Hook{new(refuseAll)}})
	c, ack, err := tryHandshake(t, b.Addr)
	c.Close() // the answer (or its absence) is read; tryHandshake returns the connection either way
	if err != io.EOF {
		t.Fatalf("CONNECT answered % x, %v; want the connection closed unanswered (by the hook's OnConnect)", ack, err)
	}
}
