package fakehub

import (
	"crypto/tls"
	"errors"
	"io"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"time"
)

// guardListener wraps the TCP listener mochi serves from. mochi has no
// CONNECT (or TLS handshake) time-out (mochi-and-paho.md §2j), so each
// accepted connection gets a deadline that mochi replaces once CONNECT is
// processed. It also tracks open connections so Close can end those that
// never reached CONNECT (mochi does not know about them).
type guardListener struct {
	net.Listener
	tls       *tls.Config
	timeout   time.Duration
	onTimeout func(remote string)
	// onFirstRead sees what the first Read of a connection returned (the
	// start of the first packet, or the TLS handshake's error), so that
	// what is not MQTT can be named (firstcontact.go).
	onFirstRead func(remote string, b []byte, err error)
	// onHandshake, when set, is told about TLS handshakes that failed for another reason
	// than plaintext or a plain EOF: a device that refused the server's certificate, or
	// offered no common version.
	onHandshake func(remote string, err error)
	// onAccept, when set, sees each accepted connection (the packet observers, observe.go).
	onAccept func(*guardConn)

	mu    sync.Mutex
	conns map[*guardConn]struct{}
}

func newGuardListener(raw net.Listener, cfg *tls.Config, timeout time.Duration, onTimeout func(string), onFirstRead func(string, []byte, error)) *guardListener {
	return &guardListener{Listener: raw, tls: cfg, timeout: timeout, onTimeout: onTimeout, onFirstRead: onFirstRead, conns: map[*guardConn]struct{}{}}
}

func (l *guardListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	_ = c.SetDeadline(time.Now().Add(l.timeout))
	var inner net.Conn = c
	if l.tls != nil {
		inner = tls.Server(c, l.tls)
	}
	g := &guardConn{Conn: inner, l: l, seq: connSeq.Add(1)}
	l.mu.Lock()
	l.conns[g] = struct{}{}
	l.mu.Unlock()
	if l.onAccept != nil {
		l.onAccept(g)
	}
	return g, nil
}

func (l *guardListener) closeAll() {
	l.mu.Lock()
	defer l.mu.Unlock()
	for c := range l.conns {
		_ = c.Conn.Close()
	}
}

func (l *guardListener) open() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.conns)
}

// guardConn is one accepted connection (TLS already layered in).
type guardConn struct {
	net.Conn
	l         *guardListener
	seq       uint64       // iothub.Packet.Conn
	connected atomic.Bool  // CONNECT seen
	idle      atomic.Int64 // time.Duration; > 0: the keep-alive time-out replacing mochi's deadlines
	reported  atomic.Bool
	readOnce  atomic.Bool // the first Read has happened
	closeOnce sync.Once
	// noClientCert: the WebSocket request carried ?iothub-no-client-cert=true (for hints).
	noClientCert atomic.Bool
}

func (c *guardConn) Read(b []byte) (int, error) {
	n, err := c.Conn.Read(b)
	if err != nil && !c.connected.Load() && errors.Is(err, os.ErrDeadlineExceeded) && c.reported.CompareAndSwap(false, true) {
		c.l.onTimeout(c.RemoteAddr().String())
		return n, err
	}
	if c.readOnce.CompareAndSwap(false, true) {
		if c.l.onFirstRead != nil {
			c.l.onFirstRead(c.RemoteAddr().String(), b[:n], err)
		}
		if c.l.onHandshake != nil && c.handshakeFailed(err) && c.reported.CompareAndSwap(false, true) {
			c.l.onHandshake(c.RemoteAddr().String(), err)
		}
	}
	return n, err
}

// handshakeFailed reports whether err ended an incomplete TLS handshake for a reason
// firstRead does not name (plaintext on the TLS port) and that is not a plain close.
func (c *guardConn) handshakeFailed(err error) bool {
	if err == nil || errors.Is(err, io.EOF) || errors.Is(err, net.ErrClosed) {
		return false
	}
	if _, ok := errors.AsType[tls.RecordHeaderError](err); ok {
		return false
	}
	tc, ok := c.Conn.(*tls.Conn)
	return ok && !tc.ConnectionState().HandshakeComplete
}

// guardOf returns the guardConn under a connection mochi serves (directly, or under the
// WebSocket adapter), or nil.
func guardOf(c net.Conn) *guardConn {
	switch v := c.(type) {
	case *guardConn:
		return v
	case *wsConn:
		return v.g
	}
	return nil
}

// SetDeadline is how mochi applies keep-alive: before each packet it sets
// keepalive + keepalive/2 in whole seconds (1 s -> 1 s, 3 s -> 4 s). Once
// the hub has set the exact time-out (idle: 1.5 × keep-alive, capped), a
// non-zero deadline is replaced by now + idle.
func (c *guardConn) SetDeadline(t time.Time) error {
	if d := time.Duration(c.idle.Load()); d > 0 && !t.IsZero() {
		t = time.Now().Add(d)
	}
	return c.Conn.SetDeadline(t)
}

func (c *guardConn) Close() error {
	c.closeOnce.Do(func() {
		c.l.mu.Lock()
		delete(c.l.conns, c)
		c.l.mu.Unlock()
	})
	return c.Conn.Close()
}

// ConnectionState exposes the TLS state (the client certificate of an X.509 identity).
func (c *guardConn) ConnectionState() (tls.ConnectionState, bool) {
	if tc, ok := c.Conn.(*tls.Conn); ok {
		return tc.ConnectionState(), true
	}
	return tls.ConnectionState{}, false
}
