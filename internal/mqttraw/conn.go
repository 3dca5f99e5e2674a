package mqttraw

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"sync"
	"syscall"
	"time"
)

// WriteTimeout bounds every write, so that a test never hangs on a server
// that stopped reading.
const WriteTimeout = 5 * time.Second

// DefaultConnackTimeout is how long ConnectAndWait waits for the CONNACK
// when ctx has no deadline.
const DefaultConnackTimeout = 10 * time.Second

var (
	// ErrTimeout is wrapped by ReadPacket when no packet arrived in time.
	ErrTimeout = errors.New("mqttraw: timed out waiting for a packet")
	// ErrClosed is returned after Close.
	ErrClosed = errors.New("mqttraw: connection closed by the client")
)

// ClosedError reports that the server closed the connection (FIN or RST,
// between packets or inside one). errors.Is(err, io.EOF) holds for it.
type ClosedError struct {
	Cause error // io.EOF, io.ErrUnexpectedEOF, ECONNRESET...
}

func (e *ClosedError) Error() string {
	if e.Cause == io.EOF {
		return "mqttraw: server closed the connection"
	}
	return fmt.Sprintf("mqttraw: server closed the connection (%v)", e.Cause)
}

// Is makes errors.Is(err, io.EOF) true.
func (e *ClosedError) Is(target error) bool { return target == io.EOF }

func (e *ClosedError) Unwrap() error { return e.Cause }

// Conn is a raw MQTT connection. A goroutine started by Dial reads packets
// as they arrive; ReadPacket hands them over one at a time.
type Conn struct {
	nc   net.Conn
	in   chan readResult
	done chan struct{}
	wg   sync.WaitGroup

	closeOnce sync.Once
	wmu       sync.Mutex // serialises writes

	mu      sync.Mutex
	readErr error // the read loop's final error, once ReadPacket has seen it
}

type readResult struct {
	p   Packet
	err error
}

// Dial connects to addr over TCP, or over TLS when tlsConfig is not nil
// (the TLS handshake is done before Dial returns; an empty ServerName is
// taken from addr). It sends nothing.
func Dial(ctx context.Context, addr string, tlsConfig *tls.Config) (*Conn, error) {
	var nc net.Conn
	var err error
	if tlsConfig != nil {
		nc, err = (&tls.Dialer{Config: tlsConfig}).DialContext(ctx, "tcp", addr)
	} else {
		nc, err = (&net.Dialer{}).DialContext(ctx, "tcp", addr)
	}
	if err != nil {
		return nil, fmt.Errorf("mqttraw: dialing %s: %w", addr, err)
	}
	return NewConn(nc), nil
}

// NewConn wraps an established connection (for example one end of
// net.Pipe) and starts reading from it.
func NewConn(nc net.Conn) *Conn {
	c := &Conn{nc: nc, in: make(chan readResult), done: make(chan struct{})}
	c.wg.Add(1)
	go c.readLoop(bufio.NewReader(nc))
	return c
}

func (c *Conn) readLoop(r *bufio.Reader) {
	defer c.wg.Done()
	for {
		p, err := ReadPacket(r)
		if err != nil && isClosed(err) {
			err = &ClosedError{Cause: err}
		}
		select {
		case c.in <- readResult{p, err}:
		case <-c.done:
			return
		}
		if err != nil {
			return
		}
	}
}

// isClosed reports whether a read error means the peer went away.
func isClosed(err error) bool {
	return errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) ||
		errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.ECONNABORTED) ||
		errors.Is(err, syscall.EPIPE)
}

// NetConn returns the underlying connection (for half-closes, addresses
// and such). Reading from it directly races with the Conn's reader.
func (c *Conn) NetConn() net.Conn { return c.nc }

// WriteRaw writes b as it is.
func (c *Conn) WriteRaw(b []byte) error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	select {
	case <-c.done:
		return ErrClosed
	default:
	}
	if err := c.nc.SetWriteDeadline(time.Now().Add(WriteTimeout)); err != nil {
		return fmt.Errorf("mqttraw: %w", err)
	}
	if _, err := c.nc.Write(b); err != nil {
		return fmt.Errorf("mqttraw: writing %d bytes: %w", len(b), err)
	}
	return nil
}

func (c *Conn) write(b []byte, err error) error {
	if err != nil {
		return err
	}
	return c.WriteRaw(b)
}

// Connect sends a CONNECT.
func (c *Conn) Connect(p ConnectPacket) error { return c.write(p.Encode()) }

// Publish sends a PUBLISH.
func (c *Conn) Publish(p PublishPacket) error { return c.write(p.Encode()) }

// Subscribe sends a SUBSCRIBE.
func (c *Conn) Subscribe(id uint16, filters ...Subscription) error {
	return c.write(EncodeSubscribe(id, filters...))
}

// Unsubscribe sends an UNSUBSCRIBE.
func (c *Conn) Unsubscribe(id uint16, filters ...string) error {
	return c.write(EncodeUnsubscribe(id, filters...))
}

// Puback sends a PUBACK.
func (c *Conn) Puback(id uint16) error { return c.WriteRaw(EncodeAck(TypePuback, id)) }

// Pingreq sends a PINGREQ.
func (c *Conn) Pingreq() error { return c.WriteRaw([]byte{byte(TypePingreq) << 4, 0}) }

// Disconnect sends a DISCONNECT (it does not close the connection).
func (c *Conn) Disconnect() error { return c.WriteRaw([]byte{byte(TypeDisconnect) << 4, 0}) }

// ReadPacket returns the next packet from the server, waiting at most
// timeout. Errors: one wrapping ErrTimeout; a *ClosedError (errors.Is
// io.EOF) once the server closed the connection; ErrMalformed for bytes
// that are not MQTT (the connection is then unusable); ErrClosed after
// Close. After a final error every later call returns it again.
func (c *Conn) ReadPacket(timeout time.Duration) (Packet, error) {
	c.mu.Lock()
	err := c.readErr
	c.mu.Unlock()
	if err != nil {
		return Packet{}, err
	}
	select { // a packet already waiting wins over an expired timeout
	case r := <-c.in:
		return c.take(r)
	default:
	}
	t := time.NewTimer(timeout)
	defer t.Stop()
	select {
	case r := <-c.in:
		return c.take(r)
	case <-c.done:
		return Packet{}, ErrClosed
	case <-t.C:
		return Packet{}, fmt.Errorf("%w (%v)", ErrTimeout, timeout)
	}
}

// take returns a result from the reader, remembering a final error.
func (c *Conn) take(r readResult) (Packet, error) {
	if r.err != nil {
		c.mu.Lock()
		c.readErr = r.err
		c.mu.Unlock()
	}
	return r.p, r.err
}

// ExpectClosed returns nil if the server closes the connection within
// timeout, reading and discarding packets until then. Otherwise the error
// says what happened instead and lists the packets that arrived.
func (c *Conn) ExpectClosed(timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	var got []string
	for {
		p, err := c.ReadPacket(time.Until(deadline))
		switch {
		case errors.Is(err, io.EOF):
			return nil
		case errors.Is(err, ErrTimeout):
			return fmt.Errorf("mqttraw: server kept the connection open for %v; received %s", timeout, describe(got))
		case err != nil:
			return fmt.Errorf("%w; received %s", err, describe(got))
		}
		got = append(got, p.String())
	}
}

func describe(packets []string) string {
	if len(packets) == 0 {
		return "nothing"
	}
	return strings.Join(packets, ", ")
}

// Close closes the connection and stops the reader. It is safe to call
// more than once.
func (c *Conn) Close() error {
	var err error
	c.closeOnce.Do(func() {
		close(c.done)
		err = c.nc.Close()
		c.wg.Wait()
	})
	return err
}

// ConnectAndWait dials addr, sends p and waits for the CONNACK (until
// ctx's deadline, or DefaultConnackTimeout). A refused CONNACK (return
// code not 0) is not an error: the Conn is returned open so that the test
// can check that the server closes it. A server that closes without a
// CONNACK gives an error wrapping io.EOF and a nil Conn; any packet other
// than CONNACK gives an error and a nil Conn.
func ConnectAndWait(ctx context.Context, addr string, tlsConfig *tls.Config, p ConnectPacket) (Connack, *Conn, error) {
	c, err := Dial(ctx, addr, tlsConfig)
	if err != nil {
		return Connack{}, nil, err
	}
	ack, err := c.ConnectAndWait(ctx, p)
	if err != nil {
		return Connack{}, nil, err
	}
	return ack, c, nil
}

// ConnectAndWait sends p on an open connection (from Dial or NewConn, e.g. over a
// WebSocket) and waits for the CONNACK like the package-level ConnectAndWait; on error the
// connection is closed.
func (c *Conn) ConnectAndWait(ctx context.Context, p ConnectPacket) (Connack, error) {
	if err := c.Connect(p); err != nil {
		c.Close()
		return Connack{}, err
	}
	timeout := DefaultConnackTimeout
	if d, ok := ctx.Deadline(); ok {
		timeout = time.Until(d)
	}
	pk, err := c.ReadPacket(timeout)
	if err != nil {
		c.Close()
		return Connack{}, fmt.Errorf("%w (while waiting for CONNACK)", err)
	}
	if pk.Type != TypeConnack {
		c.Close()
		return Connack{}, fmt.Errorf("mqttraw: got %v, want CONNACK", pk)
	}
	return pk.Connack, nil
}
