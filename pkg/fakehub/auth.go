package fakehub

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"os"
	"strings"
	"time"

	mqtt "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/packets"

	"github.com/hubkit/hubkit/pkg/iothub"
	"github.com/hubkit/hubkit/pkg/sas"
)

// authHook authenticates CONNECTs the way IoT Hub does and owns the
// connection lifecycle: one connection per identity, token expiry,
// keep-alive cap, and the reasons for every refusal.
type authHook struct {
	mqtt.HookBase
	s *Server
}

func (h *authHook) ID() string { return "fakehub-auth" }

// Provides is asked for every hook event of every packet: a switch, not a search.
func (h *authHook) Provides(b byte) bool {
	switch b {
	case mqtt.OnPacketRead, mqtt.OnConnect, mqtt.OnConnectAuthenticate,
		mqtt.OnSessionEstablish, mqtt.OnSessionEstablished, mqtt.OnDisconnect,
		mqtt.OnPacketEncode:
		return true
	}
	return false
}

// OnPacketEncode marks the session live when its CONNACK is about to be
// written: mochi has inherited any stored session by then, and a device
// that sees the CONNACK must find the hub treating it as connected.
func (h *authHook) OnPacketEncode(cl *mqtt.Client, pk packets.Packet) packets.Packet {
	if pk.FixedHeader.Type != packets.Connack {
		return pk // every packet written comes here: the others skip the deferred recover
	}
	defer h.s.recoverHook("OnPacketEncode", cl, nil)
	if pk.ReasonCode == packets.CodeSuccess.Code {
		if ss := h.s.sessions.get(cl); ss != nil {
			ss.acked.Store(true)
		}
	}
	return pk
}

// errRefused ends attachClient after our own CONNACK (mochi sends none).
var errRefused = errors.New("fakehub: connection refused")

// OnPacketRead checks the CONNECT header before mochi validates it: mochi
// would answer a wrong name or level with codes that 3.1.1 does not define.
func (h *authHook) OnPacketRead(cl *mqtt.Client, pk packets.Packet) (_ packets.Packet, err error) {
	if t := pk.FixedHeader.Type; t != packets.Connect && t != packets.Disconnect {
		return pk, nil // every packet read comes here: the others skip the deferred recover
	}
	defer h.s.recoverHook("OnPacketRead", cl, &err)
	if pk.FixedHeader.Type == packets.Disconnect {
		if ss := h.s.sessions.get(cl); ss != nil {
			ss.sentDisconn.Store(true)
		}
		return pk, nil
	}
	if pk.FixedHeader.Type != packets.Connect {
		return pk, nil
	}
	s := h.s
	if g, ok := cl.Net.Conn.(*guardConn); ok {
		g.connected.Store(true)
	}
	rj := Rejection{RemoteAddr: cl.Net.Remote, ClientID: pk.Connect.ClientIdentifier, UserName: string(pk.Connect.Username)}
	if ss := s.sessions.get(cl); ss != nil {
		rj.Identity, rj.Reason, rj.Detail = ss.id, ReasonDuplicateConnect, "a second CONNECT on an established connection"
		s.reject(rj)
		return pk, packets.ErrRejectPacket
	}
	if id, err := iothub.ParseClientID(rj.ClientID); err == nil {
		rj.Identity = id
	}
	switch {
	case pk.Connect.ProtocolName == nil || string(pk.Connect.ProtocolName) != "MQTT":
		rj.Reason = ReasonProtocolName
		rj.Detail = fmt.Sprintf("protocol name %q, want \"MQTT\" (MQTT 3.1.1)", pk.Connect.ProtocolName)
		s.reject(rj)
		return pk, packets.ErrRejectPacket
	case pk.ProtocolVersion != 4:
		rj.Reason = ReasonProtocolVersion
		rj.Detail = fmt.Sprintf("protocol level %d, IoT Hub speaks only MQTT 3.1.1 (level 4)", pk.ProtocolVersion)
		s.reject(rj)
		_ = s.mochi.SendConnack(cl, packets.ErrUnsupportedProtocolVersion, false, nil)
		return pk, packets.ErrRejectPacket
	case pk.ReservedBit != 0:
		rj.Reason, rj.Detail = ReasonMalformedConnect, "CONNECT with the reserved flag set (MQTT-3.1.2-3)"
		s.reject(rj)
		return pk, packets.ErrRejectPacket
	case pk.Connect.ClientIdentifier == "":
		// mochi would answer clean=false with an empty ID with 0x80, invalid in 3.1.1.
		rj.Reason = sas.ReasonClientIDMismatch
		rj.Detail = "empty client ID; it must be the device ID (or deviceId/moduleId)"
		s.reject(rj)
		_ = s.mochi.SendConnack(cl, packets.ErrBadUsernameOrPassword, false, nil)
		return pk, packets.ErrRejectPacket
	}
	// Pre-empt mochi's own checks, which answer with codes 3.1.1 lacks (0x82, 0x9B).
	if pk.Connect.WillFlag && pk.Connect.WillQos > 1 {
		pk.Connect.WillQos = 1
	}
	if pk.Connect.WillFlag && len(pk.Connect.WillPayload) == 0 {
		pk.Connect.WillPayload = emptyWill // legal MQTT; restored in OnConnect
	}
	if pk.Connect.PasswordFlag && len(pk.Connect.Password) == 0 {
		pk.Connect.PasswordFlag = false // refused as no-password in OnConnect
	}
	return pk, nil
}

// emptyWill stands in for an empty will payload, which mochi refuses.
var emptyWill = []byte("\x00fakehub-empty-will\x00")

// OnConnect authenticates. A refusal sends its own CONNACK (5, or the
// disabled-device code) and returns an error, so mochi closes without
// sending another.
func (h *authHook) OnConnect(cl *mqtt.Client, pk packets.Packet) (err error) {
	defer h.s.recoverHook("OnConnect", cl, &err)
	s := h.s
	ss, rj := h.authenticate(cl, pk)
	if rj != nil {
		code := packets.ErrBadUsernameOrPassword // 3.1.1: 5
		if rj.Reason == sas.ReasonDisabled && s.opts.Quirks.disabledCode() != 5 {
			code = connackCode(s.opts.Quirks.disabledCode())
		}
		if rj.Reason == ReasonServerClosing {
			code = packets.ErrServerUnavailable
		}
		// Record first: a client that sees the CONNACK can read the reason at once.
		s.reject(*rj)
		_ = s.mochi.SendConnack(cl, code, false, nil)
		return errRefused
	}
	ss.idle = h.capKeepAlive(cl, pk.Connect.Keepalive)
	if bytes.Equal(cl.Properties.Will.Payload, emptyWill) {
		cl.Properties.Will.Payload = []byte{}
	}
	if cl.Properties.Will.Flag != 0 {
		ss.will = &willMessage{topic: cl.Properties.Will.TopicName, payload: cl.Properties.Will.Payload}
	}
	s.sessions.addPending(ss)
	return nil
}

// connackCode maps a 3.1.1 return code to the mochi code that produces it.
func connackCode(c byte) packets.Code {
	switch c {
	case 1:
		return packets.ErrUnsupportedProtocolVersion
	case 2:
		return packets.ErrClientIdentifierNotValid
	case 3:
		return packets.ErrServerUnavailable
	case 4:
		return packets.ErrMalformedUsername
	default:
		return packets.ErrBadUsernameOrPassword
	}
}

// capKeepAlive sets the keep-alive time-out: 1.5 × keep-alive, exactly
// (guardConn replaces mochi's deadline, which rounds down to whole seconds),
// at most the cap; keep-alive 0 gets the cap unless
// Quirks.KeepAliveZeroNoTimeout. It returns the time-out (0: none).
// cl.State.Keepalive is capped too, so mochi's own deadline stays non-zero
// and bounded.
func (h *authHook) capKeepAlive(cl *mqtt.Client, ka uint16) time.Duration {
	q := h.s.opts.Quirks
	capD := max(q.keepAliveCap(), time.Second)
	if ka == 0 && q.KeepAliveZeroNoTimeout {
		return 0
	}
	idle := capD
	if ka != 0 {
		idle = min(time.Duration(ka)*time.Second*3/2, capD)
	}
	if g, ok := cl.Net.Conn.(*guardConn); ok {
		g.idle.Store(int64(idle))
	}
	capSec := int(capD / time.Second)
	if ka != 0 && int(ka)+int(ka)/2 <= capSec {
		return idle
	}
	// Largest k with k + k/2 <= cap (1767 s -> 1178).
	k := capSec * 2 / 3
	for (k+1)+(k+1)/2 <= capSec {
		k++
	}
	k = max(min(k, 65535), 1)
	cl.State.Keepalive = uint16(k)
	return idle
}

// authenticate returns the pending session, or the refusal.
func (h *authHook) authenticate(cl *mqtt.Client, pk packets.Packet) (*session, *Rejection) {
	s := h.s
	now := s.opts.Now()
	user := string(pk.Connect.Username)
	rj := &Rejection{RemoteAddr: cl.Net.Remote, ClientID: cl.ID, UserName: user}
	fail := func(reason sas.Reason, detail string, hints ...string) (*session, *Rejection) {
		rj.Reason, rj.Detail, rj.Hints = reason, detail, hints
		return nil, rj
	}
	if s.closing.Load() {
		return fail(ReasonServerClosing, "the hub is shutting down")
	}
	id, err := iothub.ParseClientID(cl.ID)
	if err != nil {
		return fail(sas.ReasonClientIDMismatch, fmt.Sprintf("client ID %q is not a device ID or deviceId/moduleId: %v", cl.ID, err))
	}
	rj.Identity = id
	if !pk.Connect.UsernameFlag || user == "" {
		return fail(sas.ReasonUserNameMalformed, "no user name; want "+s.opts.HostName+"/"+id.ClientID()+"/?api-version="+iothub.DefaultAPIVersion)
	}
	if strings.HasPrefix(user, "SharedAccessSignature ") {
		return fail(sas.ReasonUserNameMalformed, "the user name is a SAS token: user name and password look swapped",
			"the user name is "+s.opts.HostName+"/"+id.ClientID()+"/?api-version="+iothub.DefaultAPIVersion+"; the token goes in the password")
	}
	un, err := iothub.ParseUserName(user)
	if err != nil {
		return fail(sas.ReasonUserNameMalformed, err.Error(), "want "+s.opts.HostName+"/"+id.ClientID()+"/?api-version="+iothub.DefaultAPIVersion)
	}
	if !s.isOurHost(un.Host) {
		return fail(sas.ReasonHostMismatch, fmt.Sprintf("user name names host %q but this hub is %q", un.Host, s.opts.HostName))
	}
	if un.Identity != id {
		return fail(sas.ReasonUserNameMismatch, fmt.Sprintf("client ID %q but the user name is for %q", id.ClientID(), un.Identity.ClientID()))
	}
	if !pk.Connect.PasswordFlag || len(pk.Connect.Password) == 0 {
		return fail(sas.ReasonNoPassword, "no password: a SAS token is required (X.509 is not supported)")
	}
	tok, err := sas.Parse(string(pk.Connect.Password))
	if err != nil {
		return fail(sas.ReasonMalformed, err.Error())
	}
	plain, err := tok.PlainResource()
	if err != nil {
		return fail(sas.ReasonMalformed, err.Error())
	}
	srHost, _, _ := strings.Cut(plain, "/")
	if !s.isOurHost(srHost) {
		return fail(sas.ReasonHostMismatch, fmt.Sprintf("token is for host %q but this hub is %q", srHost, s.opts.HostName))
	}
	cred, ok := s.opts.Registry.lookup(id)
	if !ok {
		what := "device " + id.DeviceID
		if id.IsModule() {
			what = "module " + id.String()
		}
		return fail(sas.ReasonUnknownIdentity, what+" is not registered in this hub")
	}
	if !cred.enabled {
		return fail(sas.ReasonDisabled, "device "+id.DeviceID+" is disabled")
	}
	// The audience is written with the host as the token has it (host:port and case allowed).
	audience := sas.DeviceResource(srHost, id.DeviceID)
	if id.IsModule() {
		audience = sas.ModuleResource(srHost, id.DeviceID, id.ModuleID)
	}
	opts := []sas.VerifyOption{sas.WithSkew(s.opts.TokenExpiryGrace)}
	if s.opts.Quirks.CaseInsensitiveIDsInSR {
		opts = append(opts, sas.WithCaseInsensitiveIDs())
	}
	opts = opts[:len(opts):len(opts)] // each append below makes its own copy
	scope := "device"
	if id.IsModule() {
		scope = "module"
	}
	if tok.KeyName != "" {
		pol, ok := s.opts.Registry.Policy(tok.KeyName)
		if !ok {
			return fail(sas.ReasonUnknownPolicy, fmt.Sprintf("token names policy %q (skn), which this hub does not have", tok.KeyName))
		}
		// A policy token may cover the hub or a prefix of the resource.
		err = h.verify(tok, pol.Keys, now, append(opts, sas.WithAudience(audience)), id, plain)
		if err == nil && pol.Rights&DeviceConnect == 0 {
			return fail(sas.ReasonPolicyPermission, fmt.Sprintf("policy %q has %s but not DeviceConnect", pol.Name, rightsOrNone(pol.Rights)),
				"use a policy with DeviceConnect (device or iothubowner), or the device's own key")
		}
		scope = "hub"
	} else {
		// A device or module key signs for exactly its own resource.
		idOpts := append(opts, h.identityAudience(audience))
		err = verify(tok, cred.keys, now, append(idOpts, sas.WithoutDiagnosis()))
		if err != nil && id.IsModule() && s.opts.Quirks.AllowDeviceKeyForModule {
			devOpts := append(opts, h.identityAudience(sas.DeviceResource(srHost, id.DeviceID)), sas.WithoutDiagnosis())
			if verify(tok, cred.deviceKeys, now, devOpts) == nil {
				err, scope = nil, "device"
			}
		}
		if errors.Is(err, sas.ErrSignature) {
			err = h.verify(tok, cred.keys, now, idOpts, id, plain)
		}
	}
	if err != nil {
		reason, detail, hints := rejectionFrom(err, sas.ReasonSignatureMismatch)
		return fail(reason, detail, hints...)
	}
	if pk.Connect.WillFlag {
		if p, werr := iothub.ClassifyPublish(id, pk.Connect.WillTopic); werr != nil || p.Kind != iothub.TopicTelemetry {
			if !s.opts.Quirks.DropInvalidWill {
				detail := fmt.Sprintf("will topic %q is not the telemetry topic of %s", pk.Connect.WillTopic, id)
				if werr != nil {
					detail += ": " + werr.Error()
				}
				return fail(ReasonWillTopic, detail, "a will must be published to "+iothub.TelemetryTopic(id, nil))
			}
			cl.Properties.Will = mqtt.Will{}
		}
		cl.Properties.Will.Retain = false
	}
	return &session{
		srv: s, cl: cl, id: id, userName: un, rawUserName: user, remote: cl.Net.Remote,
		authScope: scope, authMethod: authMethodJSON(scope), generation: cred.generationID, expiry: tok.ExpiresAt(), connectedAt: now,
		done: make(chan struct{}),
	}, nil
}

// identityAudience is the audience rule for a token signed with an
// identity's own key: exactly its resource, or (Quirks.AllowBroadDeviceKeyScope)
// any prefix of it.
func (h *authHook) identityAudience(res string) sas.VerifyOption {
	if h.s.opts.Quirks.AllowBroadDeviceKeyScope {
		return sas.WithAudience(res)
	}
	return sas.WithExactAudience(res)
}

func rightsOrNone(r Rights) string {
	if r == 0 {
		return "no rights"
	}
	return r.String()
}

// verify checks tok against k without the differential diagnosis; only a
// signature mismatch pays for the suspect keys (a registry walk) and a
// second check that explains it.
func (h *authHook) verify(tok sas.Token, k Keys, now time.Time, opts []sas.VerifyOption, id iothub.Identity, plainSR string) error {
	opts = opts[:len(opts):len(opts)]
	err := verify(tok, k, now, append(opts, sas.WithoutDiagnosis()))
	if !errors.Is(err, sas.ErrSignature) {
		return err
	}
	return verify(tok, k, now, append(opts, sas.WithSuspectKeys(h.s.opts.Registry.suspects(id, plainSR)...)))
}

// verify checks tok against a key pair.
func verify(tok sas.Token, k Keys, now time.Time, opts []sas.VerifyOption) error {
	primary, err := sas.DecodeKey(k.Primary)
	if err != nil {
		return sas.Reject(sas.ReasonSignatureMismatch, "the identity has no usable symmetric key")
	}
	if sec, err := sas.DecodeKey(k.Secondary); err == nil {
		opts = append(opts, sas.WithSecondaryKey(sec))
	}
	return tok.Verify(primary, now, opts...)
}

// OnConnectAuthenticate is only reached when OnConnect accepted.
func (h *authHook) OnConnectAuthenticate(cl *mqtt.Client, _ packets.Packet) bool {
	defer h.s.recoverHook("OnConnectAuthenticate", cl, nil)
	return h.s.sessions.get(cl) != nil
}

// testHookEstablish, when set, runs in OnSessionEstablish before the session
// enters the table (where registry changes find it); testHookInTable just
// after, before mochi inherits a stored session and sends the CONNACK.
var testHookEstablish, testHookInTable func(*session)

// OnSessionEstablish runs before mochi's own takeover, which would send the
// MQTT 5 DISCONNECT e0 00 to a 3.1.1 client: the older connection of the
// identity is closed here first, silently, so mochi's write fails.
func (h *authHook) OnSessionEstablish(cl *mqtt.Client, _ packets.Packet) {
	defer h.s.recoverHook("OnSessionEstablish", cl, nil)
	s := h.s
	ss := s.sessions.get(cl)
	if ss == nil {
		return
	}
	if testHookEstablish != nil {
		testHookEstablish(ss)
	}
	old := s.sessions.establish(ss)
	if testHookInTable != nil {
		testHookInTable(ss)
	}
	if old == nil {
		return
	}
	// An old connection that has already ended (the device sent DISCONNECT,
	// or the connection is closed) was not replaced: it is only waited for
	// below, so its session is stored before the CONNACK's session-present
	// is decided. sentDisconn is set before mochi closes the socket, hence
	// before a device that saw the close can CONNECT again.
	if !old.sentDisconn.Load() && !old.cl.Closed() {
		s.hubClose(old, ReasonReplaced, fmt.Sprintf("a newer connection for %s from %s replaced this one", ss.id, ss.remote))
	}
	if !old.established.Load() {
		// Its CONNACK failed: mochi gave up on it before OnSessionEstablished
		// and will not call OnDisconnect.
		s.sessions.remove(old.cl)
		return
	}
	// Wait for the old connection to finish, so mochi's bookkeeping for it
	// (which deletes by client ID) cannot remove the new one.
	select {
	case <-old.done:
	case <-time.After(2 * time.Second):
	}
	if old.cl.Properties.Clean {
		for i := 0; i < 500; i++ {
			if cur, ok := s.mochi.Clients.Get(cl.ID); !ok || cur != old.cl {
				break
			}
			time.Sleep(time.Millisecond)
		}
	}
}

// OnSessionEstablished starts the token timer and tells the cloud side.
func (h *authHook) OnSessionEstablished(cl *mqtt.Client, _ packets.Packet) {
	defer h.s.recoverHook("OnSessionEstablished", cl, nil)
	s := h.s
	ss := s.sessions.get(cl)
	if ss == nil {
		return
	}
	ss.established.Store(true)
	// A removal or disabling between authenticate and now found no session
	// to drop: check again, now that registryChanged can see this one.
	switch cred, ok := s.opts.Registry.lookup(ss.id); {
	case !ok || cred.generationID != ss.generation:
		s.hubClose(ss, sas.ReasonUnknownIdentity, ss.id.String()+" was removed from the registry while connecting")
		return
	case !cred.enabled:
		s.hubClose(ss, sas.ReasonDisabled, "device "+ss.id.DeviceID+" was disabled while connecting")
		return
	}
	ss.armExpiry()
	s.log.Info("connected", append(idAttrs(ss.id), "remoteAddr", ss.remote,
		"auth", ss.authScope, "tokenExpiry", ss.expiry.UTC().Format(time.RFC3339))...)
	s.cloud.established(ss)
}

// OnDisconnect clears the session and records keep-alive time-outs.
func (h *authHook) OnDisconnect(cl *mqtt.Client, err error, _ bool) {
	defer h.s.recoverHook("OnDisconnect", nil, nil) // the connection is already gone
	s := h.s
	ss := s.sessions.remove(cl)
	if ss == nil {
		return
	}
	ss.stopExpiry()
	var ne net.Error
	if ss.closeReason.Load() == nil && err != nil && (errors.Is(err, os.ErrDeadlineExceeded) || (errors.As(err, &ne) && ne.Timeout())) {
		r := ReasonKeepAlive
		if ss.closeReason.CompareAndSwap(nil, &r) {
			s.reject(ss.rejection(ReasonKeepAlive, fmt.Sprintf("nothing received for %s (1.5 × keep-alive, capped)", ss.idle)))
		}
	}
	if ss.closeReason.Load() == nil && errors.Is(err, packets.ErrPacketTooLarge) {
		r := ReasonMessageTooLarge
		if ss.closeReason.CompareAndSwap(nil, &r) {
			s.reject(ss.rejection(r, fmt.Sprintf("a packet over %d bytes", s.mochi.Options.Capabilities.MaximumPacketSize)))
		}
	}
	replaced := false
	if r := ss.closeReason.Load(); r != nil && *r == ReasonReplaced {
		replaced = true
	}
	attrs := append(idAttrs(ss.id), "remoteAddr", ss.remote)
	if r := ss.closeReason.Load(); r != nil {
		attrs = append(attrs, "reason", string(*r))
	} else if err != nil {
		attrs = append(attrs, "error", err.Error())
	}
	s.log.Info("disconnected", attrs...)
	s.cloud.disconnected(ss, replaced)
	if r := ss.closeReason.Load(); r != nil && *r == sas.ReasonUnknownIdentity {
		s.forgetSession(cl) // a removed identity keeps no stored session
	}
	close(ss.done)
}

// idAttrs are the log attributes naming an identity.
func idAttrs(id iothub.Identity) []any {
	if id.IsModule() {
		return []any{"deviceId", id.DeviceID, "moduleId", id.ModuleID}
	}
	return []any{"deviceId", id.DeviceID}
}
