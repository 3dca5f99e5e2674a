package restapi_test

import (
	"strings"
	"testing"
	"time"

	"github.com/hubkit/hubkit/pkg/iothub"
)

// TestListTrailingSlash: the Node service SDK's Registry.list asks for GET /devices/.
func TestListTrailingSlash(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	f.addDevice("dev1")
	a, b := f.owner("GET", "/devices"+av, ""), f.owner("GET", "/devices/"+av, "")
	if a.status != 200 || b.status != 200 || a.body != b.body || !strings.Contains(b.body, `"deviceId":"dev1"`) {
		t.Errorf("GET /devices = %d %s\nGET /devices/ = %d %s", a.status, a.body, b.status, b.body)
	}
}

func TestQueryTwins(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	for _, id := range []string{"dev1", "dev2", "dev3", "dev4", "dev5", "dev1/m1", "dev1/m2", "dev3/m1"} {
		f.addDevice(id)
	}
	for _, id := range []string{"dev2", "dev4"} {
		if r := f.owner("PATCH", "/twins/"+id+av, `{"tags":{"site":"lab","floor":2}}`); r.status != 200 {
			t.Fatalf("PATCH twin %s = %d %s", id, r.status, r.body)
		}
	}
	if r := f.owner("PUT", "/devices/dev5"+av, `{"status":"disabled"}`, "If-Match", `"*"`); r.status != 200 {
		t.Fatalf("disable dev5 = %d %s", r.status, r.body)
	}
	ids := func(r response) string {
		t.Helper()
		if r.status != 200 {
			t.Fatalf("query = %d %s", r.status, r.body)
		}
		if got := r.header.Get("x-ms-item-type"); got != "twin" {
			t.Errorf("x-ms-item-type = %q, want twin", got)
		}
		var out []string
		for _, tw := range decode[[]iothub.Twin](t, r.body) {
			out = append(out, tw.Identity().String())
		}
		return strings.Join(out, ",")
	}
	q := func(sql string, headers ...string) response {
		t.Helper()
		return f.owner("POST", "/devices/query"+av, `{"query":"`+sql+`"}`, append([]string{"Content-Type", "application/json; charset=utf-8"}, headers...)...)
	}
	for _, tc := range []struct{ sql, want string }{
		{"SELECT * FROM devices", "dev1,dev2,dev3,dev4,dev5"},
		{"SELECT * FROM devices WHERE tags.site = 'lab'", "dev2,dev4"},
		{"SELECT * FROM devices WHERE tags.site = 'lab' AND deviceId != 'dev2'", "dev4"},
		{"SELECT * FROM devices WHERE status = 'disabled'", "dev5"},
		{"SELECT * FROM devices WHERE deviceId IN ['dev1', 'dev3']", "dev1,dev3"},
		{"SELECT * FROM devices WHERE properties.desired.$version = 1 AND tags.floor > 1", "dev2,dev4"},
		{"SELECT * FROM devices.modules", "dev1/m1,dev1/m2,dev3/m1"},
		{"SELECT * FROM devices.modules WHERE moduleId = 'm1'", "dev1/m1,dev3/m1"},
		{"SELECT * FROM devices.modules WHERE devices.deviceId = 'dev1'", "dev1/m1,dev1/m2"},
		{"SELECT * FROM devices WHERE deviceId = 'nobody'", ""},
	} {
		if got := ids(q(tc.sql)); got != tc.want {
			t.Errorf("%s: %q, want %q", tc.sql, got, tc.want)
		}
	}

	// Paging: x-ms-max-item-count, then x-ms-continuation until the last page has none.
	var pages []string
	cont := ""
	for i := 0; i < 10; i++ {
		h := []string{"x-ms-max-item-count", "2"}
		if cont != "" {
			h = append(h, "x-ms-continuation", cont)
		}
		r := q("SELECT * FROM devices", h...)
		pages = append(pages, ids(r))
		if cont = r.header.Get("x-ms-continuation"); cont == "" {
			break
		}
	}
	if got := strings.Join(pages, "|"); got != "dev1,dev2|dev3,dev4|dev5" {
		t.Errorf("pages %q, want dev1,dev2|dev3,dev4|dev5", got)
	}

	// Refusals name what is wrong; an unsupported query says what is supported.
	e := wantError(t, q("SELECT deviceId FROM devices"), 400, "ArgumentInvalid")
	if !strings.Contains(e.Message, "not supported by fakehub") || !strings.Contains(e.Message, "SELECT * FROM devices") {
		t.Errorf("projection refused with %q", e.Message)
	}
	wantError(t, q("SELECT * FROM devices WHERE"), 400, "ArgumentInvalid")
	wantError(t, q("SELECT * FROM devices", "x-ms-max-item-count", "0"), 400, "ArgumentInvalid")
	wantError(t, q("SELECT * FROM devices", "x-ms-max-item-count", "many"), 400, "ArgumentInvalid")
	wantError(t, q("SELECT * FROM devices", "x-ms-continuation", "garbage!"), 400, "ArgumentInvalid")
	wantError(t, f.owner("POST", "/devices/query"+av, `{"sql":"SELECT * FROM devices"}`), 400, "ArgumentInvalid")
	wantError(t, f.owner("POST", "/devices/query"+av, `not json`), 400, "IotHubFormatError")
	// The query needs RegistryRead: the service policy alone is refused.
	r := f.do("POST", "/devices/query"+av, `{"query":"SELECT * FROM devices"}`, "Authorization", token("service", f.policyKey("service", false), testNow.Add(time.Hour)))
	wantError(t, r, 401, "IotHubUnauthorizedAccess")
	// A device named "query" is still a device.
	f.addDevice("query")
	if r := f.owner("GET", "/devices/query"+av, ""); r.status != 200 || !strings.Contains(r.body, `"deviceId":"query"`) {
		t.Errorf("GET /devices/query = %d %s", r.status, r.body)
	}
}

// TestHealth: GET /health answers without a token and without secrets.
func TestHealth(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	r := f.do("GET", "/health", "")
	if r.status != 200 || r.body != `{"hostName":"localhost","status":"ready"}` {
		t.Errorf("GET /health = %d %s", r.status, r.body)
	}
	if r := f.do("POST", "/health", ""); r.status != 405 {
		t.Errorf("POST /health = %d, want 405", r.status)
	}
}

// TestQueryMetered: a twin query counts against the daily quota by the size of its result,
// in meter chunks (docs/iothub-behavior.md §14.9); registry operations count nothing; at the
// quota the query, a twin read and a twin update are 403 403002 with Retry-After to 00:00 UTC.
func TestQueryMetered(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	used := func() int64 { _, u := f.hub.QuotaUsed(); return u }
	if err := f.hub.SetLimits(iothub.Limits{MeterSize: 512}); err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{"dev1", "dev2", "dev3"} {
		f.addDevice(id)
	}
	f.owner("GET", "/devices"+av, "")
	if u := used(); u != 0 {
		t.Fatalf("registry operations counted %d meter units, want none", u)
	}
	q := func() response {
		return f.owner("POST", "/devices/query"+av, `{"query":"SELECT * FROM devices"}`, "Content-Type", "application/json")
	}
	r := q()
	if r.status != 200 {
		t.Fatalf("query = %d %s", r.status, r.body)
	}
	if got, want := used(), int64((len(r.body)+511)/512); got != want || want < 2 {
		t.Errorf("a query answering %d bytes counted %d meter units, want %d (3 twins are over 512 bytes)", len(r.body), got, want)
	}
	if err := f.hub.SetLimits(iothub.Limits{MeterSize: 512, DailyMessages: used()}); err != nil {
		t.Fatal(err)
	}
	for _, r := range []response{q(), f.owner("GET", "/twins/dev1"+av, ""), f.owner("PATCH", "/twins/dev1"+av, `{"tags":{"a":1}}`)} {
		wantError(t, r, 403, "IotHubQuotaExceeded")
		if ra := r.header.Get("Retry-After"); ra == "" {
			t.Errorf("403002 without Retry-After: %v", r.header)
		}
	}
	if r := f.owner("GET", "/devices/dev1"+av, ""); r.status != 200 {
		t.Errorf("a registry read at the quota = %d %s, want 200 (registry operations are not charged)", r.status, r.body)
	}
}
