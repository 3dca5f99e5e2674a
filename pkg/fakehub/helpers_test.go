package fakehub_test

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/base64"
	"errors"
	"fmt"
	"net"
	"sync"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"

	"github.com/hubkit/hubkit/internal/mqttraw"
	"github.com/hubkit/hubkit/pkg/fakehub"
	"github.com/hubkit/hubkit/pkg/fakehub/fakehubtest"
	"github.com/hubkit/hubkit/pkg/iothub"
	"github.com/hubkit/hubkit/pkg/sas"
)

// Fixed test keys (public test material).
var (
	keyDev1A = bytes.Repeat([]byte{1}, 32)
	keyDev1B = bytes.Repeat([]byte{2}, 32)
	keyDev2A = bytes.Repeat([]byte{3}, 32)
	keyDev2B = bytes.Repeat([]byte{4}, 32)
	keyModA  = bytes.Repeat([]byte{5}, 32)
	keyModB  = bytes.Repeat([]byte{6}, 32)
	keyWrong = bytes.Repeat([]byte{9}, 32)
	keyDev10 = bytes.Repeat([]byte{10}, 32)
)

var (
	dev1 = iothub.Identity{DeviceID: "dev1"}
	dev2 = iothub.Identity{DeviceID: "dev2"}
	mod1 = iothub.Identity{DeviceID: "dev1", ModuleID: "mod1"}
)

// startHub runs a hub with dev1 (+ module mod1), dev2 and dev10.
func startHub(t testing.TB, opts fakehub.Options) *fakehubtest.Hub {
	t.Helper()
	h := fakehubtest.Start(t, opts)
	reg := h.Registry()
	mustDo(t, func() error {
		_, err := reg.Add(iothub.Device{DeviceID: "dev1", Authentication: b64auth(keyDev1A, keyDev1B)})
		if err == nil {
			_, err = reg.Add(iothub.Device{DeviceID: "dev1", ModuleID: "mod1", Authentication: b64auth(keyModA, keyModB)})
		}
		return err
	})
	mustDo(t, func() error { _, err := h.AddDevice("dev2", keyDev2A, keyDev2B); return err })
	mustDo(t, func() error { _, err := h.AddDevice("dev10", keyDev10); return err })
	return h
}

func mustDo(t testing.TB, f func() error) {
	t.Helper()
	if err := f(); err != nil {
		t.Fatal(err)
	}
}

func b64auth(a, b []byte) iothub.Authentication {
	return iothub.SASAuth(base64.StdEncoding.EncodeToString(a), base64.StdEncoding.EncodeToString(b))
}

// token signs plainResource (encoded the SDK way) with key.
func token(plainResource, keyName string, key []byte, expiry time.Time) string {
	return sas.Sign(sas.EncodeResource(plainResource), keyName, key, expiry).String()
}

func deviceToken(host string, id iothub.Identity, key []byte) string {
	res := sas.DeviceResource(host, id.DeviceID)
	if id.IsModule() {
		res = sas.ModuleResource(host, id.DeviceID, id.ModuleID)
	}
	return token(res, "", key, time.Now().Add(time.Hour))
}

func userName(host string, id iothub.Identity) string {
	return host + "/" + id.ClientID() + "/?api-version=" + iothub.DefaultAPIVersion
}

// goodConnect is a valid raw CONNECT for id signed with key.
func goodConnect(id iothub.Identity, key []byte) mqttraw.ConnectPacket {
	return mqttraw.ConnectPacket{
		ClientID:     id.ClientID(),
		UserName:     mqttraw.String(userName("localhost", id)),
		Password:     mqttraw.String(deviceToken("localhost", id, key)),
		CleanSession: true,
		KeepAlive:    60,
	}
}

// rawConnect sends p and returns the CONNACK and the open connection.
func rawConnect(t testing.TB, h *fakehubtest.Hub, p mqttraw.ConnectPacket) (mqttraw.Connack, *mqttraw.Conn) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	ack, c, err := mqttraw.ConnectAndWait(ctx, h.Addr(), h.ClientTLS(), p)
	if err != nil {
		t.Fatalf("ConnectAndWait(%s): %v", p.ClientID, err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return ack, c
}

// rawDial opens a connection (TLS done) without sending anything.
func rawDial(t testing.TB, h *fakehubtest.Hub) *mqttraw.Conn {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c, err := mqttraw.Dial(ctx, h.Addr(), h.ClientTLS())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// rawSession connects id and fails unless the hub accepts.
func rawSession(t testing.TB, h *fakehubtest.Hub, p mqttraw.ConnectPacket) *mqttraw.Conn {
	t.Helper()
	ack, c := rawConnect(t, h, p)
	if ack.ReturnCode != 0 {
		t.Fatalf("CONNACK %d for %s, want 0; rejections: %+v", ack.ReturnCode, p.ClientID, h.Rejections())
	}
	return c
}

// expectClosedSilently reads until the hub closes the connection and fails
// if anything (a DISCONNECT in particular) arrived first.
func expectClosedSilently(t testing.TB, c *mqttraw.Conn) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		p, err := c.ReadPacket(time.Until(deadline))
		if err != nil {
			if !errors.Is(err, mqttraw.ErrTimeout) {
				return
			}
			t.Fatalf("hub kept the connection open: %v", err)
		}
		t.Fatalf("got %v (% x) before the close, want nothing", p, p.Raw)
	}
}

// waitRejection waits for a rejection with that reason among those recorded
// after the first `since` (len(h.Rejections()) before the action).
func waitRejection(t testing.TB, h *fakehubtest.Hub, since int, reason sas.Reason) iothub.Rejection {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	seen := 0
	r, err := h.WaitRejection(ctx, func(r iothub.Rejection) bool { seen++; return seen > since && r.Reason == reason })
	if err != nil {
		t.Fatalf("no rejection %q: %v; have %+v", reason, err, h.Rejections())
	}
	return r
}

// pahoClient connects a paho client (MQTT 3.1.1) for id with password.
type pahoResult struct {
	c              paho.Client
	lost           chan error
	sessionPresent bool // the CONNACK's session-present flag
}

func pahoConnect(t testing.TB, h *fakehubtest.Hub, id iothub.Identity, user, password string, tune ...func(*paho.ClientOptions)) (*pahoResult, error) {
	t.Helper()
	r := &pahoResult{lost: make(chan error, 1)}
	o := paho.NewClientOptions().
		AddBroker("ssl://" + h.Addr()).
		SetClientID(id.ClientID()).
		SetProtocolVersion(4).
		SetUsername(user).SetPassword(password).
		SetTLSConfig(h.ClientTLS()).
		SetAutoReconnect(false).
		SetConnectTimeout(5 * time.Second).
		SetConnectionLostHandler(func(_ paho.Client, err error) {
			select {
			case r.lost <- err:
			default:
			}
		})
	for _, f := range tune {
		f(o)
	}
	r.c = paho.NewClient(o)
	tok := r.c.Connect()
	if !tok.WaitTimeout(10 * time.Second) {
		return nil, errors.New("paho connect timed out")
	}
	if err := tok.Error(); err != nil {
		return nil, err
	}
	r.sessionPresent = tok.(*paho.ConnectToken).SessionPresent()
	t.Cleanup(func() { r.c.Disconnect(0) })
	return r, nil
}

func waitLost(t testing.TB, r *pahoResult) {
	t.Helper()
	select {
	case <-r.lost:
	case <-time.After(5 * time.Second):
		t.Fatal("paho client still connected, want connection lost")
	}
}

func nextMessage(t testing.TB, st *fakehub.Stream) iothub.Event {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	m, err := st.Next(ctx)
	if err != nil {
		t.Fatalf("no telemetry: %v", err)
	}
	return m
}

var _ = fmt.Sprint
var _ = net.Dial
var _ = sync.Mutex{}
var _ = tls.VersionTLS12
