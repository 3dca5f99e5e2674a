package provisioning

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hubkit/hubkit/internal/testutil"
	"github.com/hubkit/hubkit/pkg/iothub"
	"github.com/hubkit/hubkit/pkg/iothub/dps"
	"github.com/hubkit/hubkit/pkg/sas"
)

// fakeHub records assignments.
type fakeHub struct {
	names []string
	mu    sync.Mutex
	devs  map[string]Assignment
	calls []Assignment
	fail  error
}

func (h *fakeHub) HostNames() []string { return h.names }

func (h *fakeHub) Assign(_ context.Context, a Assignment) (bool, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.fail != nil {
		return false, h.fail
	}
	_, existed := h.devs[a.DeviceID]
	h.devs[a.DeviceID] = a
	h.calls = append(h.calls, a)
	return !existed, nil
}

func (h *fakeHub) Exists(id string) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	_, ok := h.devs[id]
	return ok
}

func (h *fakeHub) last() Assignment {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.calls[len(h.calls)-1]
}

// Microsoft's group-key vector (docs/iothub-behavior.md §7.3.1).
const (
	groupKey   = "8isrFI1sGsIlvvFSSFRiMfCNzv21fjbE/+ah/lSh3lF8e2YG1Te7w1KpZhJFFXJrqYKi9yegxkqIChbqOS9Egw=="
	groupRegID = "sn-007-888-abc-mac-a1-b2-c3-d4-e5-f6"
	derivedKey = "Jsm0lyGpjaVYVP2g3FnmnmG9dI/9qU24wNoykUmermc="
)

var (
	start  = time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	devKey = base64.StdEncoding.EncodeToString([]byte("0123456789abcdef0123456789abcdef"))
)

func newEngine(t *testing.T, opts Options) (*Engine, *fakeHub, *testutil.Clock) {
	t.Helper()
	clk := testutil.NewClock(start)
	opts.Now = clk.Now
	hub := &fakeHub{names: []string{"hub.example", "alias.example"}, devs: map[string]Assignment{}}
	e, err := New(hub, opts)
	if err != nil {
		t.Fatal(err)
	}
	return e, hub, clk
}

func token(t *testing.T, scope, regID, keyB64, skn string, expiry time.Time) *sas.Token {
	t.Helper()
	k, err := sas.DecodeKey(keyB64)
	if err != nil {
		t.Fatal(err)
	}
	tok := sas.Sign(sas.EncodeResource(sas.DPSResource(scope, regID)), skn, k, expiry)
	return &tok
}

func cred(t *testing.T, regID, keyB64 string) Credential {
	return Credential{RegistrationID: regID, Token: token(t, dps.DefaultIDScope, regID, keyB64, dps.RegistrationKeyName, start.Add(time.Hour))}
}

func enroll(t *testing.T, e *Engine) {
	t.Helper()
	if _, err := e.PutEnrollment(dps.Enrollment{RegistrationID: "dev-1", DeviceID: "device-one", Attestation: dps.SymmetricKeyAttestation(devKey, "")}, ""); err != nil {
		t.Fatal(err)
	}
	if _, err := e.PutGroup(dps.EnrollmentGroup{EnrollmentGroupID: "fleet", Attestation: dps.SymmetricKeyAttestation(groupKey, ""),
		InitialTwin: &dps.InitialTwin{Tags: json.RawMessage(`{"site":"lab"}`)}}, ""); err != nil {
		t.Fatal(err)
	}
}

func TestAttest(t *testing.T) {
	e, _, _ := newEngine(t, Options{})
	enroll(t, e)
	for _, tc := range []struct {
		name       string
		c          Credential
		reason     sas.Reason // "" = accepted
		hint       string
		group      string
		deviceID   string
		primaryKey string
	}{
		{name: "individual", c: cred(t, "dev-1", devKey), deviceID: "device-one", primaryKey: devKey},
		{name: "individual-registration-id-case", c: cred(t, "DEV-1", devKey), deviceID: "device-one", primaryKey: devKey},
		{name: "group-derived", c: cred(t, groupRegID, derivedKey), group: "fleet", deviceID: groupRegID, primaryKey: derivedKey},
		{name: "group-key-not-derived", c: cred(t, "sensor-9", groupKey), reason: sas.ReasonUnknownIdentity, hint: "enrollment group fleet primary key itself"},
		{name: "derived-for-other-case", c: cred(t, "Sensor-9", encodeKeyOf(t, groupKey, "sensor-9")), reason: sas.ReasonUnknownIdentity, hint: `derived for "sensor-9"`},
		{name: "individual-signed-with-group-key", c: cred(t, "dev-1", groupKey), reason: sas.ReasonSignatureMismatch, hint: "group fleet primary key itself"},
		{name: "unknown", c: cred(t, "nobody", devKey), reason: sas.ReasonUnknownIdentity, hint: "sastool derive"},
		{name: "wrong-scope", c: Credential{RegistrationID: "dev-1", Token: token(t, "0ne0000FFFF", "dev-1", devKey, "registration", start.Add(time.Hour))}, reason: sas.ReasonScopeMismatch},
		{name: "no-skn", c: Credential{RegistrationID: "dev-1", Token: token(t, dps.DefaultIDScope, "dev-1", devKey, "", start.Add(time.Hour))}, reason: sas.ReasonUnknownPolicy},
		{name: "expired", c: Credential{RegistrationID: "dev-1", Token: token(t, dps.DefaultIDScope, "dev-1", devKey, "registration", start.Add(-time.Hour))}, reason: sas.ReasonExpired},
		{name: "expired-group", c: Credential{RegistrationID: groupRegID, Token: token(t, dps.DefaultIDScope, groupRegID, derivedKey, "registration", start.Add(-time.Hour))}, reason: sas.ReasonExpired},
		{name: "other-registration", c: Credential{RegistrationID: "dev-1", Token: token(t, dps.DefaultIDScope, "dev-2", devKey, "registration", start.Add(time.Hour))}, reason: sas.ReasonScopeMismatch},
		{name: "no-token", c: Credential{RegistrationID: "dev-1"}, reason: sas.ReasonNoPassword},
		{name: "tpm", c: Credential{RegistrationID: "dev-1", TPM: true}, reason: ReasonTPMUnsupported},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a, f := e.Attest(tc.c)
			if tc.reason == "" {
				if f != nil {
					t.Fatalf("Attest refused: %v %v", f, f.Hints)
				}
				gid := ""
				if a.Group != nil {
					gid = a.Group.EnrollmentGroupID
				}
				if gid != tc.group || a.DeviceID() != tc.deviceID || a.Keys.PrimaryKey != tc.primaryKey {
					t.Errorf("Attest = group %q, device %q, key %q; want %q, %q, %q", gid, a.DeviceID(), a.Keys.PrimaryKey, tc.group, tc.deviceID, tc.primaryKey)
				}
				return
			}
			if f == nil {
				t.Fatalf("Attest accepted %+v, want %s", a, tc.reason)
			}
			if f.Reason != tc.reason || f.Code.HTTPStatus() == 0 {
				t.Errorf("Attest = %v (code %v), want reason %s", f, f.Code, tc.reason)
			}
			if tc.hint != "" && !strings.Contains(strings.Join(f.Hints, "\n"), tc.hint) {
				t.Errorf("hints %q, want one with %q", f.Hints, tc.hint)
			}
			for _, h := range append(f.Hints, f.Detail) {
				if strings.Contains(h, groupKey) || strings.Contains(h, devKey) || strings.Contains(h, derivedKey) {
					t.Errorf("a refusal shows a key: %q", h)
				}
			}
		})
	}
}

func encodeKeyOf(t *testing.T, group, regID string) string {
	g, err := sas.DecodeKey(group)
	if err != nil {
		t.Fatal(err)
	}
	return encodeKey(sas.DeriveDeviceKey(g, regID))
}

func mustAttest(t *testing.T, e *Engine, c Credential) *Attested {
	t.Helper()
	a, f := e.Attest(c)
	if f != nil {
		t.Fatal(f)
	}
	return a
}

func TestRegisterAndPoll(t *testing.T) {
	e, hub, clk := newEngine(t, Options{RetryAfter: 2 * time.Second, AssignDelay: 5 * time.Second})
	enroll(t, e)
	a := mustAttest(t, e, cred(t, groupRegID, derivedKey))
	st, retry, f := e.Register(a, []byte(`{"registrationId":"`+groupRegID+`"}`))
	if f != nil || st.Status != dps.StatusAssigning || retry != 2*time.Second || !strings.HasPrefix(st.OperationID, "4.") {
		t.Fatalf("Register = %+v, %v, %v", st, retry, f)
	}
	ctx := context.Background()
	if got, _, f := e.Poll(ctx, groupRegID, st.OperationID); f != nil || got.Status != dps.StatusAssigning {
		t.Fatalf("Poll before AssignDelay = %+v, %v; want assigning", got, f)
	}
	if len(hub.calls) != 0 {
		t.Fatal("assigned before the first poll after AssignDelay")
	}
	clk.Advance(5 * time.Second)
	got, _, f := e.Poll(ctx, groupRegID, st.OperationID)
	if f != nil || got.Status != dps.StatusAssigned {
		t.Fatalf("Poll = %+v, %v", got, f)
	}
	rs := got.RegistrationState
	if rs.DeviceID != groupRegID || rs.Substatus != dps.SubstatusInitialAssignment || rs.SymmetricKey.EnrollmentGroupID != "fleet" ||
		!rs.CreatedDateTimeUTC.Equal(start.Add(5*time.Second)) || rs.ETag == "" {
		t.Errorf("registration state %+v", rs)
	}
	if as := hub.last(); as.Keys.PrimaryKey != derivedKey || as.Twin == nil || string(as.Twin.Tags) != `{"site":"lab"}` || !containsFold(hub.names, as.HostName) {
		t.Errorf("Assign(%+v): want the derived key and the group's initial twin", as)
	}
	// Later polls answer the same, and assign nothing more.
	again, _, _ := e.Poll(ctx, groupRegID, st.OperationID)
	if again.RegistrationState.ETag != rs.ETag || len(hub.calls) != 1 {
		t.Errorf("a second poll reassigned: %+v (%d assignments)", again, len(hub.calls))
	}
	for _, tc := range []struct{ name, reg, op string }{
		{"unknown-operation", groupRegID, "4.0000000000000000.none"},
		{"another-devices-operation", "dev-1", st.OperationID},
	} {
		if _, _, f := e.Poll(ctx, tc.reg, tc.op); f == nil || f.Code != dps.CodeNotFound {
			t.Errorf("%s: Poll = %v, want 404000", tc.name, f)
		}
	}
	for _, body := range []string{`{"registrationId":"someone-else"}`, `not json`, `{"registrationId":"` + groupRegID + `","payload":}`} {
		if _, _, f := e.Register(a, []byte(body)); f == nil || f.Code != dps.CodeBadRequest || f.Reason != ReasonBadRequest {
			t.Errorf("Register(%s) = %v, want 400000 %s", body, f, ReasonBadRequest)
		}
	}
}

func TestDisabledEnrollment(t *testing.T) {
	e, hub, _ := newEngine(t, Options{})
	enroll(t, e)
	g, _ := e.Group("fleet")
	g.ProvisioningStatus = dps.ProvisioningDisabled
	if _, err := e.PutGroup(g, g.ETag); err != nil {
		t.Fatal(err)
	}
	a := mustAttest(t, e, cred(t, groupRegID, derivedKey))
	st, _, f := e.Register(a, nil)
	if st == nil || st.Status != dps.StatusDisabled || st.OperationID != "" || f == nil || f.Reason != ReasonEnrollmentDisabled {
		t.Fatalf("Register = %+v, %v; want status disabled with an empty operationId and reason %s", st, f, ReasonEnrollmentDisabled)
	}
	if len(hub.calls) != 0 {
		t.Error("a disabled enrollment's device was assigned")
	}
}

// register runs a whole registration and returns the final state.
func register(t *testing.T, e *Engine, c Credential) *dps.OperationStatus {
	t.Helper()
	a := mustAttest(t, e, c)
	st, _, f := e.Register(a, nil)
	if f != nil {
		t.Fatal(f)
	}
	got, _, f := e.Poll(context.Background(), c.RegistrationID, st.OperationID)
	if f != nil {
		t.Fatal(f)
	}
	return got
}

func TestReprovision(t *testing.T) {
	e, hub, _ := newEngine(t, Options{})
	_, err := e.PutEnrollment(dps.Enrollment{RegistrationID: "dev-1", Attestation: dps.SymmetricKeyAttestation(devKey, ""),
		IoTHubs: []string{"hub.example"}, InitialTwin: &dps.InitialTwin{Properties: dps.InitialTwinProperties{Desired: json.RawMessage(`{"v":1}`)}}}, "")
	if err != nil {
		t.Fatal(err)
	}
	c := cred(t, "dev-1", devKey)
	first := register(t, e, c)
	if first.RegistrationState.AssignedHub != "hub.example" || hub.last().Twin == nil {
		t.Fatalf("first registration %+v (twin %v)", first.RegistrationState, hub.last().Twin)
	}
	// The same hub again: the device and its twin are kept.
	second := register(t, e, c)
	if second.RegistrationState.Substatus != dps.SubstatusInitialAssignment || hub.last().Twin != nil ||
		!second.RegistrationState.CreatedDateTimeUTC.Equal(first.RegistrationState.CreatedDateTimeUTC) {
		t.Errorf("re-registration: %+v, twin %v; want initialAssignment, twin kept, createdDateTimeUtc kept", second.RegistrationState, hub.last().Twin)
	}
	// Moved to the other name without migration: the twin is reset.
	en, _ := e.Enrollment("dev-1")
	en.IoTHubs = []string{"alias.example"}
	en.ReprovisionPolicy = &dps.ReprovisionPolicy{UpdateHubAssignment: true, MigrateDeviceData: false}
	if _, err := e.PutEnrollment(en, en.ETag); err != nil {
		t.Fatal(err)
	}
	moved := register(t, e, c)
	if moved.RegistrationState.AssignedHub != "alias.example" || moved.RegistrationState.Substatus != dps.SubstatusDeviceDataReset || hub.last().Twin == nil {
		t.Errorf("move without migration: %+v, twin %v; want alias.example, deviceDataReset, twin reset", moved.RegistrationState, hub.last().Twin)
	}
	// updateHubAssignment false: it stays where it is.
	en, _ = e.Enrollment("dev-1")
	en.IoTHubs = []string{"hub.example"}
	en.ReprovisionPolicy = &dps.ReprovisionPolicy{UpdateHubAssignment: false, MigrateDeviceData: true}
	if _, err := e.PutEnrollment(en, "*"); err != nil {
		t.Fatal(err)
	}
	if stay := register(t, e, c); stay.RegistrationState.AssignedHub != "alias.example" {
		t.Errorf("updateHubAssignment false moved the device to %s", stay.RegistrationState.AssignedHub)
	}
	// Deleting the registration record makes the next one initial, with the initial twin.
	if err := e.DeleteRegistration("dev-1", ""); err != nil {
		t.Fatal(err)
	}
	if _, err := e.Registration("dev-1"); !errors.Is(err, dps.ErrNotFound) {
		t.Errorf("Registration after delete: %v, want dps.ErrNotFound", err)
	}
	fresh := register(t, e, c)
	if fresh.RegistrationState.Substatus != dps.SubstatusInitialAssignment || hub.last().Twin == nil {
		t.Errorf("after DeleteRegistration: %+v, twin %v", fresh.RegistrationState, hub.last().Twin)
	}
}

func TestAllocation(t *testing.T) {
	t.Run("custom-foreign-hub-fails", func(t *testing.T) {
		e, _, _ := newEngine(t, Options{Allocate: func(context.Context, dps.AllocationRequest) (dps.AllocationResponse, error) {
			return dps.AllocationResponse{IoTHubHostName: "elsewhere.azure-devices.net"}, nil
		}})
		if _, err := e.PutEnrollment(dps.Enrollment{RegistrationID: "dev-1", AllocationPolicy: dps.AllocationCustom, Attestation: dps.SymmetricKeyAttestation(devKey, "")}, ""); err != nil {
			t.Fatal(err)
		}
		st := register(t, e, cred(t, "dev-1", devKey))
		if st.Status != dps.StatusFailed || st.RegistrationState.ErrorCode != dps.CodeCustomAllocationFailed || !strings.Contains(st.RegistrationState.ErrorMessage, "not linked") {
			t.Errorf("custom allocation to a foreign hub: %+v", st.RegistrationState)
		}
	})
	t.Run("custom-request-has-no-keys", func(t *testing.T) {
		var got dps.AllocationRequest
		e, _, _ := newEngine(t, Options{Allocate: func(_ context.Context, r dps.AllocationRequest) (dps.AllocationResponse, error) {
			got = r
			return dps.AllocationResponse{IoTHubHostName: r.LinkedHubs[1], Payload: json.RawMessage(`{"ok":true}`)}, nil
		}})
		if _, err := e.PutGroup(dps.EnrollmentGroup{EnrollmentGroupID: "fleet", AllocationPolicy: dps.AllocationCustom, Attestation: dps.SymmetricKeyAttestation(groupKey, "")}, ""); err != nil {
			t.Fatal(err)
		}
		c := cred(t, groupRegID, derivedKey)
		a := mustAttest(t, e, c)
		op, _, _ := e.Register(a, []byte(`{"registrationId":"`+groupRegID+`","payload":{"model":"m"}}`))
		st, _, _ := e.Poll(context.Background(), groupRegID, op.OperationID)
		if st.RegistrationState.AssignedHub != "alias.example" || string(st.RegistrationState.Payload) != `{"ok":true}` {
			t.Errorf("registration state %+v", st.RegistrationState)
		}
		if got.EnrollmentGroup == nil || got.EnrollmentGroup.Attestation.SymmetricKey != nil || string(got.DeviceRuntimeContext.Payload) != `{"model":"m"}` {
			t.Errorf("allocation request %+v: want the group without keys and the device's payload", got)
		}
	})
	t.Run("hub-failure-fails-the-registration", func(t *testing.T) {
		e, hub, _ := newEngine(t, Options{})
		enroll(t, e)
		hub.fail = errors.New("device ID refused")
		st := register(t, e, cred(t, "dev-1", devKey))
		if st.Status != dps.StatusFailed || st.RegistrationState.ErrorCode.HTTPStatus() != 400 || !strings.Contains(st.RegistrationState.ErrorMessage, "device ID refused") {
			t.Errorf("registration state %+v", st.RegistrationState)
		}
	})
}

func TestEnrollmentIfMatch(t *testing.T) {
	e, _, _ := newEngine(t, Options{})
	en := dps.Enrollment{RegistrationID: "dev-1", Attestation: dps.SymmetricKeyAttestation("", "")}
	stored, err := e.PutEnrollment(en, "")
	if err != nil {
		t.Fatal(err)
	}
	k, _ := sas.DecodeKey(stored.Attestation.SymmetricKey.PrimaryKey)
	if len(k) != keyBytes || stored.ProvisioningStatus != dps.ProvisioningEnabled || stored.ETag == "" {
		t.Errorf("stored %+v: want a generated 64-byte key, enabled, an etag", stored)
	}
	for _, tc := range []struct {
		name, ifMatch string
		code          dps.ErrorCode
	}{
		{"create-again", "", dps.CodeConflict},
		{"stale-etag", `"stale"`, dps.CodePreconditionFailed},
		{"star", "*", 0},
	} {
		_, err := e.PutEnrollment(en, tc.ifMatch)
		var de *dps.Error
		if tc.code == 0 && err != nil || tc.code != 0 && (!errors.As(err, &de) || de.Code != tc.code) {
			t.Errorf("%s: PutEnrollment = %v, want code %v", tc.name, err, tc.code)
		}
	}
	if err := e.DeleteEnrollment("dev-1", `"stale"`); !errors.Is(err, dps.ErrPreconditionFailed) {
		t.Errorf("DeleteEnrollment(stale) = %v", err)
	}
	if err := e.DeleteEnrollment("DEV-1", "*"); err != nil {
		t.Errorf("DeleteEnrollment = %v", err)
	}
	if _, err := e.Enrollment("dev-1"); !errors.Is(err, dps.ErrNotFound) {
		t.Errorf("Enrollment after delete = %v", err)
	}
}

func TestEnrollmentValidation(t *testing.T) {
	e, _, _ := newEngine(t, Options{})
	for _, tc := range []struct {
		name string
		en   dps.Enrollment
		want string
	}{
		{"tpm", dps.Enrollment{RegistrationID: "d", Attestation: dps.Attestation{Type: dps.AttestationTPM, TPM: &dps.TPMAttestation{EndorsementKey: "ek"}}}, ErrTPMUnsupported.Error()},
		{"x509-empty", dps.Enrollment{RegistrationID: "d", Attestation: dps.Attestation{Type: dps.AttestationX509}}, "needs attestation.x509"},
		{"x509-ca-references", dps.Enrollment{RegistrationID: "d", Attestation: dps.Attestation{Type: dps.AttestationX509, X509: &dps.X509Attestation{CAReferences: &dps.X509CAReferences{Primary: "root"}}}}, "caReferences"},
		{"x509-no-client-certificate", dps.Enrollment{RegistrationID: "d", Attestation: dps.Attestation{Type: dps.AttestationX509, X509: &dps.X509Attestation{}}}, "clientCertificates.primary.certificate is missing"},
		{"x509-not-a-certificate", dps.Enrollment{RegistrationID: "d", Attestation: dps.Attestation{Type: dps.AttestationX509, X509: &dps.X509Attestation{ClientCertificates: &dps.X509Certificates{Primary: &dps.X509CertificateWithInfo{Certificate: "bm90IGEgY2VydA=="}}}}}, "clientCertificates.primary"},
		{"no-type", dps.Enrollment{RegistrationID: "d"}, "attestation.type is missing"},
		{"short-key", dps.Enrollment{RegistrationID: "d", Attestation: dps.SymmetricKeyAttestation("AAAA", "")}, "primaryKey"},
		{"foreign-hub", dps.Enrollment{RegistrationID: "d", Attestation: dps.SymmetricKeyAttestation("", ""), IoTHubs: []string{"other.azure-devices.net"}}, "is not linked"},
		{"bad-policy", dps.Enrollment{RegistrationID: "d", Attestation: dps.SymmetricKeyAttestation("", ""), AllocationPolicy: "nearest"}, "allocationPolicy"},
		{"twin-not-object", dps.Enrollment{RegistrationID: "d", Attestation: dps.SymmetricKeyAttestation("", ""), InitialTwin: &dps.InitialTwin{Tags: json.RawMessage(`[1]`)}}, "initialTwin.tags"},
		{"edge", dps.Enrollment{RegistrationID: "d", Attestation: dps.SymmetricKeyAttestation("", ""), Capabilities: &iothub.Capabilities{IoTEdge: true}}, "IoT Edge"},
		{"bad-registration-id", dps.Enrollment{RegistrationID: "a/b", Attestation: dps.SymmetricKeyAttestation("", "")}, "registrationId"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := e.PutEnrollment(tc.en, "")
			if !errors.Is(err, dps.ErrBadRequest) || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("PutEnrollment = %v, want a 400000 naming %q", err, tc.want)
			}
		})
	}
}

func TestThrottle(t *testing.T) {
	e, _, clk := newEngine(t, Options{Throttle: Throttle{PollsPer10s: 5, RegistrationsPerMinute: 2}})
	enroll(t, e)
	a := mustAttest(t, e, cred(t, "dev-1", devKey))
	st, _, _ := e.Register(a, nil)
	for i := 0; i < 5; i++ {
		if _, _, f := e.Poll(context.Background(), "dev-1", st.OperationID); f != nil {
			t.Fatalf("poll %d: %v", i+1, f)
		}
	}
	_, wait, f := e.Poll(context.Background(), "dev-1", st.OperationID)
	if f == nil || f.Code != dps.CodeThrottled || f.Reason != ReasonThrottled || wait < time.Second || wait > 10*time.Second {
		t.Fatalf("6th poll in 10 s = %v (wait %v), want 429000 with a retry-after", f, wait)
	}
	clk.Advance(10 * time.Second)
	if _, _, f := e.Poll(context.Background(), "dev-1", st.OperationID); f != nil {
		t.Errorf("poll after the window: %v", f)
	}
	if _, _, f := e.Register(a, nil); f != nil {
		t.Fatalf("2nd registration: %v", f)
	}
	if _, _, f := e.Register(a, nil); f == nil || f.Code != dps.CodeThrottled {
		t.Errorf("3rd registration in a minute = %v, want 429000", f)
	}
}
