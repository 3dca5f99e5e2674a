package conformance

import (
	"context"
	"crypto/tls"
	"encoding/base64"
	"encoding/json"
	"errors"
	"strconv"
	"strings"
	"time"

	"github.com/hubkit/hubkit/internal/mqttraw"
	"github.com/hubkit/hubkit/pkg/device"
	"github.com/hubkit/hubkit/pkg/iothub"
	"github.com/hubkit/hubkit/pkg/iothub/dps"
	"github.com/hubkit/hubkit/pkg/sas"
)

const docDPSMQTT = "learn.microsoft.com/azure/iot/iot-mqtt-connect-to-iot-dps"

// dpsCases check the Device Provisioning Service linked to the hub (docs/iothub-behavior.md
// §7): the registration flow, the assignment to the hub, and the refusals.
var dpsCases = []Case{
	{
		ID:          "dps/register/individual",
		Requirement: "A device of an individual symmetric-key enrollment registers over MQTT, is assigned to the hub under test, and then connects to it with its key.",
		Section:     "docs/iothub-behavior.md §7.2, §7.5, §7.12; " + docDPSMQTT,
		Certainty:   "C/O",
		Needs:       []string{NeedProvisioning},
		Timeout:     40 * time.Second,
		run: func(e *env) {
			en := e.provisioning().NewEnrollment(e.t, false)
			p := e.provision(en, device.ProvisionMQTT)
			e.connectAssigned(p, en)
		},
	},
	{
		ID:          "dps/register/group-derived-key",
		Requirement: "A device of a symmetric-key enrollment group registers with the key derived from the group key (HMAC-SHA256 of its registration ID), is assigned with the registration ID as device ID, and connects to the hub with the derived key.",
		Section:     "docs/iothub-behavior.md §7.3, §7.12; learn.microsoft.com/azure/iot-dps/concepts-symmetric-key-attestation",
		Certainty:   "C",
		Needs:       []string{NeedProvisioning},
		Timeout:     40 * time.Second,
		run: func(e *env) {
			en := e.provisioning().NewGroupDevice(e.t)
			p := e.provision(en, device.ProvisionMQTT)
			if p.DeviceID != en.RegistrationID {
				e.Errorf("group device assigned as %q, want its registration ID %q", p.DeviceID, en.RegistrationID)
			}
			e.connectAssigned(p, en)
		},
	},
	{
		ID:          "dps/register/https",
		Requirement: "The HTTPS registration API (PUT .../register, GET .../operations/{operationId}) assigns a device like MQTT does.",
		Section:     "docs/iothub-behavior.md §7.8; learn.microsoft.com/rest/api/iot-dps/",
		Certainty:   "C",
		Needs:       []string{NeedProvisioning},
		Timeout:     40 * time.Second,
		run: func(e *env) {
			if e.provisioning().DPS().HTTPSAddr == "" {
				e.Skipf("the target gives no HTTPS address for its DPS")
			}
			en := e.provisioning().NewEnrollment(e.t, false)
			e.connectAssigned(e.provision(en, device.ProvisionHTTPS), en)
		},
	},
	{
		ID:          "dps/register/retry-after",
		Requirement: "A register request is answered 202 on $dps/registrations/res/202/?$rid={rid}&retry-after={s} with an operationId and status assigning; polling with that operationId after retry-after seconds ends in 200 assigned with assignedHub and deviceId.",
		Section:     "docs/iothub-behavior.md §7.5; " + docDPSMQTT + " (Registering a device, Polling for registration operation status)",
		Certainty:   "C/O",
		Needs:       []string{NeedProvisioning},
		Timeout:     40 * time.Second,
		run: func(e *env) {
			en := e.provisioning().NewEnrollment(e.t, false)
			ack, c := e.dpsConnect(e.dpsPacket(en.RegistrationID, e.provisioning().DPS().IDScope, en.Key, true))
			if ack.ReturnCode != 0 {
				e.Fatalf("CONNACK = %d, want 0", ack.ReturnCode)
			}
			e.subscribe(c, iothub.DPSResponseFilter, 1, 1)
			status, retry, op := e.dpsRequest(c, iothub.DPSRegisterTopic("1"), []byte(`{"registrationId":"`+en.RegistrationID+`"}`), "1")
			if status != 202 || op.OperationID == "" || op.Status != dps.StatusAssigning {
				e.Fatalf("register answered %d %+v, want 202 assigning with an operationId", status, op)
			}
			if retry < 1 {
				e.Errorf("the 202 answer has retry-after %d, want at least 1 second", retry)
			}
			for i := 2; i < 12; i++ {
				if err := waitCtx(e.ctx, time.Duration(max(retry, 1))*time.Second); err != nil {
					e.Fatalf("waiting retry-after: %v", err)
				}
				rid := strconv.Itoa(i)
				var st dps.OperationStatus
				status, retry, st = e.dpsRequest(c, iothub.DPSPollTopic(rid, op.OperationID), nil, rid)
				if status == 202 {
					continue
				}
				if status != 200 || st.Status != dps.StatusAssigned || st.RegistrationState == nil || st.RegistrationState.AssignedHub == "" || st.RegistrationState.DeviceID == "" {
					e.Fatalf("poll answered %d %+v, want 200 assigned with assignedHub and deviceId", status, st)
				}
				return
			}
			e.Errorf("still assigning after 10 polls")
		},
	},
	{
		ID:          "dps/register/again",
		Requirement: "A device that registers again is assigned again, to the same hub and device ID, with the registration's createdDateTimeUtc kept.",
		Section:     "docs/iothub-behavior.md §7.9; learn.microsoft.com/azure/iot-dps/concepts-device-reprovision",
		Certainty:   "C/I",
		Needs:       []string{NeedProvisioning},
		Timeout:     60 * time.Second,
		run: func(e *env) {
			en := e.provisioning().NewEnrollment(e.t, false)
			first := e.provision(en, device.ProvisionMQTT)
			second := e.provision(en, device.ProvisionMQTT)
			if !strings.EqualFold(first.AssignedHub, second.AssignedHub) || first.DeviceID != second.DeviceID {
				e.Errorf("re-registration assigned %s/%s, want the first assignment %s/%s", second.AssignedHub, second.DeviceID, first.AssignedHub, first.DeviceID)
			}
			if !first.State.CreatedDateTimeUTC.IsZero() && !second.State.CreatedDateTimeUTC.Equal(first.State.CreatedDateTimeUTC) {
				e.Errorf("createdDateTimeUtc changed from %v to %v", first.State.CreatedDateTimeUTC, second.State.CreatedDateTimeUTC)
			}
		},
	},
	{
		ID:          "dps/subscribe/qos2-granted-1",
		Requirement: "A SUBSCRIBE to $dps/registrations/res/# with QoS 2 is granted QoS 1.",
		Section:     "docs/iothub-behavior.md §7.2; " + docDPSMQTT,
		Certainty:   "C",
		Needs:       []string{NeedProvisioning},
		run: func(e *env) {
			en := e.provisioning().NewEnrollment(e.t, false)
			ack, c := e.dpsConnect(e.dpsPacket(en.RegistrationID, e.provisioning().DPS().IDScope, en.Key, true))
			if ack.ReturnCode != 0 {
				e.Fatalf("CONNACK = %d, want 0", ack.ReturnCode)
			}
			e.subscribe(c, iothub.DPSResponseFilter, 2, 1)
		},
	},
	{
		ID:          "dps/session/never-persistent",
		Requirement: "DPS keeps no session: a CONNECT with CleanSession=0 gets session-present 0, also on the second connection.",
		Section:     "docs/iothub-behavior.md §7.2; " + docDPSMQTT + " (DPS doesn't support persistent sessions)",
		Certainty:   "C",
		Needs:       []string{NeedProvisioning},
		run: func(e *env) {
			en := e.provisioning().NewEnrollment(e.t, false)
			for i := 1; i <= 2; i++ {
				ack, c := e.dpsConnect(e.dpsPacket(en.RegistrationID, e.provisioning().DPS().IDScope, en.Key, false))
				if ack.ReturnCode != 0 || ack.SessionPresent {
					e.Errorf("connection %d with CleanSession=0: CONNACK %+v, want 0 without a session", i, ack)
				}
				e.subscribe(c, iothub.DPSResponseFilter, 1, 1)
				_ = c.Disconnect()
				c.Close()
			}
		},
	},
	{
		ID:          "dps/refused/wrong-key",
		Requirement: "A registration signed with a key the enrollment does not hold is refused: CONNACK 5, or a 401 answer to the register request.",
		Section:     "docs/iothub-behavior.md §7.6, §11.15",
		Certainty:   "O/I",
		Needs:       []string{NeedProvisioning},
		run: func(e *env) {
			en := e.provisioning().NewEnrollment(e.t, false)
			e.expectDPSRefused(en.RegistrationID, e.dpsPacket(en.RegistrationID, e.provisioning().DPS().IDScope, randomKey(), true), "signature-mismatch")
		},
	},
	{
		ID:          "dps/refused/unknown-registration",
		Requirement: "A registration ID no enrollment admits is refused: CONNACK 5, or a 401 answer to the register request.",
		Section:     "docs/iothub-behavior.md §7.6, §11.15",
		Certainty:   "O/I",
		Needs:       []string{NeedProvisioning},
		run: func(e *env) {
			id := randomID("hubkit-conf-nobody-")
			e.expectDPSRefused(id, e.dpsPacket(id, e.provisioning().DPS().IDScope, randomKey(), true), "unknown-identity")
		},
	},
	{
		ID:          "dps/refused/wrong-id-scope",
		Requirement: "A registration for another ID scope (user name and token) is refused: CONNACK 5, or a 401 answer.",
		Section:     "docs/iothub-behavior.md §7.2, §7.6, §11.15",
		Certainty:   "O/I",
		Needs:       []string{NeedProvisioning},
		run: func(e *env) {
			en := e.provisioning().NewEnrollment(e.t, false)
			e.expectDPSRefused(en.RegistrationID, e.dpsPacket(en.RegistrationID, "0ne0000FFFF", en.Key, true), "scope-mismatch")
		},
	},
	{
		ID:          "dps/disabled-enrollment",
		Requirement: "The registration of a disabled enrollment ends with status disabled, without an assignment.",
		Section:     "docs/iothub-behavior.md §7.5 (disabled); learn.microsoft.com/azure/iot-dps/how-to-revoke-device-access-portal",
		Certainty:   "C/O",
		Needs:       []string{NeedProvisioning},
		Timeout:     40 * time.Second,
		run: func(e *env) {
			en := e.provisioning().NewEnrollment(e.t, true)
			_, err := device.Provision(e.ctx, e.provisionConfig(en, device.ProvisionMQTT))
			var pe *device.ProvisionError
			if !errors.As(err, &pe) || pe.Status != dps.StatusDisabled {
				e.Fatalf("Provision = %v, want the registration to end with status disabled", err)
			}
		},
	},
}

func (e *env) provisioning() Provisioning { return e.target.(Provisioning) }

func (e *env) provisionConfig(en DPSEnrollment, tr device.ProvisionTransport) device.ProvisionConfig {
	d := e.provisioning().DPS()
	cfg := device.ProvisionConfig{GlobalEndpoint: d.HostName, Endpoint: d.Addr, IDScope: d.IDScope, RegistrationID: en.RegistrationID,
		SymmetricKey: en.Key, Transport: tr, ConnectTimeout: answerWithin, Now: e.now}
	if tr == device.ProvisionHTTPS {
		cfg.Endpoint = d.HTTPSAddr
	}
	if d.TLS != nil {
		cfg.RootCAs = d.TLS.RootCAs
	}
	return cfg
}

// provision runs the reference client's registration and checks the assignment.
func (e *env) provision(en DPSEnrollment, tr device.ProvisionTransport, adjust ...func(*device.ProvisionConfig)) device.Provisioned {
	e.t.Helper()
	cfg := e.provisionConfig(en, tr)
	for _, f := range adjust {
		f(&cfg)
	}
	p, err := device.Provision(e.ctx, cfg)
	if err != nil {
		e.Fatalf("registering %s over %s: %v%s", en.RegistrationID, tr, err, e.reasonSuffix(en.RegistrationID))
	}
	if !strings.EqualFold(hostOnly(p.AssignedHub), hostOnly(e.ep.HostName)) || p.DeviceID == "" || p.State.Status != dps.StatusAssigned {
		e.Fatalf("registration of %s = hub %q, device %q, status %q; want assigned to the hub under test %s", en.RegistrationID, p.AssignedHub, p.DeviceID, p.State.Status, e.ep.HostName)
	}
	return p
}

// connectAssigned connects to the hub as the assigned device.
func (e *env) connectAssigned(p device.Provisioned, en DPSEnrollment) {
	e.t.Helper()
	cl := e.newClient(DeviceIdentity{DeviceID: p.DeviceID, PrimaryKey: en.Key}, nil)
	e.connectClient(cl, "the assigned device "+p.DeviceID)
}

// dpsPacket is a DPS CONNECT for regID signed with key for scope.
func (e *env) dpsPacket(regID, scope, key string, clean bool) mqttraw.ConnectPacket {
	k, err := base64.StdEncoding.DecodeString(key)
	if err != nil {
		e.Fatalf("key: %v", err)
	}
	tok := sas.Sign(sas.EncodeResource(sas.DPSResource(scope, regID)), dps.RegistrationKeyName, k, e.now().Add(time.Hour))
	return mqttraw.ConnectPacket{ClientID: regID, CleanSession: clean, KeepAlive: 60,
		UserName: mqttraw.String(iothub.DPSUserName{IDScope: scope, RegistrationID: regID, APIVersion: dps.APIVersion}.String()),
		Password: mqttraw.String(tok.String())}
}

// dpsConnect dials the DPS; the connection is closed when the case ends.
func (e *env) dpsConnect(p mqttraw.ConnectPacket) (mqttraw.Connack, *mqttraw.Conn) {
	e.t.Helper()
	return e.dpsConnectWith(p, nil)
}

// dpsConnectWith is dpsConnect presenting cert (nil: none) in the TLS handshake.
func (e *env) dpsConnectWith(p mqttraw.ConnectPacket, cert *tls.Certificate) (mqttraw.Connack, *mqttraw.Conn) {
	e.t.Helper()
	d := e.provisioning().DPS()
	cfg := &tls.Config{MinVersion: tls.VersionTLS12}
	if d.TLS != nil {
		cfg = d.TLS.Clone()
	}
	if cert != nil {
		cfg.Certificates = []tls.Certificate{*cert}
	}
	if cfg.ServerName == "" {
		cfg.ServerName = hostOnly(d.HostName)
	}
	ctx, cancel := e.waitCtx(answerWithin)
	defer cancel()
	ack, c, err := mqttraw.ConnectAndWait(ctx, d.Addr, cfg, p)
	if err != nil {
		e.Fatalf("connecting to DPS at %s: %v", d.Addr, err)
	}
	e.onClose(func() { c.Close() })
	return ack, c
}

// dpsRequest publishes a request and reads its answer: status, retry-after, body.
func (e *env) dpsRequest(c *mqttraw.Conn, topic string, body []byte, rid string) (int, int, dps.OperationStatus) {
	e.t.Helper()
	// QoS 0: whether DPS's answer comes before or after the PUBACK of a QoS 1 request is
	// not specified.
	if err := c.Publish(mqttraw.PublishPacket{Topic: topic, Payload: body}); err != nil {
		e.Fatalf("PUBLISH %q: %v", topic, err)
	}
	for {
		pk := e.readPacket(c, mqttraw.TypePublish, "the DPS answer to "+topic)
		if pk.Publish.QoS > 0 {
			_ = c.Puback(pk.Publish.PacketID)
		}
		status, got, retry, err := iothub.ParseDPSResponseTopic(pk.Publish.Topic)
		if err != nil {
			e.Fatalf("DPS answered on %q: %v", pk.Publish.Topic, err)
		}
		if got != rid {
			continue
		}
		var st dps.OperationStatus
		if status < 300 {
			if err := json.Unmarshal(pk.Publish.Payload, &st); err != nil {
				e.Fatalf("DPS answer %s is not a RegistrationOperationStatus: %v", pk.Publish.Payload, err)
			}
		}
		return status, retry, st
	}
}

// expectDPSRefused checks that p is refused: CONNACK 5, or (after CONNACK 0) a 401 answer
// to the register request (docs/iothub-behavior.md §11.15: which one DPS does is open).
func (e *env) expectDPSRefused(regID string, p mqttraw.ConnectPacket, reason string) {
	e.t.Helper()
	e.expectDPSRefusedWith(regID, p, nil, reason)
}

// expectDPSRefusedWith is expectDPSRefused presenting cert (nil: none).
func (e *env) expectDPSRefusedWith(regID string, p mqttraw.ConnectPacket, cert *tls.Certificate, reason string) {
	e.t.Helper()
	ack, c := e.dpsConnectWith(p, cert)
	switch ack.ReturnCode {
	case 5:
		if rr, ok := e.target.(RejectionReader); ok {
			ctx, cancel := e.waitCtx(answerWithin)
			defer cancel()
			rj, err := rr.Rejection(ctx, regID)
			if err != nil || string(rj.Reason) != reason {
				e.Errorf("refused (CONNACK 5) with reason %q (%v), want %q", rj.Reason, err, reason)
			}
		}
		return
	case 0:
		e.subscribe(c, iothub.DPSResponseFilter, 1, 1)
		status, _, _ := e.dpsRequest(c, iothub.DPSRegisterTopic("1"), []byte(`{"registrationId":"`+regID+`"}`), "1")
		if status != 401 {
			e.Errorf("accepted: CONNACK 0, and the register request answered %d; want CONNACK 5 or 401", status)
		}
	default:
		e.Errorf("CONNACK = %d, want 5 (or 0 and a 401 answer)", ack.ReturnCode)
	}
}

// waitCtx waits d (a protocol delay such as retry-after) or until ctx ends.
func waitCtx(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
