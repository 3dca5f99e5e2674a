package restapi_test

import (
	"bufio"
	"context"
	"crypto/tls"
	"encoding/base64"
	"encoding/json"
	"github.com/hubkit/hubkit/internal/testutil"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/hubkit/hubkit/internal/mqttraw"
	"github.com/hubkit/hubkit/pkg/fakehub/internal/restapi"
	"github.com/hubkit/hubkit/pkg/iothub"
	"github.com/hubkit/hubkit/pkg/sas"
)

var (
	dev1 = iothub.Identity{DeviceID: "dev1"}
	dev2 = iothub.Identity{DeviceID: "dev2"}
)

func TestDeviceCreateGetListDelete(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	r := f.owner("PUT", "/devices/dev1"+av, `{"deviceId":"dev1"}`, "Content-Type", "application/json")
	if r.status != 200 {
		t.Fatalf("PUT = %d %s", r.status, r.body)
	}
	d := decode[iothub.Device](t, r.body)
	if d.DeviceID != "dev1" || d.Status != iothub.StatusEnabled || d.ConnectionState != iothub.StateDisconnected || d.ETag == "" || d.GenerationID == "" {
		t.Errorf("created device = %+v", d)
	}
	if d.Authentication.Type != iothub.AuthSAS {
		t.Errorf("authentication = %+v", d.Authentication)
	}
	k := d.Authentication.SymmetricKey
	for _, key := range []string{k.PrimaryKey, k.SecondaryKey} {
		if b, err := sas.DecodeKey(key); err != nil || len(b) != 32 {
			t.Errorf("generated key %q: %d bytes, %v", key, len(b), err)
		}
	}
	if k.PrimaryKey == k.SecondaryKey {
		t.Errorf("primary and secondary keys are the same: %q", k.PrimaryKey)
	}
	if !d.LastActivityTime.IsZero() || d.Capabilities.IoTEdge {
		t.Errorf("lastActivityTime/capabilities = %v %+v", d.LastActivityTime, d.Capabilities)
	}
	// The JSON has IoT Hub's field names and renders what is unknown as the hub does.
	got := members(t, r.body)
	for _, field := range []string{"deviceId", "generationId", "etag", "status", "statusReason", "connectionState", "connectionStateUpdatedTime",
		"statusUpdatedTime", "lastActivityTime", "cloudToDeviceMessageCount", "authentication", "capabilities"} {
		if _, found := slices.BinarySearch(got, field); !found {
			t.Errorf("device JSON lacks %q: %s", field, r.body)
		}
	}
	raw := decode[map[string]json.RawMessage](t, r.body)
	jsonEqual(t, "statusReason", string(raw["statusReason"]), `null`)
	jsonEqual(t, "lastActivityTime", string(raw["lastActivityTime"]), `"0001-01-01T00:00:00Z"`)
	jsonEqual(t, "capabilities", string(raw["capabilities"]), `{"iotEdge":false}`)
	jsonEqual(t, "authentication", string(raw["authentication"]), `{"type":"sas",
		"symmetricKey":{"primaryKey":"`+k.PrimaryKey+`","secondaryKey":"`+k.SecondaryKey+`"},
		"x509Thumbprint":{"primaryThumbprint":null,"secondaryThumbprint":null}}`)
	// It is the hub's registry that holds it.
	if stored, ok := f.hub.Registry().Get(dev1); !ok || stored.ETag != d.ETag || stored.Authentication.SymmetricKey != k {
		t.Errorf("registry has %+v, %v; want the device just created", stored, ok)
	}

	if r := f.owner("GET", "/devices/dev1"+av, ""); r.status != 200 || decode[iothub.Device](t, r.body).ETag != d.ETag {
		t.Errorf("GET = %d %s", r.status, r.body)
	}
	f.addDevice("dev2")
	r = f.owner("GET", "/devices"+av, "")
	list := decode[[]iothub.Device](t, r.body)
	if r.status != 200 || len(list) != 2 || list[0].DeviceID != "dev1" || list[1].DeviceID != "dev2" {
		t.Errorf("GET /devices = %d %s", r.status, r.body)
	}
	if r := f.owner("GET", "/devices?top=1&api-version=2021-04-12", ""); len(decode[[]iothub.Device](t, r.body)) != 1 {
		t.Errorf("top=1 = %s", r.body)
	}
	wantError(t, f.owner("GET", "/devices?top=many&api-version=2021-04-12", ""), 400, "ArgumentInvalid")

	// The live fields come from the hub's sessions.
	f.connect(dev2)
	d2 := decode[iothub.Device](t, f.owner("GET", "/devices/dev2"+av, "").body)
	if d2.ConnectionState != iothub.StateConnected || !d2.ConnectionStateUpdatedTime.Equal(testNow) {
		t.Errorf("connected dev2: connectionState %q since %v, want Connected since %v", d2.ConnectionState, d2.ConnectionStateUpdatedTime, testNow)
	}

	if r := f.owner("DELETE", "/devices/dev1"+av, "", "If-Match", "*"); r.status != 204 || r.body != "" {
		t.Errorf("DELETE = %d %q", r.status, r.body)
	}
	if _, ok := f.hub.Registry().Get(dev1); ok {
		t.Error("DELETE left dev1 in the registry")
	}
	wantError(t, f.owner("GET", "/devices/dev1"+av, ""), 404, "DeviceNotFound")
	wantError(t, f.owner("DELETE", "/devices/dev1"+av, ""), 404, "DeviceNotFound")
}

func TestDevicePutRules(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	key := base64.StdEncoding.EncodeToString([]byte("a device key of thirty-two bytes"))
	key2 := base64.StdEncoding.EncodeToString([]byte("another key, thirty-two bytes..."))
	body := `{"deviceId":"dev1","authentication":{"type":"sas","symmetricKey":{"primaryKey":"` + key + `","secondaryKey":"` + key2 + `"}}}`
	r := f.owner("PUT", "/devices/dev1"+av, body)
	d := decode[iothub.Device](t, r.body)
	if r.status != 200 || d.Authentication.SymmetricKey != (iothub.SymmetricKey{PrimaryKey: key, SecondaryKey: key2}) {
		t.Fatalf("PUT with keys = %d %s", r.status, r.body)
	}
	wantError(t, f.owner("PUT", "/devices/dev1"+av, body), 409, "DeviceAlreadyExists")
	wantError(t, f.owner("PUT", "/devices/dev1"+av, `{"status":"disabled"}`, "If-Match", `"stale"`), 412, "PreconditionFailed")
	wantError(t, f.owner("PUT", "/devices/dev1"+av, `{"status":"disabled"}`, "If-Match", `stale`), 412, "PreconditionFailed")
	wantError(t, f.owner("PUT", "/devices/nodev"+av, `{}`, "If-Match", `"`+d.ETag+`"`), 404, "DeviceNotFound") // an etag: update only

	// Disable with the right etag, quoted as the SDKs send it: keys are kept, and the
	// connected device is dropped.
	dc := f.connect(dev1)
	r = f.owner("PUT", "/devices/dev1"+av, `{"deviceId":"dev1","status":"disabled","statusReason":"test"}`, "If-Match", `"`+d.ETag+`"`)
	d2 := decode[iothub.Device](t, r.body)
	if r.status != 200 || d2.Status != iothub.StatusDisabled || d2.Authentication.SymmetricKey.PrimaryKey != key || d2.ETag == d.ETag || d2.StatusReason != "test" || d2.GenerationID != d.GenerationID {
		t.Errorf("disable = %d %s", r.status, r.body)
	}
	if err := dc.c.ExpectClosed(5 * time.Second); err != nil {
		t.Errorf("disabling dev1 left its connection open: %v", err)
	}
	// Enable again with the bare etag.
	r = f.owner("PUT", "/devices/dev1"+av, `{"status":"enabled"}`, "If-Match", d2.ETag)
	d3 := decode[iothub.Device](t, r.body)
	if r.status != 200 || d3.Status != iothub.StatusEnabled || d3.ETag == d2.ETag {
		t.Errorf("enable with a bare etag = %d %s", r.status, r.body)
	}

	// DELETE follows the same If-Match rule, quoted or bare.
	wantError(t, f.owner("DELETE", "/devices/dev1"+av, "", "If-Match", `"`+d2.ETag+`"`), 412, "PreconditionFailed")
	if r := f.owner("DELETE", "/devices/dev1"+av, "", "If-Match", `"`+d3.ETag+`"`); r.status != 204 {
		t.Errorf("DELETE with the quoted etag = %d %s", r.status, r.body)
	}
	d4 := f.addDevice("dev4")
	wantError(t, f.owner("DELETE", "/devices/dev4"+av, "", "If-Match", "stale"), 412, "PreconditionFailed")
	if r := f.owner("DELETE", "/devices/dev4"+av, "", "If-Match", d4.ETag); r.status != 204 {
		t.Errorf("DELETE with the bare etag = %d %s", r.status, r.body)
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
			wantError(t, f.owner("PUT", tc.path+av, tc.body), tc.status, tc.code)
		})
	}
	if _, ok := f.hub.Registry().Get(iothub.Identity{DeviceID: "dev9"}); ok {
		t.Error("a refused PUT created dev9")
	}
}

func TestDeviceIDsWithPunctuation(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	for _, tc := range []struct{ id, path string }{
		{"a$b'(c)", "/devices/a$b'(c)"},
		{"a$b'(c)", "/devices/a%24b%27%28c%29"},
		{"x%y:z=@!", "/devices/x%25y:z=@!"},
		{"q?*", "/devices/q%3F*"},
	} {
		t.Run(tc.path, func(t *testing.T) {
			r := f.owner("PUT", tc.path+av, `{}`, "If-Match", "*")
			if r.status != 200 {
				t.Fatalf("PUT %s = %d %s", tc.path, r.status, r.body)
			}
			if got := decode[iothub.Device](t, r.body).DeviceID; got != tc.id {
				t.Errorf("PUT %s: deviceId = %q, want %q", tc.path, got, tc.id)
			}
			if _, ok := f.hub.Registry().Get(iothub.Identity{DeviceID: tc.id}); !ok {
				t.Errorf("%q is not in the registry", tc.id)
			}
			if r := f.owner("GET", "/twins"+strings.TrimPrefix(tc.path, "/devices")+av, ""); r.status != 200 || decode[iothub.Twin](t, r.body).DeviceID != tc.id {
				t.Errorf("GET twin = %d %s", r.status, r.body)
			}
		})
	}
}

func TestModules(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	f.addDevice("dev1")
	r := f.owner("PUT", "/devices/dev1/modules/mod1"+av, `{"moduleId":"mod1","deviceId":"dev1","managedBy":"me"}`)
	m := decode[iothub.Device](t, r.body)
	if r.status != 200 || m.ModuleID != "mod1" || m.DeviceID != "dev1" || m.ManagedBy != "me" || m.ETag == "" {
		t.Fatalf("PUT module = %d %s", r.status, r.body)
	}
	// A module has no device-only fields.
	for _, field := range members(t, r.body) {
		switch field {
		case "status", "statusReason", "statusUpdatedTime", "capabilities":
			t.Errorf("module JSON has %q: %s", field, r.body)
		}
	}
	wantError(t, f.owner("PUT", "/devices/dev1/modules/mod1"+av, `{}`), 409, "ModuleAlreadyExistsOnDevice")
	wantError(t, f.owner("PUT", "/devices/dev1/modules/mod9"+av, `{"moduleId":"other"}`), 400, "ArgumentInvalid")
	wantError(t, f.owner("PUT", "/devices/nodev/modules/mod1"+av, `{}`), 404, "DeviceNotFound")
	if r := f.owner("GET", "/devices/dev1/modules/mod1"+av, ""); r.status != 200 || decode[iothub.Device](t, r.body).ETag != m.ETag {
		t.Errorf("GET module = %d %s", r.status, r.body)
	}
	r = f.owner("GET", "/devices/dev1/modules"+av, "")
	if l := decode[[]iothub.Device](t, r.body); r.status != 200 || len(l) != 1 || l[0].ModuleID != "mod1" {
		t.Errorf("GET modules = %d %s", r.status, r.body)
	}
	if l := decode[[]iothub.Device](t, f.owner("GET", "/devices"+av, "").body); len(l) != 1 || l[0].ModuleID != "" {
		t.Errorf("GET /devices lists modules: %+v", l)
	}
	r = f.owner("GET", "/twins/dev1/modules/mod1"+av, "")
	if tw := decode[iothub.Twin](t, r.body); r.status != 200 || tw.DeviceID != "dev1" || tw.ModuleID != "mod1" || tw.Capabilities != nil {
		t.Errorf("GET module twin = %d %s", r.status, r.body)
	}
	r = f.owner("PATCH", "/twins/dev1/modules/mod1"+av, `{"properties":{"desired":{"a":1}}}`)
	if tw := decode[iothub.Twin](t, r.body); r.status != 200 || desiredValue(t, tw, "a") != "1" || tw.DesiredVersion() != 2 {
		t.Errorf("PATCH module twin = %d %s", r.status, r.body)
	}
	if r := f.owner("DELETE", "/devices/dev1/modules/mod1"+av, ""); r.status != 204 {
		t.Errorf("DELETE module = %d %s", r.status, r.body)
	}
	wantError(t, f.owner("GET", "/devices/dev1/modules/mod1"+av, ""), 404, "ModuleNotFound")
	wantError(t, f.owner("GET", "/twins/dev1/modules/mod1"+av, ""), 404, "ModuleNotFound")
	wantError(t, f.owner("GET", "/devices/nodev/modules"+av, ""), 404, "DeviceNotFound")
}

// desiredValue returns the JSON of one desired property of a twin.
func desiredValue(t testing.TB, tw iothub.Twin, name string) string {
	t.Helper()
	return string(decode[map[string]json.RawMessage](t, string(tw.Properties.Desired))[name])
}

func TestTwins(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	f.addDevice("dev1")
	r := f.owner("GET", "/twins/dev1"+av, "")
	tw := decode[iothub.Twin](t, r.body)
	if r.status != 200 || tw.DeviceID != "dev1" || tw.ETag != "AAAAAAAAAAE=" || tw.Version != 1 || tw.Status != iothub.StatusEnabled ||
		tw.AuthenticationType != iothub.AuthSAS || tw.ConnectionState != iothub.StateDisconnected || tw.Tags != nil {
		t.Fatalf("GET twin = %d %s", r.status, r.body)
	}
	// The service's view: each section with its $version and $metadata.
	for name, sec := range map[string]json.RawMessage{"desired": tw.Properties.Desired, "reported": tw.Properties.Reported} {
		if got := members(t, string(sec)); !cmp.Equal(got, []string{"$metadata", "$version"}) || iothub.SectionVersion(sec) != 1 {
			t.Errorf("new twin's %s = %s, want only $metadata and $version 1", name, sec)
		}
	}
	if got := r.header.Get("ETag"); got != `"AAAAAAAAAAE="` {
		t.Errorf("ETag header = %q", got)
	}

	// A connected device subscribed to desired changes gets the patch.
	dc := f.connect(dev1)
	dc.subscribe(iothub.TwinDesiredFilter, 0)

	r = f.owner("PATCH", "/twins/dev1"+av, `{"tags":{"site":"lab"},"properties":{"desired":{"interval":5}}}`, "If-Match", `"AAAAAAAAAAE="`)
	tw = decode[iothub.Twin](t, r.body)
	if r.status != 200 || tw.Version != 2 || tw.DesiredVersion() != 2 || string(tw.Tags) != `{"site":"lab"}` || desiredValue(t, tw, "interval") != "5" {
		t.Fatalf("PATCH twin = %d %s", r.status, r.body)
	}
	if got := r.header.Get("ETag"); got != `"`+tw.ETag+`"` || tw.ETag == "AAAAAAAAAAE=" {
		t.Errorf("ETag header after PATCH = %q, body etag %q", got, tw.ETag)
	}
	p := dc.nextPublish()
	if v, err := iothub.ParseTwinDesiredPatchTopic(p.Topic); err != nil || v != 2 {
		t.Errorf("device got %s (%v), want the desired patch of version 2", p.Topic, err)
	}
	jsonEqual(t, "desired patch sent to the device", string(p.Payload), `{"interval":5,"$version":2}`)

	// If-Match with the bare etag works too; a stale one does not.
	r = f.owner("PATCH", "/twins/dev1"+av, `{"properties":{"desired":{"interval":6,"mode":"eco"}}}`, "If-Match", tw.ETag)
	tw = decode[iothub.Twin](t, r.body)
	if r.status != 200 || desiredValue(t, tw, "interval") != "6" || desiredValue(t, tw, "mode") != `"eco"` || tw.DesiredVersion() != 3 {
		t.Fatalf("PATCH with a bare etag = %d %s", r.status, r.body)
	}
	if p := dc.nextPublish(); !strings.HasSuffix(p.Topic, "?$version=3") {
		t.Errorf("device got %s, want the desired patch of version 3", p.Topic)
	}
	wantError(t, f.owner("PATCH", "/twins/dev1"+av, `{"tags":{"x":1}}`, "If-Match", `"AAAAAAAAAAE="`), 412, "PreconditionFailed")
	wantError(t, f.owner("PATCH", "/twins/dev1"+av, `{"properties":{"reported":{"x":1}}}`), 400, "ArgumentInvalid")
	wantError(t, f.owner("PATCH", "/twins/dev1"+av, `{"tags":[1]}`), 400, "ArgumentInvalid")
	wantError(t, f.owner("PATCH", "/twins/dev1"+av, `{"properties":{"desired":5}}`), 400, "ArgumentInvalid")
	wantError(t, f.owner("PATCH", "/twins/dev1"+av, `{"tags":`), 400, "IotHubFormatError")

	// PUT replaces.
	r = f.owner("PUT", "/twins/dev1"+av, `{"tags":{"other":true},"properties":{"desired":{"mode":"full"}}}`, "If-Match", "*")
	tw = decode[iothub.Twin](t, r.body)
	if r.status != 200 || string(tw.Tags) != `{"other":true}` || desiredValue(t, tw, "interval") != "" || desiredValue(t, tw, "mode") != `"full"` {
		t.Errorf("PUT twin = %d %s", r.status, r.body)
	}
	if got, err := f.hub.Twin(dev1); err != nil || got.ETag != tw.ETag || string(got.Tags) != `{"other":true}` {
		t.Errorf("hub's twin = %+v, %v; want the replaced one", got, err)
	}
	wantError(t, f.owner("GET", "/twins/nodev"+av, ""), 404, "DeviceNotFound")
}

func TestInvokeMethod(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	f.addDevice("dev1")
	f.addDevice("dev2")
	path := "/twins/dev1/methods" + av
	wantError(t, f.owner("POST", path, `{"methodName":"reboot","payload":{},"responseTimeoutInSeconds":30,"connectTimeoutInSeconds":0}`), 404, "DeviceNotOnline")
	// Connected, but not subscribed to methods: not online for them.
	d := f.connect(dev1)
	wantError(t, f.owner("POST", path, `{"methodName":"reboot"}`), 404, "DeviceNotOnline")

	d.subscribe(iothub.MethodsFilter, 0)
	ch := f.async("POST", path, `{"methodName":"reboot","payload":{"delay":1},"responseTimeoutInSeconds":10,"connectTimeoutInSeconds":2}`)
	p := d.nextPublish()
	name, rid, err := iothub.ParseMethodRequestTopic(p.Topic)
	if err != nil || name != "reboot" || string(p.Payload) != `{"delay":1}` || p.QoS != 0 {
		t.Fatalf("device got %s %q at QoS %d (%v), want the reboot request with the caller's payload at QoS 0", p.Topic, p.Payload, p.QoS, err)
	}
	d.answer(rid, 200, `{"ok":true}`)
	if r := <-ch; r.status != 200 {
		t.Fatalf("invoke = %d %s", r.status, r.body)
	} else {
		jsonEqual(t, "method result", r.body, `{"status":200,"payload":{"ok":true}}`)
	}

	// No payload: the device gets an empty body; an empty answer is a null payload.
	ch = f.async("POST", path, `{"methodName":"empty"}`)
	name, rid, payload := d.methodRequest()
	if name != "empty" || len(payload) != 0 {
		t.Errorf("device got method %q with payload %q, want empty with none", name, payload)
	}
	d.answer(rid, 404, "")
	if r := <-ch; r.status != 200 {
		t.Errorf("empty answer = %d %s", r.status, r.body)
	} else {
		jsonEqual(t, "empty answer", r.body, `{"status":404,"payload":null}`)
	}

	for _, body := range []string{`{}`, `{"methodName":"x","responseTimeoutInSeconds":4}`, `{"methodName":"x","responseTimeoutInSeconds":301}`, `{"methodName":"x","connectTimeoutInSeconds":-1}`, `{"methodName":"x","connectTimeoutInSeconds":301}`} {
		wantError(t, f.owner("POST", path, body), 400, "ArgumentInvalid")
	}
	wantError(t, f.owner("POST", path, `{"methodName":`), 400, "IotHubFormatError")
	wantError(t, f.owner("POST", "/twins/nodev/methods"+av, `{"methodName":"x"}`), 404, "DeviceNotFound")

	// connectTimeoutInSeconds waits for the device to come online and subscribe (the call
	// may reach the hub before or after it: both must work).
	ch = f.async("POST", "/twins/dev2/methods"+av, `{"methodName":"late","connectTimeoutInSeconds":10}`)
	d2 := f.connect(dev2)
	d2.subscribe(iothub.MethodsFilter, 0)
	if name, rid, _ := d2.methodRequest(); name != "late" {
		t.Errorf("dev2 got method %q, want late", name)
	} else {
		d2.answer(rid, 202, `"ok"`)
	}
	if r := <-ch; r.status != 200 {
		t.Errorf("with connectTimeoutInSeconds = %d %s", r.status, r.body)
	} else {
		jsonEqual(t, "late answer", r.body, `{"status":202,"payload":"ok"}`)
	}

	// Module variant.
	f.addDevice("dev1/m1")
	m := f.connect(iothub.Identity{DeviceID: "dev1", ModuleID: "m1"})
	m.subscribe(iothub.MethodsFilter, 0)
	ch = f.async("POST", "/twins/dev1/modules/m1/methods"+av, `{"methodName":"reboot","payload":[1]}`)
	if name, rid, payload := m.methodRequest(); name != "reboot" || string(payload) != "[1]" {
		t.Errorf("module got %q %q", name, payload)
	} else {
		m.answer(rid, 200, `{"module":true}`)
	}
	if r := <-ch; r.status != 200 {
		t.Errorf("module invoke = %d %s", r.status, r.body)
	} else {
		jsonEqual(t, "module answer", r.body, `{"status":200,"payload":{"module":true}}`)
	}
}

// TestInvokeMethodTimeout waits out the shortest response timeout the service API accepts
// (5 s of real time: the hub's timer does not follow its clock).
func TestInvokeMethodTimeout(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	f.addDevice("dev1")
	d := f.connect(dev1)
	d.subscribe(iothub.MethodsFilter, 0)
	ch := f.async("POST", "/twins/dev1/methods"+av, `{"methodName":"reboot","responseTimeoutInSeconds":5}`)
	if name, _, _ := d.methodRequest(); name != "reboot" {
		t.Fatalf("device got method %q", name)
	}
	// The device does not answer.
	e := wantError(t, <-ch, 504, "GatewayTimeout")
	if !strings.Contains(e.Message, "5s") {
		t.Errorf("Message = %q, want the 5 s response timeout named", e.Message)
	}
}

func TestC2DHeaderMapping(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	f.addDevice("dev1")
	r := f.owner("POST", "/devices/dev1/messages/devicebound"+av, `{"cmd":"on"}`,
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
	st := decode[iothub.C2DStatus](t, r.body)
	want := iothub.C2DStatus{DeviceID: "dev1", MessageID: "mid-1", State: iothub.C2DQueued, EnqueuedTime: testNow, UpdatedTime: testNow,
		ExpiryTime: time.Date(2030, 1, 2, 4, 4, 5, 0, time.UTC)}
	if diff := cmp.Diff(want, st); diff != "" || r.header.Get("iothub-messageid") != "mid-1" {
		t.Errorf("status (-want +got):\n%s\nheaders %v", diff, r.header)
	}
	if got := r.header.Get("Location"); got != "/devices/dev1/messages/devicebound/mid-1?api-version=2021-04-12" {
		t.Errorf("Location = %q", got)
	}
	if got, ok := f.hub.C2DState("mid-1"); !ok || got.State != iothub.C2DQueued || got.Identity() != dev1 {
		t.Errorf("hub's C2DState(mid-1) = %+v, %v; want queued for dev1", got, ok)
	}

	// curl -d defaults: the form content type is not the message's; an ID is generated.
	r = f.owner("POST", "/devices/dev1/messages/devicebound"+av, "hello", "Content-Type", "application/x-www-form-urlencoded")
	st2 := decode[iothub.C2DStatus](t, r.body)
	if id := st2.MessageID; r.status != 201 || len(id) != 36 || id[8] != '-' || id[14] != '4' || strings.Count(id, "-") != 4 {
		t.Errorf("plain send = %d %s, want a version 4 UUID as message ID", r.status, r.body)
	}

	if r := f.owner("GET", "/devices/dev1/messages/devicebound/mid-1"+av, ""); r.status != 200 || decode[iothub.C2DStatus](t, r.body).State != iothub.C2DQueued {
		t.Errorf("GET state = %d %s", r.status, r.body)
	}
	r = f.owner("GET", "/devices/dev1/messages/devicebound"+av, "")
	if l := decode[[]iothub.C2DStatus](t, r.body); r.status != 200 || len(l) != 2 || l[0].MessageID != "mid-1" || l[1].MessageID != st2.MessageID {
		t.Errorf("GET states = %d %s", r.status, r.body)
	}
	if c := decode[iothub.Device](t, f.owner("GET", "/devices/dev1"+av, "").body).CloudToDeviceMessageCount; c != 2 {
		t.Errorf("cloudToDeviceMessageCount = %d, want 2", c)
	}
	wantError(t, f.owner("GET", "/devices/dev1/messages/devicebound/nope"+av, ""), 404, "GenericNotFound")

	// The device gets them in order, with the headers mapped to the topic's property bag.
	dc := f.connect(dev1)
	dc.subscribe(iothub.C2DFilter(dev1), 1)
	p := dc.nextPublish()
	id, props, err := iothub.ParseC2DTopic(p.Topic)
	if err != nil || id != dev1 || p.QoS != 1 || string(p.Payload) != `{"cmd":"on"}` {
		t.Fatalf("device got %s %q at QoS %d (%v)", p.Topic, p.Payload, p.QoS, err)
	}
	if diff := cmp.Diff(map[string]string{
		iothub.PropMessageID: "mid-1", iothub.PropCorrelationID: "cid-1", iothub.PropUserID: "alice", iothub.PropTo: "/devices/dev1/messages/deviceBound",
		iothub.PropContentType: "application/json", iothub.PropContentEncoding: "utf-8", iothub.PropExpiry: "2030-01-02T04:04:05Z", iothub.PropAck: "full",
	}, props.System()); diff != "" {
		t.Errorf("system properties of %s (-want +got):\n%s", p.Topic, diff)
	}
	if diff := cmp.Diff(map[string]string{"alertlevel": "high", "camelCase": "Yes", "sp ace": "a&b"}, props.Application()); diff != "" {
		t.Errorf("application properties of %s (-want +got):\n%s", p.Topic, diff)
	}
	if err := dc.c.Puback(p.PacketID); err != nil {
		t.Fatal(err)
	}
	p = dc.nextPublish()
	_, props, err = iothub.ParseC2DTopic(p.Topic)
	if mid, _ := props.Get(iothub.PropMessageID); err != nil || mid != st2.MessageID || string(p.Payload) != "hello" {
		t.Errorf("second message: %s %q (%v), want $.mid=%s", p.Topic, p.Payload, err, st2.MessageID)
	}
	if v, ok := props.Get(iothub.PropContentType); ok {
		t.Errorf("plain message has %s=%q: %s", iothub.PropContentType, v, p.Topic)
	}
	if v, _ := props.Get(iothub.PropAck); v != string(iothub.AckNone) { // as IoT Hub writes it
		t.Errorf("plain message has %s=%q, want none: %s", iothub.PropAck, v, p.Topic)
	}
	if err := dc.c.Puback(p.PacketID); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	for _, mid := range []string{"mid-1", st2.MessageID} {
		if _, err := f.hub.WaitC2DState(ctx, mid, func(s iothub.C2DState) bool { return s == iothub.C2DCompleted }); err != nil {
			t.Fatal(err)
		}
	}
	r = f.owner("GET", "/devices/dev1/messages/devicebound/mid-1"+av, "")
	if st := decode[iothub.C2DStatus](t, r.body); r.status != 200 || st.State != iothub.C2DCompleted || st.DeliveryCount != 1 || !st.FinishedTime.Equal(testNow) {
		t.Errorf("GET state after the PUBACK = %d %s", r.status, r.body)
	}
	// ack=full: a Success feedback record (the plain message asked for none).
	r = f.owner("GET", "/hubkit/feedback", "")
	if r.status != 200 {
		t.Fatalf("feedback = %d %s", r.status, r.body)
	}
	jsonEqual(t, "feedback", r.body, `[{"originalMessageId":"mid-1","deviceId":"dev1","deviceGenerationId":"`+f.generationID("dev1")+`","statusCode":"Success","description":"Success","enqueuedTimeUtc":"2030-01-02T03:04:05Z"}]`)

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
		{"bad-bag", []string{"X-Hubkit-Properties", "a=%zz"}, "x", 400, "ArgumentInvalid"},
		{"too-large", nil, strings.Repeat("x", iothub.MaxC2DSize+1), 413, "MessageTooLarge"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			wantError(t, f.owner("POST", "/devices/dev1/messages/devicebound"+av, tc.body, tc.headers...), tc.status, tc.code)
		})
	}
	wantError(t, f.owner("POST", "/devices/nodev/messages/devicebound"+av, "x"), 404, "DeviceNotFound")
	wantError(t, f.owner("GET", "/devices/nodev/messages/devicebound"+av, ""), 404, "DeviceNotFound")
	if n := len(f.hub.C2DMessages(dev1)); n != 2 {
		t.Errorf("refused sends were queued: the hub has %d messages for dev1, want 2", n)
	}
}

func TestC2DToDeviceWithoutSubscription(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	f.addDevice("dev1")
	f.connect(dev1) // connected, not subscribed to its C2D topic: IoT Hub rejects the message
	r := f.owner("POST", "/devices/dev1/messages/devicebound"+av, "x", "iothub-messageid", "m1", "iothub-ack", "negative")
	if st := decode[iothub.C2DStatus](t, r.body); r.status != 201 || st.State != iothub.C2DRejected || st.Detail == "" {
		t.Errorf("send = %d %s, want 201 and state rejected with a detail", r.status, r.body)
	}
	r = f.owner("GET", "/hubkit/feedback", "")
	jsonEqual(t, "feedback", r.body, `[{"originalMessageId":"m1","deviceId":"dev1","deviceGenerationId":"`+f.generationID("dev1")+`","statusCode":"Rejected","description":"Rejected","enqueuedTimeUtc":"2030-01-02T03:04:05Z"}]`)
}

func TestC2DQueueLimitAndPurge(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	f.addDevice("dev2") // offline: everything waits in its queue
	send := func(id string, headers ...string) response {
		t.Helper()
		return f.owner("POST", "/devices/dev2/messages/devicebound"+av, "x", append([]string{"iothub-messageid", id}, headers...)...)
	}
	if r := send("q-0", "iothub-ack", "full"); r.status != 201 {
		t.Fatalf("send q-0 = %d %s", r.status, r.body)
	}
	for i := 1; i < iothub.MaxC2DQueueDepth; i++ {
		if r := send("q-" + strconv.Itoa(i)); r.status != 201 {
			t.Fatalf("send q-%d = %d %s", i, r.status, r.body)
		}
	}
	wantError(t, send("one-too-many"), 403, "DeviceMaximumQueueDepthExceeded")
	if c := decode[iothub.Device](t, f.owner("GET", "/devices/dev2"+av, "").body).CloudToDeviceMessageCount; c != iothub.MaxC2DQueueDepth {
		t.Errorf("cloudToDeviceMessageCount = %d, want %d", c, iothub.MaxC2DQueueDepth)
	}

	// IoT Hub's purge route, and the feedback it produces for ack=full.
	r := f.owner("DELETE", "/devices/dev2/commands"+av, "")
	if r.status != 200 {
		t.Fatalf("purge = %d %s", r.status, r.body)
	}
	jsonEqual(t, "purge", r.body, `{"deviceId":"dev2","totalMessagesPurged":50}`)
	if st, ok := f.hub.C2DState("q-7"); !ok || st.State != iothub.C2DPurged {
		t.Errorf("hub's C2DState(q-7) = %+v, %v; want purged", st, ok)
	}
	if c := decode[iothub.Device](t, f.owner("GET", "/devices/dev2"+av, "").body).CloudToDeviceMessageCount; c != 0 {
		t.Errorf("cloudToDeviceMessageCount after the purge = %d, want 0", c)
	}
	r = f.owner("GET", "/hubkit/feedback", "")
	jsonEqual(t, "feedback", r.body, `[{"originalMessageId":"q-0","deviceId":"dev2","deviceGenerationId":"`+f.generationID("dev2")+`","statusCode":"Purged","description":"Purged","enqueuedTimeUtc":"2030-01-02T03:04:05Z"}]`)
	if r := send("after-purge"); r.status != 201 {
		t.Errorf("send after the purge = %d %s", r.status, r.body)
	}
	wantError(t, f.owner("DELETE", "/devices/nodev/commands"+av, ""), 404, "DeviceNotFound")
}

func TestAuthorization(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	f.addDevice("dev1")
	f.addDevice("dev10")
	dev0 := f.addDevice("dev0")
	ownerKey, ownerKey2 := f.policyKey("iothubowner", false), f.policyKey("iothubowner", true)
	serviceKey, regReadKey, regRWKey := f.policyKey("service", false), f.policyKey("registryRead", false), f.policyKey("registryReadWrite", false)
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
		{"registryReadWrite-method", "POST", "/twins/dev1/methods", token("registryReadWrite", regRWKey, testNow.Add(time.Hour)), sas.ReasonPolicyPermission},
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
			r := f.do(tc.method, tc.path+av, `{}`, h...)
			e := wantError(t, r, 401, "IotHubUnauthorizedAccess")
			if got := r.header.Get(iothub.HeaderReason); got != string(tc.reason) {
				t.Errorf("%s = %q, want %q (body %s)", iothub.HeaderReason, got, tc.reason, r.body)
			}
			if !strings.HasPrefix(e.Message, "ErrorCode:IotHubUnauthorizedAccess;Unauthorized; hubkit: "+string(tc.reason)) {
				t.Errorf("Message = %q", e.Message)
			}
			// Each hint travels in its own header and, for clients that read only the
			// body, in the message.
			hints := r.header.Values(iothub.HeaderHint)
			if hinted := tc.reason != sas.ReasonHostMismatch && tc.reason != sas.ReasonScopeMismatch; hinted && len(hints) == 0 {
				t.Errorf("no %s header (body %s)", iothub.HeaderHint, r.body) // the detail says it all for the other two
			}
			for _, hint := range hints {
				if !strings.Contains(e.Message, "; hint: "+hint) {
					t.Errorf("Message = %q lacks the hint %q", e.Message, hint)
				}
			}
			// No secrets echoed: neither keys nor the signature.
			secrets := []string{base64.StdEncoding.EncodeToString(ownerKey), string(ownerKey)}
			if tok, err := sas.Parse(tc.auth); err == nil {
				secrets = append(secrets, tok.Signature, url.QueryEscape(tok.Signature))
			}
			for _, secret := range secrets {
				if strings.Contains(r.body, secret) || strings.Contains(strings.Join(hints, " "), secret) {
					t.Errorf("answer echoes a secret %q: %s", secret, r.body)
				}
			}
		})
	}
	if _, ok := f.hub.Registry().Get(iothub.Identity{DeviceID: "dev2"}); ok {
		t.Error("registryRead created a device")
	}
	// Rights that are enough.
	for _, tc := range []struct{ method, path, auth string }{
		{"GET", "/devices/dev1", token("registryRead", regReadKey, testNow.Add(time.Hour))},
		{"PUT", "/devices/dev3", token("registryReadWrite", regRWKey, testNow.Add(time.Hour))},
		// RegistryWrite includes RegistryRead: registryReadWrite holds only RegistryWrite.
		{"GET", "/devices/dev1", token("registryReadWrite", regRWKey, testNow.Add(time.Hour))},
		{"GET", "/devices", token("registryReadWrite", regRWKey, testNow.Add(time.Hour))},
		{"GET", "/twins/dev1", token("service", serviceKey, testNow.Add(time.Hour))},
		{"GET", "/devices/dev1", token("iothubowner", ownerKey2, testNow.Add(time.Hour))},   // secondary key
		{"GET", "/devices/dev1", token("iothubowner", ownerKey, testNow.Add(-time.Minute))}, // within the hub's token grace
		{"GET", "/devices/dev1", dev1Scoped},
	} {
		if r := f.do(tc.method, tc.path+av, "{}", "Authorization", tc.auth); r.status != 200 {
			t.Errorf("%s %s = %d %s", tc.method, tc.path, r.status, r.body)
		}
	}
	// Policies are the registry's: a changed key takes effect at once.
	p, _ := f.hub.Registry().Policy("service")
	p.PrimaryKey = base64.StdEncoding.EncodeToString([]byte("a brand new service key, 32 byte"))
	if _, err := f.hub.Registry().SetPolicy(p); err != nil {
		t.Fatal(err)
	}
	r := f.do("GET", "/twins/dev1"+av, "", "Authorization", token("service", serviceKey, testNow.Add(time.Hour)))
	wantError(t, r, 401, "IotHubUnauthorizedAccess")
	if got := r.header.Get(iothub.HeaderReason); got != string(sas.ReasonSignatureMismatch) {
		t.Errorf("old service key after rotation: %s = %q, want %q", iothub.HeaderReason, got, sas.ReasonSignatureMismatch)
	}
}

func TestAPIVersion(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	f.addDevice("dev1")
	wantError(t, f.owner("GET", "/devices/dev1", ""), 400, "InvalidProtocolVersion")
	wantError(t, f.owner("POST", "/twins/dev1/methods", `{"methodName":"x"}`), 400, "InvalidProtocolVersion")
	if r := f.owner("GET", "/devices/dev1?api-version=2020-09-30", ""); r.status != 200 {
		t.Errorf("other api-version = %d", r.status)
	}
	// hubkit's own routes need none.
	for _, path := range []string{"/hubkit/rejections", "/hubkit/feedback", "/hubkit/telemetry"} {
		if r := f.owner("GET", path, ""); r.status != 200 {
			t.Errorf("GET %s without api-version = %d %s", path, r.status, r.body)
		}
	}
}

func TestRoutes(t *testing.T) {
	t.Parallel()
	routes := restapi.Routes()
	if len(routes) != 42 { // main's 37 + the device grader's 5
		t.Errorf("restapi.Routes() = %d routes, want 42", len(routes))
	}
	need := map[string]iothub.Rights{}
	for _, rt := range routes {
		if rt.Rights == 0 && rt.Pattern != "GET /hubkit/clock" { // the one public route
			t.Errorf("%s needs no rights", rt.Pattern)
		}
		need[rt.Pattern] = rt.Rights
	}
	for pattern, want := range map[string]iothub.Rights{
		"GET /devices":                            iothub.RegistryRead,
		"GET /hubkit/certificates":                iothub.RegistryRead,
		"PUT /hubkit/certificates/{name}":         iothub.RegistryWrite,
		"GET /devices/{$}":                        iothub.RegistryRead,
		"POST /devices/query":                     iothub.RegistryRead,
		"PUT /devices/{id}":                       iothub.RegistryWrite,
		"DELETE /devices/{id}/modules/{mid}":      iothub.RegistryWrite,
		"PATCH /twins/{id}":                       iothub.ServiceConnect,
		"POST /twins/{id}/methods":                iothub.ServiceConnect,
		"POST /devices/{id}/messages/devicebound": iothub.ServiceConnect,
		"DELETE /devices/{id}/commands":           iothub.ServiceConnect,
		"GET /hubkit/telemetry":                   iothub.ServiceConnect,
		"PUT /hubkit/limits":                      iothub.ServiceConnect,
	} {
		if got, ok := need[pattern]; !ok || got != want {
			t.Errorf("route %q needs %v (listed: %v), want %v", pattern, got, ok, want)
		}
	}
}

func TestRejections(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	f.addDevice("dev1")
	// A CONNECT signed with a key that is not dev1's.
	p := connectPacket(dev1, base64.StdEncoding.EncodeToString([]byte("not the key of dev1, 32 bytes...")))
	ack, c := f.dial(p)
	if ack.ReturnCode != mqttraw.ConnackNotAuthorized {
		t.Fatalf("CONNACK %d, want %d", ack.ReturnCode, mqttraw.ConnackNotAuthorized)
	}
	testutil.Eventually(t, "the rejection recorded", func() bool { return len(f.hub.Rejections()) == 1 })
	r := f.owner("GET", "/hubkit/rejections", "")
	if r.status != 200 {
		t.Fatalf("rejections = %d %s", r.status, r.body)
	}
	got := decode[[]iothub.Rejection](t, r.body)
	if diff := cmp.Diff(f.hub.Rejections(), got); diff != "" {
		t.Errorf("REST rejections differ from the hub's (-hub +REST):\n%s", diff)
	}
	if len(got) != 1 {
		t.Fatalf("rejections = %s", r.body)
	}
	want := iothub.Rejection{Time: testNow, RemoteAddr: c.NetConn().LocalAddr().String(), ClientID: "dev1", DeviceID: "dev1",
		UserName: *p.UserName, Reason: sas.ReasonSignatureMismatch, Detail: got[0].Detail, Hints: got[0].Hints}
	if diff := cmp.Diff(want, got[0]); diff != "" || got[0].Detail == "" || len(got[0].Hints) == 0 {
		t.Errorf("rejection (-want +got):\n%s\n(detail %q, hints %q)", diff, got[0].Detail, got[0].Hints)
	}
	raw := decode[[]json.RawMessage](t, r.body)
	if diff := cmp.Diff([]string{"clientId", "detail", "deviceId", "hints", "reason", "remoteAddr", "time", "userName"}, members(t, string(raw[0]))); diff != "" {
		t.Errorf("rejection members (-want +got):\n%s", diff)
	}
	if tok, _ := sas.Parse(*p.Password); strings.Contains(r.body, tok.Signature) || strings.Contains(r.body, url.QueryEscape(tok.Signature)) {
		t.Errorf("rejections echo the password's signature: %s", r.body)
	}
}

// openStream opens a follow stream (NDJSON) as iothubowner and returns a function that
// reads its next record; the answer's headers arrive once the stream is positioned.
func openStream[T any](ctx context.Context, f *fixture, path string) func() T {
	f.t.Helper()
	req, _ := http.NewRequestWithContext(ctx, "GET", f.hub.ServiceURL()+path, nil)
	req.Header.Set("Authorization", f.ownerToken())
	resp, err := f.httpc.Do(req)
	if err != nil {
		f.t.Fatal(err)
	}
	f.t.Cleanup(func() { resp.Body.Close() })
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "application/x-ndjson" {
		f.t.Fatalf("follow = %d %v", resp.StatusCode, resp.Header)
	}
	sc := bufio.NewScanner(resp.Body)
	return func() T {
		f.t.Helper()
		if !sc.Scan() {
			f.t.Fatalf("stream ended: %v", sc.Err())
		}
		return decode[T](f.t, sc.Text())
	}
}

// TestC2DWait: GET .../devicebound/{msgId}?wait=SECONDS answers once the message is final,
// or after SECONDS with its state then (docs/iothub-behavior.md §13.10).
func TestC2DWait(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	f.addDevice("dev1")
	const path = "/devices/dev1/messages/devicebound/w-1" + av
	if r := f.owner("POST", "/devices/dev1/messages/devicebound"+av, "hi", "iothub-messageid", "w-1"); r.status != 201 {
		t.Fatalf("send = %d %s", r.status, r.body)
	}
	// The device is offline: after a second the answer is the state then.
	if r := f.owner("GET", path+"&wait=1", ""); r.status != 200 || decode[iothub.C2DStatus](t, r.body).State != iothub.C2DQueued {
		t.Errorf("wait=1 while offline = %d %s, want queued", r.status, r.body)
	}
	// A long poll returns when the device's PUBACK completes the message.
	done := f.async("GET", path+"&wait=10", "")
	dc := f.connect(dev1)
	dc.subscribe(iothub.C2DFilter(dev1), 1)
	if err := dc.c.Puback(dc.nextPublish().PacketID); err != nil {
		t.Fatal(err)
	}
	r := <-done
	if st := decode[iothub.C2DStatus](t, r.body); r.status != 200 || st.State != iothub.C2DCompleted || st.DeliveryCount != 1 {
		t.Errorf("wait=10 = %d %s, want completed", r.status, r.body)
	}
	for _, q := range []string{"&wait=21", "&wait=-1", "&wait=1s"} {
		wantError(t, f.owner("GET", path+q, ""), 400, "ArgumentInvalid")
	}
	wantError(t, f.owner("GET", "/devices/dev1/messages/devicebound/nope"+av+"&wait=1", ""), 404, "GenericNotFound")
}

// refuseAt makes the hub refuse a CONNECT of id (a key that is not its own) with the hub's
// clock at t, and waits for the record.
func (f *fixture) refuseAt(id iothub.Identity, at time.Time) {
	f.t.Helper()
	f.clock.Set(at)
	defer f.clock.Set(testNow)
	n := len(f.hub.Rejections())
	if ack, _ := f.dial(connectPacket(id, base64.StdEncoding.EncodeToString([]byte("not the key of anyone, 32 bytes.")))); ack.ReturnCode != mqttraw.ConnackNotAuthorized {
		f.t.Fatalf("CONNACK %d for %s, want %d", ack.ReturnCode, id, mqttraw.ConnackNotAuthorized)
	}
	testutil.Eventually(f.t, "the rejection recorded", func() bool { return len(f.hub.Rejections()) > n })
}

// TestRejectionsFilterAndFollow: the rejection log under the rule of telemetry
// (docs/iothub-behavior.md §13.9): a listing filtered by device, since and count (an unknown
// device is no error), and follow streams from now or from a time.
func TestRejectionsFilterAndFollow(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	f.addDevice("dev1")
	f.addDevice("dev2")
	ghost := iothub.Identity{DeviceID: "ghost"}
	f.refuseAt(dev1, testNow)
	f.refuseAt(dev2, testNow.Add(time.Second))
	f.refuseAt(ghost, testNow.Add(2*time.Second))
	for _, tc := range []struct {
		query string
		want  []string // device IDs, in order
	}{
		{"", []string{"dev1", "dev2", "ghost"}},
		{"?device=dev1", []string{"dev1"}},
		{"?device=ghost", []string{"ghost"}}, // not registered: what unknown-identity is about
		{"?device=nobody", []string{}},
		{"?since=2030-01-02T03:04:06Z", []string{"dev2", "ghost"}},
		{"?count=2", []string{"dev1", "dev2"}},
		{"?since=2030-01-02T03:04:06Z&count=1&follow=false", []string{"dev2"}},
	} {
		r := f.owner("GET", "/hubkit/rejections"+tc.query, "")
		got := []string{}
		for _, rj := range decode[[]iothub.Rejection](t, r.body) {
			got = append(got, rj.DeviceID)
		}
		if r.status != 200 || !strings.HasPrefix(r.header.Get("Content-Type"), "application/json") || !cmp.Equal(got, tc.want) {
			t.Errorf("rejections%s = %d %s, devices %v, want %v", tc.query, r.status, r.header.Get("Content-Type"), got, tc.want)
		}
	}
	for _, q := range []string{"?follow=maybe", "?count=-1", "?since=yesterday"} {
		wantError(t, f.owner("GET", "/hubkit/rejections"+q, ""), 400, "ArgumentInvalid")
	}

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	open := func(query string) func() iothub.Rejection {
		return openStream[iothub.Rejection](ctx, f, "/hubkit/rejections"+query)
	}
	fromNow := open("?device=dev2&follow=true")                                  // dev2's next record
	since := open("?device=dev2&follow=true&since=2030-01-02T03:04:06Z")         // dev2's old one first
	all := open("?follow=true&since=" + url.QueryEscape("2030-01-02T03:04:07Z")) // ghost's, then every new one
	if r := since(); r.DeviceID != "dev2" || !r.Time.Equal(testNow.Add(time.Second)) {
		t.Errorf("first record since 03:04:06 for dev2 = %+v", r)
	}
	if r := all(); r.DeviceID != "ghost" {
		t.Errorf("first record since 03:04:07 = %+v, want ghost's", r)
	}
	f.refuseAt(dev1, testNow.Add(3*time.Second))
	f.refuseAt(dev2, testNow.Add(4*time.Second))
	for name, next := range map[string]func() iothub.Rejection{"from now": fromNow, "since": since} {
		if r := next(); r.DeviceID != "dev2" || !r.Time.Equal(testNow.Add(4*time.Second)) || r.Reason != sas.ReasonSignatureMismatch {
			t.Errorf("%s: next dev2 record = %+v, want the new refusal at 03:04:09", name, r)
		}
	}
	if a, b := all(), all(); a.DeviceID != "dev1" || b.DeviceID != "dev2" {
		t.Errorf("the unfiltered stream gave %s then %s, want dev1 then dev2", a.DeviceID, b.DeviceID)
	}
	cancel()

	// follow with count ends the stream by itself.
	r := f.owner("GET", "/hubkit/rejections?follow=true&count=2&since=2030-01-02T03:04:05Z", "")
	if got := strings.Count(r.body, "\n"); r.status != 200 || got != 2 {
		t.Errorf("follow&count=2: %d lines: %s", got, r.body)
	}
}

// telemetryAt publishes one message from d with the hub's clock at t.
func (f *fixture) telemetryAt(d *device, at time.Time, props iothub.Properties, payload string) {
	f.t.Helper()
	f.clock.Set(at)
	defer f.clock.Set(testNow)
	f.sendTelemetry(d, props, []byte(payload))
}

// authMethod is the iothub-connection-auth-method of a device authenticated with a SAS
// token, as IoT Hub stamps it.
const authMethod = `{\"scope\":\"device\",\"type\":\"sas\",\"issuer\":\"iothub\",\"acceptingIpFilterRule\":null}`

func TestTelemetryList(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	g1, g2 := f.addDevice("dev1").GenerationID, f.addDevice("dev2").GenerationID
	d1, d2 := f.connect(dev1), f.connect(dev2)
	f.telemetryAt(d1, testNow, iothub.Properties{{Key: iothub.PropContentType, Value: "application/json"}, {Key: "k", Value: "v"}}, `{"t":1}`)
	f.telemetryAt(d2, testNow.Add(time.Second), nil, `plain text`)
	f.telemetryAt(d1, testNow.Add(2*time.Second), iothub.Properties{{Key: "bin", Value: "yes"}}, "\xff\xfe")
	r := f.owner("GET", "/hubkit/telemetry", "")
	if r.status != 200 || r.header.Get("Content-Type") != "application/x-ndjson" || r.header.Get("Cache-Control") != "no-store" {
		t.Fatalf("telemetry = %d %v", r.status, r.header)
	}
	lines := strings.Split(strings.TrimSuffix(r.body, "\n"), "\n")
	want := []string{
		`{"deviceId":"dev1","topic":"devices/dev1/messages/events/%24.ct=application%2Fjson&k=v",
		  "systemProperties":{"$.ct":"application/json"},"properties":{"k":"v"},
		  "annotations":{"iothub-connection-device-id":"dev1","iothub-connection-auth-method":"` + authMethod + `",
		    "iothub-connection-auth-generation-id":"` + g1 + `","iothub-enqueuedtime":"2030-01-02T03:04:05Z","iothub-message-source":"Telemetry"},
		  "enqueuedTime":"2030-01-02T03:04:05Z","sequenceNumber":1,"payload":{"t":1},"bodyBase64":"eyJ0IjoxfQ=="}`,
		`{"deviceId":"dev2","topic":"devices/dev2/messages/events/",
		  "annotations":{"iothub-connection-device-id":"dev2","iothub-connection-auth-method":"` + authMethod + `",
		    "iothub-connection-auth-generation-id":"` + g2 + `","iothub-enqueuedtime":"2030-01-02T03:04:06Z","iothub-message-source":"Telemetry"},
		  "enqueuedTime":"2030-01-02T03:04:06Z","sequenceNumber":2,"payload":"plain text","bodyBase64":"cGxhaW4gdGV4dA=="}`,
		`{"deviceId":"dev1","topic":"devices/dev1/messages/events/bin=yes","properties":{"bin":"yes"},
		  "annotations":{"iothub-connection-device-id":"dev1","iothub-connection-auth-method":"` + authMethod + `",
		    "iothub-connection-auth-generation-id":"` + g1 + `","iothub-enqueuedtime":"2030-01-02T03:04:07Z","iothub-message-source":"Telemetry"},
		  "enqueuedTime":"2030-01-02T03:04:07Z","sequenceNumber":3,"bodyBase64":"//4="}`,
	}
	if len(lines) != len(want) {
		t.Fatalf("NDJSON has %d lines, want %d:\n%s", len(lines), len(want), r.body)
	}
	for i := range want {
		jsonEqual(t, "NDJSON line "+strconv.Itoa(i+1), lines[i], want[i])
	}
	for _, tc := range []struct {
		query string
		seqs  []uint64
	}{
		{"?device=dev1", []uint64{1, 3}},
		{"?count=1", []uint64{1}},
		{"?since=2030-01-02T03:04:06Z", []uint64{2, 3}},
		{"?device=dev2&count=5", []uint64{2}},
	} {
		r := f.owner("GET", "/hubkit/telemetry"+tc.query, "")
		var seqs []uint64
		for line := range strings.Lines(r.body) {
			seqs = append(seqs, decode[iothub.Event](t, line).SequenceNumber)
		}
		if r.status != 200 || !cmp.Equal(seqs, tc.seqs) {
			t.Errorf("telemetry%s = %d, sequence numbers %v, want %v: %s", tc.query, r.status, seqs, tc.seqs, r.body)
		}
	}
	for _, q := range []string{"?follow=maybe", "?count=-1", "?count=x", "?since=yesterday"} {
		wantError(t, f.owner("GET", "/hubkit/telemetry"+q, ""), 400, "ArgumentInvalid")
	}
	// A device that is not registered and sent nothing is a typo, not an empty list.
	wantError(t, f.owner("GET", "/hubkit/telemetry?device=nodev", ""), 404, "DeviceNotFound")
	wantError(t, f.owner("GET", "/hubkit/telemetry?device=nodev&follow=true", ""), 404, "DeviceNotFound")
}

func TestTelemetryFollowStreams(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	f.addDevice("dev1")
	f.addDevice("dev2")
	d1, d2 := f.connect(dev1), f.connect(dev2)
	f.sendTelemetry(d1, nil, []byte(`{"n":0}`))
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	open := func(query string) func() iothub.Event {
		return openStream[iothub.Event](ctx, f, "/hubkit/telemetry"+query)
	}
	// The one rule (docs/iothub-behavior.md §13.6): a follow stream starts where it is
	// opened (the answer's headers arrive once it is positioned), or at since.
	fromNow := open("?device=dev1&follow=true")
	next := open("?device=dev1&follow=true&since=2030-01-02T03:04:05Z")
	if e := next(); string(e.Payload) != `{"n":0}` {
		t.Errorf("first since the start = %+v", e)
	}
	// Each new message arrives while the stream stays open (flushed per message); other
	// devices' messages are left out.
	for i := 1; i <= 3; i++ {
		n := strconv.Itoa(i)
		d2.publish(iothub.TelemetryTopic(dev2, nil), []byte(`{"other":true}`))
		d1.publish(iothub.TelemetryTopic(dev1, nil), []byte(`{"n":`+n+`}`))
		if e := next(); string(e.Payload) != `{"n":`+n+`}` || e.DeviceID != "dev1" {
			t.Errorf("message %d = %+v", i, e)
		}
		if e := fromNow(); string(e.Payload) != `{"n":`+n+`}` {
			t.Errorf("message %d from now = %+v (the message sent before it opened must not come)", i, e)
		}
	}
	cancel() // the client goes away; the hub's Close (in Cleanup) waits for the handler

	// follow with count ends the stream by itself.
	r := f.owner("GET", "/hubkit/telemetry?device=dev1&follow=true&count=2&since=2030-01-02T03:04:05Z", "")
	if got := strings.Count(r.body, "\n"); r.status != 200 || got != 2 {
		t.Errorf("follow&count=2: %d lines: %s", got, r.body)
	}
}

func TestServedOverTLS(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	req, _ := http.NewRequest("GET", f.hub.ServiceURL()+"/devices"+av, nil)
	req.Header.Set("Authorization", f.ownerToken())
	resp, err := f.httpc.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 || resp.TLS == nil || resp.TLS.Version < tls.VersionTLS12 || !strings.HasPrefix(f.hub.ServiceURL(), "https://"+testHost+":") {
		t.Errorf("GET %s/devices = %d over %+v", f.hub.ServiceURL(), resp.StatusCode, resp.TLS)
	}
	// The port speaks nothing but TLS.
	plain := "http://" + f.hub.ServiceAddr() + "/devices" + av
	req, _ = http.NewRequest("GET", plain, nil)
	req.Header.Set("Authorization", f.ownerToken())
	resp, err = http.DefaultClient.Do(req)
	if err == nil {
		resp.Body.Close()
		if resp.StatusCode == 200 {
			t.Errorf("GET %s = 200 without TLS", plain)
		}
	}
}

func TestLimits(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	if r := f.owner("GET", "/hubkit/limits", ""); r.status != 200 || r.body != `{"limits":{"meterSize":4096},"quotaDay":"2030-01-02","quotaUsed":0}` {
		t.Errorf("GET /hubkit/limits = %d %s", r.status, r.body)
	}
	r := f.owner("PUT", "/hubkit/limits", `{"d2c":{"perSecond":2,"burst":2,"backlog":2},"dailyMessages":100}`)
	if r.status != 200 || r.body != `{"limits":{"d2c":{"perSecond":2,"burst":2,"backlog":2},"dailyMessages":100,"meterSize":4096},"quotaDay":"2030-01-02","quotaUsed":0}` {
		t.Errorf("PUT /hubkit/limits = %d %s", r.status, r.body)
	}
	if got := f.hub.Limits(); got.D2C != (iothub.Throttle{PerSecond: 2, Burst: 2, Backlog: 2}) || got.DailyMessages != 100 {
		t.Errorf("the hub's limits after the PUT: %+v", got)
	}
	for _, tc := range []struct{ body, want string }{
		{`{"twinRead":{"perSecond":1}}`, `unknown field \"twinRead\"`},
		{`{"c2d":{"perSecond":-1}}`, `c2d: perSecond -1`},
		{`{"dailyMessages":"many"}`, `dailyMessages`},
		{`[1]`, `cannot unmarshal array`},
	} {
		r := f.owner("PUT", "/hubkit/limits", tc.body)
		if r.status != 400 || !strings.Contains(r.body, tc.want) || !strings.Contains(r.body, "ArgumentInvalid") {
			t.Errorf("PUT %s = %d %s, want 400 ArgumentInvalid naming %s", tc.body, r.status, r.body, tc.want)
		}
	}
	if got := f.hub.Limits(); got.DailyMessages != 100 {
		t.Errorf("a refused PUT changed the limits: %+v", got)
	}
	if r := f.do("PUT", "/hubkit/limits", `{}`); r.status != 401 {
		t.Errorf("PUT without a token = %d, want 401", r.status)
	}
}
