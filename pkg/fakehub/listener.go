package fakehub

import (
	"crypto/tls"
	"errors"
	"io"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// guardListener wraps the TCP listener mochi serves from. mochi has no
// CONNECT (or TLS handshake) time-out (mochi-and-paho.md §2j), so each
// accepted connection gets a deadline that mochi replaces once CONNECT is
// processed. It also tracks open connections so Close can end those that
// never reached CONNECT (mochi does not know about them).
//
// mochi's accept loop ends for good on the first Accept error, EMFILE
// included, so Accept returns only when the listener is closed: a temporary
// error is retried with a back-off from 5 ms to 1 s, as net/http does. Out
// of file descriptors, the connection waiting in the backlog is refused
// cleanly instead of left hanging: a spare descriptor held for that is
// released, the connection accepted and closed at once (the client sees the
// close during its TLS handshake), and the spare taken again.
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
	// onAcceptError is told of each temporary Accept error before the wait;
	// onRefused of each connection closed for want of a descriptor.
	onAcceptError func(err error, retryIn time.Duration)
	onRefused     func(remote string)
	acceptErrors  atomic.Uint64 // temporary Accept errors
	refused       atomic.Uint64 // connections closed for want of a descriptor

	mu    sync.Mutex
	conns map[*guardConn]struct{}

	spareMu   sync.Mutex
	spare     *os.File // a descriptor to give up when there is none left
	done      chan struct{}
	closeOnce sync.Once
}

func newGuardListener(raw net.Listener, cfg *tls.Config, timeout time.Duration, onTimeout func(string), onFirstRead func(string, []byte, error)) *guardListener {
	l := &guardListener{Listener: raw, tls: cfg, timeout: timeout, onTimeout: onTimeout, onFirstRead: onFirstRead, conns: map[*guardConn]struct{}{},
		onAcceptError: func(error, time.Duration) {}, onRefused: func(string) {}, done: make(chan struct{})}
	l.spare, _ = os.Open(os.DevNull) // nil where there is no null device: back-off only
	return l
}

// Accept returns the next connection, with its TLS layer and CONNECT
// deadline; it retries temporary errors and returns only a permanent one
// (net.ErrClosed after Close).
func (l *guardListener) Accept() (net.Conn, error) {
	var backoff time.Duration
	for {
		c, err := l.Listener.Accept()
		if err == nil {
			return l.guard(c), nil
		}
		if !temporaryAcceptError(err) {
			return nil, err
		}
		l.acceptErrors.Add(1)
		if outOfDescriptors(err) && l.refuseOne() {
			backoff = 0
			continue
		}
		backoff = min(max(2*backoff, 5*time.Millisecond), time.Second)
		l.onAcceptError(err, backoff)
		t := time.NewTimer(backoff)
		select {
		case <-t.C:
		case <-l.done:
			t.Stop()
			return nil, net.ErrClosed
		}
	}
}

// refuseOne frees the spare descriptor, accepts the oldest waiting
// connection, closes it and takes the spare again. It reports whether
// Accept should be tried again at once: a connection was refused, or the
// spare could be reopened (descriptors are free again).
func (l *guardListener) refuseOne() bool {
	l.spareMu.Lock()
	defer l.spareMu.Unlock()
	if l.spare == nil {
		f, err := os.Open(os.DevNull)
		if err != nil {
			return false
		}
		l.spare = f
		return true
	}
	_ = l.spare.Close()
	c, err := l.Listener.Accept()
	if err != nil {
		l.spare, _ = os.Open(os.DevNull)
		return false
	}
	remote := c.RemoteAddr().String()
	_ = c.Close()
	l.spare, _ = os.Open(os.DevNull) // the descriptor c had
	l.refused.Add(1)
	l.onRefused(remote)
	return true
}

// temporaryAcceptError reports whether Accept may succeed later: out of
// descriptors or buffers, or a connection that went away while queued.
func temporaryAcceptError(err error) bool {
	if errors.Is(err, net.ErrClosed) {
		return false
	}
	var ne net.Error
	return outOfDescriptors(err) || errors.Is(err, syscall.ENOBUFS) || errors.Is(err, syscall.ENOMEM) ||
		errors.Is(err, syscall.ECONNABORTED) || errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EINTR) ||
		errors.As(err, &ne) && ne.Timeout()
}

func outOfDescriptors(err error) bool {
	return errors.Is(err, syscall.EMFILE) || errors.Is(err, syscall.ENFILE)
}

// Close stops Accept and closes the listener (not the connections: see
// closeAll).
func (l *guardListener) Close() error {
	err := l.Listener.Close() // first: it ends an Accept in refuseOne, which holds spareMu
	l.closeOnce.Do(func() {
		close(l.done)
		l.spareMu.Lock()
		if l.spare != nil {
			_ = l.spare.Close()
			l.spare = nil
		}
		l.spareMu.Unlock()
	})
	return err
}

// guard wraps an accepted connection.
func (l *guardListener) guard(c net.Conn) net.Conn {
	_ = c.SetDeadline(time.Now().Add(l.timeout))
	var inner net.Conn = c
	if l.tls != nil {
		inner = tls.Server(c, l.tls)
	}
	g := &guardConn{Conn: inner, l: l, seq: connSeq.Add(1)}
	l.mu.Lock()
	l.conns[g] = struct{}{}
	l.mu.Unlock()
	select {
	case <-l.done: // accepted as Close ran: closeAll may have missed it
		_ = g.Conn.Close()
	default:
	}
	if l.onAccept != nil {
		l.onAccept(g)
	}
	return g
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
	seq       uint64                  // iothub.Packet.Conn
	connected atomic.Bool             // CONNECT seen
	session   atomic.Pointer[session] // the session it authenticated, from OnConnect to OnDisconnect
	idle      atomic.Int64            // time.Duration; > 0: the keep-alive time-out replacing mochi's deadlines
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
	if !c.readOnce.Load() && c.readOnce.CompareAndSwap(false, true) {
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
