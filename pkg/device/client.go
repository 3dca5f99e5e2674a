package device

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"math/rand/v2"
	"net"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
	"github.com/hubkit/hubkit/pkg/iothub"
)

// drainTimeout bounds how long a token renewal waits for in-flight operations before it
// disconnects anyway.
const drainTimeout = 5 * time.Second

// quiesce is how long a graceful disconnect waits for the DISCONNECT packet to go out (ms).
const quiesce = 250

// Client is a device or module connection to IoT Hub. Its methods are safe for concurrent use.
type Client struct {
	s   *settings
	log *slog.Logger

	life   context.Context // cancelled by Close; parent of every handler's context
	cancel context.CancelFunc
	done   chan struct{} // closed by Close
	events chan event    // paho callbacks -> manager
	wg     sync.WaitGroup

	c2d     *queue[c2dItem]
	desired *queue[desiredItem]

	connectMu sync.Mutex // serialises Connect
	subMu     sync.Mutex // serialises subscribe, so concurrent callers never SUBSCRIBE twice

	mu       sync.Mutex
	closed   bool
	sess     *session  // current paho client; nil until the first Connect succeeds
	minted   time.Time // Config.Now when sess was dialled: its token's renewal counts from here
	online   bool      // connected and subscribed
	renewing bool
	inflight int
	changed  chan struct{} // closed and replaced on every change of closed/online/renewing/inflight
	closes   int           // consecutive hub closes of short-lived connections (manager only)
	wanted   map[string]byte
	handlers handlers
	pending  map[string]chan twinResult
	rid      uint64
	twin     twinState
}

// session is one paho client, i.e. one MQTT connection. The client never lets paho reconnect
// on its own: a lost connection or a token renewal is replaced by a new session (a fresh paho
// client, a fresh token). paho's in-place reconnect replays its store concurrently with new
// publishes (a data race, and duplicates); a fresh client has nothing to replay, and
// SendEvent resends itself what the lost connection left unacknowledged.
type session struct {
	pc         paho.Client
	subscribed map[string]bool // guarded by Client.mu
	lost       chan struct{}   // closed when the connection is gone
	lostOnce   sync.Once
	upAt       time.Time    // when the CONNECT was accepted (set before the session is shared)
	expiry     atomic.Int64 // the presented token's expiry, Unix seconds
}

func (s *session) markLost() { s.lostOnce.Do(func() { close(s.lost) }) }

// errSessionLost is what operations see when their connection went away under them;
// errNotSent when it went away before their packet was written (safe to retry).
var (
	errSessionLost = errors.New("device: connection lost")
	errNotSent     = errors.New("device: connection lost before sending")
)

func isDone(ch <-chan struct{}) bool {
	select {
	case <-ch:
		return true
	default:
		return false
	}
}

type eventKind int

const (
	evLost      eventKind = iota // paho lost the connection
	evSubscribe                  // a handler was registered: subscribe what is missing
	evNotify                     // call OnConnectionChange
)

type event struct {
	kind      eventKind
	sess      *session
	err       error
	connected bool
}

// New returns a client for cfg. It does not connect.
func New(cfg Config) (*Client, error) {
	s, err := cfg.settings()
	if err != nil {
		return nil, err
	}
	life, cancel := context.WithCancel(context.Background())
	c := &Client{
		s:       s,
		log:     s.Logger.With("clientId", s.id.ClientID()),
		life:    life,
		cancel:  cancel,
		done:    make(chan struct{}),
		events:  make(chan event, 16),
		c2d:     newQueue[c2dItem](),
		desired: newQueue[desiredItem](),
		changed: make(chan struct{}),
		wanted:  map[string]byte{},
		pending: map[string]chan twinResult{},
		handlers: handlers{
			methods: map[string]MethodHandler{},
		},
	}
	c.wg.Add(2)
	go c.runC2D()
	go c.runDesired()
	return c, nil
}

// Identity returns the device (and module) ID the client connects as.
func (c *Client) Identity() iothub.Identity { return c.s.id }

// Connect opens the connection: TLS, CONNECT with a fresh token, then the subscriptions of the
// handlers registered so far (and a twin GET when a desired-properties handler is set). It
// returns a *ConnectError (unwrapping to ErrNotAuthorized etc.) when the hub refuses the
// CONNECT. After a successful Connect the client reconnects on its own (with back-off) and
// renews its token; calling Connect again is a no-op.
func (c *Client) Connect(ctx context.Context) error {
	c.connectMu.Lock()
	defer c.connectMu.Unlock()
	c.mu.Lock()
	closed, started := c.closed, c.sess != nil
	c.mu.Unlock()
	if closed {
		return ErrClosed
	}
	if started {
		return nil
	}
	minted := c.s.Now()
	sess, err := c.dial(ctx, false)
	if err != nil {
		return err
	}
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		sess.pc.Disconnect(0)
		return ErrClosed
	}
	c.sess, c.minted = sess, minted
	c.online = true
	c.bump()
	c.wg.Add(1)
	c.mu.Unlock()
	go c.manage()
	c.post(event{kind: evNotify, connected: true})
	return nil
}

// IsConnected reports whether the client is connected right now.
func (c *Client) IsConnected() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.online && !c.renewing && c.sess != nil && c.sess.pc.IsConnectionOpen()
}

// Close disconnects gracefully (DISCONNECT, so the hub does not publish the will) and waits
// for every goroutine of the client, handlers included, or for ctx. Handlers' contexts are
// cancelled first. Unacknowledged C2D messages stay with the hub and are redelivered on the
// next connection. Close is idempotent.
func (c *Client) Close(ctx context.Context) error {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return nil
	}
	c.closed = true
	c.bump()
	sess := c.sess
	c.mu.Unlock()
	close(c.done)
	c.cancel()

	waited := make(chan struct{})
	go func() { c.wg.Wait(); close(waited) }()
	var err error
	select {
	case <-waited:
	case <-ctx.Done():
		err = fmt.Errorf("device: closing: handlers still running: %w", ctx.Err())
	}
	if sess != nil {
		sess.pc.Disconnect(quiesce)
		c.failPending(ErrClosed)
		if f := c.s.OnConnectionChange; f != nil && err == nil {
			f(false, nil)
		}
	}
	return err
}

// dial creates a paho client, connects it and sets up the session (subscriptions, twin
// resync). resync says whether a desired-properties handler should see the full desired
// properties if their version moved (true after a renewal).
func (c *Client) dial(ctx context.Context, resync bool) (*session, error) {
	sess := &session{subscribed: map[string]bool{}, lost: make(chan struct{})}
	sess.pc = paho.NewClient(c.pahoOptions(sess))
	tok := sess.pc.Connect()
	select {
	case <-tok.Done():
	case <-ctx.Done():
		// paho cannot abort an attempt: let it finish (bounded by ConnectTimeout), then drop it.
		tok.WaitTimeout(c.s.ConnectTimeout + time.Second)
		sess.pc.Disconnect(0)
		return nil, fmt.Errorf("device: connecting to %s: %w", c.s.dialAddr, ctx.Err())
	}
	if err := tok.Error(); err != nil {
		if ct, ok := tok.(*paho.ConnectToken); ok {
			if rc := ct.ReturnCode(); rc >= 1 && rc <= 5 {
				return nil, &ConnectError{Addr: c.s.dialAddr, Code: rc}
			}
		}
		return nil, fmt.Errorf("device: connecting to %s: %w", c.s.dialAddr, networkCause(err))
	}
	c.log.Debug("CONNACK 0: connected", "addr", c.s.dialAddr)
	sess.upAt = c.s.Now()
	if err := c.setup(ctx, sess, resync); err != nil {
		sess.pc.Disconnect(0)
		return nil, err
	}
	return sess, nil
}

// networkCause digs the dial or TLS error out of paho's "network Error : ..." wrapper.
func networkCause(err error) error {
	var cv *tls.CertificateVerificationError
	if errors.As(err, &cv) {
		return cv
	}
	var op *net.OpError
	if errors.As(err, &op) {
		return op
	}
	return err
}

func (c *Client) pahoOptions(sess *session) *paho.ClientOptions {
	s := c.s
	tlsConf := &tls.Config{RootCAs: s.RootCAs, ServerName: s.tlsName, MinVersion: tls.VersionTLS12}
	if s.Certificate != nil {
		tlsConf.Certificates = []tls.Certificate{*s.Certificate}
	}
	o := paho.NewClientOptions().
		AddBroker(s.broker).
		SetClientID(s.id.ClientID()).
		SetProtocolVersion(4). // never fall back to MQTT 3.1: IoT Hub speaks 3.1.1 only
		SetTLSConfig(tlsConf).
		SetWebsocketOptions(&paho.WebsocketOptions{Proxy: s.proxy()}).
		SetCredentialsProvider(func() (string, string) {
			pw, exp := s.password()
			if s.x509 {
				c.log.Debug("CONNECT", "addr", s.dialAddr, "userName", s.userName, "clean", s.CleanSession, "keepAlive", s.KeepAlive, "certificateCN", s.certSubject)
				return s.userName, pw
			}
			sess.expiry.Store(exp.Unix())
			if s.OnToken != nil {
				s.OnToken(pw)
			}
			c.log.Debug("CONNECT", "addr", s.dialAddr, "userName", s.userName, "clean", s.CleanSession, "keepAlive", s.KeepAlive, "tokenResource", s.resource, "tokenExpiry", exp.UTC().Format(time.RFC3339))
			return s.userName, pw
		}).
		SetCleanSession(s.CleanSession).
		SetKeepAlive(s.KeepAlive).
		SetConnectTimeout(s.ConnectTimeout).
		SetAutoReconnect(false). // the manager reconnects with a new session (see session)
		SetConnectRetry(false).
		SetAutoAckDisabled(true). // C2D is acknowledged after its handler returns (c2d.go)
		SetOrderMatters(true).    // onMessage never blocks
		SetDefaultPublishHandler(c.onMessage(sess)).
		SetConnectionLostHandler(func(_ paho.Client, err error) {
			sess.markLost()
			c.post(event{kind: evLost, sess: sess, err: err})
		})
	if w := s.Will; w != nil {
		topic, _ := w.topic(s.id) // validated in settings
		o.SetBinaryWill(topic, w.Payload, 1, false)
	}
	return o
}

// post hands an event to the manager goroutine, unless the client is closed.
func (c *Client) post(ev event) {
	select {
	case c.events <- ev:
	case <-c.done:
	}
}

// bump wakes everyone waiting for a state change. Call with c.mu held.
func (c *Client) bump() {
	close(c.changed)
	c.changed = make(chan struct{})
}

// manage is the one goroutine that reacts to connection events, reconnects, renews tokens and
// calls OnConnectionChange.
func (c *Client) manage() {
	defer c.wg.Done()
	// The renewal is due RenewAfter after the connection by Config.Now, checked on a real
	// ticker: a test (or a device whose clock follows its hub's) that moves the clock past
	// it sees the renewal within a tick.
	tick := time.Hour
	if c.s.RenewAfter > 0 {
		tick = min(max(c.s.RenewAfter/10, 10*time.Millisecond), time.Second)
	}
	ticker := time.NewTicker(tick)
	defer ticker.Stop()
	var due time.Time // zero: no renewal planned
	arm := func() {
		due = time.Time{}
		if c.s.RenewAfter > 0 {
			c.mu.Lock()
			due = c.minted.Add(c.s.RenewAfter)
			c.mu.Unlock()
		}
	}
	arm()
	for {
		select {
		case <-c.done:
			c.flushNotify()
			return
		case ev := <-c.events:
			switch ev.kind {
			case evNotify:
				c.notify(ev.connected, ev.err)
			case evLost:
				if !c.isCurrent(ev.sess) {
					continue // an old session's late news
				}
				due = time.Time{}
				wait, cause := c.lossCause(ev.sess, ev.err)
				c.log.Warn("connection lost; reconnecting", "err", cause, "retryIn", wait)
				if c.replace(ev.sess, cause, false, wait) {
					arm()
				}
			case evSubscribe:
				c.mu.Lock()
				sess, online := c.sess, c.online
				c.mu.Unlock()
				if online {
					if err := c.subscribe(c.life, sess); err != nil {
						c.log.Warn("subscribing", "err", err)
					}
				}
			}
		case <-ticker.C:
			if due.IsZero() || c.s.Now().Before(due) {
				continue
			}
			c.log.Info("renewing the SAS token: reconnecting")
			c.mu.Lock()
			old := c.sess
			c.mu.Unlock()
			if c.replace(old, ErrTokenRenewal, true, 0) {
				arm()
			}
		}
	}
}

// flushNotify calls OnConnectionChange for the notifications still queued when the client
// closes, so a Close right after Connect still reports the connect before Close's own
// (false, nil): every connect is reported, in order. The other events no longer matter.
func (c *Client) flushNotify() {
	for {
		select {
		case ev := <-c.events:
			if ev.kind == evNotify {
				c.notify(ev.connected, ev.err)
			}
		default:
			return
		}
	}
}

func (c *Client) notify(up bool, err error) {
	if f := c.s.OnConnectionChange; f != nil {
		f(up, err)
	}
}

func (c *Client) isCurrent(sess *session) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.sess == sess
}

func (c *Client) setOnline(on bool) {
	c.mu.Lock()
	c.online = on
	c.bump()
	c.mu.Unlock()
}

// replace swaps the session old for a new connection: for a renewal (graceful), new operations
// wait and in-flight ones get up to drainTimeout before old is disconnected with DISCONNECT;
// for a loss, old is already gone. Then it dials until it succeeds: the first attempt after
// wait (0: at once), then backing off from 1 s (or twice wait) to MaxReconnectInterval. It
// returns false if the client was closed meanwhile.
func (c *Client) replace(old *session, why error, graceful bool, wait time.Duration) bool {
	c.mu.Lock()
	c.renewing = true // operations wait for the new session
	c.bump()
	c.mu.Unlock()
	if graceful {
		c.drain()
	}
	c.setOnline(false)
	old.markLost()
	old.pc.Disconnect(quiesce) // graceful: DISCONNECT, so no will; after a loss: a no-op
	c.failPending(ErrConnectionLost)
	c.notify(false, why)

	backoff := wait
	for {
		select {
		case <-c.done:
			return false
		case <-time.After(jitter(backoff)):
		}
		minted := c.s.Now()
		sess, err := c.dial(c.life, true)
		if err == nil {
			c.mu.Lock()
			if c.closed {
				c.mu.Unlock()
				sess.pc.Disconnect(quiesce)
				return false
			}
			c.sess, c.online, c.renewing, c.minted = sess, true, false, minted
			c.bump()
			c.mu.Unlock()
			c.log.Info("connected", "addr", c.s.dialAddr)
			c.notify(true, nil)
			return true
		}
		backoff = min(max(2*backoff, time.Second), c.s.MaxReconnectInterval)
		c.log.Warn("reconnecting", "err", err, "retryIn", backoff)
	}
}

// jitter stretches a reconnect wait by a random 0-50 %, so that devices cut off together
// do not come back in step (docs/iothub-behavior.md §15.12: exponential back-off with jitter).
func jitter(d time.Duration) time.Duration {
	if d <= 0 {
		return 0
	}
	return d + rand.N(d/2+1)
}

// stableAfter is how long a connection must have lived for a hub close to count as a first one
// again (see lossCause).
const stableAfter = time.Minute

// lossCause says why sess was lost and how long to wait before reconnecting.
//
// On MQTT 3.1.1 the hub closes a connection without saying why. A clean close (EOF) of a
// connection whose token has not expired is, for a client that only sends what the hub allows,
// almost always IoT Hub's "one connection per identity" rule: another client connected with
// the same device (or module) ID and the hub closed this older connection (docs/iothub-behavior.md
// §1.19). The other causes of a clean close (the device was disabled or deleted, the hub
// restarts) show on the reconnect, as CONNACK 5 or a refused dial. So such a loss is reported as
// ErrReplaced (wrapping the network error) and the reconnect is delayed: two clients with the
// same identity would otherwise replace each other in a tight loop. The delay is 1 s, doubled
// for each further hub close of a connection that lived less than stableAfter, up to
// MaxReconnectInterval. Any other loss (a reset, a time-out, an expired token) reconnects at
// once.
func (c *Client) lossCause(sess *session, err error) (wait time.Duration, cause error) {
	now := c.s.Now()
	closedByHub := errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF)
	if exp := sess.expiry.Load(); exp != 0 && !now.Before(time.Unix(exp, 0)) {
		closedByHub = false // the token expired: the hub's expiry rule, not a takeover
	}
	if !closedByHub {
		c.closes = 0
		return 0, err
	}
	if now.Sub(sess.upAt) >= stableAfter {
		c.closes = 0
	}
	c.closes++
	return replacedDelay(c.closes, c.s.MaxReconnectInterval), fmt.Errorf("%w (%w)", ErrReplaced, err)
}

// replacedDelay is the wait before reconnecting after the n-th consecutive hub close (n >= 1):
// 1 s, 2 s, 4 s ... capped at maxWait.
func replacedDelay(n int, maxWait time.Duration) time.Duration {
	d := time.Second << min(n-1, 16)
	return min(d, maxWait)
}

// drain waits up to drainTimeout for in-flight operations to finish.
func (c *Client) drain() {
	deadline := time.NewTimer(drainTimeout)
	defer deadline.Stop()
	for {
		c.mu.Lock()
		n, ch := c.inflight, c.changed
		c.mu.Unlock()
		if n == 0 {
			return
		}
		select {
		case <-ch:
		case <-deadline.C:
			return
		case <-c.done:
			return
		}
	}
}

// acquire waits until an operation may use the connection (connected, not being replaced)
// and returns the session. admit, if not nil, runs under the lock at admission. The caller
// must call c.release().
func (c *Client) acquire(ctx context.Context, admit func()) (*session, error) {
	for {
		c.mu.Lock()
		switch {
		case c.closed:
			c.mu.Unlock()
			return nil, ErrClosed
		case c.sess == nil:
			c.mu.Unlock()
			return nil, ErrNotConnected
		case c.online && !c.renewing && !isDone(c.sess.lost):
			c.inflight++
			if admit != nil {
				admit()
			}
			sess := c.sess
			c.mu.Unlock()
			return sess, nil
		}
		ch := c.changed
		c.mu.Unlock()
		select {
		case <-ch: // the manager bumps it when it takes a lost session offline
		case <-ctx.Done():
			return nil, fmt.Errorf("%w: %w", ErrNotConnected, ctx.Err())
		}
	}
}

func (c *Client) release() {
	c.mu.Lock()
	c.inflight--
	if c.inflight == 0 && c.renewing {
		c.bump()
	}
	c.mu.Unlock()
}

// publish sends one message and waits for its completion (PUBACK for QoS 1). With resend, a
// message whose connection is lost before the PUBACK is sent again on the next connection
// (at least once, as paho's own resume would); without, the loss is an error.
func (c *Client) publish(ctx context.Context, topic string, qos byte, payload []byte, resend bool) error {
	for {
		sess, err := c.acquire(ctx, nil)
		if err != nil {
			return err
		}
		c.log.Debug("PUBLISH", "topic", topic, "qos", qos, "bytes", len(payload))
		err = c.await(ctx, sess, sess.pc.Publish(topic, qos, false, payload), "publishing")
		if err == nil && qos > 0 {
			c.log.Debug("PUBACK received", "topic", topic)
		}
		c.release()
		if errors.Is(err, errNotSent) || resend && errors.Is(err, errSessionLost) {
			c.log.Debug("resending after a lost connection", "topic", topic)
			continue
		}
		return err
	}
}

// await waits for a paho token, the loss of its session, ctx or Close.
func (c *Client) await(ctx context.Context, sess *session, tok paho.Token, what string) error {
	select {
	case <-sess.lost:
		select {
		case <-tok.Done(): // completed just before the loss
			if tok.Error() == nil {
				return nil
			}
		default:
		}
		return fmt.Errorf("device: %s: %w", what, errSessionLost)
	case <-tok.Done():
		if err := tok.Error(); err != nil {
			if errors.Is(err, paho.ErrNotConnected) {
				// paho saw the loss first; its ConnectionLost handler is about to mark the
				// session lost. Nothing was sent: the caller may retry on the next session.
				select {
				case <-sess.lost:
				case <-ctx.Done():
					return fmt.Errorf("device: %s: %w: %w", what, ErrNotConnected, ctx.Err())
				case <-c.done:
					return fmt.Errorf("device: %s: %w", what, ErrClosed)
				}
				return fmt.Errorf("device: %s: %w", what, errNotSent)
			}
			return fmt.Errorf("device: %s: %w", what, err)
		}
		return nil
	case <-ctx.Done():
		return fmt.Errorf("device: %s: %w", what, ctx.Err())
	case <-c.done:
		return fmt.Errorf("device: %s: %w", what, ErrClosed)
	}
}

// setup subscribes what the registered handlers need and, with a desired-properties handler,
// resynchronises the twin (GET, then ignore notifications not newer than it).
func (c *Client) setup(ctx context.Context, sess *session, resync bool) error {
	ctx, cancel := context.WithTimeout(ctx, c.s.ConnectTimeout)
	defer cancel()
	c.mu.Lock()
	clear(sess.subscribed) // after a reconnect, subscribe again whatever the session kept
	c.mu.Unlock()
	if err := c.subscribe(ctx, sess); err != nil {
		return err
	}
	c.mu.Lock()
	want := c.handlers.desired != nil
	c.mu.Unlock()
	if want {
		err := c.resyncTwin(ctx, sess, resync)
		if err != nil && resync {
			// After a reconnect a failed GET must not keep the device offline: notifications
			// resume against the version seen before.
			c.log.Warn("reading the twin after reconnecting", "err", err)
			return nil
		}
		return err
	}
	return nil
}

// subscribe sends one SUBSCRIBE for every wanted filter the session lacks.
func (c *Client) subscribe(ctx context.Context, sess *session) error {
	c.subMu.Lock()
	defer c.subMu.Unlock()
	c.mu.Lock()
	missing := map[string]byte{}
	for f, q := range c.wanted {
		if !sess.subscribed[f] {
			missing[f] = q
		}
	}
	c.mu.Unlock()
	if len(missing) == 0 {
		return nil
	}
	c.log.Debug("SUBSCRIBE", "filters", missing)
	tok := sess.pc.SubscribeMultiple(missing, nil) // nil: every message goes to onMessage
	if err := c.await(ctx, sess, tok, "subscribing"); err != nil {
		return err
	}
	granted := tok.(*paho.SubscribeToken).Result()
	c.log.Debug("SUBACK", "granted", granted)
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, f := range sortedKeys(missing) {
		if q, ok := granted[f]; !ok || q == 0x80 {
			return fmt.Errorf("device: the hub refused the subscription to %q", f)
		}
		sess.subscribed[f] = true
	}
	return nil
}

// want adds filters to the wanted set; if connected, the manager subscribes them.
func (c *Client) want(filters map[string]byte) { c.addWanted(filters, true) }

// addWanted adds filters to the wanted set; with notify, the manager subscribes them in the
// background when the client is connected.
func (c *Client) addWanted(filters map[string]byte, notify bool) {
	c.mu.Lock()
	added := false
	for f, q := range filters {
		if _, ok := c.wanted[f]; !ok {
			c.wanted[f] = q
			added = true
		}
	}
	notify = notify && added && c.sess != nil && !c.closed
	if notify {
		c.wg.Add(1) // under c.mu: Close has not started waiting
	}
	c.mu.Unlock()
	if notify {
		go func() { // never block the caller on the manager
			defer c.wg.Done()
			c.post(event{kind: evSubscribe})
		}()
	}
}

func sortedKeys(m map[string]byte) []string { return slices.Sorted(maps.Keys(m)) }
