package fakehub

import (
	"bytes"
	"context"
	"testing"
	"time"

	"github.com/hubkit/hubkit/internal/mqttraw"
	"github.com/hubkit/hubkit/pkg/sas"
)

// testKey is the key of the devices the internal tests add.
var testKey = bytes.Repeat([]byte{1}, 32)

// startPlain runs a plaintext hub closed at the end of the test.
func startPlain(t *testing.T, opts Options) *Server {
	t.Helper()
	opts.InsecureAddr = "127.0.0.1:0"
	s, err := NewServer(opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// connectPlain connects device id (signed with testKey) and fails the test
// unless the CONNACK is 0.
func connectPlain(t *testing.T, s *Server, id string) *mqttraw.Conn {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	ack, c, err := mqttraw.ConnectAndWait(ctx, s.Addr(), nil, mqttraw.ConnectPacket{
		ClientID: id, UserName: mqttraw.String("localhost/" + id + "/?api-version=2021-04-12"), CleanSession: true, KeepAlive: 60,
		Password: mqttraw.String(sas.Sign(sas.EncodeResource("localhost/devices/"+id), "", testKey, time.Now().Add(time.Hour)).String()),
	})
	if err != nil || ack.ReturnCode != 0 {
		t.Fatalf("connect %s: %v %+v", id, err, ack)
	}
	t.Cleanup(func() { c.Close() })
	return c
}
