package fakehub

import (
	"bytes"
	"fmt"
	"testing"
	"time"

	mqtt "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/packets"

	"github.com/hubkit/hubkit/pkg/iothub"
	"github.com/hubkit/hubkit/pkg/sas"
)

// connectPacket is a CONNECT for device id with password pw.
func connectPacket(id, pw string) (*mqtt.Client, packets.Packet) {
	cl := &mqtt.Client{ID: id}
	cl.Net.Remote = "192.0.2.1:1234"
	pk := packets.Packet{Connect: packets.ConnectParams{
		ClientIdentifier: id, UsernameFlag: true, Username: []byte("localhost/" + id + "/?api-version=2021-04-12"),
		PasswordFlag: true, Password: []byte(pw),
	}}
	return cl, pk
}

func TestSuspectsOnlyAfterSignatureMismatch(t *testing.T) {
	s, err := NewServer(Options{InsecureAddr: "127.0.0.1:0"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	key := bytes.Repeat([]byte{1}, 32)
	other := bytes.Repeat([]byte{2}, 32)
	for i := range 100 {
		k := bytes.Repeat([]byte{byte(3 + i)}, 32)
		if _, err := s.AddDevice(fmt.Sprintf("d%03d", i), k); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := s.AddDevice("d1", key); err != nil {
		t.Fatal(err)
	}
	built := func() int64 { return s.opts.Registry.suspectLists.Load() }
	h := &authHook{s: s}
	sign := func(k []byte) string {
		return sas.Sign(sas.EncodeResource("localhost/devices/d1"), "", k, time.Now().Add(time.Hour)).String()
	}

	if _, rj := h.authenticate(connectPacket("d1", sign(key))); rj != nil {
		t.Fatalf("valid token refused: %+v", rj)
	}
	if built() != 0 {
		t.Errorf("a valid CONNECT built %d suspect lists, want 0", built())
	}
	_, rj := h.authenticate(connectPacket("d1", sign(other)))
	if rj == nil || rj.Reason != sas.ReasonSignatureMismatch {
		t.Fatalf("wrong key: %+v, want signature-mismatch", rj)
	}
	if built() != 1 {
		t.Errorf("a signature mismatch built %d suspect lists, want 1", built())
	}
	if len(rj.Hints) == 0 {
		t.Errorf("signature mismatch without hints")
	}
	if got := s.opts.Registry.suspects(iothub.Identity{DeviceID: "d1"}, "localhost/devices/d1"); len(got) > sas.MaxSuspectKeys {
		t.Errorf("%d suspects, want at most %d", len(got), sas.MaxSuspectKeys)
	}
}

// BenchmarkAuthenticate measures the CONNECT check (no network) in a
// registry of 100000 devices, with a valid token and with a wrong key (the
// only case that builds the suspect keys):
//
//	go test -run '^$' -bench Authenticate ./pkg/fakehub/
func BenchmarkAuthenticate(b *testing.B) {
	s, err := NewServer(Options{InsecureAddr: "127.0.0.1:0"})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { s.Close() })
	reg := s.opts.Registry
	reg.mu.Lock()
	for i := range 100000 {
		id := fmt.Sprintf("dev%06d", i)
		reg.devices[id] = &entry{dev: iothub.Device{DeviceID: id, Status: iothub.StatusEnabled, Authentication: iothub.SASAuth(encodeKey(testKey), encodeKey(testKey))}}
	}
	reg.mu.Unlock()
	h := &authHook{s: s}
	for _, bc := range []struct {
		name string
		key  []byte
	}{{"valid", testKey}, {"wrong-key", bytes.Repeat([]byte{9}, 32)}} {
		pw := sas.Sign(sas.EncodeResource("localhost/devices/dev000042"), "", bc.key, time.Now().Add(time.Hour)).String()
		b.Run(bc.name, func(b *testing.B) {
			for b.Loop() {
				h.authenticate(connectPacket("dev000042", pw))
			}
		})
	}
}
