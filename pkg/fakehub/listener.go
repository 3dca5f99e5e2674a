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
type guardListener struct {
	net.Listener
	tls       *tls.Config
	timeout   time.Duration
	onTimeout func(remote string)
	// onFirstRead sees what the first Read of a connection returned (the
	// start of the first packet, or the TLS handshake's error), so that
	// what is not MQTT can be named (firstcontact.go).
	onFirstRead func(remote string, b []byte, err error)

	// srv, when set, is told about what the connections do wrong (packets
	// that break an MQTT rule, failed TLS handshakes); without it they are
	// only closed.
	srv *Server
	// maxPacket bounds a packet (fixed header included); 0: none.
	maxPacket int
	// writeTimeout bounds each write after CONNECT; 0: none.
	writeTimeout time.Duration

	mu       sync.Mutex
	conns    map[*guardConn]struct{}
	byRemote map[string]*guardConn
}

func newGuardListener(raw net.Listener, cfg *tls.Config, timeout time.Duration, onTimeout func(string), onFirstRead func(string, []byte, error)) *guardListener {
	return &guardListener{Listener: raw, tls: cfg, timeout: timeout, onTimeout: onTimeout, onFirstRead: onFirstRead,
		conns: map[*guardConn]struct{}{}, byRemote: map[string]*guardConn{}}
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
	g := &guardConn{Conn: inner, raw: c, l: l, remote: c.RemoteAddr().String(), writeTimeout: l.writeTimeout}
	g.check.MaxPacket = l.maxPacket
	l.mu.Lock()
	l.conns[g] = struct{}{}
	l.byRemote[g.remote] = g
	l.mu.Unlock()
	return g, nil
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
	connected atomic.Bool  // CONNECT seen
	idle      atomic.Int64 // time.Duration; > 0: the keep-alive time-out replacing mochi's deadlines
	reported  atomic.Bool
	readOnce  atomic.Bool // the first Read has happened
	closeOnce sync.Once
	remote    string

	// writeTimeout bounds each write (0: none); writeTimedOut is set when one
	// did not finish in time.
	writeTimeout  time.Duration
	writeTimedOut atomic.Bool
	wmu           sync.Mutex // serialises Write (mochi holds the client lock; the TLS conn needs no more)

	// recorded is set once a rejection names this connection: whatever
	// ends it then needs no record of its own.
	recorded atomic.Bool
	// session is the connection's session once authenticated (authHook).
	session atomic.Pointer[session]

	// Read side, used by mochi's read goroutine only.
	handshaken bool
	check      wire.Checker // the MQTT 3.1.1 rules mochi does not enforce
	gotBytes   bool
}

// Read reads for mochi: the TLS handshake first (a failure is recorded),
// then the bytes the client sent, through the wire checker. A packet that
// breaks an MQTT "MUST close" rule never reaches mochi whole: Read returns
// the bytes before it, then the violation as its error, and the connection
// ends with a rejection naming the rule.
func (c *guardConn) Read(b []byte) (int, error) {
	if v := c.check.Err(); v != nil {
		return 0, v
	}
	if !c.handshaken {
		c.handshaken = true
		if tc, ok := c.Conn.(*tls.Conn); ok {
			if err := tc.Handshake(); err != nil {
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
	})
	// The socket first: a TLS close_notify to a device that stopped reading
	// would block the closer for seconds.
	_ = c.raw.Close()
	return c.Conn.Close()
}

// ConnectionState exposes the TLS state (for X.509 identities later).
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
			if g, ok := conn.(*guardConn); ok && l.ln.srv != nil {
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
