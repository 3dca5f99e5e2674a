package iothub_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/hubkit/hubkit/pkg/iothub"
)

func readVector(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", "wire", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

var zoneless = regexp.MustCompile(`"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d+)?)"`)

// generic decodes JSON for comparison, writing zone-less times (az's form) with a Z, as
// hubkit writes them, and dropping the members named in drop.
func generic(t *testing.T, b []byte, drop ...string) any {
	t.Helper()
	b = zoneless.ReplaceAll(b, []byte(`"${1}Z"`))
	var v any
	if err := json.Unmarshal(b, &v); err != nil {
		t.Fatalf("%v in %s", err, b)
	}
	if m, ok := v.(map[string]any); ok {
		for _, k := range drop {
			delete(m, k)
		}
	}
	return v
}

// sameTimes makes equal times compare equal however they were written
// ("0001-01-01T00:00:00Z" and "0001-01-01T00:00:00.000Z").
var sameTimes = cmp.Transformer("time", func(s string) string {
	if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
		return t.UTC().Format(time.RFC3339Nano)
	}
	return s
})

// TestDeviceWire decodes identities as the service and az render them and writes them
// back the same (deviceScope, an IoT Edge field, is not modelled).
func TestDeviceWire(t *testing.T) {
	for _, tc := range []struct {
		file, id, key string
		state         iothub.ConnectionState
		edge          bool
		lastActivity  time.Time
	}{
		{"device_cli_fixture.json", "Test_Device_1", "TestKey1", iothub.StateConnected, false, time.Date(2021, 5, 12, 8, 48, 7, 690380700, time.UTC)},
		{"device_az_create_edge.json", "sensor-th-0067", "jftBfeefPsXgrd87UcotVKJ88kBl5Zjk1oWmMwwxlME=", iothub.StateDisconnected, true, time.Time{}},
	} {
		t.Run(tc.file, func(t *testing.T) {
			in := readVector(t, tc.file)
			var d iothub.Device
			if err := json.Unmarshal(in, &d); err != nil {
				t.Fatal(err)
			}
			if d.DeviceID != tc.id || d.Authentication.SymmetricKey.PrimaryKey != tc.key || d.Authentication.Type != iothub.AuthSAS ||
				d.Status != iothub.StatusEnabled || d.ConnectionState != tc.state || d.Capabilities.IoTEdge != tc.edge ||
				!d.LastActivityTime.Equal(tc.lastActivity) || d.StatusReason != "" || d.GenerationID == "" || d.ETag == "" {
				t.Errorf("decoded %+v", d)
			}
			out, err := json.Marshal(d)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(generic(t, in, "deviceScope"), generic(t, out), sameTimes); diff != "" {
				t.Errorf("re-encoded (-documented +hubkit):\n%s", diff)
			}
		})
	}
}

// TestModuleWire: a module has no device-only fields.
func TestModuleWire(t *testing.T) {
	out, err := json.Marshal(iothub.Device{DeviceID: "d", ModuleID: "m", Status: iothub.StatusDisabled, StatusReason: "x", Capabilities: iothub.Capabilities{IoTEdge: true}})
	if err != nil {
		t.Fatal(err)
	}
	m := generic(t, out).(map[string]any)
	for _, k := range []string{"status", "statusReason", "statusUpdatedTime", "capabilities"} {
		if _, ok := m[k]; ok {
			t.Errorf("module JSON has %q: %s", k, out)
		}
	}
	if m["moduleId"] != "m" || m["connectionState"] != "Disconnected" {
		t.Errorf("module JSON %s", out)
	}
}

func TestTwinWire(t *testing.T) {
	for _, tc := range []struct {
		file               string
		desired, reported  int64
		wantTags, wantEtag bool
	}{
		{"twin_devguide.json", 1, 4, true, false},
		{"twin_eventgrid.json", 1, 1, false, true},
	} {
		t.Run(tc.file, func(t *testing.T) {
			in := readVector(t, tc.file)
			var tw iothub.Twin
			if err := json.Unmarshal(in, &tw); err != nil {
				t.Fatal(err)
			}
			if tw.DesiredVersion() != tc.desired || tw.ReportedVersion() != tc.reported || (tw.Tags != nil) != tc.wantTags ||
				(tw.DeviceETag != "") != tc.wantEtag || tw.Version != 2 || tw.AuthenticationType != iothub.AuthSAS || tw.ETag == "" {
				t.Errorf("decoded %+v (desired v%d, reported v%d)", tw, tw.DesiredVersion(), tw.ReportedVersion())
			}
			out, err := json.Marshal(tw)
			if err != nil {
				t.Fatal(err)
			}
			// modelId is written even when empty, as the hub does.
			got := generic(t, out).(map[string]any)
			if got["modelId"] == "" {
				delete(got, "modelId")
			}
			if diff := cmp.Diff(generic(t, in), any(got), sameTimes); diff != "" {
				t.Errorf("re-encoded (-documented +hubkit):\n%s", diff)
			}
		})
	}
}

func TestMethodWire(t *testing.T) {
	var req iothub.MethodRequest
	if err := json.Unmarshal(readVector(t, "method_request.json"), &req); err != nil {
		t.Fatal(err)
	}
	resp, conn, err := req.Timeouts()
	if err != nil || req.MethodName != "reboot" || resp != 200*time.Second || conn != 0 || !bytes.Contains(req.Payload, []byte(`"someInput"`)) {
		t.Errorf("request %+v: timeouts %v %v %v", req, resp, conn, err)
	}
	built, _ := json.Marshal(iothub.NewMethodRequest("reboot", json.RawMessage(`{"input1":"someInput","input2":"anotherInput"}`), 200*time.Second, 0))
	want := generic(t, readVector(t, "method_request.json")).(map[string]any)
	want["connectTimeoutInSeconds"] = float64(0) // NewMethodRequest always sends it
	if diff := cmp.Diff(any(want), generic(t, built)); diff != "" {
		t.Errorf("NewMethodRequest (-documented +built):\n%s", diff)
	}
	var res iothub.MethodResult
	if err := json.Unmarshal(readVector(t, "method_result.json"), &res); err != nil || res.Status != 201 {
		t.Errorf("result %+v %v", res, err)
	}
	if b, _ := json.Marshal(iothub.MethodResult{Status: 404}); string(b) != `{"status":404,"payload":null}` {
		t.Errorf("empty payload = %s, want null", b)
	}
}

func TestFeedbackWire(t *testing.T) {
	var fs []iothub.C2DFeedback
	if err := json.Unmarshal(readVector(t, "feedback.json"), &fs); err != nil {
		t.Fatal(err)
	}
	want := []iothub.C2DFeedback{{OriginalMessageID: "0987654321", DeviceID: "123", DeviceGenerationID: "abcdefghijklmnopqrstuvwxyz",
		StatusCode: iothub.FeedbackSuccess, Description: "Success", EnqueuedTime: time.Date(2015, 7, 28, 16, 24, 48, 789000000, time.UTC)}}
	if diff := cmp.Diff(want, fs); diff != "" {
		t.Errorf("feedback (-want +got):\n%s", diff)
	}
	out, _ := json.Marshal(fs)
	if diff := cmp.Diff(generic(t, readVector(t, "feedback.json")), generic(t, out), sameTimes); diff != "" {
		t.Errorf("re-encoded (-documented +hubkit):\n%s", diff)
	}
}

// TestRightsGrants pins that RegistryWrite includes RegistryRead (Microsoft: "read and write
// access to the identity registry"; the portal adds Registry Read to Registry Write) and that
// the built-in policies carry the rights az shows for them.
func TestRightsGrants(t *testing.T) {
	for _, tc := range []struct {
		have, need iothub.Rights
		want       bool
	}{
		{iothub.RegistryWrite, iothub.RegistryRead, true},
		{iothub.RegistryWrite, iothub.RegistryRead | iothub.RegistryWrite, true},
		{iothub.RegistryRead, iothub.RegistryWrite, false},
		{iothub.RegistryWrite, iothub.ServiceConnect, false},
		{iothub.ServiceConnect | iothub.DeviceConnect, iothub.DeviceConnect, true},
		{0, iothub.RegistryRead, false},
	} {
		if got := tc.have.Grants(tc.need); got != tc.want {
			t.Errorf("(%v).Grants(%v) = %v, want %v", tc.have, tc.need, got, tc.want)
		}
	}
	want := map[string]string{"iothubowner": "RegistryWrite, ServiceConnect, DeviceConnect", "service": "ServiceConnect",
		"device": "DeviceConnect", "registryRead": "RegistryRead", "registryReadWrite": "RegistryWrite"}
	for _, p := range iothub.BuiltinPolicies() {
		if p.Rights.String() != want[p.KeyName] {
			t.Errorf("built-in %s: %v, want %s", p.KeyName, p.Rights, want[p.KeyName])
		}
		delete(want, p.KeyName)
	}
	if len(want) > 0 {
		t.Errorf("missing built-in policies %v", want)
	}
	if all := iothub.RegistryWrite | iothub.ServiceConnect | iothub.DeviceConnect; !all.Grants(iothub.RegistryRead | iothub.RegistryWrite | iothub.ServiceConnect | iothub.DeviceConnect) {
		t.Error("iothubowner's rights do not grant every right")
	}
}

func TestRightsText(t *testing.T) {
	// az iot hub policy list prints iothubowner's rights this way.
	var p iothub.AccessPolicy
	if err := json.Unmarshal([]byte(`{"keyName":"iothubowner","primaryKey":"a","secondaryKey":"b","rights":"RegistryWrite, ServiceConnect, DeviceConnect"}`), &p); err != nil {
		t.Fatal(err)
	}
	if p.Rights != iothub.RegistryWrite|iothub.ServiceConnect|iothub.DeviceConnect || p.Rights.String() != "RegistryWrite, ServiceConnect, DeviceConnect" {
		t.Errorf("rights %v", p.Rights)
	}
	if err := json.Unmarshal([]byte(`{"rights":"Fly"}`), &p); err == nil {
		t.Error("unknown right accepted")
	}
	for _, s := range []string{"", "none"} {
		if r, err := iothub.ParseRights(s); err != nil || r != 0 {
			t.Errorf("ParseRights(%q) = %v, %v", s, r, err)
		}
	}
	if iothub.Rights(0).String() != "none" {
		t.Errorf("no rights = %q", iothub.Rights(0))
	}
}

// TestErrorCodes pins the code table: each code's status is its first three digits, names
// round-trip, and the sentinels match by code.
func TestErrorCodes(t *testing.T) {
	for _, tc := range []struct {
		code   iothub.ErrorCode
		name   string
		status int
	}{
		{iothub.CodeDeviceNotFound, "DeviceNotFound", 404},
		{iothub.CodeModuleNotFound, "ModuleNotFound", 404},
		{iothub.CodeDeviceAlreadyExists, "DeviceAlreadyExists", 409},
		{iothub.CodeModuleAlreadyExistsOnDevice, "ModuleAlreadyExistsOnDevice", 409},
		{iothub.CodeDeviceNotOnline, "DeviceNotOnline", 404},
		{iothub.CodeGatewayTimeout, "GatewayTimeout", 504},
		{iothub.CodeDeviceMaximumQueueDepthExceeded, "DeviceMaximumQueueDepthExceeded", 403},
		{iothub.CodePreconditionFailed, "PreconditionFailed", 412},
	} {
		if tc.code.Name() != tc.name || tc.code.HTTPStatus() != tc.status {
			t.Errorf("%d: %q %d, want %q %d", int(tc.code), tc.code.Name(), tc.code.HTTPStatus(), tc.name, tc.status)
		}
		if c, ok := iothub.CodeByName(tc.name); !ok || c != tc.code {
			t.Errorf("CodeByName(%q) = %v %v", tc.name, c, ok)
		}
	}
	err := error(iothub.Errorf(iothub.CodeModuleNotFound, "module %q is not in the registry", "d/m"))
	if got := err.Error(); got != `404010 ModuleNotFound: module "d/m" is not in the registry` {
		t.Errorf("Error() = %q", got)
	}
	if !errors.Is(err, iothub.ErrModuleNotFound) || errors.Is(err, iothub.ErrDeviceNotFound) {
		t.Error("errors.Is does not match by code")
	}
	if iothub.ErrorCode(123).HTTPStatus() != 500 || iothub.GenericCode(404) != iothub.CodeGenericNotFound {
		t.Error("odd codes")
	}
}

// TestErrorAnswers reads the error bodies the SDKs meet (the shapes the .NET service SDK's
// ServiceExceptionHandlingHelper parses: "ErrorCode:Name;message", the {"errorCode":…} JSON
// at the top, and the same escaped inside "Message") and round-trips hubkit's own answer.
func TestErrorAnswers(t *testing.T) {
	for _, tc := range []struct {
		name, body string
		status     int
		want       iothub.Error
	}{
		{"registry", `{"Message":"ErrorCode:DeviceNotFound;E2E_dev not found","ExceptionMessage":"Tracking ID:0123abcd-G:0-TimeStamp:05/12/2021 08:48:08"}`, 404,
			iothub.Error{Code: iothub.CodeDeviceNotFound, Message: "E2E_dev not found", TrackingID: "0123abcd"}},
		{"json", `{"errorCode":404103,"trackingId":"t1","message":"Timed out waiting for device to connect.","info":{"timeout":"00:00:00"},"timestampUtc":"2021-03-01T00:00:00Z"}`, 404,
			iothub.Error{Code: iothub.CodeDeviceNotOnline, Message: "Timed out waiting for device to connect.", TrackingID: "t1"}},
		{"escaped-json", `{"Message":"{\"errorCode\":504101,\"trackingId\":\"t2\",\"message\":\"Timed out waiting for the response from device.\"}","ExceptionMessage":""}`, 504,
			iothub.Error{Code: iothub.CodeGatewayTimeout, Message: "Timed out waiting for the response from device.", TrackingID: "t2"}},
		{"string-code", `{"errorCode":"412001","message":"stale"}`, 412, iothub.Error{Code: iothub.CodePreconditionFailed, Message: "stale"}},
		{"not-json", `gateway error`, 502, iothub.Error{Code: 502000, Message: "gateway error"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := iothub.ReadError(tc.status, http.Header{}, []byte(tc.body))
			if diff := cmp.Diff(tc.want, *got); diff != "" {
				t.Errorf("ReadError (-want +got):\n%s", diff)
			}
		})
	}
	rec := httptest.NewRecorder()
	sent := &iothub.Error{Code: iothub.CodeIotHubUnauthorizedAccess, Message: "Unauthorized; hubkit: expired", Reason: "expired", Hints: []string{"mint a new token"}}
	iothub.WriteError(rec, sent, "abc", time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC))
	if rec.Code != 401 || rec.Header().Get(iothub.HeaderErrorCode) != "IotHubUnauthorizedAccess" {
		t.Errorf("WriteError: %d %v", rec.Code, rec.Header())
	}
	back := iothub.ReadError(rec.Code, rec.Header(), rec.Body.Bytes())
	want := *sent
	want.TrackingID = "abc"
	if diff := cmp.Diff(want, *back); diff != "" {
		t.Errorf("round trip (-sent +read):\n%s\nbody %s", diff, rec.Body)
	}
}

// TestMethodTimeouts pins the service API's rules (docs/iothub-behavior.md §4.4): 30 s by
// default, 5-300 s, connect 0-300 s.
func TestMethodTimeouts(t *testing.T) {
	secs := func(n int) *int { return &n }
	for _, tc := range []struct {
		req           iothub.MethodRequest
		resp, connect time.Duration
		bad           bool
	}{
		{req: iothub.MethodRequest{MethodName: "x"}, resp: 30 * time.Second},
		{req: iothub.MethodRequest{MethodName: "x", ResponseTimeoutInSeconds: secs(5), ConnectTimeoutInSeconds: secs(300)}, resp: 5 * time.Second, connect: 300 * time.Second},
		{req: iothub.MethodRequest{MethodName: "x", ResponseTimeoutInSeconds: secs(4)}, bad: true},
		{req: iothub.MethodRequest{MethodName: "x", ResponseTimeoutInSeconds: secs(301)}, bad: true},
		{req: iothub.MethodRequest{MethodName: "x", ConnectTimeoutInSeconds: secs(-1)}, bad: true},
		{req: iothub.MethodRequest{}, bad: true},
	} {
		r, c, err := tc.req.Timeouts()
		if tc.bad != (err != nil) || (!tc.bad && (r != tc.resp || c != tc.connect)) {
			t.Errorf("Timeouts(%+v) = %v, %v, %v", tc.req, r, c, err)
		}
		if tc.bad && !errors.Is(err, iothub.ErrInvalidArgument) {
			t.Errorf("Timeouts(%+v) error %v, want ErrInvalidArgument", tc.req, err)
		}
	}
}
