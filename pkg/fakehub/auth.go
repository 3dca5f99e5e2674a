package fakehub

import (
	"bytes"
	"errors"
	"fmt"
	"strings"
	"time"

	mqtt "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/packets"

	"github.com/hubkit/hubkit/pkg/iothub"
	"github.com/hubkit/hubkit/pkg/sas"
)

// authHook checks CONNECTs the way IoT Hub does: the packet header, the
// client ID and user name grammar, and the credentials (SAS tokens of
// identities and policies), with the reason for every refusal. What happens
// to an accepted connection afterwards is lifecycleHook's (lifecycle.go).
type authHook struct {
	mqtt.HookBase
	s *Server
}

func (h *authHook) ID() string { return "fakehub-auth" }

// Provides is asked for every hook event of every packet: a switch, not a search.
func (h *authHook) Provides(b byte) bool {
	return b == mqtt.OnPacketRead || b == mqtt.OnConnect || b == mqtt.OnConnectAuthenticate
}

// errRefused ends attachClient after our own CONNACK (mochi sends none).
var errRefused = errors.New("fakehub: connection refused")

// OnPacketRead checks the CONNECT header before mochi validates it: mochi
// would answer a wrong name or level with codes that 3.1.1 does not define.
func (h *authHook) OnPacketRead(cl *mqtt.Client, pk packets.Packet) (_ packets.Packet, err error) {
	if pk.FixedHeader.Type != packets.Connect {
		return pk, nil // every packet read comes here: the others skip the deferred recover
	}
	defer h.s.recoverHook("OnPacketRead", cl, &err)
	s := h.s
	if g := guardOf(cl.Net.Conn); g != nil {
		g.connected.Store(true)
	}
	rj := iothub.Rejection{RemoteAddr: cl.Net.Remote, ClientID: pk.Connect.ClientIdentifier, UserName: string(pk.Connect.Username)}
	if ss := s.sessions.get(cl); ss != nil {
		rj.DeviceID, rj.ModuleID, rj.Reason, rj.Detail = ss.id.DeviceID, ss.id.ModuleID, ReasonDuplicateConnect, "a second CONNECT on an established connection"
		s.reject(rj)
		return pk, packets.ErrRejectPacket
	}
	if id, err := iothub.ParseClientID(rj.ClientID); err == nil {
		rj.DeviceID, rj.ModuleID = id.DeviceID, id.ModuleID
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
	// Wait for a Restart in progress: it forgets the sessions a CONNECT could inherit.
	s.restart.RLock()
	//lint:ignore SA2001 the empty section is the point (a wait for the writer, Restart)
	s.restart.RUnlock()
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
	if rj, code := s.connectGate(ss); rj != nil {
		s.reject(*rj)
		_ = s.mochi.SendConnack(cl, connackCode(code), false, nil)
		return errRefused
	}
	for _, w := range ss.warnings {
		rj := ss.rejection(w.Reason, w.Detail)
		rj.Warning = true
		s.reject(rj)
	}
	ss.idle = h.s.capKeepAlive(cl, pk.Connect.Keepalive)
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

// authenticate returns the pending session, or the refusal.
func (h *authHook) authenticate(cl *mqtt.Client, pk packets.Packet) (*session, *iothub.Rejection) {
	s := h.s
	now := s.opts.Now()
	user := string(pk.Connect.Username)
	rj := &iothub.Rejection{RemoteAddr: cl.Net.Remote, ClientID: cl.ID, UserName: user}
	fail := func(reason sas.Reason, detail string, hints ...string) (*session, *iothub.Rejection) {
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
	rj.DeviceID, rj.ModuleID = id.DeviceID, id.ModuleID
	if !pk.Connect.UsernameFlag || user == "" {
		return fail(sas.ReasonUserNameMalformed, "no user name; want "+s.opts.HostName+"/"+id.ClientID()+"/?api-version="+iothub.DefaultAPIVersion)
	}
	if strings.HasPrefix(user, "SharedAccessSignature ") {
		return fail(sas.ReasonUserNameMalformed, "the user name is a SAS token: user name and password look swapped",
			"the user name is "+s.opts.HostName+"/"+id.ClientID()+"/?api-version="+iothub.DefaultAPIVersion+"; the token goes in the password")
	}
	if dps, err := iothub.ParseDPSUserName(user); err == nil {
		where := "this fakehub runs no DPS (fakehub --dps ADDR, Options.DPS, runs one)"
		if s.dps != nil {
			where = "this fakehub's DPS listens on " + s.dps.Addr()
		}
		return fail(ReasonDPSConnect, fmt.Sprintf("a Device Provisioning Service CONNECT (ID scope %s, registration %s) at an IoT hub: this endpoint is the hub; %s", dps.IDScope, dps.RegistrationID, where),
			"DPS (global.azure-devices-provisioning.net) assigns the device to a hub; point the provisioning client at the DPS, or skip provisioning and connect to the hub itself: client ID "+id.ClientID()+", user name "+s.opts.HostName+"/"+id.ClientID()+"/?api-version="+iothub.DefaultAPIVersion,
			"a group enrollment's device key is sastool derive --group-key KEY --registration-id "+dps.RegistrationID)
	}
	un, err := iothub.ParseUserName(user)
	if err != nil {
		return fail(sas.ReasonUserNameMalformed, err.Error(), "want "+s.opts.HostName+"/"+id.ClientID()+"/?api-version="+iothub.DefaultAPIVersion)
	}
	if s.opts.Quirks.RequireAPIVersion && un.APIVersion == "" {
		return fail(sas.ReasonUserNameMalformed, "the user name has no api-version (IoT Edge hub's rule, Quirks.RequireAPIVersion)",
			"want "+s.opts.HostName+"/"+id.ClientID()+"/?api-version="+iothub.DefaultAPIVersion)
	}
	if !s.isOurHost(un.Host) {
		return fail(sas.ReasonHostMismatch, fmt.Sprintf("user name names host %q but this hub is %q", un.Host, s.opts.HostName))
	}
	if un.Identity != id {
		return fail(sas.ReasonUserNameMismatch, fmt.Sprintf("client ID %q but the user name is for %q", id.ClientID(), un.Identity.ClientID()))
	}
	if cred, ok := s.opts.Registry.lookup(id); ok && cred.auth.IsX509() {
		if !cred.enabled {
			return fail(sas.ReasonDisabled, "device "+id.DeviceID+" is disabled")
		}
		v := h.s.checkX509(cl, pk, id, cred.auth, now)
		if v.rejection != nil {
			return fail(v.rejection.Reason, v.rejection.Detail, v.rejection.Hints...)
		}
		return h.accept(cl, pk, id, un, x509AuthScope(id), x509AuthMethodJSON(x509AuthScope(id)), cred.generationID, nil, sas.Resource{}, now, rj)
	}
	if !pk.Connect.PasswordFlag || len(pk.Connect.Password) == 0 {
		return fail(sas.ReasonNoPassword, "no password: a SAS token is required (or register the identity for X.509 and connect with its certificate)", noPasswordHints(cl, id, s.opts.Registry)...)
	}
	tok, err := sas.Parse(string(pk.Connect.Password))
	if err != nil {
		return fail(sas.ReasonMalformed, err.Error())
	}
	res, err := sas.ParseResource(tok.Resource)
	if err != nil {
		return fail(sas.ReasonMalformed, err.Error())
	}
	plain, srHost := res.Plain, res.Authority()
	if !s.isOurHost(srHost) {
		return fail(sas.ReasonHostMismatch, fmt.Sprintf("token is for host %q but this hub is %q", srHost, s.opts.HostName))
	}
	if s.opts.Quirks.CaseSensitiveHostInSR && !s.isOurHostExactly(srHost) {
		return fail(sas.ReasonHostMismatch, fmt.Sprintf("token is for host %q but this hub is %q: IoT Edge hub compares host names exactly (Quirks.CaseSensitiveHostInSR)", srHost, s.opts.HostName),
			"write the host name in sr exactly as the hub's: "+s.opts.HostName)
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
		err = h.verify(tok, iothub.SymmetricKey{PrimaryKey: pol.PrimaryKey, SecondaryKey: pol.SecondaryKey}, now, append(opts, sas.WithAudience(audience)), id, plain)
		if err == nil && pol.Rights&iothub.DeviceConnect == 0 {
			return fail(sas.ReasonPolicyPermission, fmt.Sprintf("policy %q has %s but not DeviceConnect", pol.KeyName, rightsOrNone(pol.Rights)),
				"use a policy with DeviceConnect (device or iothubowner), or the device's own key")
		}
		scope = "hub"
	} else {
		// A device or module key signs for its own resource or a prefix of it.
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
	return h.accept(cl, pk, id, un, scope, authMethodJSON(scope), cred.generationID, &tok, res, now, rj)
}

// accept finishes an authenticated CONNECT: the will's rules, then the pending session. tok
// and res are the SAS token and its resource (nil for an X.509 identity: nothing expires
// while connected).
func (h *authHook) accept(cl *mqtt.Client, pk packets.Packet, id iothub.Identity, un iothub.UserName, scope, authMethod, generation string,
	tok *sas.Token, res sas.Resource, now time.Time, rj *iothub.Rejection) (*session, *iothub.Rejection) {
	s := h.s
	user := string(pk.Connect.Username)
	fail := func(reason sas.Reason, detail string, hints ...string) (*session, *iothub.Rejection) {
		rj.Reason, rj.Detail, rj.Hints = reason, detail, hints
		return nil, rj
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
	ss := &session{
		srv: s, cl: cl, id: id, userName: un, rawUserName: user, remote: cl.Net.Remote,
		authScope: scope, authMethod: authMethod, generation: generation, connectedAt: now,
		done: make(chan struct{}),
	}
	if tok != nil {
		ss.expiry, ss.token = tok.ExpiresAt(), *tok
		if s.opts.Quirks.WarnDocumentedMistakes {
			ss.warnings = lint(un, *tok, res)
		}
	}
	return ss, nil
}

// identityAudience is the audience rule for a token signed with an
// identity's own key: IoT Hub's prefix rule (sr={host} covers the device),
// or exactly its resource with Quirks.ExactDeviceKeyScope (IoT Edge hub).
func (h *authHook) identityAudience(res string) sas.VerifyOption {
	if h.s.opts.Quirks.ExactDeviceKeyScope {
		return sas.WithExactAudience(res)
	}
	return sas.WithAudience(res)
}

func rightsOrNone(r iothub.Rights) string {
	if r == 0 {
		return "no rights"
	}
	return r.String()
}

// verify checks tok against k without the differential diagnosis; only a
// signature mismatch pays for the suspect keys (a registry walk) and a
// second check that explains it.
func (h *authHook) verify(tok sas.Token, k iothub.SymmetricKey, now time.Time, opts []sas.VerifyOption, id iothub.Identity, plainSR string) error {
	opts = opts[:len(opts):len(opts)]
	err := verify(tok, k, now, append(opts, sas.WithoutDiagnosis()))
	if !errors.Is(err, sas.ErrSignature) {
		return err
	}
	return verify(tok, k, now, append(opts, sas.WithSuspectKeys(h.s.opts.Registry.suspects(id, plainSR)...)))
}

// verify checks tok against a key pair.
func verify(tok sas.Token, k iothub.SymmetricKey, now time.Time, opts []sas.VerifyOption) error {
	primary, err := sas.DecodeKey(k.PrimaryKey)
	if err != nil {
		return sas.Reject(sas.ReasonSignatureMismatch, "the identity has no usable symmetric key")
	}
	if sec, err := sas.DecodeKey(k.SecondaryKey); err == nil {
		opts = append(opts, sas.WithSecondaryKey(sec))
	}
	return tok.Verify(primary, now, opts...)
}

// OnConnectAuthenticate is only reached when OnConnect accepted.
func (h *authHook) OnConnectAuthenticate(cl *mqtt.Client, _ packets.Packet) bool {
	defer h.s.recoverHook("OnConnectAuthenticate", cl, nil)
	return h.s.sessions.get(cl) != nil
}

// idAttrs are the log attributes naming an identity.
func idAttrs(id iothub.Identity) []any {
	if id.IsModule() {
		return []any{"deviceId", id.DeviceID, "moduleId", id.ModuleID}
	}
	return []any{"deviceId", id.DeviceID}
}
