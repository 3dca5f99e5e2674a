package brokertest_test

import (
	"bytes"
	"io"
	"net"
	"testing"
	"time"

	"github.com/hubkit/hubkit/internal/brokertest"
)

// connect is an MQTT 3.1.1 CONNECT for client ID "c", clean session, keep-alive 30 s.
var connect = []byte{0x10, 13, 0, 4, 'M', 'Q', 'T', 'T', 4, 0x02, 0, 30, 0, 1, 'c'}

// handshake dials addr, sends CONNECT and returns the connection and the CONNACK's four
// bytes. The caller closes the connection.
func handshake(t *testing.T, addr string) (net.Conn, []byte) {
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
	if _, err := io.ReadFull(c, ack); err != nil {
		c.Close()
		t.Fatalf("reading CONNACK: %v", err)
	}
	return c, ack
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

func TestNoAllowAllRefuses(t *testing.T) {
	b := brokertest.Start(t, brokertest.Options{NoAllowAll: true})
	c, ack := handshake(t, b.Addr)
	defer c.Close()
	if want := []byte{0x20, 2, 0, 5}; !bytes.Equal(ack, want) {
		t.Fatalf("CONNACK = % x, want % x (not authorized)", ack, want)
	}
}
