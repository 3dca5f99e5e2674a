package fakehub

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strings"
	"sync"
	"time"

	mqtt "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/listeners"
	"github.com/mochi-mqtt/server/v2/packets"

	"github.com/hubkit/hubkit/pkg/fakehub/internal/provisioning"
	"github.com/hubkit/hubkit/pkg/iothub"
	"github.com/hubkit/hubkit/pkg/iothub/dps"
	"github.com/hubkit/hubkit/pkg/sas"
)

// DPS over MQTT (docs/iothub-behavior.md §7.2, §7.5): its own mochi server, so that
// registration IDs never meet the hub's device IDs. One hook does it all: the CONNECT is
// the attestation, the one filter a device may subscribe to is $dps/registrations/res/#
// (granted at most QoS 1), a device may publish only register requests and polls, and the
// answers are written to the device alone. Sessions never persist, whatever CleanSession
// says.

// dpsConn is one authenticated DPS connection.
type dpsConn struct {
	regID    string
	remote   string
	userName string
	attested *provisioning.Attested
}

type dpsConns struct {
	mu sync.Mutex
	m  map[*mqtt.Client]*dpsConn
}

func (c *dpsConns) get(cl *mqtt.Client) *dpsConn {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.m[cl]
}

func (c *dpsConns) set(cl *mqtt.Client, dc *dpsConn) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if dc == nil {
		delete(c.m, cl)
		return
	}
	c.m[cl] = dc
}

func (d *DPS) startMQTT(addr string) error {
	s := d.s
	d.conns.m = map[*mqtt.Client]*dpsConn{}
	if addr == "" {
		addr = "127.0.0.1:0"
	}
	caps := mqtt.NewDefaultServerCapabilities()
	caps.MaximumQos = 1 // SUBSCRIBE QoS 2 is granted 1 (docs/iothub-behavior.md §7.2)
	caps.MaximumPacketSize = 96 << 10
	caps.MaximumMessageExpiryInterval = 0
	d.mochi = mqtt.New(&mqtt.Options{
		Capabilities:           caps,
		Logger:                 slog.New(mochiLogHandler{s.log.With("service", "dps").Handler()}),
		SysTopicResendInterval: 3600,
	})
	if err := d.mochi.AddHook(&observeHook{s: s, service: "dps"}, nil); err != nil {
		return err
	}
	if err := d.mochi.AddHook(&dpsHook{d: d}, nil); err != nil {
		return err
	}
	raw, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("fakehub: DPS: listen %s: %w", addr, err)
	}
	cfg := s.opts.TLS.Clone()
	cfg.MinVersion = max(cfg.MinVersion, tls.VersionTLS12) // DPS: TLS 1.2 and up (§7.1)
	// An X.509 device attests with its client certificate: requested, not required, and
	// judged at CONNECT, where the refusal can say why (§7.14).
	if cfg.ClientAuth == tls.NoClientCert {
		cfg.ClientAuth = tls.RequestClientCert
	}
	d.tlsLn = newGuardListener(raw, cfg, s.opts.ConnectTimeout, func(remote string) {
		s.reject(iothub.Rejection{RemoteAddr: remote, Reason: ReasonConnectTimeout,
			Detail: fmt.Sprintf("DPS: no TLS handshake and CONNECT within %s", s.opts.ConnectTimeout)})
	}, nil)
	s.watchAccept(d.tlsLn) // out of descriptors: retried, refused cleanly, logged
	d.tlsLn.onAccept, d.tlsLn.onHandshake, d.tlsLn.onBareClose = s.observeAccept("dps"), s.observeHandshake("dps"), s.observeBareClose("dps")
	if err := d.mochi.AddListener(listeners.NewNet("dps-mqtts", d.tlsLn)); err != nil {
		_ = d.tlsLn.Close()
		return err
	}
	if err := d.mochi.Serve(); err != nil {
		_ = d.tlsLn.Close()
		return err
	}
	return nil
}

func (d *DPS) stopMQTT() {
	if d.mochi == nil {
		return
	}
	_ = d.tlsLn.Close()
	d.tlsLn.closeAll()
	for _, cl := range d.mochi.Clients.GetAll() {
		cl.Stop(ErrClosed)
	}
	deadline := time.Now().Add(2 * time.Second)
	for d.tlsLn.open() > 0 && time.Now().Before(deadline) {
		time.Sleep(2 * time.Millisecond)
	}
	_ = d.mochi.Close()
}

// reject records a DPS refusal in the hub's rejection log.
func (d *DPS) reject(cl *mqtt.Client, user string, reason sas.Reason, detail string, hints ...string) {
	d.s.reject(iothub.Rejection{RemoteAddr: cl.Net.Remote, ClientID: cl.ID, UserName: user, Reason: reason, Detail: "DPS: " + detail, Hints: hints})
}

type dpsHook struct {
	mqtt.HookBase
	d *DPS
}

func (h *dpsHook) ID() string { return "fakehub-dps" }

func (h *dpsHook) Provides(b byte) bool {
	return bytes.Contains([]byte{
		mqtt.OnPacketRead, mqtt.OnConnect, mqtt.OnConnectAuthenticate, mqtt.OnACLCheck,
		mqtt.OnSessionEstablish, mqtt.OnPublish, mqtt.OnDisconnect,
	}, []byte{b})
}

// OnPacketRead checks CONNECT headers (as the hub does), forces clean sessions, and polices
// SUBSCRIBE and PUBLISH: anything but the documented topics closes the connection.
func (h *dpsHook) OnPacketRead(cl *mqtt.Client, pk packets.Packet) (_ packets.Packet, err error) {
	defer h.d.s.recoverHook("DPS OnPacketRead", cl, &err)
	d := h.d
	switch pk.FixedHeader.Type {
	case packets.Connect:
		if g, ok := cl.Net.Conn.(*guardConn); ok {
			g.connected.Store(true)
		}
		user := string(pk.Connect.Username)
		if d.conns.get(cl) != nil {
			d.reject(cl, user, ReasonDuplicateConnect, "a second CONNECT on an established connection")
			return pk, packets.ErrRejectPacket
		}
		switch {
		case string(pk.Connect.ProtocolName) != "MQTT":
			d.reject(cl, user, ReasonProtocolName, fmt.Sprintf("protocol name %q, want \"MQTT\" (MQTT 3.1.1)", pk.Connect.ProtocolName))
			return pk, packets.ErrRejectPacket
		case pk.ProtocolVersion != 4:
			d.reject(cl, user, ReasonProtocolVersion, fmt.Sprintf("protocol level %d, DPS speaks MQTT 3.1.1 (level 4)", pk.ProtocolVersion))
			_ = d.mochi.SendConnack(cl, packets.ErrUnsupportedProtocolVersion, false, nil)
			return pk, packets.ErrRejectPacket
		case pk.ReservedBit != 0:
			d.reject(cl, user, ReasonMalformedConnect, "CONNECT with the reserved flag set (MQTT-3.1.2-3)")
			return pk, packets.ErrRejectPacket
		case pk.Connect.ClientIdentifier == "":
			d.reject(cl, user, sas.ReasonClientIDMismatch, "empty client ID; it must be the registration ID")
			_ = d.mochi.SendConnack(cl, packets.ErrBadUsernameOrPassword, false, nil)
			return pk, packets.ErrRejectPacket
		}
		pk.Connect.Clean = true // DPS sessions never persist (§7.2)
		pk.Connect.WillFlag, pk.Connect.WillTopic, pk.Connect.WillPayload = false, "", nil
		if pk.Connect.PasswordFlag && len(pk.Connect.Password) == 0 {
			pk.Connect.PasswordFlag = false
		}
	case packets.Subscribe:
		dc := d.conns.get(cl)
		if dc == nil {
			return pk, packets.ErrRejectPacket
		}
		for _, f := range pk.Filters {
			if _, err := iothub.ClassifyDPSSubscribe(f.Filter); err != nil {
				d.reject(cl, dc.userName, ReasonSubscribeForbidden, err.Error())
				return pk, packets.ErrRejectPacket
			}
		}
	case packets.Publish:
		dc := d.conns.get(cl)
		if dc == nil {
			return pk, packets.ErrRejectPacket
		}
		if pk.FixedHeader.Qos > 1 {
			d.reject(cl, dc.userName, ReasonQoS2Publish, fmt.Sprintf("PUBLISH to %q with QoS 2; DPS supports QoS 0 and 1", pk.TopicName))
			return pk, packets.ErrRejectPacket
		}
		if _, err := iothub.ClassifyDPSPublish(pk.TopicName); err != nil {
			d.reject(cl, dc.userName, ReasonTopicForbidden, err.Error())
			return pk, packets.ErrRejectPacket
		}
	}
	return pk, nil
}

// OnConnect attests the device: its registration ID, user name and SAS token against the
// enrollments. A refusal is CONNACK 5 (docs/iothub-behavior.md §7.6).
func (h *dpsHook) OnConnect(cl *mqtt.Client, pk packets.Packet) (err error) {
	defer h.d.s.recoverHook("DPS OnConnect", cl, &err)
	d := h.d
	user := string(pk.Connect.Username)
	dc, reason, detail, hints := d.authenticate(cl, pk)
	if dc == nil {
		d.reject(cl, user, reason, detail, hints...)
		code := packets.ErrBadUsernameOrPassword
		if reason == ReasonServerClosing {
			code = packets.ErrServerUnavailable
		}
		_ = d.mochi.SendConnack(cl, code, false, nil)
		return errRefused
	}
	d.conns.set(cl, dc)
	return nil
}

func (d *DPS) authenticate(cl *mqtt.Client, pk packets.Packet) (*dpsConn, sas.Reason, string, []string) {
	scope := d.e.IDScope()
	user := string(pk.Connect.Username)
	want := scope + "/registrations/" + cl.ID + "/api-version=" + dps.APIVersion
	if d.s.closing.Load() {
		return nil, ReasonServerClosing, "the DPS is shutting down", nil
	}
	if err := iothub.ValidateRegistrationID(cl.ID); err != nil {
		return nil, sas.ReasonClientIDMismatch, "the client ID must be the registration ID: " + err.Error(), nil
	}
	if !pk.Connect.UsernameFlag || user == "" {
		return nil, sas.ReasonUserNameMalformed, "no user name; want " + want, nil
	}
	un, err := iothub.ParseDPSUserName(user)
	if err != nil {
		hints := []string{"want " + want}
		if _, herr := iothub.ParseUserName(user); herr == nil {
			hints = append(hints, "this is an IoT Hub user name ({host}/{deviceId}/?api-version=...): DPS takes {idScope}/registrations/{registrationId}/api-version=...")
		}
		return nil, sas.ReasonUserNameMalformed, err.Error(), hints
	}
	if !strings.EqualFold(un.IDScope, scope) {
		return nil, sas.ReasonScopeMismatch, fmt.Sprintf("user name names ID scope %q but this DPS is %q", un.IDScope, scope), []string{"want " + want}
	}
	if !strings.EqualFold(un.RegistrationID, cl.ID) {
		return nil, sas.ReasonUserNameMismatch, fmt.Sprintf("client ID %q but the user name is for registration %q", cl.ID, un.RegistrationID), nil
	}
	cred := provisioning.Credential{RegistrationID: cl.ID}
	if st, ok := cl.Net.Conn.(interface {
		ConnectionState() (tls.ConnectionState, bool)
	}); ok {
		if cs, ok := st.ConnectionState(); ok {
			cred.Certificates = cs.PeerCertificates
		}
	}
	if pk.Connect.PasswordFlag && len(pk.Connect.Password) > 0 {
		tok, err := sas.Parse(string(pk.Connect.Password))
		if err != nil {
			return nil, sas.ReasonMalformed, err.Error(), nil
		}
		cred.Token = &tok
	}
	a, f := d.e.Attest(cred)
	if f != nil {
		return nil, f.Reason, f.Detail, f.Hints
	}
	return &dpsConn{regID: cl.ID, remote: cl.Net.Remote, userName: user, attested: a}, "", "", nil
}

func (h *dpsHook) OnConnectAuthenticate(cl *mqtt.Client, _ packets.Packet) bool {
	return h.d.conns.get(cl) != nil
}

// OnACLCheck lets a device subscribe to the response filter and publish (checked in
// OnPacketRead); nothing is ever routed between devices.
func (h *dpsHook) OnACLCheck(cl *mqtt.Client, topic string, write bool) bool {
	if write {
		return true
	}
	return topic == iothub.DPSResponseFilter
}

// OnSessionEstablish closes an older connection of the same registration ID first, so that
// mochi's takeover never writes an MQTT 5 DISCONNECT to a 3.1.1 device.
func (h *dpsHook) OnSessionEstablish(cl *mqtt.Client, _ packets.Packet) {
	defer h.d.s.recoverHook("DPS OnSessionEstablish", cl, nil)
	if old, ok := h.d.mochi.Clients.Get(cl.ID); ok && old != cl && !old.Closed() {
		h.d.reject(old, "", ReasonReplaced, "a newer connection for registration "+cl.ID+" replaced this one")
		old.Stop(errors.New(string(ReasonReplaced)))
	}
}

func (h *dpsHook) OnDisconnect(cl *mqtt.Client, _ error, _ bool) {
	h.d.conns.set(cl, nil)
}

// OnPublish answers a register request or a poll on $dps/registrations/res/{status}/.
func (h *dpsHook) OnPublish(cl *mqtt.Client, pk packets.Packet) (_ packets.Packet, err error) {
	defer h.d.s.recoverHook("DPS OnPublish", cl, &err)
	d := h.d
	dc := d.conns.get(cl)
	if dc == nil {
		return pk, packets.ErrRejectPacket
	}
	p, err := iothub.ClassifyDPSPublish(pk.TopicName)
	if err != nil {
		return pk, packets.ErrRejectPacket
	}
	var st *dps.OperationStatus
	var retry time.Duration
	var f *provisioning.Refusal
	switch p.Kind {
	case iothub.TopicDPSRegister:
		st, retry, f = d.e.Register(dc.attested, pk.Payload)
	case iothub.TopicDPSPoll:
		st, retry, f = d.e.Poll(context.Background(), dc.regID, p.OperationID)
	}
	status := 200
	var body any = st
	if f != nil {
		d.reject(cl, dc.userName, f.Reason, f.Detail, f.Hints...)
		if st == nil {
			e := f.DPSError()
			status, body = e.Status(), e.Body(d.e.TrackingID(), d.e.Now())
		}
	} else if !st.Status.Done() {
		status = 202
	}
	d.respond(cl, dc, iothub.DPSResponseTopic(status, p.RID, int(retry/time.Second)), body)
	return pk, packets.CodeSuccessIgnore
}

// respond writes a DPS answer to the device alone, at the QoS of its subscription (at most
// 1); without a subscription to $dps/registrations/res/# the answer is dropped.
func (d *DPS) respond(cl *mqtt.Client, dc *dpsConn, topic string, body any) {
	sub, ok := cl.State.Subscriptions.Get(iothub.DPSResponseFilter)
	if !ok {
		d.s.log.Warn("DPS answer dropped: the device has not subscribed to "+iothub.DPSResponseFilter, "clientId", cl.ID, "topic", topic)
		return
	}
	payload, _ := json.Marshal(body)
	out := packets.Packet{FixedHeader: packets.FixedHeader{Type: packets.Publish, Qos: min(sub.Qos, 1)}, TopicName: topic, Payload: payload,
		Created: d.s.opts.Now().Unix()}
	if out.FixedHeader.Qos > 0 {
		pid, err := cl.NextPacketID()
		if err != nil {
			return
		}
		out.PacketID = uint16(pid)
		cl.State.Inflight.Set(out)
	}
	if err := cl.WritePacket(out); err != nil {
		cl.State.Inflight.Delete(out.PacketID)
		d.s.log.Debug("DPS answer not written", "clientId", cl.ID, "topic", topic, "error", err.Error())
	}
	_ = dc
}
