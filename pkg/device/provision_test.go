package device_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/hubkit/hubkit/pkg/device"
	"github.com/hubkit/hubkit/pkg/fakehub"
	"github.com/hubkit/hubkit/pkg/fakehub/fakehubtest"
	"github.com/hubkit/hubkit/pkg/iothub"
	"github.com/hubkit/hubkit/pkg/iothub/dps"
	"github.com/hubkit/hubkit/pkg/sas"
)

// The group key and its derived key of docs/iothub-behavior.md §7.3.1: Microsoft's vector.
const (
	groupKey   = "8isrFI1sGsIlvvFSSFRiMfCNzv21fjbE/+ah/lSh3lF8e2YG1Te7w1KpZhJFFXJrqYKi9yegxkqIChbqOS9Egw=="
	groupRegID = "sn-007-888-abc-mac-a1-b2-c3-d4-e5-f6"
	derivedKey = "Jsm0lyGpjaVYVP2g3FnmnmG9dI/9qU24wNoykUmermc="
)

func dpsHub(t *testing.T) *fakehubtest.Hub {
	t.Helper()
	return fakehubtest.Start(t, fakehub.Options{DPS: &fakehub.DPSOptions{RetryAfter: time.Second}})
}

func provisionConfig(hub *fakehubtest.Hub, tr device.ProvisionTransport, regID string) device.ProvisionConfig {
	d := hub.DPS()
	addr := d.Addr()
	if tr == device.ProvisionHTTPS {
		addr = d.HTTPAddr()
	}
	return device.ProvisionConfig{GlobalEndpoint: hub.HostName(), Endpoint: addr, RootCAs: hub.CAPool, IDScope: d.IDScope(),
		RegistrationID: regID, Transport: tr}
}

// connectAssigned connects to the assigned hub with what Provision returned.
func connectAssigned(t *testing.T, ctx context.Context, hub *fakehubtest.Hub, p device.Provisioned) *device.Client {
	t.Helper()
	cfg := p.Config()
	cfg.Endpoint, cfg.RootCAs = hub.Addr(), hub.CAPool
	c, err := device.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close(context.Background()) })
	if err := c.Connect(ctx); err != nil {
		t.Fatalf("Connect to the assigned hub %s as %s: %v", p.AssignedHub, p.DeviceID, err)
	}
	return c
}

func TestProvisionIndividualThenConnect(t *testing.T) {
	for _, tr := range []device.ProvisionTransport{device.ProvisionMQTT, device.ProvisionHTTPS} {
		t.Run(string(tr), func(t *testing.T) {
			hub := dpsHub(t)
			key := base64.StdEncoding.EncodeToString([]byte("0123456789abcdef0123456789abcdef"))
			_, err := hub.DPS().SetEnrollment(dps.Enrollment{RegistrationID: "thermostat-7", DeviceID: "thermo-7",
				Attestation: dps.SymmetricKeyAttestation(key, ""),
				InitialTwin: &dps.InitialTwin{Tags: json.RawMessage(`{"site":"lab"}`), Properties: dps.InitialTwinProperties{Desired: json.RawMessage(`{"interval":10}`)}}})
			if err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			cfg := provisionConfig(hub, tr, "thermostat-7")
			cfg.SymmetricKey = key
			p, err := device.Provision(ctx, cfg)
			if err != nil {
				t.Fatalf("Provision: %v", err)
			}
			if p.AssignedHub != hub.HostName() || p.DeviceID != "thermo-7" || p.Substatus != dps.SubstatusInitialAssignment || p.SymmetricKey != key {
				t.Errorf("Provision = %+v", p)
			}
			c := connectAssigned(t, ctx, hub, p)
			tw, err := c.GetTwin(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if !strings.Contains(string(tw.Desired), `"interval":10`) {
				t.Errorf("desired = %s, want the enrollment's initial twin (interval 10)", tw.Desired)
			}
			st, err := hub.DPS().Registration("thermostat-7")
			if err != nil || st.Status != dps.StatusAssigned || st.DeviceID != "thermo-7" {
				t.Errorf("Registration = %+v, %v", st, err)
			}
		})
	}
}

// TestProvisionGroupDerivedKey registers a device of a symmetric-key group with the group
// key (derived by Provision) and checks that the hub device got the key of Microsoft's
// vector.
func TestProvisionGroupDerivedKey(t *testing.T) {
	hub := dpsHub(t)
	if _, err := hub.DPS().SetGroup(dps.EnrollmentGroup{EnrollmentGroupID: "contoso-fleet", Attestation: dps.SymmetricKeyAttestation(groupKey, "")}); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	cfg := provisionConfig(hub, device.ProvisionMQTT, groupRegID)
	cfg.GroupKey = groupKey
	cfg.Payload = json.RawMessage(`{"model":"t-1000"}`)
	p, err := device.Provision(ctx, cfg)
	if err != nil {
		t.Fatalf("Provision: %v", err)
	}
	if p.DeviceID != groupRegID || p.SymmetricKey != derivedKey || p.State.SymmetricKey == nil || p.State.SymmetricKey.EnrollmentGroupID != "contoso-fleet" {
		t.Errorf("Provision = %+v (state %+v)", p, p.State)
	}
	if len(p.Payload) != 0 {
		t.Errorf("payload %s returned by a hashed allocation; only custom allocation returns one", p.Payload)
	}
	d, err := hub.Device(iothub.Identity{DeviceID: groupRegID})
	if err != nil || d.Authentication.SymmetricKey.PrimaryKey != derivedKey {
		t.Fatalf("hub device = %+v, %v; want primary key %s", d, err, derivedKey)
	}
	connectAssigned(t, ctx, hub, p)
	if regs := hub.DPS().Registrations("contoso-fleet"); len(regs) != 1 || regs[0].RegistrationID != groupRegID {
		t.Errorf("Registrations(contoso-fleet) = %+v", regs)
	}
}

func TestProvisionCustomAllocationEchoesPayload(t *testing.T) {
	hub := dpsHub(t)
	_, err := hub.DPS().SetGroup(dps.EnrollmentGroup{EnrollmentGroupID: "custom", AllocationPolicy: dps.AllocationCustom,
		Attestation: dps.SymmetricKeyAttestation(groupKey, "")})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	cfg := provisionConfig(hub, device.ProvisionHTTPS, "sensor-1")
	cfg.GroupKey, cfg.Payload = groupKey, json.RawMessage(`{"model":"t-1000"}`)
	p, err := device.Provision(ctx, cfg)
	if err != nil {
		t.Fatalf("Provision: %v", err)
	}
	if string(p.Payload) != `{"model":"t-1000"}` {
		t.Errorf("payload = %s, want the device's payload echoed", p.Payload)
	}
}

func TestProvisionRefusals(t *testing.T) {
	hub := dpsHub(t)
	d := hub.DPS()
	if _, err := d.SetGroup(dps.EnrollmentGroup{EnrollmentGroupID: "fleet", Attestation: dps.SymmetricKeyAttestation(groupKey, "")}); err != nil {
		t.Fatal(err)
	}
	off := base64.StdEncoding.EncodeToString([]byte("fedcba9876543210fedcba9876543210"))
	if _, err := d.SetEnrollment(dps.Enrollment{RegistrationID: "parked", Attestation: dps.SymmetricKeyAttestation(off, ""), ProvisioningStatus: dps.ProvisioningDisabled}); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()

	t.Run("group-key-used-as-device-key", func(t *testing.T) {
		cfg := provisionConfig(hub, device.ProvisionMQTT, "dev-9")
		cfg.SymmetricKey = groupKey // the classic mistake: not derived
		_, err := device.Provision(ctx, cfg)
		if !errors.Is(err, device.ErrNotAuthorized) {
			t.Fatalf("Provision = %v, want CONNACK 5 (device.ErrNotAuthorized)", err)
		}
		rj, err := hub.WaitRejection(ctx, func(r iothub.Rejection) bool { return r.ClientID == "dev-9" })
		if err != nil {
			t.Fatal(err)
		}
		if rj.Reason != sas.ReasonUnknownIdentity || len(rj.Hints) == 0 || !strings.Contains(rj.Hints[0], "enrollment group fleet primary key itself") {
			t.Errorf("rejection = %+v, want unknown-identity with the not-derived hint", rj)
		}
	})
	t.Run("wrong-id-scope-over-https", func(t *testing.T) {
		cfg := provisionConfig(hub, device.ProvisionHTTPS, "dev-10")
		cfg.GroupKey, cfg.IDScope = groupKey, "0ne0000FFFF"
		_, err := device.Provision(ctx, cfg)
		var de *dps.Error
		if !errors.As(err, &de) || de.Code != dps.CodeUnauthorized || de.Reason != string(sas.ReasonScopeMismatch) {
			t.Fatalf("Provision = %v, want 401000 with hubkit reason scope-mismatch", err)
		}
	})
	t.Run("disabled-enrollment", func(t *testing.T) {
		cfg := provisionConfig(hub, device.ProvisionMQTT, "parked")
		cfg.SymmetricKey = off
		_, err := device.Provision(ctx, cfg)
		var pe *device.ProvisionError
		if !errors.As(err, &pe) || pe.Status != dps.StatusDisabled {
			t.Fatalf("Provision = %v, want a ProvisionError with status disabled", err)
		}
		if hub.Registry().Exists(iothub.Identity{DeviceID: "parked"}) == nil {
			t.Error("a disabled enrollment's device was created in the hub")
		}
	})
}
