package fakehub_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/hubkit/hubkit/internal/mqttraw"
	"github.com/hubkit/hubkit/pkg/fakehub"
	"github.com/hubkit/hubkit/pkg/fakehub/fakehubtest"
	"github.com/hubkit/hubkit/pkg/iothub"
	"github.com/hubkit/hubkit/pkg/iothub/dps"
	"github.com/hubkit/hubkit/pkg/sas"
)

// DPS over MQTT with a raw client (docs/iothub-behavior.md §7.2, §7.5): what the SDKs
// cannot be made to send.

var dpsKey = base64.StdEncoding.EncodeToString([]byte("raw-dps-client-key-0123456789abc"))

func dpsRaw(t *testing.T, opts fakehub.DPSOptions) *fakehubtest.Hub {
	t.Helper()
	if opts.RetryAfter == 0 {
		opts.RetryAfter = time.Second
	}
	hub := fakehubtest.Start(t, fakehub.Options{DPS: &opts})
	if _, err := hub.DPS().SetEnrollment(dps.Enrollment{RegistrationID: "raw-1", Attestation: dps.SymmetricKeyAttestation(dpsKey, "")}); err != nil {
		t.Fatal(err)
	}
	return hub
}

func dpsConnect(regID, key string, clean bool) mqttraw.ConnectPacket {
	k, _ := sas.DecodeKey(key)
	tok := sas.Sign(sas.EncodeResource(sas.DPSResource(dps.DefaultIDScope, regID)), "registration", k, time.Now().Add(time.Hour))
	return mqttraw.ConnectPacket{ClientID: regID, CleanSession: clean, KeepAlive: 60,
		UserName: mqttraw.String(dps.DefaultIDScope + "/registrations/" + regID + "/api-version=2019-03-31"),
		Password: mqttraw.String(tok.String())}
}

func dialDPS(t *testing.T, hub *fakehubtest.Hub, p mqttraw.ConnectPacket) (mqttraw.Connack, *mqttraw.Conn) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	ack, c, err := mqttraw.ConnectAndWait(ctx, hub.DPS().Addr(), hub.ClientTLS(), p)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return ack, c
}

func readPublish(t *testing.T, c *mqttraw.Conn) mqttraw.PublishPacket {
	t.Helper()
	for {
		pk, err := c.ReadPacket(10 * time.Second)
		if err != nil {
			t.Fatal(err)
		}
		if pk.Type == mqttraw.TypePublish {
			if pk.Publish.QoS == 1 {
				_ = c.Puback(pk.Publish.PacketID)
			}
			return pk.Publish
		}
	}
}

func TestDPSMQTTFlowRaw(t *testing.T) {
	hub := dpsRaw(t, fakehub.DPSOptions{})
	ack, c := dialDPS(t, hub, dpsConnect("raw-1", dpsKey, false))
	if ack.ReturnCode != 0 || ack.SessionPresent {
		t.Fatalf("CONNACK %+v, want 0 without a session (DPS sessions never persist)", ack)
	}
	if err := c.Subscribe(1, mqttraw.Subscription{Filter: iothub.DPSResponseFilter, QoS: 2}); err != nil {
		t.Fatal(err)
	}
	pk, err := c.ReadPacket(10 * time.Second)
	if err != nil || pk.Type != mqttraw.TypeSuback || len(pk.Suback.Codes) != 1 || pk.Suback.Codes[0] != 1 {
		t.Fatalf("SUBACK = %v, %v; want QoS 2 granted 1", pk, err)
	}
	if err := c.Publish(mqttraw.PublishPacket{Topic: iothub.DPSRegisterTopic("7"), QoS: 1, PacketID: 2, Payload: []byte(`{"registrationId":"raw-1"}`)}); err != nil {
		t.Fatal(err)
	}
	p := readPublish(t, c)
	status, rid, retry, err := iothub.ParseDPSResponseTopic(p.Topic)
	var op dps.OperationStatus
	if err != nil || status != 202 || rid != "7" || retry != 1 || p.QoS != 1 || json.Unmarshal(p.Payload, &op) != nil || op.Status != dps.StatusAssigning {
		t.Fatalf("answer %s %s (status %d rid %q retry %d qos %d), want 202 assigning with retry-after=1 at QoS 1", p.Topic, p.Payload, status, rid, retry, p.QoS)
	}
	if err := c.Publish(mqttraw.PublishPacket{Topic: iothub.DPSPollTopic("8", op.OperationID), QoS: 0}); err != nil {
		t.Fatal(err)
	}
	p = readPublish(t, c)
	if status, rid, _, _ = iothub.ParseDPSResponseTopic(p.Topic); status != 200 || rid != "8" || json.Unmarshal(p.Payload, &op) != nil ||
		op.Status != dps.StatusAssigned || op.RegistrationState.AssignedHub != hub.HostName() {
		t.Fatalf("poll answer %s %s", p.Topic, p.Payload)
	}
	if _, err := hub.Device(iothub.Identity{DeviceID: "raw-1"}); err != nil {
		t.Errorf("the assigned device is not in the hub: %v", err)
	}
}

func TestDPSMQTTRefusals(t *testing.T) {
	hub := dpsRaw(t, fakehub.DPSOptions{})
	hubUser := mqttraw.String(hub.HostName() + "/raw-1/?api-version=2021-04-12")
	for _, tc := range []struct {
		name   string
		p      mqttraw.ConnectPacket
		reason sas.Reason
		hint   string
	}{
		{"wrong-key", dpsConnect("raw-1", base64.StdEncoding.EncodeToString([]byte("another-key-0123456789abcdefghij")), true), sas.ReasonSignatureMismatch, ""},
		{"unknown-registration", dpsConnect("raw-2", dpsKey, true), sas.ReasonUnknownIdentity, ""},
		{"hub-user-name", func() mqttraw.ConnectPacket { p := dpsConnect("raw-1", dpsKey, true); p.UserName = hubUser; return p }(), sas.ReasonUserNameMalformed, "IoT Hub user name"},
		{"client-id-mismatch", func() mqttraw.ConnectPacket { p := dpsConnect("raw-1", dpsKey, true); p.ClientID = "raw-9"; return p }(), sas.ReasonUserNameMismatch, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ack, _ := dialDPS(t, hub, tc.p)
			if ack.ReturnCode != 5 {
				t.Fatalf("CONNACK %d, want 5", ack.ReturnCode)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			rj, err := hub.WaitRejection(ctx, func(r iothub.Rejection) bool { return r.ClientID == tc.p.ClientID && r.Reason == tc.reason })
			if err != nil {
				t.Fatalf("no %s rejection: %v (%+v)", tc.reason, err, hub.Rejections())
			}
			if !strings.HasPrefix(rj.Detail, "DPS") || (tc.hint != "" && !strings.Contains(strings.Join(rj.Hints, " "), tc.hint)) {
				t.Errorf("rejection %+v", rj)
			}
		})
	}
	t.Run("forbidden-topic-closes", func(t *testing.T) {
		ack, c := dialDPS(t, hub, dpsConnect("raw-1", dpsKey, true))
		if ack.ReturnCode != 0 {
			t.Fatalf("CONNACK %d", ack.ReturnCode)
		}
		if err := c.Publish(mqttraw.PublishPacket{Topic: "devices/raw-1/messages/events/", QoS: 1, PacketID: 1}); err != nil {
			t.Fatal(err)
		}
		if err := c.ExpectClosed(5 * time.Second); err != nil {
			t.Errorf("publishing a hub topic to DPS: %v", err)
		}
	})
	t.Run("forbidden-filter-closes", func(t *testing.T) {
		_, c := dialDPS(t, hub, dpsConnect("raw-1", dpsKey, true))
		if err := c.Subscribe(1, mqttraw.Subscription{Filter: "$dps/registrations/#", QoS: 1}); err != nil {
			t.Fatal(err)
		}
		if err := c.ExpectClosed(5 * time.Second); err != nil {
			t.Errorf("subscribing $dps/registrations/#: %v", err)
		}
	})
}

func TestDPSMQTTThrottled(t *testing.T) {
	hub := dpsRaw(t, fakehub.DPSOptions{Throttle: fakehub.DPSThrottle{RegistrationsPerMinute: 1}})
	_, c := dialDPS(t, hub, dpsConnect("raw-1", dpsKey, true))
	if err := c.Subscribe(1, mqttraw.Subscription{Filter: iothub.DPSResponseFilter, QoS: 1}); err != nil {
		t.Fatal(err)
	}
	if pk, err := c.ReadPacket(5 * time.Second); err != nil || pk.Type != mqttraw.TypeSuback {
		t.Fatalf("SUBACK = %v, %v", pk, err)
	}
	var last mqttraw.PublishPacket
	for i, rid := range []string{"1", "2"} {
		if err := c.Publish(mqttraw.PublishPacket{Topic: iothub.DPSRegisterTopic(rid), Payload: []byte(`{"registrationId":"raw-1"}`)}); err != nil {
			t.Fatal(err)
		}
		last = readPublish(t, c)
		if i == 0 && !strings.Contains(last.Topic, "/res/202/") {
			t.Fatalf("first register: %s", last.Topic)
		}
	}
	status, _, retry, _ := iothub.ParseDPSResponseTopic(last.Topic)
	e := dps.ReadError(status, nil, last.Payload)
	if status != 429 || retry < 1 || e.Code != dps.CodeThrottled || e.Reason != string(fakehub.ReasonDPSThrottled) {
		t.Errorf("second register in a minute: %s %s, want 429 with retry-after and reason %s", last.Topic, last.Payload, fakehub.ReasonDPSThrottled)
	}
}
