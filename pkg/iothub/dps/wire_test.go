package dps_test

import (
	"encoding/json"
	"errors"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/hubkit/hubkit/pkg/iothub/dps"
)

func readVector(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func generic(t *testing.T, b []byte) any {
	t.Helper()
	var v any
	if err := json.Unmarshal(b, &v); err != nil {
		t.Fatalf("%v in %s", err, b)
	}
	return v
}

// roundTrip decodes a vector into v, encodes v and compares the result with the vector.
func roundTrip(t *testing.T, name string, v any) {
	t.Helper()
	in := readVector(t, name)
	if err := json.Unmarshal(in, v); err != nil {
		t.Fatal(err)
	}
	out, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(generic(t, in), generic(t, out)); diff != "" {
		t.Errorf("%s: re-encoded JSON differs (-vector +ours):\n%s", name, diff)
	}
}

func TestOperationStatusWire(t *testing.T) {
	const opID = "4.d0a671905ea5b2c8.42d78160-4c78-479e-8be7-61d5e55dac0d"
	for _, tc := range []struct {
		file   string
		status dps.Status
		check  func(t *testing.T, op dps.OperationStatus)
	}{
		{"operation_assigning.json", dps.StatusAssigning, func(t *testing.T, op dps.OperationStatus) {
			if op.OperationID != opID || op.RegistrationState != nil {
				t.Errorf("decoded %+v", op)
			}
		}},
		{"operation_assigned.json", dps.StatusAssigned, func(t *testing.T, op dps.OperationStatus) {
			rs := op.RegistrationState
			if rs == nil || rs.AssignedHub != "contoso.azure-devices.net" || rs.DeviceID != "my-device-id1" ||
				rs.Substatus != dps.SubstatusInitialAssignment || rs.X509 == nil || rs.SymmetricKey != nil ||
				!rs.CreatedDateTimeUTC.Equal(time.Date(2020, 4, 10, 3, 11, 13, 27699700, time.UTC)) {
				t.Errorf("decoded %+v", rs)
			}
		}},
		{"operation_disabled.json", dps.StatusDisabled, func(t *testing.T, op dps.OperationStatus) {
			if op.OperationID != "" || op.RegistrationState.Status != dps.StatusDisabled || !op.RegistrationState.CreatedDateTimeUTC.IsZero() {
				t.Errorf("decoded %+v", op.RegistrationState)
			}
		}},
		{"operation_failed_allocation.json", dps.StatusFailed, func(t *testing.T, op dps.OperationStatus) {
			rs := op.RegistrationState
			if rs.ErrorCode != dps.CodeCustomAllocationFailed || rs.ErrorCode.HTTPStatus() != 400 || rs.AssignedHub != "" {
				t.Errorf("decoded %+v", rs)
			}
		}},
	} {
		t.Run(tc.file, func(t *testing.T) {
			var op dps.OperationStatus
			roundTrip(t, tc.file, &op)
			if op.Status != tc.status || op.Status.Done() != (tc.status != dps.StatusAssigning) {
				t.Errorf("status %q (done %v), want %q", op.Status, op.Status.Done(), tc.status)
			}
			tc.check(t, op)
		})
	}
}

func TestErrorBodyWire(t *testing.T) {
	for _, tc := range []struct {
		file string
		code dps.ErrorCode
		msg  string
	}{
		{"error_unauthorized.json", dps.CodeUnauthorized, "Unauthorized"},
		{"error_invalid_certificate.json", dps.CodeInvalidCertificate, "Invalid certificate."},
	} {
		t.Run(tc.file, func(t *testing.T) {
			var b dps.ErrorBody
			roundTrip(t, tc.file, &b)
			e := dps.ReadError(tc.code.HTTPStatus(), nil, readVector(t, tc.file))
			if e.Code != tc.code || e.Message != tc.msg || e.TrackingID != b.TrackingID || e.Status() != 401 {
				t.Errorf("ReadError = %+v", e)
			}
			// A written answer reads back as the same error, hubkit's diagnosis included.
			w := httptest.NewRecorder()
			want := &dps.Error{Code: tc.code, Message: tc.msg, Reason: "signature-mismatch", Hints: []string{"derive the key"}}
			at, err := time.Parse(time.RFC3339Nano, b.TimestampUTC)
			if err != nil {
				t.Fatal(err)
			}
			dps.WriteError(w, want, b.TrackingID, at)
			got := dps.ReadError(w.Code, w.Header(), w.Body.Bytes())
			if got.Code != tc.code || got.Message != tc.msg || got.Reason != want.Reason || !cmp.Equal(got.Hints, want.Hints) ||
				w.Header().Get("x-ms-error-code") == "" || !errors.Is(got, &dps.Error{Code: tc.code}) {
				t.Errorf("WriteError then ReadError = %+v (headers %v, body %s)", got, w.Header(), w.Body)
			}
			var written dps.ErrorBody
			if err := json.Unmarshal(w.Body.Bytes(), &written); err != nil || written.TimestampUTC != b.TimestampUTC {
				t.Errorf("written timestampUtc %q, want the vector's form %q (%v)", written.TimestampUTC, b.TimestampUTC, err)
			}
		})
	}
}

func TestEnrollmentWire(t *testing.T) {
	var e dps.Enrollment
	roundTrip(t, "enrollment_java_sdk.json", &e)
	if e.RegistrationID != "validRegistrationId" || e.DeviceID != "ContosoDevice-123" || e.Attestation.Type != dps.AttestationTPM ||
		e.Attestation.TPM.EndorsementKey != "validEndorsementKey" || e.ProvisioningStatus != dps.ProvisioningEnabled ||
		e.Reprovision() != dps.DefaultReprovisionPolicy || e.ETag == "" {
		t.Errorf("decoded %+v", e)
	}
}

func TestAllocationWire(t *testing.T) {
	var req dps.AllocationRequest
	roundTrip(t, "allocation_request_group.json", &req)
	g := req.EnrollmentGroup
	if g == nil || g.EnrollmentGroupID != "contoso-custom-allocated-devices" || g.Attestation.Type != dps.AttestationSymmetricKey ||
		g.AllocationPolicy != dps.AllocationCustom || len(g.IoTHubs) != 2 || g.CustomAllocationDefinition.APIVersion != "2021-10-01" ||
		g.Capabilities == nil || g.Capabilities.IoTEdge || !g.Reprovision().MigrateDeviceData ||
		req.DeviceRuntimeContext.RegistrationID != "breakroom499-contoso-tstrsd-007" || req.DeviceRuntimeContext.SymmetricKey == nil {
		t.Errorf("decoded %+v / %+v", g, req.DeviceRuntimeContext)
	}
	var resp dps.AllocationResponse
	roundTrip(t, "allocation_response.json", &resp)
	if resp.IoTHubHostName != "custom-allocation-toasters-hub.azure-devices.net" || resp.InitialTwin == nil ||
		string(resp.InitialTwin.Tags) == "" || string(resp.InitialTwin.Properties.Desired) == "" {
		t.Errorf("decoded %+v", resp)
	}
}
