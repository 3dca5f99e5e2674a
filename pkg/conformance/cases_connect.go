package conformance

import (
	"strings"
	"time"

	"github.com/hubkit/hubkit/internal/mqttraw"
	"github.com/hubkit/hubkit/pkg/device"
	"github.com/hubkit/hubkit/pkg/iothub"
	"github.com/hubkit/hubkit/pkg/sas"
)

const (
	docMQTT = "learn.microsoft.com/azure/iot/iot-mqtt-connect-to-iot-hub"
	docSAS  = "learn.microsoft.com/azure/iot-hub/authenticate-authorize-sas"
)

var (
	refused5 = []byte{mqttraw.ConnackNotAuthorized}
)

func reasons(rs ...sas.Reason) []string {
	s := make([]string, len(rs))
	for i, r := range rs {
		s[i] = string(r)
	}
	return s
}

var connectCases = []Case{
	{
		ID:          "connect/ok/query-username",
		Requirement: "CONNECT with client ID {deviceId}, user name {host}/{deviceId}/?api-version=2021-04-12 and a valid device SAS token is accepted (CONNACK 0).",
		Section:     "docs/iothub-behavior.md §1.8, §1.9, §10.1; " + docMQTT,
		Certainty:   "C",
		run: func(e *env) {
			cl := e.newClient(e.dev, nil)
			e.connectClient(cl, "reference client with the documented user name")
		},
	},
	{
		ID:          "connect/ok/legacy-username",
		Requirement: "The legacy user name without '?' ({host}/{deviceId}/api-version=2016-11-14) is accepted (CONNACK 0).",
		Section:     "docs/iothub-behavior.md §1.11(a), §10.1; " + docSAS + " (Protocol specifics)",
		Certainty:   "C/O",
		run: func(e *env) {
			e.expectAccepted(e.ep.HostName + "/" + e.dev.DeviceID + "/api-version=2016-11-14")
		},
	},
	{
		ID:          "connect/ok/bare-username",
		Requirement: "The legacy user name with no property bag at all ({host}/{deviceId}) is accepted (CONNACK 0).",
		Section:     "docs/iothub-behavior.md §1.11(b); " + docSAS + " (Protocol specifics)",
		Certainty:   "C/O",
		run: func(e *env) {
			e.expectAccepted(e.ep.HostName + "/" + e.dev.DeviceID)
		},
	},
	{
		ID:          "connect/ok/secondary-key",
		Requirement: "A token signed with the device's secondary key is accepted, like one signed with the primary key.",
		Section:     "docs/iothub-behavior.md §2.2, §10.3; " + docSAS,
		Certainty:   "C",
		run: func(e *env) {
			if e.dev.SecondaryKey == "" {
				e.Skipf("the target's device has no secondary key")
			}
			cl := e.newClient(e.dev, func(c *device.Config) { c.SharedAccessKey = e.dev.SecondaryKey })
			e.connectClient(cl, "token signed with the secondary key")
		},
	},
	{
		ID:          "connect/ok/module",
		Requirement: "A module connects with client ID {deviceId}/{moduleId}, user name {host}/{deviceId}/{moduleId}/?api-version=... and a token over {host}/devices/{deviceId}/modules/{moduleId} signed with the module key.",
		Section:     "docs/iothub-behavior.md §1.8, §1.10, §2.4; " + docMQTT + " (as a module)",
		Certainty:   "C",
		Needs:       []string{NeedModuleProvisioner},
		run: func(e *env) {
			_, mod := e.target.(ModuleProvisioner).NewModule(e.t)
			cl := e.newClient(mod, nil)
			e.connectClient(cl, "module "+identityOf(mod).String())
		},
	},
	{
		ID:          "connect/ok/policy-token-device-scoped",
		Requirement: "A token signed with a policy key holding DeviceConnect (skn=device) over sr={host}/devices/{deviceId} opens that device's connection.",
		Section:     "docs/iothub-behavior.md §2.4, §10.4; " + docSAS + " (token service pattern)",
		Certainty:   "C",
		Needs:       []string{NeedPolicyProvider},
		run: func(e *env) {
			pol := e.policy(true)
			cl := e.newClient(e.dev, func(c *device.Config) {
				c.SharedAccessKey = pol.Key
				c.SharedAccessKeyName = pol.Name
			})
			e.connectClient(cl, "device-scoped token of policy "+pol.Name)
		},
	},
	{
		ID:          "connect/ok/policy-token-hub-scoped",
		Requirement: "A token signed with a DeviceConnect policy key over sr={host} (the whole hub) opens any device's connection.",
		Section:     "docs/iothub-behavior.md §2.4 (gateway row), §10.4; " + docSAS,
		Certainty:   "C/I",
		Needs:       []string{NeedPolicyProvider},
		run: func(e *env) {
			pol := e.policy(true)
			tok := e.sign(sas.EncodeResource(sas.HubResource(e.ep.HostName)), pol.Name, pol.Key, e.now().Add(tokenLifetime))
			cl := e.newClient(e.dev, func(c *device.Config) {
				c.SharedAccessKey = ""
				c.SharedAccessSignature = tok
			})
			e.connectClient(cl, "hub-scoped token of policy "+pol.Name)
		},
	},
	{
		ID:          "connect/ok/device-key-hub-scoped",
		Requirement: "A token signed with the device's own key over sr={host} (a prefix of its resource, no skn) opens that device's connection: the hub's prefix rule applies to device keys too.",
		Section:     "docs/iothub-behavior.md §2.4, §11.4; github.com/amenzhinsky/iothub iotdevice/transport/mqtt (signs sr={host})",
		Certainty:   "O",
		run: func(e *env) {
			tok := e.sign(sas.EncodeResource(sas.HubResource(e.ep.HostName)), "", e.dev.PrimaryKey, e.now().Add(tokenLifetime))
			cl := e.newClient(e.dev, func(c *device.Config) {
				c.SharedAccessKey = ""
				c.SharedAccessSignature = tok
			})
			e.connectClient(cl, "hub-scoped token signed with the device's own key")
		},
	},
	{
		ID:          "connect/sas/raw-sr-lowercase-escapes",
		Requirement: "The signature is checked over sr exactly as sent: a token whose sr uses lower-case escapes (%2f), signed as sent, is accepted.",
		Section:     "docs/iothub-behavior.md §2.2, §2.3, §10.2; " + docSAS + " (lower case URL-encoding)",
		Certainty:   "I",
		run: func(e *env) {
			sr := strings.ReplaceAll(sas.EncodeResource(e.resource(identityOf(e.dev))), "%2F", "%2f")
			tok := e.sign(sr, "", e.dev.PrimaryKey, e.now().Add(tokenLifetime))
			p := e.connectPacket(e.dev, tok)
			ack, _, err := e.dial(p)
			if err != nil {
				e.Fatalf("CONNECT with sr=%s: %v, want CONNACK 0", sr, err)
			}
			if ack.ReturnCode != 0 {
				e.Errorf("CONNECT with sr=%s signed as sent: CONNACK = %d, want 0%s", sr, ack.ReturnCode, e.reasonSuffix(p.ClientID))
			}
		},
	},
	{
		ID:          "connect/sas/recased-after-signing",
		Requirement: "A token whose sr was re-cased (%2F -> %2f) after signing is refused with CONNACK 5: the hub does not normalise sr before checking the HMAC.",
		Section:     "docs/iothub-behavior.md §2.2, §10.2",
		Certainty:   "I",
		run: func(e *env) {
			signed := sas.EncodeResource(e.resource(identityOf(e.dev)))
			tok := sas.Sign(signed, "", e.key(e.dev.PrimaryKey), e.now().Add(tokenLifetime))
			tok.Resource = strings.ReplaceAll(signed, "%2F", "%2f")
			e.expectRefused(e.connectPacket(e.dev, tok.String()), refused5, reasons(sas.ReasonSignatureMismatch)...)
		},
	},
	{
		ID:          "connect/sas/wrong-key",
		Requirement: "A token signed with a key that is not the device's is refused with CONNACK 5, then the connection is closed.",
		Section:     "docs/iothub-behavior.md §3, §10.3; " + docSAS,
		Certainty:   "C",
		run: func(e *env) {
			tok := e.sign(sas.EncodeResource(e.resource(identityOf(e.dev))), "", randomKey(), e.now().Add(tokenLifetime))
			e.expectRefused(e.connectPacket(e.dev, tok), refused5, reasons(sas.ReasonSignatureMismatch)...)
		},
	},
	{
		ID:          "connect/sas/expired",
		Requirement: "A token whose se is an hour in the past (beyond any clock-skew allowance) is refused with CONNACK 5.",
		Section:     "docs/iothub-behavior.md §2.5, §3, §10.3; " + docSAS,
		Certainty:   "C/I",
		run: func(e *env) {
			tok := e.sign(sas.EncodeResource(e.resource(identityOf(e.dev))), "", e.dev.PrimaryKey, e.now().Add(-time.Hour))
			e.expectRefused(e.connectPacket(e.dev, tok), refused5, reasons(sas.ReasonExpired)...)
		},
	},
	{
		ID:          "connect/sas/expiry-disconnects",
		Requirement: "When a connected device's token expires the hub severs the connection (not before the expiry; within the target's stated grace after it).",
		Section:     "docs/iothub-behavior.md §2.5 (Token expiry while connected); " + docSAS,
		Certainty:   "C",
		Needs:       []string{NeedTokenExpiry},
		Timeout:     30 * time.Second,
		run: func(e *env) {
			grace := e.target.(TokenExpiryEnforcer).TokenExpiryGrace()
			expiry := e.now().Add(3 * time.Second).Truncate(time.Second) // at least 2 s away: the CONNECT must land before it on a loaded machine
			tok := e.sign(sas.EncodeResource(e.resource(identityOf(e.dev))), "", e.dev.PrimaryKey, expiry)
			ack, c, err := e.dial(e.connectPacket(e.dev, tok))
			if err != nil || ack.ReturnCode != 0 {
				e.Fatalf("CONNECT with a token valid until %s: %v CONNACK %d, want CONNACK 0", expiry.Format(time.RFC3339), err, ack.ReturnCode)
			}
			limit := time.Until(expiry) + grace + 3*time.Second
			if err := c.ExpectClosed(limit); err != nil {
				e.Fatalf("token expired at %s (grace %v): %v, want the connection closed", expiry.Format(time.RFC3339), grace, err)
			}
			if early := time.Until(expiry); early > 200*time.Millisecond {
				e.Errorf("closed %v before the token expired, want the connection kept until the expiry", early.Round(time.Millisecond))
			}
		},
	},
	{
		ID:          "connect/sas/other-device-token",
		Requirement: "A valid token of another device (sr and key of device B) presented as device A is refused with CONNACK 5.",
		Section:     "docs/iothub-behavior.md §2.4, §10.3; " + docSAS,
		Certainty:   "C",
		run: func(e *env) {
			other := e.target.NewDevice(e.t)
			p := e.connectPacket(e.dev, e.token(other))
			e.expectRefused(p, refused5, reasons(sas.ReasonScopeMismatch, sas.ReasonSignatureMismatch)...)
		},
	},
	{
		ID:          "connect/sas/prefix-device-token",
		Requirement: "sr covers by whole path segments: a token over {host}/devices/dev1 does not open devices/dev10, neither signed with dev10's key nor with dev1's.",
		Section:     "docs/iothub-behavior.md §2.4 (prefix by segment); " + docSAS,
		Certainty:   "C",
		run: func(e *env) {
			long := e.dev // "...10"-style: the connecting device
			short := long.DeviceID[:len(long.DeviceID)-1]
			sr := sas.EncodeResource(sas.DeviceResource(e.ep.HostName, short))
			// Signed with the connecting device's own key: only the scope is wrong.
			tok := e.sign(sr, "", long.PrimaryKey, e.now().Add(tokenLifetime))
			e.expectRefused(e.connectPacket(long, tok), refused5, reasons(sas.ReasonScopeMismatch)...)
			nd, ok := e.target.(NamedDevices)
			if !ok {
				e.Logf("target cannot name devices: checked only the token signed with %s's own key", long.DeviceID)
				return
			}
			// dev1 exists and signs its own valid token; dev10 is its ID plus "0".
			dev1 := nd.NewDeviceWithID(e.t, randomID("conf-prefix-"))
			dev10 := nd.NewDeviceWithID(e.t, dev1.DeviceID+"0")
			e.expectRefused(e.connectPacket(dev10, e.token(dev1)), refused5, reasons(sas.ReasonScopeMismatch, sas.ReasonSignatureMismatch)...)
		},
	},
	{
		ID:          "connect/client-id-mismatch",
		Requirement: "A client ID other than the device ID named by the user name and token is refused with CONNACK 5.",
		Section:     "docs/iothub-behavior.md §1.8, §10.3; " + docMQTT,
		Certainty:   "C/I",
		run: func(e *env) {
			p := e.connectPacket(e.dev, e.token(e.dev))
			p.ClientID = e.dev.DeviceID + "-other"
			e.expectRefused(p, refused5, reasons(sas.ReasonClientIDMismatch, sas.ReasonUserNameMismatch)...)
		},
	},
	{
		ID:          "connect/policy-without-deviceconnect",
		Requirement: "A token signed with a policy lacking DeviceConnect (built-in registryRead) is refused with CONNACK 5.",
		Section:     "docs/iothub-behavior.md §2.4, §10.4; " + docSAS + " (permissions)",
		Certainty:   "C",
		Needs:       []string{NeedPolicyProvider},
		run: func(e *env) {
			pol := e.policy(false)
			tok := e.sign(sas.EncodeResource(e.resource(identityOf(e.dev))), pol.Name, pol.Key, e.now().Add(tokenLifetime))
			e.expectRefused(e.connectPacket(e.dev, tok), refused5, reasons(sas.ReasonPolicyPermission)...)
		},
	},
	{
		ID:          "connect/unknown-device",
		Requirement: "CONNECT as a device the registry does not hold is refused with CONNACK 5.",
		Section:     "docs/iothub-behavior.md §3",
		Certainty:   "C/O",
		run: func(e *env) {
			ghost := DeviceIdentity{DeviceID: randomID("conf-ghost-"), PrimaryKey: randomKey()}
			e.expectRefused(e.connectPacket(ghost, e.token(ghost)), refused5, reasons(sas.ReasonUnknownIdentity)...)
		},
	},
	{
		ID:          "connect/disabled-device",
		Requirement: "A disabled device is refused (CONNACK 5; 3 is tolerated, the code is not settled) and the connection closed.",
		Section:     "docs/iothub-behavior.md §1.21, §3, §11.1",
		Certainty:   "C/I",
		Needs:       []string{NeedDeviceDisabler},
		run: func(e *env) {
			d := e.target.(DeviceDisabler).NewDisabledDevice(e.t)
			e.expectRefused(e.connectPacket(d, e.token(d)), []byte{mqttraw.ConnackNotAuthorized, mqttraw.ConnackServerUnavailable}, reasons(sas.ReasonDisabled)...)
		},
	},
	{
		ID:          "connect/no-password",
		Requirement: "CONNECT without a password (and no client certificate) is refused with CONNACK 5.",
		Section:     "docs/iothub-behavior.md §1.15, §3",
		Certainty:   "C/I",
		run: func(e *env) {
			p := e.connectPacket(e.dev, "")
			p.Password = nil
			e.expectRefused(p, refused5, reasons(sas.ReasonNoPassword)...)
		},
	},
	{
		ID:          "connect/protocol-level-3",
		Requirement: "CONNECT with protocol level 3 (MQTT 3.1) is answered CONNACK 1 (unacceptable protocol version), then closed.",
		Section:     "docs/iothub-behavior.md §1.6, §3",
		Certainty:   "I",
		run: func(e *env) {
			p := e.connectPacket(e.dev, e.token(e.dev))
			p.ProtocolLevel = 3
			e.expectRefused(p, []byte{mqttraw.ConnackUnacceptableProtocolVersion})
		},
	},
	{
		ID:          "connect/protocol-name-closes",
		Requirement: "CONNECT with a protocol name other than MQTT (MQTT 3.1's MQIsdp) is closed without CONNACK.",
		Section:     "docs/iothub-behavior.md §1.6; MQTT 3.1.1 §3.1.2.1",
		Certainty:   "I",
		run: func(e *env) {
			p := e.connectPacket(e.dev, e.token(e.dev))
			p.ProtocolName = "MQIsdp"
			ack, _, err := e.dial(p)
			if err == nil {
				e.Errorf("CONNECT with protocol name MQIsdp: CONNACK %d, want the connection closed without CONNACK", ack.ReturnCode)
			}
		},
	},
	{
		ID:          "connect/first-packet-not-connect-closes",
		Requirement: "A connection whose first packet is not CONNECT (here a telemetry PUBLISH) is closed without an answer.",
		Section:     "docs/iothub-behavior.md §1.7; MQTT 3.1.1 §3.1",
		Certainty:   "I",
		run: func(e *env) {
			ctx, cancel := e.waitCtx(answerWithin)
			defer cancel()
			c, err := e.rawDial(ctx)
			if err != nil {
				e.Fatalf("dialling %s: %v", e.ep.Addr, err)
			}
			e.onClose(func() { _ = c.Close() })
			e.send(c, mqttraw.PublishPacket{Topic: iothub.TelemetryTopic(identityOf(e.dev), nil), Payload: []byte("early"), QoS: 1, PacketID: 1})
			e.expectClosedSilently(c, "a PUBLISH before CONNECT")
		},
	},
	{
		ID:          "connect/second-connect-closes",
		Requirement: "A second CONNECT on an established connection makes the hub close it.",
		Section:     "docs/iothub-behavior.md §1.7; MQTT 3.1.1 §3.1.0",
		Certainty:   "I",
		run: func(e *env) {
			c, _ := e.connect(e.dev, true)
			if err := c.Connect(e.connectPacket(e.dev, e.token(e.dev))); err != nil {
				e.Fatalf("second CONNECT: %v", err)
			}
			e.expectClosedSilently(c, "a second CONNECT on the same connection")
		},
	},
	{
		ID:          "connect/takeover",
		Requirement: "A second connection for the same identity is accepted and the hub closes the first one.",
		Section:     "docs/iothub-behavior.md §1.19, §10.5; " + docMQTT,
		Certainty:   "C",
		run: func(e *env) {
			first, _ := e.connect(e.dev, true)
			second, _ := e.connect(e.dev, true)
			e.expectClosedSilently(first, "a second connection of "+e.dev.DeviceID+" (the first connection)")
			if err := second.Pingreq(); err != nil {
				e.Fatalf("PINGREQ on the second connection: %v", err)
			}
			e.readPacket(second, mqttraw.TypePingresp, "second connection after the takeover")
		},
	},
	{
		ID:          "connect/device-and-module-coexist",
		Requirement: "A device and its module are separate identities: both connections stay open side by side.",
		Section:     "docs/iothub-behavior.md §1.19, §10.5",
		Certainty:   "C",
		Needs:       []string{NeedModuleProvisioner},
		run: func(e *env) {
			dev, mod := e.target.(ModuleProvisioner).NewModule(e.t)
			dc, _ := e.connect(dev, true)
			mc, _ := e.connect(mod, true)
			for _, x := range []struct {
				name string
				c    *mqttraw.Conn
			}{{"device " + dev.DeviceID, dc}, {"module " + identityOf(mod).String(), mc}} {
				if err := x.c.Pingreq(); err != nil {
					e.Errorf("PINGREQ on the %s connection: %v, want PINGRESP (both connected)", x.name, err)
					continue
				}
				p, err := x.c.ReadPacket(answerWithin)
				if err != nil || p.Type != mqttraw.TypePingresp {
					e.Errorf("%s connection after both connected: %s, want PINGRESP", x.name, packetOrErr(p, err))
				}
			}
		},
	},
}

// expectAccepted connects the case device with user name u and a valid
// token, and checks for CONNACK 0.
func (e *env) expectAccepted(u string) {
	e.t.Helper()
	p := e.connectPacket(e.dev, e.token(e.dev))
	p.UserName = mqttraw.String(u)
	ack, _, err := e.dial(p)
	if err != nil {
		e.Fatalf("CONNECT with user name %q: %v, want CONNACK 0", u, err)
	}
	if ack.ReturnCode != 0 {
		e.Errorf("CONNECT with user name %q: CONNACK = %d, want 0%s", u, ack.ReturnCode, e.reasonSuffix(p.ClientID))
	}
}

func packetOrErr(p mqttraw.Packet, err error) string {
	if err != nil {
		return err.Error()
	}
	return p.String()
}

func (e *env) policy(deviceConnect bool) Policy {
	e.t.Helper()
	pol, ok := e.target.(PolicyProvider).Policy(e.t, deviceConnect)
	if !ok {
		what := "with"
		if !deviceConnect {
			what = "without"
		}
		e.Skipf("the target offers no policy %s DeviceConnect", what)
	}
	return pol
}
