package testutil

import (
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"sync"
	"testing"
	"time"
)

// ConnectProxy is an HTTP proxy that tunnels CONNECT requests, as the corporate proxies do
// that devices reach IoT Hub's MQTT-over-WebSockets endpoint through. It serves on
// loopback until the test ends.
type ConnectProxy struct {
	// URL is the proxy's address, "http://127.0.0.1:PORT".
	URL string
	// redirect maps a requested "host:port" to the address dialled instead (a test hub on
	// a random port standing in for "localhost:443").
	redirect map[string]string

	mu      sync.Mutex
	targets []string
}

// StartConnectProxy starts a CONNECT proxy; redirect (may be nil) maps requested targets to
// the addresses really dialled.
func StartConnectProxy(t testing.TB, redirect map[string]string) *ConnectProxy {
	t.Helper()
	p := &ConnectProxy{redirect: redirect}
	srv := httptest.NewServer(p)
	t.Cleanup(srv.Close)
	p.URL = srv.URL
	return p
}

// Targets returns the CONNECT targets requested so far, in order.
func (p *ConnectProxy) Targets() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return slices.Clone(p.targets)
}

func (p *ConnectProxy) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodConnect {
		http.Error(w, "this proxy only tunnels (CONNECT)", http.StatusMethodNotAllowed)
		return
	}
	p.mu.Lock()
	p.targets = append(p.targets, r.Host)
	p.mu.Unlock()
	addr := r.Host
	if to, ok := p.redirect[addr]; ok {
		addr = to
	}
	up, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadGateway)
		return
	}
	w.WriteHeader(http.StatusOK)
	conn, buf, err := http.NewResponseController(w).Hijack()
	if err != nil {
		up.Close()
		return
	}
	go func() {
		_, _ = io.Copy(up, buf) // what the client sent, buffered or not
		up.Close()
	}()
	_, _ = io.Copy(conn, up)
	conn.Close()
}
