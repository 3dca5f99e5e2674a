package fakehub

import (
	"crypto/tls"
	"errors"
	"io"
	"log/slog"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/mochi-mqtt/server/v2/listeners"

	"github.com/hubkit/hubkit/pkg/fakehub/internal/wire"
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
	// onAccept, when set, sees each accepted connection (the packet observers, observe.go);
	// onHandshake each TLS handshake's end (err nil: completed, tlsdrill.go).
	onAccept    func(*guardConn)
	onHandshake func(g *guardConn, err error)
	// onBareClose, when set, sees the close of each connection that never sent a CONNECT
	// (mochi reports only the others' ends: observeHook.OnDisconnect).
	onBareClose func(*guardConn)
	// onAcceptError is told of each temporary Accept error before the wait;
	// onRefused of each connection closed for want of a descriptor.
	onAcceptError func(err error, retryIn time.Duration)
	onRefused     func(remote string)
	acceptErrors  atomic.Uint64 // temporary Accept errors
	refused       atomic.Uint64 // connections closed for want of a descriptor

	// srv, when set, is told about what the connections do wrong (packets
	// that break an MQTT rule, failed TLS handshakes); without it they are
	// only closed.
	srv *Server
	// maxPacket bounds a packet (fixed header included); 0: none.
	maxPacket int
	// writeTimeout bounds each write after CONNECT; 0: none.
	writeTimeout time.Duration
	// ws: the connections carry HTTP and WebSocket frames (wsListener); the
	// wire checker sees the MQTT bytes inside them, in wsConn.Read.
	ws bool

	mu       sync.Mutex
	conns    map[*guardConn]struct{}
	byRemote map[string]*guardConn

	spareMu   sync.Mutex
	spare     *os.File // a descriptor to give up when there is none left
	done      chan struct{}
	closeOnce sync.Once
}

func newGuardListener(raw net.Listener, cfg *tls.Config, timeout time.Duration, onTimeout func(string), onFirstRead func(string, []byte, error)) *guardListener {
	l := &guardListener{Listener: raw, tls: cfg, timeout: timeout, onTimeout: onTimeout, onFirstRead: onFirstRead,
		conns: map[*guardConn]struct{}{}, byRemote: map[string]*guardConn{},
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
	g := &guardConn{Conn: inner, raw: c, l: l, remote: c.RemoteAddr().String(), writeTimeout: l.writeTimeout, seq: connSeq.Add(1)}
	g.check.MaxPacket = l.maxPacket
	l.mu.Lock()
	l.conns[g] = struct{}{}
	l.byRemote[g.remote] = g
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

// lookup returns the open connection from remote, or nil.
func (l *guardListener) lookup(remote string) *guardConn {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.byRemote[remote]
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
	raw       net.Conn // the TCP connection under TLS (Conn itself without TLS)
	l         *guardListener
	seq       uint64                  // iothub.Packet.Conn
	connected atomic.Bool             // CONNECT seen
	session   atomic.Pointer[session] // the session it authenticated, from OnConnect (authHook) to OnDisconnect
	idle      atomic.Int64            // time.Duration; > 0: the keep-alive time-out replacing mochi's deadlines
	reported  atomic.Bool
	readOnce  atomic.Bool // the first Read has happened
	closeOnce sync.Once
	remote    string
	drill     atomic.Pointer[string] // the TLS drill its handshake was presented (tlsdrill.go)

	// writeTimeout bounds each write (0: none); writeTimedOut is set when one
	// did not finish in time.
	writeTimeout  time.Duration
	writeTimedOut atomic.Bool
	wmu           sync.Mutex // serialises Write (mochi holds the client lock; the TLS conn needs no more)

	// recorded is set once a rejection names this connection: whatever
	// ends it then needs no record of its own.
	recorded atomic.Bool
	// noClientCert: the WebSocket request carried ?iothub-no-client-cert=true (for hints).
	noClientCert atomic.Bool
	// hijacking: net/http is handing the connection to the WebSocket listener; the
	// read it aborts with a past deadline is not the CONNECT time-out.
	hijacking atomic.Bool

	// Read side, used by mochi's read goroutine only (on the WebSocket
	// listener: net/http's, then gorilla's reader under wsConn.Read, in turn).
	handshaken bool
	check      wire.Checker // the MQTT 3.1.1 rules mochi does not enforce
	gotBytes   bool         // the checker has seen MQTT bytes
}

// Read reads for mochi: the TLS handshake first (a failure is recorded),
// then the bytes the client sent, through the wire checker. A packet that
// breaks an MQTT "MUST close" rule never reaches mochi whole: Read returns
// the bytes before it, then the violation as its error, and the connection
// ends with a rejection naming the rule. On the WebSocket listener the bytes
// are HTTP and WebSocket frames: wsConn.Read checks the MQTT inside them.
func (c *guardConn) Read(b []byte) (int, error) {
	if v := c.check.Err(); v != nil && !c.l.ws {
		return 0, v
	}
	if !c.handshaken {
		c.handshaken = true
		if tc, ok := c.Conn.(*tls.Conn); ok {
			err := tc.HandshakeContext(handshakeContext(c))
			if c.l.onHandshake != nil {
				c.l.onHandshake(c, err)
			}
			if err != nil {
				if c.l.onFirstRead != nil && !errors.Is(err, os.ErrDeadlineExceeded) && c.readOnce.CompareAndSwap(false, true) {
					c.l.onFirstRead(c.remote, nil, err) // plaintext on the TLS port, named (firstcontact.go)
				}
				c.readFailed(err)
				return 0, err
			}
		}
	}
	n, err := c.Conn.Read(b)
	if c.l.onFirstRead != nil && (n > 0 || err != nil) && c.readOnce.CompareAndSwap(false, true) && !c.connected.Load() && !errors.Is(err, os.ErrDeadlineExceeded) {
		c.l.onFirstRead(c.remote, b[:n], err) // names what is not MQTT (firstcontact.go) before the checker sees it
	}
	if c.l.ws {
		if err != nil && errors.Is(err, os.ErrDeadlineExceeded) && !c.hijacking.Load() {
			c.readFailed(err) // the CONNECT time-out
		}
		return n, err
	}
	return c.checked(b, n, err)
}

// checked passes the n bytes read into b (with the read's err) through the
// wire checker: it returns what may reach mochi, and records a violation or
// why the read failed.
func (c *guardConn) checked(b []byte, n int, err error) (int, error) {
	if n > 0 {
		c.gotBytes = true
		ok, v := c.check.Feed(b[:n])
		if v != nil {
			if srv := c.l.srv; srv != nil {
				srv.violated(c, v)
			}
			if ok > 0 {
				return ok, nil // the next Read returns v
			}
			return 0, v
		}
	}
	if err != nil {
		c.readFailed(err)
	}
	return n, err
}

// readFailed records why a read before or during CONNECT failed: the
// CONNECT time-out, a failed TLS handshake, or a CONNECT cut off by the
// client closing the connection.
func (c *guardConn) readFailed(err error) {
	switch {
	case c.connected.Load() || c.check.Connected():
	case errors.Is(err, os.ErrDeadlineExceeded):
		if c.reported.CompareAndSwap(false, true) {
			c.l.onTimeout(c.remote)
		}
	case c.l.srv == nil:
	case !c.gotBytes && isHandshakeError(err):
		c.l.srv.handshakeFailed(c, err)
	case c.gotBytes && c.check.InPacket() && isClosed(err):
		c.l.srv.connectIncomplete(c)
	}
}

// isHandshakeError reports whether err ended a TLS handshake for a reason
// worth recording (not a client that connected and left, nor our own close).
func isHandshakeError(err error) bool {
	if isClosed(err) || errors.Is(err, net.ErrClosed) {
		return false
	}
	var rh tls.RecordHeaderError
	var ae tls.AlertError
	return errors.As(err, &rh) || errors.As(err, &ae) || !errors.Is(err, io.EOF)
}

// isClosed reports whether err means the peer closed the connection.
func isClosed(err error) bool {
	return errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE)
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
// non-zero deadline is replaced by now + idle. Once CONNECT was read it is
// the read deadline only: writes have their own (Write).
func (c *guardConn) SetDeadline(t time.Time) error {
	if d := time.Duration(c.idle.Load()); d > 0 && !t.IsZero() {
		t = time.Now().Add(d)
	}
	if c.connected.Load() && c.writeTimeout > 0 {
		return c.Conn.SetReadDeadline(t)
	}
	return c.Conn.SetDeadline(t)
}

// Write bounds every write by the write time-out (Options.WriteTimeout), so
// that a device that stops reading cannot hold a writer for longer.
func (c *guardConn) Write(b []byte) (int, error) {
	if c.writeTimeout <= 0 || !c.connected.Load() {
		return c.Conn.Write(b)
	}
	c.wmu.Lock()
	defer c.wmu.Unlock()
	_ = c.Conn.SetWriteDeadline(time.Now().Add(c.writeTimeout))
	n, err := c.Conn.Write(b)
	if err != nil && errors.Is(err, os.ErrDeadlineExceeded) {
		c.writeTimedOut.Store(true)
	}
	return n, err
}

func (c *guardConn) Close() error {
	c.closeOnce.Do(func() {
		c.l.mu.Lock()
		delete(c.l.conns, c)
		if c.l.byRemote[c.remote] == c {
			delete(c.l.byRemote, c.remote)
		}
		c.l.mu.Unlock()
		if c.l.onBareClose != nil && !c.connected.Load() {
			c.l.onBareClose(c)
		}
	})
	// The socket first: a TLS close_notify to a device that stopped reading
	// would block the closer for seconds.
	_ = c.raw.Close()
	return c.Conn.Close()
}

// ConnectionState exposes the TLS state (the client certificate of an X.509 identity).
func (c *guardConn) ConnectionState() (tls.ConnectionState, bool) {
	if tc, ok := c.Conn.(*tls.Conn); ok {
		return tc.ConnectionState(), true
	}
	return tls.ConnectionState{}, false
}

// mochiListener serves a guardListener to mochi (in place of mochi's
// listeners.Net) and reports how each connection ended: a connection that
// ends with an error no rejection explains gets one (ReasonConnectionError),
// so that every close the hub makes leaves a record.
type mochiListener struct {
	id  string
	ln  *guardListener
	log *slog.Logger
	end atomic.Bool
}

func newMochiListener(id string, ln *guardListener) *mochiListener {
	return &mochiListener{id: id, ln: ln}
}

func (l *mochiListener) ID() string       { return l.id }
func (l *mochiListener) Address() string  { return l.ln.Addr().String() }
func (l *mochiListener) Protocol() string { return "tcp" }

func (l *mochiListener) Init(log *slog.Logger) error {
	l.log = log
	return nil
}

func (l *mochiListener) Serve(establish listeners.EstablishFn) {
	for !l.end.Load() {
		conn, err := l.ln.Accept()
		if err != nil {
			return
		}
		go func() {
			err := establish(l.id, conn)
			if g := guardOf(conn); g != nil && l.ln.srv != nil {
				l.ln.srv.connectionEnded(g, err)
			}
		}()
	}
}

func (l *mochiListener) Close(closeClients listeners.CloseFn) {
	if l.end.CompareAndSwap(false, true) {
		closeClients(l.id)
	}
	_ = l.ln.Close()
}
