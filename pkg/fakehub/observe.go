package fakehub

import (
	"bytes"
	"errors"
	"net"
	"os"
	"slices"
	"strings"
	"sync"
	"sync/atomic"

	mqtt "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/packets"

	"github.com/hubkit/hubkit/pkg/iothub"
	"github.com/hubkit/hubkit/pkg/sas"
)

// The packet observation seam: every MQTT packet a device sends or the hub writes (hub and
// DPS endpoints), and every accepted and ended connection, described as an iothub.Packet
// and handed to the observers registered with Server.ObservePackets. The device grader
// (pkg/grade) judges devices by it; nothing in the hub's own behaviour depends on it.

// connSeq numbers accepted connections, process-wide (iothub.Packet.Conn).
var connSeq atomic.Uint64

// observers is the set of packet observers.
type observers struct {
	n   atomic.Int32 // len(fns), read without the lock on the hot path
	mu  sync.RWMutex
	id  int
	fns map[int]func(iothub.Packet)
}

// ObservePackets calls fn for every packet between the hub (or its DPS) and a device, and
// for every accepted (iothub.PacketAccept) and ended (iothub.PacketClose) connection, until
// stop is called. fn runs on the connection's goroutine, synchronously, in the order the
// hub read or wrote the packets of that connection: it must return quickly and must not
// call back into the hub's MQTT side. Packets carry no secrets and no payloads (sizes only).
func (s *Server) ObservePackets(fn func(iothub.Packet)) (stop func()) {
	o := &s.observers
	o.mu.Lock()
	if o.fns == nil {
		o.fns = map[int]func(iothub.Packet){}
	}
	o.id++
	id := o.id
	o.fns[id] = fn
	o.n.Store(int32(len(o.fns)))
	o.mu.Unlock()
	var once sync.Once
	return func() {
		once.Do(func() {
			o.mu.Lock()
			delete(o.fns, id)
			o.n.Store(int32(len(o.fns)))
			o.mu.Unlock()
		})
	}
}

func (o *observers) active() bool { return o.n.Load() > 0 }

// emit stamps p with the hub's clock and hands it to every observer.
func (s *Server) emit(p iothub.Packet) {
	p.Time = s.opts.Now().UTC()
	s.observers.mu.RLock()
	defer s.observers.mu.RUnlock()
	for _, fn := range s.observers.fns {
		fn(p)
	}
}

// observeAccept is the listeners' onAccept: a new TCP connection.
func (s *Server) observeAccept(service string) func(*guardConn) {
	return func(g *guardConn) {
		if !s.observers.active() {
			return
		}
		defer s.recoverHook("packet observer", nil, nil)
		s.emit(iothub.Packet{Service: service, Conn: g.seq, RemoteAddr: g.RemoteAddr().String(), FromDevice: true, Type: iothub.PacketAccept})
	}
}

// observeBareClose is the listeners' onBareClose: a connection ended before any CONNECT
// (a client that refused the server's certificate after the TLS handshake, a port scan).
func (s *Server) observeBareClose(service string) func(*guardConn) {
	return func(g *guardConn) {
		if !s.observers.active() {
			return
		}
		defer s.recoverHook("packet observer", nil, nil)
		s.emit(iothub.Packet{Service: service, Conn: g.seq, RemoteAddr: g.RemoteAddr().String(), Type: iothub.PacketClose, Reason: "closed before any CONNECT"})
	}
}

// observeHook reports packets to the observers. It is the first hook of its mochi server,
// so that it sees every packet a device sends, refused ones included, as sent.
type observeHook struct {
	mqtt.HookBase
	s       *Server
	service string // "" hub, "dps"
}

func (h *observeHook) ID() string { return "fakehub-observe-" + h.service }

func (h *observeHook) Provides(b byte) bool {
	return bytes.Contains([]byte{mqtt.OnPacketRead, mqtt.OnPacketSent, mqtt.OnDisconnect}, []byte{b})
}

func (h *observeHook) OnPacketRead(cl *mqtt.Client, pk packets.Packet) (packets.Packet, error) {
	if cl.Net.Inline || !h.s.observers.active() {
		return pk, nil
	}
	defer h.s.recoverHook("packet observer", nil, nil)
	h.s.emit(h.describe(cl, pk, true))
	return pk, nil
}

func (h *observeHook) OnPacketSent(cl *mqtt.Client, pk packets.Packet, _ []byte) {
	if cl.Net.Inline || !h.s.observers.active() {
		return
	}
	defer h.s.recoverHook("packet observer", nil, nil)
	h.s.emit(h.describe(cl, pk, false))
}

func (h *observeHook) OnDisconnect(cl *mqtt.Client, err error, _ bool) {
	if cl.Net.Inline || !h.s.observers.active() {
		return
	}
	defer h.s.recoverHook("packet observer", nil, nil)
	p := h.base(cl, cl.ID, false)
	p.Type = iothub.PacketClose
	if h.service == "" {
		if ss := h.s.sessions.get(cl); ss != nil {
			if r := ss.closeReason.Load(); r != nil {
				p.Reason = string(*r)
			}
		}
	}
	var ne net.Error
	if p.Reason == "" && err != nil && (errors.Is(err, os.ErrDeadlineExceeded) || (errors.As(err, &ne) && ne.Timeout())) {
		p.Reason = string(ReasonKeepAlive)
	}
	h.s.emit(p)
}

// base fills what every packet of cl's connection carries.
func (h *observeHook) base(cl *mqtt.Client, clientID string, fromDevice bool) iothub.Packet {
	p := iothub.Packet{Service: h.service, RemoteAddr: cl.Net.Remote, FromDevice: fromDevice, ClientID: clean(clientID)}
	if g, ok := cl.Net.Conn.(*guardConn); ok {
		p.Conn = g.seq
	}
	if h.service == "" {
		if id, err := iothub.ParseClientID(clientID); err == nil {
			p.DeviceID, p.ModuleID = id.DeviceID, id.ModuleID
		}
	}
	return p
}

// describe turns a mochi packet into an iothub.Packet.
func (h *observeHook) describe(cl *mqtt.Client, pk packets.Packet, fromDevice bool) iothub.Packet {
	clientID := cl.ID
	if pk.FixedHeader.Type == packets.Connect {
		clientID = pk.Connect.ClientIdentifier // cl.ID is set after this hook
	}
	p := h.base(cl, clientID, fromDevice)
	p.Type = packetTypeName(pk.FixedHeader.Type)
	p.PacketID = pk.PacketID
	switch pk.FixedHeader.Type {
	case packets.Connect:
		c := pk.Connect
		p.UserName, p.KeepAlive, p.CleanSession, p.Will = clean(string(c.Username)), c.Keepalive, c.Clean, c.WillFlag
		if c.PasswordFlag {
			if tok, err := sas.Parse(string(c.Password)); err == nil {
				p.TokenResource, p.TokenKeyName, p.TokenExpiry = clean(tok.Resource), tok.KeyName, tok.ExpiresAt().UTC()
			}
		}
	case packets.Connack:
		p.ReturnCode, p.SessionPresent = pk.ReasonCode, pk.SessionPresent
		if pk.SessionPresent {
			// mochi copies the stored session's subscriptions into cl before it writes
			// the CONNACK, and reads nothing from the device until it has.
			for _, s := range cl.State.Subscriptions.GetAll() {
				p.Inherited = append(p.Inherited, iothub.PacketFilter{Filter: s.Filter, QoS: s.Qos})
			}
			slices.SortFunc(p.Inherited, func(a, b iothub.PacketFilter) int { return strings.Compare(a.Filter, b.Filter) })
		}
	case packets.Publish:
		p.QoS, p.Dup, p.Retain, p.Topic, p.PayloadSize = pk.FixedHeader.Qos, pk.FixedHeader.Dup, pk.FixedHeader.Retain, pk.TopicName, len(pk.Payload)
		if p.QoS == 0 {
			p.PacketID = 0
		}
	case packets.Subscribe, packets.Unsubscribe:
		for _, f := range pk.Filters {
			p.Filters = append(p.Filters, iothub.PacketFilter{Filter: f.Filter, QoS: f.Qos})
		}
	case packets.Suback:
		for _, c := range pk.ReasonCodes {
			p.ReturnCodes = append(p.ReturnCodes, int(c))
		}
	}
	return p
}

// packetTypeNames name the MQTT control packet types as iothub.Packet.Type does.
var packetTypeNames = map[byte]string{
	packets.Connect: iothub.PacketConnect, packets.Connack: iothub.PacketConnack, packets.Publish: iothub.PacketPublish,
	packets.Puback: iothub.PacketPuback, packets.Pubrec: iothub.PacketPubrec, packets.Pubrel: iothub.PacketPubrel,
	packets.Pubcomp: iothub.PacketPubcomp, packets.Subscribe: iothub.PacketSubscribe, packets.Suback: iothub.PacketSuback,
	packets.Unsubscribe: iothub.PacketUnsubscribe, packets.Unsuback: iothub.PacketUnsuback, packets.Pingreq: iothub.PacketPingreq,
	packets.Pingresp: iothub.PacketPingresp, packets.Disconnect: iothub.PacketDisconnect,
}

func packetTypeName(t byte) string {
	if n, ok := packetTypeNames[t]; ok {
		return n
	}
	return packetName(t << 4)
}
