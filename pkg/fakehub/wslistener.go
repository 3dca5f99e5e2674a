package fakehub

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/gorilla/websocket"
	"github.com/mochi-mqtt/server/v2/listeners"

	"github.com/hubkit/hubkit/pkg/iothub"
	"github.com/hubkit/hubkit/pkg/sas"
)

// Reasons for refused WebSocket requests (answered with HTTP 400, as IoT Hub does) and for
// failed TLS handshakes on the device listeners.
const (
	// ReasonWebSocketPath: a WebSocket request for a path other than /$iothub/websocket.
	ReasonWebSocketPath sas.Reason = "websocket-path"
	// ReasonWebSocketSubprotocol: a WebSocket request without the sub-protocol mqtt.
	ReasonWebSocketSubprotocol sas.Reason = "websocket-subprotocol"
	// ReasonWebSocketNoUpgrade: an HTTP request on the WebSocket port that is not a WebSocket
	// upgrade (GET with Upgrade: websocket).
	ReasonWebSocketNoUpgrade sas.Reason = "websocket-no-upgrade"
	// ReasonTLSHandshake: the TLS handshake failed (the device refused the server's
	// certificate, or offered no TLS version or cipher suite the hub accepts).
	ReasonTLSHandshake sas.Reason = "tls-handshake"
)

// WebSocketPath is the one path of IoT Hub's MQTT-over-WebSockets endpoint
// (docs/iothub-behavior.md §1.2).
const WebSocketPath = iothub.WebSocketPath

// wsListener is the MQTT-over-WebSockets listener: a mochi listener of its own, because
// mochi's accepts every path and sub-protocol (mochi-and-paho.md §2k). gorilla/websocket
// does the handshake and the framing; wsConn hands mochi a net.Conn over binary messages.
// TLS and the CONNECT time-out come from a guardListener, as on the TCP listener.
type wsListener struct {
	s        *Server
	id       string
	ln       *guardListener
	srv      *http.Server
	upgrader websocket.Upgrader

	mu        sync.Mutex
	establish listeners.EstablishFn
}

func newWSListener(s *Server, ln *guardListener) *wsListener {
	l := &wsListener{s: s, id: "wss", ln: ln}
	l.upgrader = websocket.Upgrader{
		HandshakeTimeout: s.opts.ConnectTimeout,
		CheckOrigin:      func(*http.Request) bool { return true }, // devices send no Origin; browsers are not IoT Hub's clients either way
		// Subprotocols is nil: ServeHTTP echoes the client's own spelling of "mqtt".
	}
	l.srv = &http.Server{
		Handler:           l,
		ReadHeaderTimeout: s.opts.ConnectTimeout,
		ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelDebug),
		// The handler finds the connection's guardConn here, to silence its CONNECT
		// time-out report once the request was answered with 400.
		ConnContext: func(ctx context.Context, c net.Conn) context.Context {
			return context.WithValue(ctx, guardKey{}, c)
		},
	}
	return l
}

type guardKey struct{}

// settle marks the connection of r as accounted for: its end is not a CONNECT time-out.
func settle(r *http.Request) {
	if g, ok := r.Context().Value(guardKey{}).(*guardConn); ok {
		g.reported.Store(true)
	}
}

func (l *wsListener) ID() string       { return l.id }
func (l *wsListener) Address() string  { return l.ln.Addr().String() }
func (l *wsListener) Protocol() string { return "wss" }

func (l *wsListener) Init(*slog.Logger) error { return nil }

// Serve runs the HTTP server until Close.
func (l *wsListener) Serve(establish listeners.EstablishFn) {
	l.mu.Lock()
	l.establish = establish
	l.mu.Unlock()
	if err := l.srv.Serve(l.ln); err != nil && !errors.Is(err, http.ErrServerClosed) && !l.s.closing.Load() {
		l.s.log.Error("WebSocket listener stopped", "err", err)
	}
}

// Close stops accepting and closes the listener's MQTT connections.
func (l *wsListener) Close(closeClients listeners.CloseFn) {
	_ = l.srv.Close()
	closeClients(l.id)
}

// ServeHTTP answers IoT Hub's way: only GET /$iothub/websocket upgrading to WebSocket with
// sub-protocol mqtt (any case) becomes an MQTT connection; anything else gets 400 and a
// rejection saying why. The query (?iothub-no-client-cert=true) is accepted.
func (l *wsListener) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	refuse := func(reason sas.Reason, detail string, hints ...string) {
		settle(r)
		l.s.reject(iothub.Rejection{RemoteAddr: r.RemoteAddr, Reason: reason, Detail: detail, Hints: hints})
		w.Header().Set("X-Hubkit-Reason", string(reason))
		http.Error(w, "400 Bad Request: "+detail, http.StatusBadRequest)
	}
	switch {
	case r.URL.Path != WebSocketPath:
		refuse(ReasonWebSocketPath, fmt.Sprintf("path %q, want %s", clip(r.URL.Path), WebSocketPath),
			"IoT Hub serves MQTT over WebSockets only on wss://{host}:443"+WebSocketPath)
		return
	case !websocket.IsWebSocketUpgrade(r) || r.Method != http.MethodGet:
		refuse(ReasonWebSocketNoUpgrade, fmt.Sprintf("%s %s without a WebSocket upgrade (Upgrade: websocket)", r.Method, WebSocketPath),
			"this port speaks MQTT over WebSockets; the service REST API has its own listener")
		return
	}
	offered := websocket.Subprotocols(r)
	proto := ""
	for _, p := range offered {
		if strings.EqualFold(p, iothub.WebSocketSubprotocol) { // the C SDK sends "MQTT" (docs/iothub-behavior.md §1.3)
			proto = p
			break
		}
	}
	if proto == "" {
		refuse(ReasonWebSocketSubprotocol, fmt.Sprintf("sub-protocols %q, want mqtt", offered),
			"set the WebSocket sub-protocol (Sec-WebSocket-Protocol) to mqtt")
		return
	}
	ws, err := l.upgrader.Upgrade(w, r, http.Header{"Sec-Websocket-Protocol": {proto}})
	if err != nil { // gorilla has answered with an HTTP error
		settle(r)
		l.s.reject(iothub.Rejection{RemoteAddr: r.RemoteAddr, Reason: ReasonWebSocketNoUpgrade, Detail: clip(err.Error())})
		return
	}
	g, ok := ws.NetConn().(*guardConn)
	if !ok {
		_ = ws.Close()
		return
	}
	if strings.EqualFold(r.URL.Query().Get("iothub-no-client-cert"), "true") {
		g.noClientCert.Store(true)
	}
	// Hijacking cleared net/http's deadlines: the CONNECT must still come in time.
	_ = g.SetDeadline(time.Now().Add(l.s.opts.ConnectTimeout))
	l.mu.Lock()
	establish := l.establish
	l.mu.Unlock()
	c := &wsConn{Conn: g, g: g, ws: ws}
	if err := establish(l.id, c); err != nil && !errors.Is(err, io.EOF) {
		l.s.log.Debug("WebSocket connection ended", "remoteAddr", r.RemoteAddr, "err", err)
	}
	_ = c.Close()
}

// errTextFrame: MQTT over WebSockets uses binary messages only (MQTT 3.1.1 §6.0).
var errTextFrame = errors.New("fakehub: WebSocket text message: MQTT travels in binary messages")

// wsConn is a net.Conn over a WebSocket's binary messages, for mochi. Addresses and
// deadlines are the guardConn's (keep-alive and the CONNECT time-out work as on TCP).
type wsConn struct {
	net.Conn // the guardConn
	g        *guardConn
	ws       *websocket.Conn
	r        io.Reader // the message being read
	wmu      sync.Mutex
}

func (c *wsConn) Read(p []byte) (int, error) {
	for {
		if c.r == nil {
			typ, r, err := c.ws.NextReader()
			if err != nil {
				return 0, err
			}
			if typ != websocket.BinaryMessage {
				return 0, errTextFrame
			}
			c.r = r
		}
		n, err := c.r.Read(p)
		if errors.Is(err, io.EOF) {
			c.r = nil
			if n == 0 {
				continue
			}
			err = nil
		}
		return n, err
	}
}

func (c *wsConn) Write(p []byte) (int, error) {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	if err := c.ws.WriteMessage(websocket.BinaryMessage, p); err != nil {
		return 0, err
	}
	return len(p), nil
}

func (c *wsConn) Close() error { return c.g.Close() }

// WebSocketAddr returns the MQTT-over-WebSockets listener's address, or "".
func (s *Server) WebSocketAddr() string {
	if s.wsLn == nil {
		return ""
	}
	return s.wsLn.Address()
}

// WebSocketURL returns the URL a device dials for MQTT over WebSockets on this hub
// ("wss://127.0.0.1:4443/$iothub/websocket"), or "" without the listener. The TLS server
// name stays the hub's host name.
func (s *Server) WebSocketURL() string {
	if s.wsLn == nil {
		return ""
	}
	return "wss://" + s.wsLn.Address() + WebSocketPath
}

// wsFirstRead is the WebSocket listener's onFirstRead: plaintext (ws:// instead of wss://)
// is named; an HTTP request is what the listener expects and ServeHTTP judges it.
func (s *Server) wsFirstRead(remote string, _ []byte, err error) {
	if rh, ok := errors.AsType[tls.RecordHeaderError](err); ok {
		r := iothub.Rejection{RemoteAddr: remote, Reason: ReasonNotTLS,
			Detail: fmt.Sprintf("the first bytes (%q) are not a TLS handshake: the WebSocket listener speaks wss:// (WebSockets over TLS) only", rh.RecordHeader[:])}
		if looksHTTP(rh.RecordHeader[:]) {
			r.Detail = "a plain HTTP request (ws://, no TLS) on the WebSocket listener: IoT Hub's WebSocket endpoint is wss:// only"
			r.Hints = []string{"use wss://HOST:PORT/$iothub/websocket and trust the hub's CA"}
		}
		s.reject(r)
	}
}

// tlsHandshakeFailed records a failed TLS handshake on a device listener.
func (s *Server) tlsHandshakeFailed(remote string, err error) {
	detail := "TLS handshake failed: " + err.Error()
	var hints []string
	msg := err.Error()
	switch {
	case strings.Contains(msg, "bad certificate"), strings.Contains(msg, "unknown certificate authority"),
		strings.Contains(msg, "certificate expired"), strings.Contains(msg, "certificate unknown"):
		hints = append(hints, "the device refused the hub's certificate: it must trust the hub's root CA (fakehub: the --ca folder's ca.pem, or the drill's roots) and check the host name it dials")
	case strings.Contains(msg, "protocol version"), strings.Contains(msg, "unsupported versions"):
		hints = append(hints, "IoT Hub requires TLS 1.2 or later (TLS 1.3 only on the device host name)")
	}
	s.reject(iothub.Rejection{RemoteAddr: remote, Reason: ReasonTLSHandshake, Detail: detail, Hints: hints})
}
