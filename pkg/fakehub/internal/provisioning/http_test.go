package provisioning

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/hubkit/hubkit/pkg/iothub"
	"github.com/hubkit/hubkit/pkg/iothub/dps"
	"github.com/hubkit/hubkit/pkg/sas"
)

func serve(t *testing.T, e *Engine, rejected *[]iothub.Rejection) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(e.Handler(HandlerOptions{HostName: "mydps.example", Reject: func(r iothub.Rejection) { *rejected = append(*rejected, r) }}))
	t.Cleanup(srv.Close)
	return srv
}

func do(t *testing.T, method, url, auth, body string) (*http.Response, []byte) {
	t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if auth != "" {
		req.Header.Set("Authorization", auth)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, b
}

func policyToken(t *testing.T, e *Engine, name string) string {
	t.Helper()
	p, ok := e.Policy(name)
	if !ok {
		t.Fatalf("no policy %s", name)
	}
	k, _ := sas.DecodeKey(p.PrimaryKey)
	return sas.Sign("mydps.example", name, k, start.Add(time.Hour)).String()
}

func TestServiceAPI(t *testing.T) {
	e, _, _ := newEngine(t, Options{})
	if _, err := e.SetPolicy(dps.AccessPolicy{KeyName: "enrollmentread", Rights: dps.EnrollmentRead}); err != nil {
		t.Fatal(err)
	}
	var rejected []iothub.Rejection
	srv := serve(t, e, &rejected)
	owner := policyToken(t, e, dps.OwnerPolicy)
	v := "?api-version=" + dps.ServiceAPIVersion

	resp, body := do(t, "PUT", srv.URL+"/enrollmentGroups/fleet"+v, owner, `{"enrollmentGroupId":"fleet","attestation":{"type":"symmetricKey"}}`)
	var g dps.EnrollmentGroup
	if resp.StatusCode != 200 || json.Unmarshal(body, &g) != nil || g.Attestation.SymmetricKey.PrimaryKey == "" || g.ETag == "" {
		t.Fatalf("PUT group = %d %s", resp.StatusCode, body)
	}
	for _, tc := range []struct {
		name, method, path, auth, body string
		status                         int
		code                           dps.ErrorCode
		reason                         string
	}{
		{"no-auth", "GET", "/enrollmentGroups/fleet" + v, "", "", 401, dps.CodeUnauthorized, string(sas.ReasonNoPassword)},
		{"read-only-policy-writes", "DELETE", "/enrollmentGroups/fleet" + v, policyToken(t, e, "enrollmentread"), "", 401, dps.CodeUnauthorized, string(sas.ReasonPolicyPermission)},
		{"registration-token", "GET", "/enrollmentGroups/fleet" + v, token(t, dps.DefaultIDScope, "dev", devKey, "registration", start.Add(time.Hour)).String(), "", 401, dps.CodeUnauthorized, string(sas.ReasonUnknownPolicy)},
		{"no-api-version", "GET", "/enrollmentGroups/fleet", owner, "", 400, dps.CodeBadRequest, ""},
		{"unknown-enrollment", "GET", "/enrollments/nobody" + v, owner, "", 404, dps.CodeNotFound, ""},
		{"create-existing", "PUT", "/enrollmentGroups/fleet" + v, owner, `{"attestation":{"type":"symmetricKey"}}`, 409, dps.CodeConflict, ""},
		{"tpm-enrollment", "PUT", "/enrollments/dev-t" + v, owner, `{"attestation":{"type":"tpm","tpm":{"endorsementKey":"ek"}}}`, 400, dps.CodeBadRequest, string(ReasonTPMUnsupported)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resp, body := do(t, tc.method, srv.URL+tc.path, tc.auth, tc.body)
			e := dps.ReadError(resp.StatusCode, resp.Header, body)
			if resp.StatusCode != tc.status || e.Code != tc.code || (tc.reason != "" && e.Reason != tc.reason) || resp.Header.Get("x-ms-error-code") == "" {
				t.Errorf("%s %s = %d %s (reason %q), want %d %v %s", tc.method, tc.path, resp.StatusCode, body, e.Reason, tc.status, tc.code, tc.reason)
			}
		})
	}
	// The read-only policy may read; the query lists the group.
	resp, body = do(t, "POST", srv.URL+"/enrollmentGroups/query"+v, policyToken(t, e, "enrollmentread"), `{"query":"SELECT * FROM enrollmentGroups"}`)
	if resp.StatusCode != 200 || !strings.Contains(string(body), `"enrollmentGroupId":"fleet"`) {
		t.Errorf("query = %d %s", resp.StatusCode, body)
	}
	if len(rejected) != 0 {
		t.Errorf("service API refusals were recorded as device rejections: %+v", rejected)
	}
}

func TestRegistrationAPI(t *testing.T) {
	e, _, _ := newEngine(t, Options{RetryAfter: time.Second})
	enroll(t, e)
	var rejected []iothub.Rejection
	srv := serve(t, e, &rejected)
	base := srv.URL + "/" + dps.DefaultIDScope + "/registrations/"
	v := "?api-version=" + dps.APIVersion
	auth := cred(t, "dev-1", devKey).Token.String()

	resp, body := do(t, "PUT", base+"dev-1/register"+v, auth, `{"registrationId":"dev-1"}`)
	var st dps.OperationStatus
	if resp.StatusCode != 202 || resp.Header.Get("Retry-After") != "1" || json.Unmarshal(body, &st) != nil || st.Status != dps.StatusAssigning {
		t.Fatalf("register = %d %v %s", resp.StatusCode, resp.Header, body)
	}
	resp, body = do(t, "GET", base+"dev-1/operations/"+st.OperationID+v, auth, "")
	if resp.StatusCode != 200 || json.Unmarshal(body, &st) != nil || st.Status != dps.StatusAssigned || st.RegistrationState.DeviceID != "device-one" {
		t.Fatalf("poll = %d %s", resp.StatusCode, body)
	}
	for _, tc := range []struct {
		name, url, auth string
		status          int
		reason          sas.Reason
	}{
		{"wrong-key", base + "dev-1/register" + v, cred(t, "dev-1", derivedKey).Token.String(), 401, sas.ReasonSignatureMismatch},
		{"no-token", base + "dev-1/register" + v, "", 401, sas.ReasonNoPassword},
		{"other-scope-in-path", srv.URL + "/0ne0000FFFF/registrations/dev-1/register" + v, auth, 401, sas.ReasonScopeMismatch},
		{"no-api-version", base + "dev-1/register", auth, 400, ReasonBadRequest},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rejected = nil
			resp, body := do(t, "PUT", tc.url, tc.auth, `{"registrationId":"dev-1"}`)
			e := dps.ReadError(resp.StatusCode, resp.Header, body)
			if resp.StatusCode != tc.status || e.Reason != string(tc.reason) || len(rejected) != 1 || rejected[0].Reason != tc.reason || rejected[0].ClientID != "dev-1" {
				t.Errorf("= %d %s; rejections %+v; want %d %s", resp.StatusCode, body, rejected, tc.status, tc.reason)
			}
			var eb dps.ErrorBody
			if json.Unmarshal(body, &eb) != nil || eb.ErrorCode.HTTPStatus() != tc.status || eb.TrackingID == "" || eb.TimestampUTC == "" {
				t.Errorf("error body %s is not DPS's shape", body)
			}
		})
	}
}
