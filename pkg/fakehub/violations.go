package fakehub

import (
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"

	"github.com/hubkit/hubkit/pkg/fakehub/internal/wire"
	"github.com/hubkit/hubkit/pkg/iothub"
)

// markRecorded notes that a rejection names the open connection from
// remote, so connectionEnded adds no second record.
func (s *Server) markRecorded(remote string) {
	if remote == "" {
		return
	}
	for _, ln := range s.guards() {
		if g := ln.lookup(remote); g != nil {
			g.recorded.Store(true)
		}
	}
}

// violated records a packet that breaks an MQTT 3.1.1 "MUST close" rule
// (internal/wire found it before mochi read it); the connection then ends.
func (s *Server) violated(g *guardConn, v *wire.Violation) {
	reason := ReasonMalformedPacket
	switch v.Kind {
	case wire.MalformedConnect:
		reason = ReasonMalformedConnect
	case wire.NotConnectFirst:
		reason = ReasonFirstPacketNotConnect
	case wire.SecondConnect:
		reason = ReasonDuplicateConnect
	case wire.TooLarge:
		reason = ReasonMessageTooLarge
	}
	detail := v.Error()
	if g.recorded.Load() {
		return // named already (firstcontact.go: HTTP, WebSocket, not MQTT at all)
	}
	if ss := g.session.Load(); ss != nil {
		if ss.closeReason.CompareAndSwap(nil, &reason) {
			s.reject(ss.rejection(reason, detail))
		}
		return
	}
	rj := iothub.Rejection{RemoteAddr: g.remote, ClientID: g.check.ClientID(), Reason: reason, Detail: detail}
	if id, err := iothub.ParseClientID(rj.ClientID); err == nil {
		rj.DeviceID, rj.ModuleID = id.DeviceID, id.ModuleID
	}
	if reason == ReasonFirstPacketNotConnect {
		rj.Hints = []string{"send CONNECT first; an MQTT client library does that for you"}
	}
	s.reject(rj)
}

// handshakeFailed records a TLS handshake that failed on a device listener,
// with what the client most likely did wrong: plaintext or garbage on the
// TLS port, a TLS version the hub does not offer, or the hub's certificate
// refused.
func (s *Server) handshakeFailed(g *guardConn, err error) {
	if g.recorded.Load() {
		return // plaintext on the TLS port, named by firstRead (firstcontact.go)
	}
	rj := iothub.Rejection{RemoteAddr: g.remote, Reason: ReasonTLSHandshake, Detail: "TLS handshake failed: " + err.Error()}
	var rh tls.RecordHeaderError
	msg := err.Error()
	switch {
	case errors.As(err, &rh) && rh.RecordHeader[0] == 0x10:
		rj.Hints = []string{"the client sent plaintext MQTT (a CONNECT) to the TLS port: IoT Hub speaks MQTT over TLS only (port 8883)"}
	case errors.As(err, &rh):
		rj.Hints = []string{"the first bytes are not a TLS handshake: connect with TLS 1.2"}
	case strings.Contains(msg, "unsupported versions"), strings.Contains(msg, "protocol version"):
		rj.Hints = []string{"IoT Hub requires TLS 1.2 or later (TLS 1.0 and 1.1 were retired on 31 August 2025, docs/iothub-behavior.md §1.4; TLS 1.3 only on the device host name)"}
	case strings.Contains(msg, "bad certificate"), strings.Contains(msg, "unknown certificate authority"),
		strings.Contains(msg, "certificate expired"), strings.Contains(msg, "certificate unknown"):
		rj.Hints = []string{"the device refused the hub's certificate: it must trust the hub's root CA (fakehub: the --ca folder's ca.pem, or the drill's roots) and check the host name it dials"}
	}
	s.reject(rj)
}

// connectIncomplete records a client that closed the connection inside its
// CONNECT (or another first packet).
func (s *Server) connectIncomplete(g *guardConn) {
	s.reject(iothub.Rejection{RemoteAddr: g.remote, ClientID: g.check.ClientID(), Reason: ReasonConnectIncomplete,
		Detail: "the client closed the connection before its CONNECT was complete"})
}

// connectionEnded is the safety net behind every other record: a
// connection that ended with an error, which no rejection explains and which
// is not the client going away, gets a ReasonConnectionError record.
func (s *Server) connectionEnded(g *guardConn, err error) {
	if err == nil || g.recorded.Load() || isClosed(err) || errors.Is(err, net.ErrClosed) || errors.Is(err, io.EOF) {
		return
	}
	var v *wire.Violation
	if errors.As(err, &v) {
		return
	}
	rj := iothub.Rejection{RemoteAddr: g.remote, ClientID: g.check.ClientID(), Reason: ReasonConnectionError,
		Detail: fmt.Sprintf("the connection ended with an error: %v", err)}
	if ss := g.session.Load(); ss != nil {
		if !ss.closeReason.CompareAndSwap(nil, &rj.Reason) {
			return
		}
		rj = ss.rejection(rj.Reason, rj.Detail)
	}
	s.reject(rj)
}
