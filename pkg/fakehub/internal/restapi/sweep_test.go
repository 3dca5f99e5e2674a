package restapi_test

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/hubkit/hubkit/pkg/fakehub/internal/restapi"
)

// TestNoServerErrorForClientMistakes sweeps every route with the mistakes clients make (bad
// IDs, bodies, keys, headers, values out of range) and requires a 4xx for each: a 5xx for a
// client's mistake is a defect (issue 16, item 12). A 504 from a method is the device's
// silence, not a mistake, and cannot happen here: no device is online.
func TestNoServerErrorForClientMistakes(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	f.addDevice("dev1")
	f.addDevice("dev1/m1")
	ids := []string{"dev1", "nodev", "bad%20id", "%ff", "a%2Fb", strings.Repeat("x", 200), "dev1%00"}
	bodies := []string{"", "{", "[]", "null", `"text"`, `{"deviceId":5}`, `{"deviceId":"other"}`,
		`{"authentication":{"symmetricKey":{"primaryKey":"AAECAwQF"}}}`,
		`{"authentication":{"symmetricKey":{"primaryKey":"not base64!","secondaryKey":""}}}`,
		`{"authentication":{"type":"selfSigned"}}`, `{"status":"weird"}`, `{"capabilities":{"iotEdge":true}}`,
		`{"tags":[],"properties":{"desired":[]}}`, `{"properties":{"reported":{"x":1}}}`, `{"properties":{"desired":{"a.b":1}}}`,
		`{"tags":{"k":` + strings.Repeat("[", 50) + strings.Repeat("]", 50) + `}}`,
		`{"methodName":""}`, `{"methodName":"m","responseTimeoutInSeconds":0}`, `{"methodName":"m","responseTimeoutInSeconds":"x"}`,
		`{"methodName":"m","connectTimeoutInSeconds":-5}`, `{"methodName":"m","payload":` + strings.Repeat("1", 200000) + `}`,
		`{"query":5}`, `{"query":"DROP TABLE devices"}`, `{"query":"SELECT * FROM devices WHERE tags.x = tags.y"}`,
		strings.Repeat("A", 70000)}
	headers := [][]string{nil, {"If-Match", `"stale"`}, {"If-Match", `W/"x"`}, {"If-Match", `""`},
		{"iothub-expiry", "not a time"}, {"iothub-expiry", "1999-01-01T00:00:00Z"}, {"iothub-ack", "sometimes"},
		{"iothub-messageid", strings.Repeat("m", 300)}, {"X-Hubkit-Properties", "%zz=1"}, {"Content-Type", "text/plain"},
		{"x-ms-max-item-count", "-1"}, {"x-ms-continuation", "%%%"}}
	queries := []string{"", "&top=x", "&top=-1", "&count=x", "&since=x", "&follow=x", "&device=%ff"}
	check := func(method, path, body string, h ...string) {
		t.Helper()
		r := f.owner(method, path, body, append([]string{"Content-Type", "application/json"}, h...)...)
		if r.status >= 500 {
			t.Errorf("%s %s with %q %v = %d %s", method, path, trim(body), h, r.status, r.body)
		}
	}
	for _, rt := range restapi.Routes() {
		method, pattern, _ := strings.Cut(rt.Pattern, " ")
		for _, id := range ids {
			path := strings.NewReplacer("{id}", id, "{mid}", "m1", "{msgId}", "nomsg", "{$}", "").Replace(pattern) + av
			if method == "GET" {
				for _, q := range queries {
					check(method, path+q, "")
				}
				continue
			}
			for _, body := range bodies {
				check(method, path, body)
			}
			for _, h := range headers {
				check(method, path, "{}", h...)
			}
		}
	}
}

func trim(s string) string {
	if len(s) > 60 {
		return s[:60] + "…"
	}
	return s
}

// FuzzServiceAPI: no request a client can send earns a 5xx.
func FuzzServiceAPI(f *testing.F) {
	fx := newFixture(f)
	fx.addDevice("dev1")
	for _, seed := range []struct{ method, path, body string }{
		{"PUT", "/devices/dev2", `{"authentication":{"symmetricKey":{"primaryKey":"AAECAwQF"}}}`},
		{"PATCH", "/twins/dev1", `{"tags":{"a":{"b":1}}}`},
		{"POST", "/twins/dev1/methods", `{"methodName":"m","responseTimeoutInSeconds":5}`},
		{"POST", "/devices/query", `{"query":"SELECT * FROM devices WHERE tags.a IN [1,'x']"}`},
		{"POST", "/devices/dev1/messages/devicebound", `hello`},
		{"DELETE", "/devices/dev1/commands", ``},
	} {
		f.Add(seed.method, seed.path, seed.body)
	}
	methods := []string{"GET", "PUT", "PATCH", "POST", "DELETE"}
	auth := fx.ownerToken() // outside the target: it may not call f's methods
	f.Fuzz(func(t *testing.T, method, path, body string) {
		if !slices.Contains(methods, method) || !strings.HasPrefix(path, "/") || strings.ContainsAny(path, " ?#\x00\r\n") {
			return
		}
		if strings.Contains(path, "telemetry") || strings.Contains(body, "connectTimeout") { // these wait by design: the sweep covers them
			return
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		r, err := fx.try(ctx, method, path+av, body, "Authorization", auth, "Content-Type", "application/json")
		if err == nil && r.status >= 500 {
			t.Errorf("%s %s %q = %d %s", method, path, trim(body), r.status, r.body)
		}
	})
}
