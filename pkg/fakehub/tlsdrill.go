package fakehub

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"

	"github.com/hubkit/hubkit/pkg/iothub"
)

// TLS drills switched at run time (docs/iothub-behavior.md §8.5, §15.17): the device
// listeners present a drill's chain to new handshakes while the grader asks, and every
// handshake's outcome (completed, or refused by the device) is offered to the packet
// observers as an iothub.PacketHandshake.

// tlsDrills is the drill the device listeners present (none: the hub's own chain).
type tlsDrills struct {
	presented atomic.Pointer[presentedDrill]
	mu        sync.Mutex
	certs     map[string]*tls.Certificate // Options.TLSDrills' answers, by name
}

type presentedDrill struct {
	name string
	cert *tls.Certificate
}

// ErrNoTLSDrills means the hub was given no TLS drill chains (Options.TLSDrills).
var ErrNoTLSDrills = errors.New("fakehub: the hub has no TLS drills (Options.TLSDrills; fakehub --ca)")

// PresentTLSDrill makes the device listeners (MQTT over TLS and over WebSockets) present
// the chain of the TLS drill called name to every new TLS handshake, until restore is
// called (the hub's own chain again). Connections already open are untouched. A drill
// presented while another is replaces it; restoring the first then does nothing.
func (s *Server) PresentTLSDrill(name string) (restore func(), err error) {
	if s.tlsLn == nil && s.wsLn == nil {
		return nil, errors.New("fakehub: the hub has no TLS listener")
	}
	if s.opts.TLSDrills == nil {
		return nil, ErrNoTLSDrills
	}
	d := &s.drills
	d.mu.Lock()
	c, ok := d.certs[name]
	if !ok {
		cert, err := s.opts.TLSDrills(name)
		if err != nil {
			d.mu.Unlock()
			return nil, fmt.Errorf("fakehub: TLS drill %q: %w", name, err)
		}
		if d.certs == nil {
			d.certs = map[string]*tls.Certificate{}
		}
		c = &cert
		d.certs[name] = c
	}
	d.mu.Unlock()
	p := &presentedDrill{name: name, cert: c}
	d.presented.Store(p)
	s.log.Info("TLS drill presented to new handshakes", "drill", name)
	var once sync.Once
	return func() {
		once.Do(func() {
			if d.presented.CompareAndSwap(p, nil) {
				s.log.Info("TLS drill ended: the hub's own chain again", "drill", name)
			}
		})
	}, nil
}

// PresentedTLSDrill names the drill new handshakes see ("": the hub's own chain).
func (s *Server) PresentedTLSDrill() string {
	if p := s.drills.presented.Load(); p != nil {
		return p.name
	}
	return ""
}

// applyDrill makes cfg (a per-handshake clone) present the drill, if one is, and notes it
// on the handshake's connection.
func (s *Server) applyDrill(cfg *tls.Config, hello *tls.ClientHelloInfo) {
	p := s.drills.presented.Load()
	if p == nil {
		return
	}
	cfg.Certificates, cfg.GetCertificate = []tls.Certificate{*p.cert}, nil
	if g, ok := hello.Context().Value(handshakeKey{}).(*guardConn); ok {
		g.drill.Store(&p.name)
	}
}

// handshakeKey carries the *guardConn of a handshake in its context (guardConn.Read), so
// that GetConfigForClient can note the drill it presented.
type handshakeKey struct{}

func handshakeContext(g *guardConn) context.Context {
	return context.WithValue(context.Background(), handshakeKey{}, g)
}

// observeHandshake is the listeners' onHandshake: a TLS handshake ended (err nil: completed).
func (s *Server) observeHandshake(service string) func(*guardConn, error) {
	return func(g *guardConn, err error) {
		if !s.observers.active() {
			return
		}
		defer s.recoverHook("packet observer", nil, nil)
		p := iothub.Packet{Service: service, Conn: g.seq, RemoteAddr: g.remote, FromDevice: true, Type: iothub.PacketHandshake}
		if err != nil {
			p.TLSError = err.Error()
		}
		if d := g.drill.Load(); d != nil {
			p.TLSDrill = *d
		}
		s.emit(p)
	}
}
