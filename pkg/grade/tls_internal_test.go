package grade

import (
	"testing"
	"time"

	"github.com/hubkit/hubkit/pkg/iothub"
)

// TestHandshakeClosedBeforeConnectIsARefusal: a client that checks the server's
// certificate after the TLS handshake (Node.js's tls does) shows the hub a completed
// handshake and then a close without a CONNECT: the recorder counts that as a refusal;
// a handshake followed by a CONNECT, or by nothing yet, is not one.
func TestHandshakeClosedBeforeConnectIsARefusal(t *testing.T) {
	id := iothub.Identity{DeviceID: "dev1"}
	r := newRecorder(id, "dev1", time.Now)
	hs := func(conn uint64) {
		r.observe(iothub.Packet{Type: iothub.PacketAccept, Conn: conn, RemoteAddr: "127.0.0.1:1000"})
		r.observe(iothub.Packet{Type: iothub.PacketHandshake, Conn: conn, RemoteAddr: "127.0.0.1:1000", TLSDrill: "wrong-san"})
	}
	hs(1)
	r.observe(iothub.Packet{Type: iothub.PacketClose, Conn: 1, RemoteAddr: "127.0.0.1:1000"}) // closed bare: refused
	hs(2)
	r.observe(iothub.Packet{Type: iothub.PacketConnect, Conn: 2, ClientID: "dev1", DeviceID: "dev1", RemoteAddr: "127.0.0.1:1000"})
	r.observe(iothub.Packet{Type: iothub.PacketClose, Conn: 2, RemoteAddr: "127.0.0.1:1000"}) // it sent its CONNECT: accepted
	hs(3)                                                                                     // still open, nothing sent yet
	got := r.handshakes(0)
	if len(got) != 3 {
		t.Fatalf("%d handshakes recorded, want 3", len(got))
	}
	for i, want := range []bool{true, false, false} {
		if got[i].refused() != want {
			t.Errorf("handshake on connection %d: refused() = %t, want %t (%+v)", got[i].Conn, got[i].refused(), want, got[i])
		}
	}
	if e := got[0].refusal(); e == "" {
		t.Error("the bare close has no refusal text")
	}
}

func TestHostKey(t *testing.T) {
	for _, tt := range []struct{ in, want string }{
		{"127.0.0.1:8883", "loopback"}, {"[::1]:8883", "loopback"}, {"127.0.0.2", "loopback"}, {"::1", "loopback"},
		{"[::ffff:192.0.2.1]:1", "192.0.2.1"}, {"192.0.2.1:5", "192.0.2.1"}, {"[2001:db8::1]:5", "2001:db8::1"}, {"device.local:5", "device.local"},
	} {
		if got := HostKey(tt.in); got != tt.want {
			t.Errorf("HostKey(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}
