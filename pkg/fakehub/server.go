package fakehub

import (
	"context"
	"crypto/tls"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	mqtt "github.com/mochi-mqtt/server/v2"

	"github.com/hubkit/hubkit/pkg/iothub"
	"github.com/hubkit/hubkit/pkg/sas"
)

// Server is a fake IoT Hub device endpoint (MQTT 3.1.1 over TLS). It is
// listening when NewServer returns; Close stops it.
type Server struct {
	opts      Options
	log       *slog.Logger
	mochi     *mqtt.Server
	hostNames []string // lower-case, without port

	tlsLn, plainLn *guardListener
	wsLn           *wsListener // MQTT over WebSockets (Options.WebSocketAddr)

	sessions    sessionTable
	telemetry   *ring
	rejections  rejectionLog
	cloud       *cloud    // the cloud side: C2D queues, twins, direct methods
	cloudEvents cloudSide // what the hooks tell the cloud side (cloud, or a test's stand-in)
	service     *serviceListener
	dps         *DPS // the Device Provisioning Service, with Options.DPS

	lifecycle *lifecycleHook
	unwatch   func() // stops registry notifications

	clock     *Clock           // Options.Now moved by tests; opts.Now reads it
	realNow   func() time.Time // Options.Now itself: the service API's token checks
	limits    *limiter         // Options.Limits (throttles, daily quota)
	faults    faultTable       // service-side faults and the devices' fault windows
	restart   sync.RWMutex     // Restart holds it; a CONNECT waits for a restart in progress (authHook.OnConnect)
	closing   atomic.Bool
	closeOnce sync.Once
	closeErr  error

	metrics   *hubMetrics // Prometheus metrics (metrics.go)
	activity  activity    // change signal and last-seen times for the dashboard (activity.go)
	dashboard *dashboardState

	observers observers // packet observers (observe.go)
	drills    tlsDrills // the TLS drill presented for new handshakes (tlsdrill.go)
	grades    gradeRuns // the device grader's runs (grade.go)
}

// readBufferSize is each connection's bufio size: a PUBACK or a telemetry
// message of a few hundred bytes fits, 1.5 KiB less per connection than
// mochi's default; longer packets cost one more read call.
const readBufferSize = 512

// ErrClosed is returned by operations on a closed Server.
var ErrClosed = errors.New("fakehub: server closed")

// NewServer starts a hub listening on opts.Addr (TLS) and, if set,
// opts.InsecureAddr (plaintext).
func NewServer(opts Options) (*Server, error) {
	opts.setDefaults()
	clock, realNow := newClock(opts.Now), opts.Now
	opts.Now = clock.Now // everything in the hub reads the movable clock
	if err := opts.applyProfile(); err != nil {
		return nil, err
	}
	if err := opts.Limits.Validate(); err != nil {
		return nil, fmt.Errorf("fakehub: Options.Limits: %w", err)
	}
	if opts.TLS == nil && opts.InsecureAddr == "" {
		return nil, errors.New("fakehub: Options.TLS is required (or set InsecureAddr for a plaintext-only hub)")
	}
	if opts.ServiceAddr != "" && opts.TLS == nil && !opts.InsecureService {
		return nil, errors.New("fakehub: Options.ServiceAddr without TLS would serve the service API (device keys included) over plain HTTP; set Options.TLS, or InsecureService to allow it")
	}
	if opts.TLS != nil && len(opts.TLS.Certificates) == 0 && opts.TLS.GetCertificate == nil && opts.TLS.GetConfigForClient == nil {
		return nil, errors.New("fakehub: Options.TLS has no certificate")
	}
	if opts.WebSocketAddr != "" && opts.TLS == nil {
		return nil, errors.New("fakehub: Options.WebSocketAddr needs Options.TLS: IoT Hub's WebSocket endpoint is wss:// only")
	}
	s := &Server{opts: opts, log: slog.New(newRedactHandler(opts.Logger.Handler())), telemetry: newRing(opts.TelemetryBuffer, opts.TelemetryBufferBytes),
		clock: clock, realNow: realNow, limits: newLimiter(opts.Limits, opts.Now)}
	s.limits.changed = clock.changes
	s.faults.init()
	clock.mu.Lock()
	clock.moved = s.clockMoved
	clock.mu.Unlock()
	s.lifecycle = &lifecycleHook{s: s}
	s.metrics = newHubMetrics(s)
	s.limits.throttled = s.metrics.throttle
	s.dashboard = newDashboardState(s)
	names := append([]string{opts.HostName}, opts.Aliases...)
	if opts.DeviceHostName != "" {
		names = append(names, opts.DeviceHostName)
	}
	for _, h := range names {
		s.hostNames = append(s.hostNames, strings.ToLower(stripPort(h)))
	}
	s.sessions.init()
	cloud, err := newCloud(s)
	if err != nil {
		return nil, fmt.Errorf("fakehub: %w", err)
	}
	s.cloud, s.cloudEvents = cloud, cloud
	if opts.cloudEvents != nil {
		s.cloudEvents = opts.cloudEvents(s)
	}

	caps := mqtt.NewDefaultServerCapabilities()
	caps.MaximumQos = 1                                        // SUBSCRIBE QoS 2 is granted 1; QoS 2 PUBLISH is refused in OnPacketRead
	caps.MaximumPacketSize = iothub.MaxTelemetrySize + 64*1024 // exact size rule in OnPacketRead; this bounds garbage
	// mochi's queue of writes routed through its topic tree. Nothing reaches
	// a device that way (the cloud side writes straight to the connection,
	// see deliver), so 16 slots: a channel of 1024 pointers cost 8 KiB per
	// connection (mochi's default of 8192, 64 KiB; mochi#461).
	caps.MaximumClientWritesPending = 16
	caps.MaximumMessageExpiryInterval = 0
	// MaximumSessionExpiryInterval stays mochi's default (2^32-1 s): a
	// CleanSession=0 session is kept until a CleanSession=1 connection or the
	// identity's removal ends it. 0 does not mean "no limit" here: mochi's 1 s
	// expiry tick dropped every offline session at once, so a reconnect
	// crossing a tick got session-present=0 and no early C2D.
	s.mochi = mqtt.New(&mqtt.Options{
		InlineClient:           true,
		Capabilities:           caps,
		Logger:                 slog.New(mochiLogHandler{s.log.Handler()}),
		SysTopicResendInterval: 3600,
		// A connection's read buffer (mochi: 2 KiB). Device packets are
		// small; a larger one is read through the buffer, not into it.
		ClientNetReadBufferSize: readBufferSize,
	})
	// fail undoes what NewServer has set up so far: every listener it opened is
	// closed (its port free again) and the cloud side stopped.
	fail := func(err error) (*Server, error) {
		for _, ln := range s.guards() {
			_ = ln.Close()
		}
		s.cloud.close()
		return nil, err
	}
	if err := s.mochi.AddHook(&observeHook{s: s}, nil); err != nil { // first: it sees every packet as sent
		return fail(err)
	}
	if err := s.mochi.AddHook(&authHook{s: s}, nil); err != nil {
		return fail(err)
	}
	if err := s.mochi.AddHook(s.lifecycle, nil); err != nil {
		return fail(err)
	}
	if err := s.mochi.AddHook(&aclHook{s: s}, nil); err != nil {
		return fail(err)
	}
	if err := s.mochi.AddHook(&telemetryHook{s: s}, nil); err != nil {
		return fail(err)
	}
	if err := s.mochi.AddHook(&activityHook{s: s}, nil); err != nil {
		return fail(err)
	}

	if opts.TLS != nil {
		raw, err := net.Listen("tcp", opts.Addr)
		if err != nil {
			return fail(fmt.Errorf("fakehub: listen %s: %w", opts.Addr, err))
		}
		s.tlsLn = s.deviceListener(raw, s.deviceTLS(), s.firstRead)
		if err := s.mochi.AddListener(newMochiListener("mqtts", s.tlsLn)); err != nil {
			return fail(err)
		}
	}
	if opts.WebSocketAddr != "" {
		raw, err := net.Listen("tcp", opts.WebSocketAddr)
		if err != nil {
			return fail(fmt.Errorf("fakehub: listen %s (MQTT over WebSockets): %w", opts.WebSocketAddr, err))
		}
		ln := s.deviceListener(raw, s.deviceTLS(), s.wsFirstRead)
		ln.ws = true
		s.wsLn = newWSListener(s, ln)
		if err := s.mochi.AddListener(s.wsLn); err != nil {
			return fail(err)
		}
	}
	if opts.InsecureAddr != "" {
		raw, err := net.Listen("tcp", opts.InsecureAddr)
		if err != nil {
			return fail(fmt.Errorf("fakehub: listen %s: %w", opts.InsecureAddr, err))
		}
		s.plainLn = s.deviceListener(raw, nil, s.firstRead)
		if err := s.mochi.AddListener(newMochiListener("mqtt", s.plainLn)); err != nil {
			return fail(err) // closes the TLS listener too
		}
		s.log.Warn("plaintext MQTT listener enabled: IoT Hub has none, tokens cross the network in the clear", "addr", s.plainLn.Addr().String())
	}
	opts.Registry.useClock(opts.Now)
	if opts.MaxIdentities != 0 {
		opts.Registry.SetMaxIdentities(opts.MaxIdentities)
	}
	if opts.MaxModulesPerDevice != 0 {
		opts.Registry.SetMaxModulesPerDevice(opts.MaxModulesPerDevice)
	}
	s.unwatch = opts.Registry.watch(s.registryChanged)
	if err := s.mochi.Serve(); err != nil {
		s.unwatch()
		return fail(err) // mochi serves nothing yet: close the listeners ourselves
	}
	if opts.ServiceAddr != "" {
		if err := s.startService(); err != nil {
			_ = s.Close()
			return nil, err
		}
	}
	if opts.DPS != nil {
		if err := s.startDPS(); err != nil {
			_ = s.Close()
			return nil, err
		}
	}
	return s, nil
}

// Addr returns the TLS listener's address (host:port), or the plaintext
// listener's when there is no TLS listener.
func (s *Server) Addr() string {
	if s.tlsLn != nil {
		return s.tlsLn.Addr().String()
	}
	return s.plainLn.Addr().String()
}

// InsecureAddr returns the plaintext listener's address, or "".
func (s *Server) InsecureAddr() string {
	if s.plainLn == nil {
		return ""
	}
	return s.plainLn.Addr().String()
}

// HostName returns the host name devices must use.
func (s *Server) HostName() string { return s.opts.HostName }

// Registry returns the hub's identity registry.
func (s *Server) Registry() *Registry { return s.opts.Registry }

// AddDevice registers an enabled device with the given keys (primary, then
// secondary; missing ones are generated).
func (s *Server) AddDevice(id string, keys ...[]byte) (iothub.Device, error) {
	var primary, secondary string
	if len(keys) > 0 {
		primary = encodeKey(keys[0])
	}
	if len(keys) > 1 {
		secondary = encodeKey(keys[1])
	}
	return s.opts.Registry.Add(iothub.Device{DeviceID: id, Authentication: iothub.SASAuth(primary, secondary)})
}

// Close disconnects every client and stops the listeners. It is idempotent.
func (s *Server) Close() error {
	s.closeOnce.Do(func() {
		s.closing.Store(true)
		s.grades.close()
		if s.unwatch != nil {
			s.unwatch()
		}
		s.stopService()
		s.stopDPS()
		s.cloud.close()
		// Drain first: mochi's Close races with connection set-up (mochi#424,
		// #541) and can deadlock while clients come and go (mochi#488).
		for _, ln := range s.guards() {
			_ = ln.Close()
			ln.closeAll()
		}
		for _, cl := range s.mochi.Clients.GetAll() {
			cl.Stop(ErrClosed)
		}
		deadline := time.Now().Add(5 * time.Second)
		for (atomic.LoadInt64(&s.mochi.Info.ClientsConnected) > 0 || s.pendingConns() > 0) && time.Now().Before(deadline) {
			time.Sleep(2 * time.Millisecond)
		}
		time.Sleep(20 * time.Millisecond) // let attachClient goroutines reach ClientsWg.Done (mochi#424)
		s.closeErr = s.mochi.Close()
		s.sessions.stopAll()
	})
	return s.closeErr
}

func (s *Server) pendingConns() int {
	n := 0
	for _, ln := range s.guards() {
		n += ln.open()
	}
	return n
}

// guards returns the listeners that are open.
func (s *Server) guards() []*guardListener {
	var out []*guardListener
	for _, ln := range []*guardListener{s.tlsLn, s.plainLn} {
		if ln != nil {
			out = append(out, ln)
		}
	}
	if s.wsLn != nil {
		out = append(out, s.wsLn.ln)
	}
	return out
}

// CheckTokens drops every connection whose token expired (plus the grace)
// according to Options.Now. Expiry timers do this on their own in real time;
// tests with a fake clock call it after moving the clock.
func (s *Server) CheckTokens() {
	now := s.opts.Now()
	for _, ss := range s.sessions.all() {
		if !ss.expiry.IsZero() && !now.Before(ss.deadline()) {
			s.expire(ss)
		}
	}
}

// isOurHost reports whether h (possibly "host:port") names this hub.
func (s *Server) isOurHost(h string) bool {
	h = strings.ToLower(stripPort(h))
	for _, n := range s.hostNames {
		if h == n {
			return true
		}
	}
	return false
}

// isOurHostExactly reports whether h (possibly "host:port") is the hub's host name or an
// alias exactly as configured (case included).
func (s *Server) isOurHostExactly(h string) bool {
	h = stripPort(h)
	for _, n := range append([]string{s.opts.HostName}, s.opts.Aliases...) {
		if h == stripPort(n) {
			return true
		}
	}
	return false
}

func stripPort(h string) string {
	if host, _, err := net.SplitHostPort(h); err == nil {
		return host
	}
	return strings.TrimSuffix(strings.TrimPrefix(h, "["), "]")
}

// ListenerStats counts what the MQTT listeners met besides connections.
type ListenerStats struct {
	// AcceptErrors are temporary accept failures (out of file descriptors,
	// buffers or memory), each retried.
	AcceptErrors uint64
	// Refused are connections closed at once because the process had no
	// file descriptor left for them (ReasonOutOfDescriptors).
	Refused uint64
}

// ListenerStats returns the listeners' counts so far.
func (s *Server) ListenerStats() ListenerStats {
	var st ListenerStats
	for _, ln := range []*guardListener{s.tlsLn, s.plainLn} {
		if ln != nil {
			st.AcceptErrors += ln.acceptErrors.Load()
			st.Refused += ln.refused.Load()
		}
	}
	return st
}

// watchAccept logs a listener's accept errors (at most one WARN a second)
// and records its refusals.
func (s *Server) watchAccept(ln *guardListener) {
	var last atomic.Int64
	ln.onAcceptError = func(err error, retryIn time.Duration) {
		now := time.Now().UnixNano()
		if prev := last.Load(); now-prev >= int64(time.Second) && last.CompareAndSwap(prev, now) {
			s.log.Warn("accept failed; retrying", "addr", ln.Addr().String(), "error", err.Error(), "retryIn", retryIn, "acceptErrors", ln.acceptErrors.Load())
		}
	}
	ln.onRefused = func(remote string) {
		s.reject(iothub.Rejection{RemoteAddr: remote, Reason: ReasonOutOfDescriptors,
			Detail: "no file descriptor left (the open-files limit is reached): the connection was closed at once; the hub accepts again as descriptors free up"})
	}
}

// deviceListener wraps raw, a device listener (MQTT over TLS, plaintext MQTT, or MQTT over
// WebSockets): TLS with cfg (nil: none), the CONNECT time-out, the wire checker's packet
// bound, the write time-out (Options.WriteTimeout), and what its connections do wrong
// recorded; accept errors are retried and logged (watchAccept).
func (s *Server) deviceListener(raw net.Listener, cfg *tls.Config, onFirstRead func(string, []byte, error)) *guardListener {
	ln := newGuardListener(raw, cfg, s.opts.ConnectTimeout, s.connectTimedOut, onFirstRead)
	ln.srv, ln.maxPacket, ln.writeTimeout = s, int(s.mochi.Options.Capabilities.MaximumPacketSize), s.opts.WriteTimeout
	s.watchAccept(ln)
	ln.onAccept, ln.onHandshake, ln.onBareClose = s.observeAccept(""), s.observeHandshake(""), s.observeBareClose("")
	return ln
}

func (s *Server) connectTimedOut(remote string) {
	s.reject(iothub.Rejection{RemoteAddr: remote, Reason: ReasonConnectTimeout,
		Detail: fmt.Sprintf("no TLS handshake and CONNECT within %s", s.opts.ConnectTimeout)})
}

// registryChanged drops the connections of an identity that was disabled or
// removed (a device change covers its modules).
func (s *Server) registryChanged(c change) {
	if c.reason == reasonKeysChanged {
		s.keysChanged(c.id)
		return
	}
	covers := func(id iothub.Identity) bool {
		return id == c.id || (!c.id.IsModule() && id.DeviceID == c.id.DeviceID)
	}
	if c.reason == sas.ReasonUnknownIdentity {
		s.cloud.removed(c.id)
	}
	for _, ss := range s.sessions.all() {
		if covers(ss.id) {
			s.hubClose(ss, c.reason, c.detail)
		}
	}
	if c.reason != sas.ReasonUnknownIdentity {
		return
	}
	// Stored CleanSession=0 sessions of offline connections go with the
	// identity (connections still in the table are handled by OnDisconnect).
	for _, cl := range s.mochi.Clients.GetAll() {
		if id, err := iothub.ParseClientID(cl.ID); err == nil && covers(id) && cl.Closed() && s.sessions.get(cl) == nil {
			s.forgetSession(cl)
		}
	}
}

// forgetSession drops mochi's stored session of a closed connection
// (subscriptions, inflights, the client entry), as a CleanSession=1 end
// would.
func (s *Server) forgetSession(cl *mqtt.Client) {
	s.mochi.UnsubscribeClient(cl)
	cl.ClearInflights()
	if cur, ok := s.mochi.Clients.Get(cl.ID); ok && cur == cl {
		s.mochi.Clients.Delete(cl.ID)
	}
}

// hubClose closes a session for an administrative reason (no will unless
// Quirks.WillOnHubClose) and records why. It never touches the client's
// will (cl.Properties.Will): mochi clears that on the connection's own
// goroutine, unsynchronised, when the device disconnects gracefully.
// Instead it settles the session's will first: OnWillSent then ignores
// what mochi publishes for the closed connection (mochi routes it nowhere:
// no device may read a telemetry topic, see OnACLCheck).
func (s *Server) hubClose(ss *session, reason sas.Reason, detail string) {
	s.hubCloseCode(ss, reason, closeCode(reason), detail)
}

// hubCloseCode is hubClose recording the IoT Hub error code the real hub logs for the close.
func (s *Server) hubCloseCode(ss *session, reason sas.Reason, code iothub.ErrorCode, detail string) {
	if ss.willSettled.CompareAndSwap(false, true) && ss.will != nil && s.opts.Quirks.WillOnHubClose {
		// Captured here, not from mochi: mochi drops the will when its read
		// loop ends without an error, which a Stop can cause.
		s.captureWill(ss, ss.will.topic, ss.will.payload)
	}
	s.claimClose(ss, reason, code, detail)
	ss.cl.Stop(errors.New(string(reason)))
}

// claimClose records why the hub closes ss, unless another close (a takeover, an
// expiry) claimed it first. It runs before the connection goes, so that a device
// reconnecting at once cannot turn the record into its own takeover.
func (s *Server) claimClose(ss *session, reason sas.Reason, code iothub.ErrorCode, detail string) {
	if ss.closeReason.CompareAndSwap(nil, &reason) {
		rj := ss.rejection(reason, detail)
		rj.ErrorCode = code
		s.closedFor(rj)
	}
}

// closeCode is the error code the real hub logs when it closes a connection for reason
// (docs/iothub-behavior.md §1.19, §2.5), or 0 when none is documented.
func closeCode(reason sas.Reason) iothub.ErrorCode {
	switch reason {
	case sas.ReasonExpired:
		return iothub.CodeIotHubUnauthorized
	case ReasonReplaced:
		return iothub.CodeConnectionForcefullyClosedOnNewConnection
	}
	return 0
}

func (s *Server) expire(ss *session) {
	s.hubClose(ss, sas.ReasonExpired, fmt.Sprintf("401003 IoTHubUnauthorized: token expired at %s (grace %s); the hub closes the connection, then logs 404104 DeviceConnectionClosedRemotely; reconnect with a fresh token",
		ss.expiry.UTC().Format(time.RFC3339), s.opts.TokenExpiryGrace))
}

// mochiLogHandler routes mochi's logs to the hub's logger: errors stay
// errors, everything else (per-connection WARNs, packet dumps with
// payloads and passwords, INFO chatter) goes to Debug.
type mochiLogHandler struct{ h slog.Handler }

func (m mochiLogHandler) Enabled(ctx context.Context, l slog.Level) bool {
	if l < slog.LevelError {
		l = slog.LevelDebug
	}
	return m.h.Enabled(ctx, l)
}

func (m mochiLogHandler) Handle(ctx context.Context, r slog.Record) error {
	if r.Level < slog.LevelError {
		r.Level = slog.LevelDebug
	}
	if r.Message == "" {
		r.Message = "mochi"
	}
	return m.h.Handle(ctx, r) // m.h redacts (redactHandler), and summarises mochi's packets
}

func (m mochiLogHandler) WithAttrs(a []slog.Attr) slog.Handler {
	return mochiLogHandler{m.h.WithAttrs(a)}
}

func (m mochiLogHandler) WithGroup(n string) slog.Handler { return mochiLogHandler{m.h.WithGroup(n)} }

func encodeKey(b []byte) string { return base64.StdEncoding.EncodeToString(b) }
