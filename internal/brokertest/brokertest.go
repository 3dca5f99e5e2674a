package brokertest

import (
	"crypto/tls"
	"errors"
	"io"
	"log/slog"
	"sync/atomic"
	"testing"
	"time"

	mqtt "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/listeners"
	"github.com/mochi-mqtt/server/v2/packets"
)

// drainTimeout bounds the wait, at cleanup, for the stopped clients to be gone.
const drainTimeout = 5 * time.Second

// Options says how the broker differs from a plain allow-all one. The zero value is a plain
// TCP broker with mochi's default capabilities that lets every client connect, publish and
// subscribe.
type Options struct {
	// TLS, when set, makes the listener TLS with this configuration.
	TLS *tls.Config
	// Capabilities replaces mochi's defaults (mqtt.NewDefaultServerCapabilities) when set.
	Capabilities *mqtt.Capabilities
	// Hooks are added in order, after the allow-all hook (so they cannot refuse through
	// OnConnectAuthenticate or OnACLCheck, which mochi grants when any hook does; OnConnect
	// still can).
	Hooks []mqtt.Hook
}

// Broker is a running broker.
type Broker struct {
	Server *mqtt.Server
	Addr   string // host:port of the listener, on 127.0.0.1
}

// Start runs a broker on 127.0.0.1 at a free port, logging nowhere, and registers its stop
// with t.Cleanup: every client is stopped, the test waits (up to 5 s, failing if they are
// not all gone) for Info.ClientsConnected to reach 0, pauses briefly and closes the server.
// Cleanups registered after Start (closing the test's own clients, say) run before it.
func Start(t testing.TB, opts Options) *Broker {
	t.Helper()
	srv := mqtt.New(&mqtt.Options{
		Capabilities: opts.Capabilities,
		Logger:       slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	for _, h := range append([]mqtt.Hook{new(AllowAll)}, opts.Hooks...) {
		if err := srv.AddHook(h, nil); err != nil {
			t.Fatal(err)
		}
	}
	l := listeners.NewTCP(listeners.Config{ID: "t", Address: "127.0.0.1:0", TLSConfig: opts.TLS})
	if err := srv.AddListener(l); err != nil {
		t.Fatal(err)
	}
	if err := srv.Serve(); err != nil { // starts the listener and returns
		t.Fatal(err)
	}
	t.Cleanup(func() { drainAndClose(t, srv) })
	return &Broker{Server: srv, Addr: l.Address()}
}

// drainAndClose is the stop of reference/mochi-and-paho.md §7. When clients are still
// connected after drainTimeout it fails the test and leaves the server running rather than
// Close into the race it is there to avoid.
func drainAndClose(t testing.TB, srv *mqtt.Server) {
	for _, cl := range srv.Clients.GetAll() {
		cl.Stop(errors.New("test over"))
	}
	deadline := time.Now().Add(drainTimeout)
	for atomic.LoadInt64(&srv.Info.ClientsConnected) > 0 {
		if time.Now().After(deadline) {
			t.Errorf("brokertest: %d clients still connected %v after stopping them; not closing the broker",
				atomic.LoadInt64(&srv.Info.ClientsConnected), drainTimeout)
			return
		}
		time.Sleep(5 * time.Millisecond)
	}
	time.Sleep(20 * time.Millisecond) // mochi#424/#541: let attachClient finish before Close
	_ = srv.Close()
}

// AllowAll is a hook that lets every client connect, publish and subscribe. It stands in for
// mochi's auth.AllowHook, whose package pulls in gopkg.in/yaml.v3, which go.sum does not list.
type AllowAll struct{ mqtt.HookBase }

// ID names the hook.
func (*AllowAll) ID() string { return "allow-all" }

// Provides lists OnConnectAuthenticate and OnACLCheck.
func (*AllowAll) Provides(b byte) bool {
	return b == mqtt.OnConnectAuthenticate || b == mqtt.OnACLCheck
}

// OnConnectAuthenticate lets the client in.
func (*AllowAll) OnConnectAuthenticate(*mqtt.Client, packets.Packet) bool { return true }

// OnACLCheck allows the read or write.
func (*AllowAll) OnACLCheck(*mqtt.Client, string, bool) bool { return true }
