package restapi_test

import (
	"bufio"
	"context"
	"encoding/base64"
	"encoding/json"
	"io"
	mrand "math/rand/v2"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/hubkit/hubkit/pkg/fakehub/internal/restapi"
	"github.com/hubkit/hubkit/pkg/fakehub/serviceclient"
	"github.com/hubkit/hubkit/pkg/fakehub/serviceclient/servicetest"
	"github.com/hubkit/hubkit/pkg/sas"
)

const testHost = "localhost"

var (
	testNow                 = time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)
	ownerKey, ownerKey2     = servicetest.PolicyKey("iothubowner")
	serviceKey, _           = servicetest.PolicyKey("service")
	regReadKey, regReadKey2 = servicetest.PolicyKey("registryRead")
)

type fixture struct {
	t *testing.T
	s *servicetest.Server
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	s := servicetest.NewServer(servicetest.Options{HostName: testHost, Now: func() time.Time { return testNow },
		Rand: mrand.NewChaCha8([32]byte{1}), PlainHTTP: true})
	t.Cleanup(s.Close)
	return &fixture{t: t, s: s}
}

// token mints a token the way `sastool gen --uri HOST --key KEY --policy P`
// does: sr = the host, skn = the policy.
func token(policy string, key []byte, expiry time.Time) string {
	return sas.Sign(sas.EncodeResource(sas.HubResource(testHost)), policy, key, expiry).String()
}

func ownerToken() string { return token("iothubowner", ownerKey, testNow.Add(time.Hour)) }

// errorBody is IoT Hub's error body.
type errorBody struct{ Message, ExceptionMessage string }

type response struct {
	status int
	header http.Header
	body   string
}

// do sends a request shaped like curl's: the exact headers given, plus
// curl's own User-Agent and Accept.
func (f *fixture) do(method, path, body string, headers ...string) response {
	f.t.Helper()
	req, err := http.NewRequest(method, f.s.URL()+path, strings.NewReader(body))
	if err != nil {
		f.t.Fatal(err)
	}
	req.Header.Set("User-Agent", "curl/8.5.0")
	req.Header.Set("Accept", "*/*")
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Add(headers[i], headers[i+1])
	}
	resp, err := f.s.HTTPClient().Do(req)
	if err != nil {
		f.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		f.t.Fatal(err)
	}
	return response{resp.StatusCode, resp.Header, string(b)}
}

// owner sends with an iothubowner token.
func (f *fixture) owner(method, path, body string, headers ...string) response {
	f.t.Helper()
	return f.do(method, path, body, append([]string{"Authorization", ownerToken()}, headers...)...)
}

func (f *fixture) addDevice(id string) restapi.DeviceJSON {
	f.t.Helper()
	r := f.owner("PUT", "/devices/"+id+"?api-version=2021-04-12", `{"deviceId":"`+id+`"}`, "Content-Type", "application/json")
	if r.status != 200 {
		f.t.Fatalf("PUT device %s = %d %s", id, r.status, r.body)
	}
	return decode[restapi.DeviceJSON](f.t, r.body)
}

func decode[T any](t *testing.T, s string) T {
	t.Helper()
	var v T
	if err := json.Unmarshal([]byte(s), &v); err != nil {
		t.Fatalf("decoding %q: %v", s, err)
	}
	return v
}

func wantError(t *testing.T, r response, status int, code string) {
	t.Helper()
	if r.status != status {
		t.Fatalf("status = %d, want %d (body %s)", r.status, status, r.body)
	}
	e := decode[errorBody](t, r.body)
	if !strings.HasPrefix(e.Message, "ErrorCode:"+code+";") {
		t.Errorf("Message = %q, want prefix ErrorCode:%s;", e.Message, code)
	}
	if !strings.HasPrefix(e.ExceptionMessage, "Tracking ID:") || !strings.Contains(e.ExceptionMessage, "-TimeStamp:01/02/2030 03:04:05") {
		t.Errorf("ExceptionMessage = %q, want Tracking ID:...-G:0-TimeStamp:01/02/2030 03:04:05", e.ExceptionMessage)
	}
	if got := r.header.Get("iothub-errorcode"); got != code {
		t.Errorf("iothub-errorcode = %q, want %q", got, code)
	}
}

func TestDeviceCreateGetListDelete(t *testing.T) {
	f := newFixture(t)
	r := f.owner("PUT", "/devices/dev1?api-version=2021-04-12", `{"deviceId":"dev1"}`, "Content-Type", "application/json")
	if r.status != 200 {
		t.Fatalf("PUT = %d %s", r.status, r.body)
	}
	d := decode[restapi.DeviceJSON](t, r.body)
	if d.DeviceID != "dev1" || d.Status != "enabled" || d.ConnectionState != "Disconnected" || d.ETag == "" || d.GenerationID == "" {
		t.Errorf("created device = %+v", d)
	}
	if d.Authentication == nil || d.Authentication.Type != "sas" || d.Authentication.SymmetricKey == nil {
		t.Fatalf("authentication = %+v", d.Authentication)
	}
	for _, k := range []string{d.Authentication.SymmetricKey.PrimaryKey, d.Authentication.SymmetricKey.SecondaryKey} {
		if b, err := sas.DecodeKey(k); err != nil || len(b) != 32 {
			t.Errorf("generated key %q: %d bytes, %v", k, len(b), err)
		}
	}
	if d.LastActivityTime != "0001-01-01T00:00:00Z" || d.Capabilities == nil || d.Capabilities.IoTEdge {
		t.Errorf("lastActivityTime/capabilities = %q %+v", d.LastActivityTime, d.Capabilities)
	}
	// The raw JSON has IoT Hub's field names.
	for _, field := range []string{`"deviceId"`, `"generationId"`, `"etag"`, `"status"`, `"connectionState"`, `"lastActivityTime"`, `"cloudToDeviceMessageCount"`, `"authentication"`, `"symmetricKey"`, `"primaryKey"`, `"capabilities"`, `"iotEdge"`} {
		if !strings.Contains(r.body, field) {
			t.Errorf("device JSON lacks %s: %s", field, r.body)
		}
	}

	if r := f.owner("GET", "/devices/dev1?api-version=2021-04-12", ""); r.status != 200 || decode[restapi.DeviceJSON](t, r.body).ETag != d.ETag {
		t.Errorf("GET = %d %s", r.status, r.body)
	}
	f.addDevice("dev2")
	r = f.owner("GET", "/devices?api-version=2021-04-12", "")
	list := decode[[]restapi.DeviceJSON](t, r.body)
	if r.status != 200 || len(list) != 2 || list[0].DeviceID != "dev1" || list[1].DeviceID != "dev2" {
		t.Errorf("GET /devices = %d %s", r.status, r.body)
	}
	if r := f.owner("GET", "/devices?top=1&api-version=2021-04-12", ""); len(decode[[]restapi.DeviceJSON](t, r.body)) != 1 {
		t.Errorf("top=1 = %s", r.body)
	}
	if r := f.owner("DELETE", "/devices/dev1?api-version=2021-04-12", "", "If-Match", "*"); r.status != 204 {
		t.Errorf("DELETE = %d %s", r.status, r.body)
	}
	wantError(t, f.owner("GET", "/devices/dev1?api-version=2021-04-12", ""), 404, "DeviceNotFound")
	wantError(t, f.owner("DELETE", "/devices/dev1?api-version=2021-04-12", ""), 404, "DeviceNotFound")
}

func TestDevicePutRules(t *testing.T) {
	f := newFixture(t)
	key := base64.StdEncoding.EncodeToString([]byte("a device key of thirty-two bytes"))
	body := `{"deviceId":"dev1","authentication":{"type":"sas","symmetricKey":{"primaryKey":"` + key + `","secondaryKey":"` + key + `"}}}`
	r := f.owner("PUT", "/devices/dev1?api-version=2021-04-12", body)
	d := decode[restapi.DeviceJSON](t, r.body)
	if r.status != 200 || d.Authentication.SymmetricKey.PrimaryKey != key {
		t.Fatalf("PUT with keys = %d %s", r.status, r.body)
	}
	wantError(t, f.owner("PUT", "/devices/dev1?api-version=2021-04-12", body), 409, "DeviceAlreadyExists")
	wantError(t, f.owner("PUT", "/devices/dev1?api-version=2021-04-12", `{"deviceId":"dev1","status":"disabled"}`, "If-Match", `"stale"`), 412, "PreconditionFailed")

	// Disable with the right etag: keys are kept.
	r = f.owner("PUT", "/devices/dev1?api-version=2021-04-12", `{"deviceId":"dev1","status":"disabled","statusReason":"test"}`, "If-Match", `"`+d.ETag+`"`)
	d2 := decode[restapi.DeviceJSON](t, r.body)
	if r.status != 200 || d2.Status != "disabled" || d2.Authentication.SymmetricKey.PrimaryKey != key || d2.ETag == d.ETag || d2.StatusReason == nil || *d2.StatusReason != "test" {
		t.Errorf("disable = %d %s", r.status, r.body)
	}

	for _, tc := range []struct {
		name, path, body string
		status           int
		code             string
	}{
		{"id-mismatch", "/devices/dev9", `{"deviceId":"other"}`, 400, "ArgumentInvalid"},
		{"bad-status", "/devices/dev9", `{"status":"paused"}`, 400, "ArgumentInvalid"},
		{"x509", "/devices/dev9", `{"authentication":{"type":"selfSigned"}}`, 400, "ArgumentInvalid"},
		{"bad-key", "/devices/dev9", `{"authentication":{"type":"sas","symmetricKey":{"primaryKey":"not base64!"}}}`, 400, "ArgumentInvalid"},
		{"edge", "/devices/dev9", `{"capabilities":{"iotEdge":true}}`, 400, "ArgumentInvalid"},
		{"bad-json", "/devices/dev9", `{"deviceId":`, 400, "IotHubFormatError"},
		{"bad-id", "/devices/a%2Fb", `{}`, 400, "ArgumentInvalid"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			wantError(t, f.owner("PUT", tc.path+"?api-version=2021-04-12", tc.body), tc.status, tc.code)
		})
	}
}

func TestDeviceIDsWithPunctuation(t *testing.T) {
	f := newFixture(t)
	for _, tc := range []struct{ id, path string }{
		{"a$b'(c)", "/devices/a$b'(c)"},
		{"a$b'(c)", "/devices/a%24b%27%28c%29"},
		{"x%y:z=@!", "/devices/x%25y:z=@!"},
		{"q?*", "/devices/q%3F*"},
	} {
		t.Run(tc.path, func(t *testing.T) {
			r := f.owner("PUT", tc.path+"?api-version=2021-04-12", `{}`, "If-Match", "*")
			if r.status != 200 {
				t.Fatalf("PUT %s = %d %s", tc.path, r.status, r.body)
			}
			if got := decode[restapi.DeviceJSON](t, r.body).DeviceID; got != tc.id {
				t.Errorf("PUT %s: deviceId = %q, want %q", tc.path, got, tc.id)
			}
			if r := f.owner("GET", "/twins"+strings.TrimPrefix(tc.path, "/devices")+"?api-version=2021-04-12", ""); r.status != 200 {
				t.Errorf("GET twin = %d %s", r.status, r.body)
			}
		})
	}
}

func TestModules(t *testing.T) {
	f := newFixture(t)
	f.addDevice("dev1")
	r := f.owner("PUT", "/devices/dev1/modules/mod1?api-version=2021-04-12", `{"moduleId":"mod1","deviceId":"dev1","managedBy":"me"}`)
	m := decode[restapi.DeviceJSON](t, r.body)
	if r.status != 200 || m.ModuleID != "mod1" || m.DeviceID != "dev1" || m.ManagedBy != "me" || m.Status != "" || m.Capabilities != nil {
		t.Fatalf("PUT module = %d %s", r.status, r.body)
	}
	wantError(t, f.owner("PUT", "/devices/dev1/modules/mod1?api-version=2021-04-12", `{}`), 409, "ModuleAlreadyExistsOnDevice")
	if r := f.owner("GET", "/devices/dev1/modules/mod1?api-version=2021-04-12", ""); r.status != 200 {
		t.Errorf("GET module = %d %s", r.status, r.body)
	}
	r = f.owner("GET", "/devices/dev1/modules?api-version=2021-04-12", "")
	if l := decode[[]restapi.DeviceJSON](t, r.body); r.status != 200 || len(l) != 1 || l[0].ModuleID != "mod1" {
		t.Errorf("GET modules = %d %s", r.status, r.body)
	}
	r = f.owner("GET", "/twins/dev1/modules/mod1?api-version=2021-04-12", "")
	if tw := decode[restapi.TwinJSON](t, r.body); r.status != 200 || tw.ModuleID != "mod1" {
		t.Errorf("GET module twin = %d %s", r.status, r.body)
	}
	r = f.owner("PATCH", "/twins/dev1/modules/mod1?api-version=2021-04-12", `{"properties":{"desired":{"a":1}}}`)
	if r.status != 200 || !strings.Contains(r.body, `"a":1`) {
		t.Errorf("PATCH module twin = %d %s", r.status, r.body)
	}
	if r := f.owner("DELETE", "/devices/dev1/modules/mod1?api-version=2021-04-12", ""); r.status != 204 {
		t.Errorf("DELETE module = %d %s", r.status, r.body)
	}
	wantError(t, f.owner("GET", "/devices/dev1/modules/mod1?api-version=2021-04-12", ""), 404, "ModuleNotFound")
	wantError(t, f.owner("GET", "/devices/nodev/modules?api-version=2021-04-12", ""), 404, "DeviceNotFound")
}

func TestTwins(t *testing.T) {
	f := newFixture(t)
	f.addDevice("dev1")
	r := f.owner("GET", "/twins/dev1?api-version=2021-04-12", "")
	tw := decode[restapi.TwinJSON](t, r.body)
	if r.status != 200 || tw.DeviceID != "dev1" || tw.ETag != "AAAAAAAAAAE=" || tw.Version != 1 || tw.Status != "enabled" || tw.AuthenticationType != "sas" {
		t.Fatalf("GET twin = %d %s", r.status, r.body)
	}
	if !strings.Contains(r.body, `"properties":{"desired":{"$version":1},"reported":{"$version":1}}`) {
		t.Errorf("twin properties: %s", r.body)
	}
	if got := r.header.Get("ETag"); got != `"AAAAAAAAAAE="` {
		t.Errorf("ETag header = %q", got)
	}

	r = f.owner("PATCH", "/twins/dev1?api-version=2021-04-12", `{"tags":{"site":"lab"},"properties":{"desired":{"interval":5}}}`, "If-Match", `"AAAAAAAAAAE="`)
	tw = decode[restapi.TwinJSON](t, r.body)
	if r.status != 200 || tw.Version != 2 || string(tw.Tags) != `{"site":"lab"}` || !strings.Contains(string(tw.Properties.Desired), `"interval":5`) {
		t.Fatalf("PATCH twin = %d %s", r.status, r.body)
	}
	wantError(t, f.owner("PATCH", "/twins/dev1?api-version=2021-04-12", `{"tags":{"x":1}}`, "If-Match", `"AAAAAAAAAAE="`), 412, "PreconditionFailed")
	wantError(t, f.owner("PATCH", "/twins/dev1?api-version=2021-04-12", `{"properties":{"reported":{"x":1}}}`), 400, "ArgumentInvalid")
	wantError(t, f.owner("PATCH", "/twins/dev1?api-version=2021-04-12", `{"tags":[1]}`), 400, "ArgumentInvalid")

	// PUT replaces.
	r = f.owner("PUT", "/twins/dev1?api-version=2021-04-12", `{"tags":{"other":true},"properties":{"desired":{}}}`, "If-Match", "*")
	tw = decode[restapi.TwinJSON](t, r.body)
	if r.status != 200 || string(tw.Tags) != `{"other":true}` || strings.Contains(string(tw.Properties.Desired), "interval") {
		t.Errorf("PUT twin = %d %s", r.status, r.body)
	}
	wantError(t, f.owner("GET", "/twins/nodev?api-version=2021-04-12", ""), 404, "DeviceNotFound")
}

func TestInvokeMethod(t *testing.T) {
	f := newFixture(t)
	f.addDevice("dev1")
	path := "/twins/dev1/methods?api-version=2021-04-12"
	wantError(t, f.owner("POST", path, `{"methodName":"reboot","payload":{},"responseTimeoutInSeconds":30,"connectTimeoutInSeconds":0}`), 404, "DeviceNotOnline")
	f.s.SetOnline("dev1", true)
	wantError(t, f.owner("POST", path, `{"methodName":"reboot","responseTimeoutInSeconds":5}`), 504, "GatewayTimeout")
	f.s.HandleMethod("reboot", 200, json.RawMessage(`{"ok":true}`))
	r := f.owner("POST", path, `{"methodName":"reboot","payload":{"delay":1},"responseTimeoutInSeconds":10,"connectTimeoutInSeconds":2}`, "Content-Type", "application/json")
	if r.status != 200 || r.body != `{"status":200,"payload":{"ok":true}}` {
		t.Fatalf("invoke = %d %s", r.status, r.body)
	}
	want := serviceclient.MethodCall{Name: "reboot", Payload: json.RawMessage(`{"delay":1}`), ResponseTimeout: 10 * time.Second, ConnectTimeout: 2 * time.Second}
	if diff := cmp.Diff(want, last(f.s.MethodCalls())); diff != "" {
		t.Errorf("backend request (-want +got):\n%s", diff)
	}
	f.s.HandleMethod("empty", 404, nil)
	if r := f.owner("POST", path, `{"methodName":"empty"}`); r.body != `{"status":404,"payload":null}` {
		t.Errorf("empty payload answer = %s", r.body)
	}
	if c := last(f.s.MethodCalls()); c.ResponseTimeout != 30*time.Second || string(c.Payload) != "null" {
		t.Errorf("defaults = %+v", c)
	}
	for _, body := range []string{`{}`, `{"methodName":"x","responseTimeoutInSeconds":4}`, `{"methodName":"x","responseTimeoutInSeconds":301}`, `{"methodName":"x","connectTimeoutInSeconds":-1}`} {
		wantError(t, f.owner("POST", path, body), 400, "ArgumentInvalid")
	}
	// Module variant.
	f.owner("PUT", "/devices/dev1/modules/m1?api-version=2021-04-12", `{}`)
	f.s.SetOnline("dev1/m1", true)
	if r := f.owner("POST", "/twins/dev1/modules/m1/methods?api-version=2021-04-12", `{"methodName":"reboot"}`); r.status != 200 {
		t.Errorf("module invoke = %d %s", r.status, r.body)
	}
}

func TestC2DHeaderMapping(t *testing.T) {
	f := newFixture(t)
	f.addDevice("dev1")
	r := f.owner("POST", "/devices/dev1/messages/devicebound?api-version=2021-04-12", `{"cmd":"on"}`,
		"Content-Type", "application/json",
		"iothub-messageid", "mid-1",
		"iothub-correlationid", "cid-1",
		"iothub-userid", "alice",
		"iothub-ack", "full",
		"iothub-expiry", "2030-01-02T04:04:05Z",
		"iothub-contentencoding", "utf-8",
		"iothub-app-alertlevel", "high",
		"X-Hubkit-Properties", "camelCase=Yes&sp%20ace=a%26b",
	)
	if r.status != 201 {
		t.Fatalf("send = %d %s", r.status, r.body)
	}
	st := decode[restapi.C2DStatusJSON](t, r.body)
	if st.MessageID != "mid-1" || st.State != restapi.C2DQueued || r.header.Get("iothub-messageid") != "mid-1" {
		t.Errorf("status = %s, headers %v", r.body, r.header)
	}
	if got := r.header.Get("Location"); got != "/devices/dev1/messages/devicebound/mid-1?api-version=2021-04-12" {
		t.Errorf("Location = %q", got)
	}
	want := serviceclient.Message{
		MessageID: "mid-1", CorrelationID: "cid-1", UserID: "alice", To: "/devices/dev1/messages/deviceBound",
		Ack: "full", Expiry: time.Date(2030, 1, 2, 4, 4, 5, 0, time.UTC), ContentType: "application/json",
		ContentEncoding: "utf-8", Properties: map[string]string{"alertlevel": "high", "camelCase": "Yes", "sp ace": "a&b"},
		Body: []byte(`{"cmd":"on"}`),
	}
	if diff := cmp.Diff(want, f.s.C2DMessages("dev1")[0]); diff != "" {
		t.Errorf("message (-want +got):\n%s", diff)
	}

	// curl -d defaults: form content type is not the message's; an ID is generated.
	r = f.owner("POST", "/devices/dev1/messages/devicebound?api-version=2021-04-12", "hello", "Content-Type", "application/x-www-form-urlencoded")
	st = decode[restapi.C2DStatusJSON](t, r.body)
	if m := f.s.C2DMessages("dev1")[1]; r.status != 201 || len(st.MessageID) != 36 || m.ContentType != "" || m.Ack != "" {
		t.Errorf("plain send = %d %s %+v", r.status, r.body, m)
	}

	r = f.owner("GET", "/devices/dev1/messages/devicebound/mid-1?api-version=2021-04-12", "")
	if r.status != 200 || decode[restapi.C2DStatusJSON](t, r.body).State != "queued" {
		t.Errorf("GET state = %d %s", r.status, r.body)
	}
	r = f.owner("GET", "/devices/dev1/messages/devicebound?api-version=2021-04-12", "")
	if l := decode[[]restapi.C2DStatusJSON](t, r.body); r.status != 200 || len(l) != 2 {
		t.Errorf("GET states = %d %s", r.status, r.body)
	}
	wantError(t, f.owner("GET", "/devices/dev1/messages/devicebound/nope?api-version=2021-04-12", ""), 404, "MessageNotFound")

	for _, tc := range []struct {
		name    string
		headers []string
		body    string
		status  int
		code    string
	}{
		{"bad-ack", []string{"iothub-ack", "maybe"}, "x", 400, "ArgumentInvalid"},
		{"bad-expiry", []string{"iothub-expiry", "tomorrow"}, "x", 400, "ArgumentInvalid"},
		{"system-in-bag", []string{"X-Hubkit-Properties", "$.mid=x"}, "x", 400, "ArgumentInvalid"},
		{"too-large", nil, strings.Repeat("x", restapi.MaxC2DBody+1), 413, "MessageTooLarge"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			wantError(t, f.owner("POST", "/devices/dev1/messages/devicebound?api-version=2021-04-12", tc.body, tc.headers...), tc.status, tc.code)
		})
	}
	f.s.SetQueueLimit(2)
	wantError(t, f.owner("POST", "/devices/dev1/messages/devicebound?api-version=2021-04-12", "x"), 403, "DeviceMaximumQueueDepthExceeded")
	wantError(t, f.owner("POST", "/devices/nodev/messages/devicebound?api-version=2021-04-12", "x"), 404, "DeviceNotFound")

	// IoT Hub's purge route, and the feedback it produces for ack=full.
	r = f.owner("DELETE", "/devices/dev1/commands?api-version=2021-04-12", "")
	if r.status != 200 || r.body != `{"deviceId":"dev1","totalMessagesPurged":2}` {
		t.Errorf("purge = %d %s", r.status, r.body)
	}
	r = f.owner("GET", "/hubkit/feedback", "")
	if want := `[{"originalMessageId":"mid-1","deviceId":"dev1","statusCode":"Purged","description":"Message purged","enqueuedTimeUtc":"2030-01-02T03:04:05Z"}]`; r.status != 200 || r.body != want {
		t.Errorf("feedback = %d %s, want %s", r.status, r.body, want)
	}
}

func TestAuthorization(t *testing.T) {
	f := newFixture(t)
	f.addDevice("dev1")
	f.addDevice("dev10")
	dev0 := f.addDevice("dev0")
	deviceKey, _ := sas.DecodeKey(dev0.Authentication.SymmetricKey.PrimaryKey)
	dev1Scoped := sas.Sign(sas.EncodeResource(testHost+"/devices/dev1"), "iothubowner", ownerKey, testNow.Add(time.Hour)).String()
	for _, tc := range []struct {
		name, method, path, auth string
		reason                   sas.Reason
	}{
		{"missing", "GET", "/devices/dev1", "", sas.ReasonNoPassword},
		{"malformed", "GET", "/devices/dev1", "Bearer abc", sas.ReasonMalformed},
		{"expired", "GET", "/devices/dev1", token("iothubowner", ownerKey, testNow.Add(-time.Hour)), sas.ReasonExpired},
		{"bad-signature", "GET", "/devices/dev1", token("iothubowner", serviceKey, testNow.Add(time.Hour)), sas.ReasonSignatureMismatch},
		{"unknown-policy", "GET", "/devices/dev1", token("nobody", ownerKey, testNow.Add(time.Hour)), sas.ReasonUnknownPolicy},
		{"device-token", "GET", "/devices/dev1", sas.Sign(sas.EncodeResource(sas.DeviceResource(testHost, "dev1")), "", deviceKey, testNow.Add(time.Hour)).String(), sas.ReasonUnknownPolicy},
		{"other-host", "GET", "/devices/dev1", sas.Sign("otherhub.azure-devices.net", "iothubowner", ownerKey, testNow.Add(time.Hour)).String(), sas.ReasonHostMismatch},
		{"registryRead-put", "PUT", "/devices/dev2", token("registryRead", regReadKey, testNow.Add(time.Hour)), sas.ReasonPolicyPermission},
		{"registryRead-twin", "GET", "/twins/dev1", token("registryRead", regReadKey, testNow.Add(time.Hour)), sas.ReasonPolicyPermission},
		{"service-registry", "GET", "/devices", token("service", serviceKey, testNow.Add(time.Hour)), sas.ReasonPolicyPermission},
		{"registryRead-telemetry", "GET", "/hubkit/telemetry", token("registryRead", regReadKey, testNow.Add(time.Hour)), sas.ReasonPolicyPermission},
		{"scoped-dev1-for-dev10", "GET", "/devices/dev10", dev1Scoped, sas.ReasonScopeMismatch},
		{"scoped-dev1-for-twin-dev1", "GET", "/twins/dev1", dev1Scoped, sas.ReasonScopeMismatch},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var h []string
			if tc.auth != "" {
				h = []string{"Authorization", tc.auth}
			}
			r := f.do(tc.method, tc.path+"?api-version=2021-04-12", `{}`, h...)
			wantError(t, r, 401, "IotHubUnauthorizedAccess")
			if got := r.header.Get(restapi.HeaderReason); got != string(tc.reason) {
				t.Errorf("%s = %q, want %q (body %s)", restapi.HeaderReason, got, tc.reason, r.body)
			}
			msg := decode[errorBody](t, r.body).Message
			if !strings.Contains(msg, "ErrorCode:IotHubUnauthorizedAccess;Unauthorized; hubkit: "+string(tc.reason)) {
				t.Errorf("Message = %q", msg)
			}
			// No secrets echoed: neither keys nor the signature.
			secrets := []string{base64.StdEncoding.EncodeToString(ownerKey), string(ownerKey)}
			if tok, err := sas.Parse(tc.auth); err == nil {
				secrets = append(secrets, tok.Signature, url.QueryEscape(tok.Signature))
			}
			for _, secret := range secrets {
				if strings.Contains(r.body, secret) {
					t.Errorf("body echoes a secret %q: %s", secret, r.body)
				}
			}
		})
	}
	if r := f.owner("GET", "/devices/dev2?api-version=2021-04-12", ""); r.status != 404 {
		t.Errorf("registryRead created a device: %d %s", r.status, r.body)
	}
	// Rights that are enough.
	for _, tc := range []struct{ method, path, auth string }{
		{"GET", "/devices/dev1", token("registryRead", regReadKey, testNow.Add(time.Hour))},
		{"GET", "/twins/dev1", token("service", serviceKey, testNow.Add(time.Hour))},
		{"GET", "/devices/dev1", token("iothubowner", ownerKey2, testNow.Add(time.Hour))},   // secondary key
		{"GET", "/devices/dev1", token("iothubowner", ownerKey, testNow.Add(-time.Minute))}, // within skew
		{"GET", "/devices/dev1", dev1Scoped},
	} {
		if r := f.do(tc.method, tc.path+"?api-version=2021-04-12", "", "Authorization", tc.auth); r.status != 200 {
			t.Errorf("%s %s = %d %s", tc.method, tc.path, r.status, r.body)
		}
	}
}

func TestAPIVersionAndRoutes(t *testing.T) {
	f := newFixture(t)
	f.addDevice("dev1")
	wantError(t, f.owner("GET", "/devices/dev1", ""), 400, "InvalidProtocolVersion")
	wantError(t, f.owner("POST", "/devices/dev1?api-version=2021-04-12", ""), 405, "MethodNotAllowed")
	wantError(t, f.owner("GET", "/nothing", ""), 404, "NotFound")
	if r := f.owner("GET", "/devices/dev1?api-version=2020-09-30", ""); r.status != 200 {
		t.Errorf("other api-version = %d", r.status)
	}
	if r := f.owner("GET", "/hubkit/rejections", ""); r.status != 200 {
		t.Errorf("rejections without api-version = %d %s", r.status, r.body)
	}
	if len(restapi.Routes()) != 23 {
		t.Errorf("restapi.Routes() = %d routes", len(restapi.Routes()))
	}
}

func TestRejections(t *testing.T) {
	f := newFixture(t)
	f.s.AddRejection(serviceclient.Rejection{Time: testNow, RemoteAddr: "127.0.0.1:5000", ClientID: "dev1", DeviceID: "dev1",
		Reason: "expired", Detail: "token expired", Hints: []string{"renew it"}})
	r := f.owner("GET", "/hubkit/rejections", "")
	want := `[{"time":"2030-01-02T03:04:05Z","remoteAddr":"127.0.0.1:5000","clientId":"dev1","deviceId":"dev1","reason":"expired","detail":"token expired","hints":["renew it"]}]`
	if r.status != 200 || r.body != want {
		t.Errorf("rejections = %d %s\nwant %s", r.status, r.body, want)
	}
}

func rec(dev, body string, at time.Time) serviceclient.Event {
	return serviceclient.Event{DeviceID: dev, EnqueuedTime: at, Topic: "devices/" + dev + "/messages/events/",
		SystemProperties: map[string]string{"$.ct": "application/json"}, Properties: map[string]string{"k": "v"}, Body: []byte(body)}
}

func TestTelemetryList(t *testing.T) {
	f := newFixture(t)
	f.s.Publish(rec("dev1", `{"t":1}`, testNow))
	f.s.Publish(rec("dev2", `plain text`, testNow.Add(time.Second)))
	f.s.Publish(rec("dev1", "\xff\xfe", testNow.Add(2*time.Second)))
	r := f.owner("GET", "/hubkit/telemetry", "")
	if r.status != 200 || r.header.Get("Content-Type") != "application/x-ndjson" {
		t.Fatalf("telemetry = %d %v", r.status, r.header)
	}
	lines := strings.Split(strings.TrimSuffix(r.body, "\n"), "\n")
	want := []string{
		`{"deviceId":"dev1","enqueuedTime":"2030-01-02T03:04:05Z","topic":"devices/dev1/messages/events/","systemProperties":{"$.ct":"application/json"},"properties":{"k":"v"},"payload":{"t":1},"bodyBase64":"eyJ0IjoxfQ=="}`,
		`{"deviceId":"dev2","enqueuedTime":"2030-01-02T03:04:06Z","topic":"devices/dev2/messages/events/","systemProperties":{"$.ct":"application/json"},"properties":{"k":"v"},"payload":"plain text","bodyBase64":"cGxhaW4gdGV4dA=="}`,
		`{"deviceId":"dev1","enqueuedTime":"2030-01-02T03:04:07Z","topic":"devices/dev1/messages/events/","systemProperties":{"$.ct":"application/json"},"properties":{"k":"v"},"bodyBase64":"//4="}`,
	}
	if diff := cmp.Diff(want, lines); diff != "" {
		t.Errorf("NDJSON (-want +got):\n%s", diff)
	}
	for _, tc := range []struct {
		query string
		n     int
	}{
		{"?device=dev1", 2}, {"?count=1", 1}, {"?since=2030-01-02T03:04:06Z", 2}, {"?device=dev2&count=5", 1},
	} {
		r := f.owner("GET", "/hubkit/telemetry"+tc.query, "")
		if got := strings.Count(r.body, "\n"); got != tc.n {
			t.Errorf("telemetry%s: %d lines, want %d: %s", tc.query, got, tc.n, r.body)
		}
	}
	for _, q := range []string{"?follow=maybe", "?count=-1", "?since=yesterday"} {
		wantError(t, f.owner("GET", "/hubkit/telemetry"+q, ""), 400, "ArgumentInvalid")
	}
}

func TestTelemetryFollowStreams(t *testing.T) {
	f := newFixture(t)
	f.s.Publish(rec("dev1", `{"n":0}`, testNow))
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "GET", f.s.URL()+"/hubkit/telemetry?device=dev1&follow=true", nil)
	req.Header.Set("Authorization", ownerToken())
	resp, err := f.s.HTTPClient().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	next := func() restapi.EventJSON {
		t.Helper()
		if !sc.Scan() {
			t.Fatalf("stream ended: %v", sc.Err())
		}
		return decode[restapi.EventJSON](t, sc.Text())
	}
	if e := next(); string(e.Payload) != `{"n":0}` {
		t.Errorf("first = %+v", e)
	}
	// Each new message arrives as soon as it is published (flushed per message).
	for i := 1; i <= 3; i++ {
		f.s.Publish(rec("dev2", `{"other":true}`, testNow))
		f.s.Publish(rec("dev1", `{"n":`+string(rune('0'+i))+`}`, testNow))
		if e := next(); string(e.Payload) != `{"n":`+string(rune('0'+i))+`}` || e.DeviceID != "dev1" {
			t.Errorf("message %d = %+v", i, e)
		}
	}
	cancel() // the client goes away; the handler must return (checked by srv.Close in Cleanup)

	// follow with count ends the stream by itself.
	r := f.owner("GET", "/hubkit/telemetry?device=dev1&follow=true&count=2", "")
	if got := strings.Count(r.body, "\n"); r.status != 200 || got != 2 {
		t.Errorf("follow&count=2: %d lines: %s", got, r.body)
	}
}

func TestTLS(t *testing.T) {
	s := servicetest.NewServer(servicetest.Options{HostName: testHost, Now: func() time.Time { return testNow }})
	defer s.Close()
	req, _ := http.NewRequest("GET", s.URL()+"/devices?api-version=2021-04-12", nil)
	req.Header.Set("Authorization", ownerToken())
	resp, err := s.HTTPClient().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Errorf("GET /devices over TLS = %d", resp.StatusCode)
	}
}

func last[T any](s []T) T {
	var zero T
	if len(s) == 0 {
		return zero
	}
	return s[len(s)-1]
}
