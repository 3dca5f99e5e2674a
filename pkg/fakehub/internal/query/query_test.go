package query_test

import (
	"encoding/json"
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/hubkit/hubkit/pkg/fakehub/internal/query"
)

// The documents are twins in the JSON shape of GET /twins/{id}.
var docs = map[string]string{
	"dev1": `{"deviceId":"dev1","status":"enabled","connectionState":"Connected","tags":{"location":{"region":"US","plant":"Redmond43"},"floor":3},
	          "properties":{"desired":{"telemetryConfig":{"sendFrequency":"5m"},"$version":2},"reported":{"connectivity":"wifi","battery":80,"$version":4}}}`,
	"dev2": `{"deviceId":"dev2","status":"disabled","connectionState":"Disconnected","tags":{"location":{"region":"EU"},"floor":1},
	          "properties":{"desired":{"$version":1},"reported":{"connectivity":"wired","battery":15,"$version":1}}}`,
	"dev3": `{"deviceId":"dev3","status":"enabled","connectionState":"Disconnected",
	          "properties":{"desired":{"$version":1},"reported":{"$version":1}}}`,
}

func matching(t *testing.T, sql string) []string {
	t.Helper()
	q, err := query.Parse(sql)
	if err != nil {
		t.Fatalf("Parse(%q): %v", sql, err)
	}
	var out []string
	for id, s := range docs {
		var doc map[string]any
		if err := json.Unmarshal([]byte(s), &doc); err != nil {
			t.Fatal(err)
		}
		if q.Match(doc) {
			out = append(out, id)
		}
	}
	slices.Sort(out)
	return out
}

func TestMatch(t *testing.T) {
	for _, tc := range []struct {
		sql  string
		want string // matching device IDs, comma-separated
	}{
		{"SELECT * FROM devices", "dev1,dev2,dev3"},
		{"select * from devices", "dev1,dev2,dev3"},
		{"SELECT * FROM devices WHERE deviceId = 'dev2'", "dev2"},
		{`SELECT * FROM devices WHERE deviceId = "dev2"`, "dev2"},
		{"SELECT * FROM devices WHERE deviceId != 'dev2'", "dev1,dev3"},
		{"SELECT * FROM devices WHERE deviceId <> 'dev2'", "dev1,dev3"},
		{"SELECT * FROM devices WHERE status = 'enabled'", "dev1,dev3"},
		{"SELECT * FROM devices WHERE tags.location.region = 'US'", "dev1"},
		{"SELECT * FROM devices WHERE tags.location.region = 'US' AND tags.location.plant = 'Redmond43'", "dev1"},
		{"SELECT * FROM devices WHERE tags.location.region = 'US' OR tags.location.region = 'EU'", "dev1,dev2"},
		// A missing property compares neither equal nor unequal (dev3 has no tags).
		{"SELECT * FROM devices WHERE tags.location.region != 'US'", "dev2"},
		{"SELECT * FROM devices WHERE NOT (tags.location.region = 'US')", "dev2"},
		{"SELECT * FROM devices WHERE tags.floor >= 3", "dev1"},
		{"SELECT * FROM devices WHERE tags.floor < 3", "dev2"},
		{"SELECT * FROM devices WHERE tags.floor = '3'", ""}, // a string never equals a number
		{"SELECT * FROM devices WHERE properties.reported.connectivity IN ['wired', 'wifi']", "dev1,dev2"},
		{"SELECT * FROM devices WHERE properties.reported.connectivity NOT IN ['wired']", "dev1"},
		{"SELECT * FROM devices WHERE properties.reported.battery < 20 AND status = 'disabled'", "dev2"},
		{"SELECT * FROM devices WHERE properties.desired.telemetryConfig.sendFrequency = '5m'", "dev1"},
		{"SELECT * FROM devices WHERE IS_DEFINED(tags.location)", "dev1,dev2"},
		{"SELECT * FROM devices WHERE NOT IS_DEFINED(tags)", "dev3"},
		{"SELECT * FROM devices WHERE (status = 'enabled' OR tags.floor = 1) AND connectionState = 'Disconnected'", "dev2,dev3"},
		{"SELECT * FROM devices WHERE properties.reported.$version = 4", "dev1"},
		{"SELECT * FROM devices WHERE tags.floor > -1", "dev1,dev2"},
		{"SELECT * FROM devices WHERE devices.deviceId = 'dev3'", "dev3"}, // the collection named, as in the docs
	} {
		if got := strings.Join(matching(t, tc.sql), ","); got != tc.want {
			t.Errorf("%s: matched %q, want %q", tc.sql, got, tc.want)
		}
	}
	q, err := query.Parse("SELECT * FROM devices.modules WHERE moduleId = 'm1'")
	if err != nil || !q.Modules {
		t.Errorf("devices.modules: %+v, %v", q, err)
	}
}

func TestRefused(t *testing.T) {
	for _, tc := range []struct {
		sql, want   string
		unsupported bool
	}{
		{"SELECT deviceId FROM devices", `the projection "deviceId" at position 7`, true},
		{"SELECT COUNT() AS n FROM devices", `the projection "COUNT"`, true},
		{"SELECT TOP 5 * FROM devices", "SELECT TOP", true},
		{"SELECT * FROM devices.jobs", "FROM devices.jobs", true},
		{"SELECT * FROM things", `FROM "things"`, true},
		{"SELECT * FROM devices GROUP BY tags.x", "GROUP BY", true},
		{"SELECT * FROM devices WHERE STARTSWITH(deviceId, 'a')", "the function STARTSWITH", true},
		{"SELECT * FROM devices WHERE tags.a = tags.b", "comparing two properties", true},
		{"", "want SELECT at the start, got the end of the query", false},
		{"SELECT * FROM devices WHERE", "want a property name, got the end of the query", false},
		{"SELECT * FROM devices WHERE deviceId = 'x", "unterminated string", false},
		{"SELECT * FROM devices WHERE deviceId ~ 'x'", "unexpected character '~'", false},
		{"SELECT * FROM devices WHERE deviceId = 'x' junk", `unexpected "junk"`, false},
		{"SELECT * FROM devices WHERE (deviceId = 'x'", "want )", false},
		{"SELECT * FROM devices WHERE deviceId IN ['a' 'b']", "want , or ]", false},
	} {
		_, err := query.Parse(tc.sql)
		if err == nil || !strings.Contains(err.Error(), tc.want) || errors.Is(err, query.ErrUnsupported) != tc.unsupported {
			t.Errorf("Parse(%q) = %v, want an error containing %q (unsupported: %v)", tc.sql, err, tc.want, tc.unsupported)
		}
		if tc.unsupported && !strings.Contains(err.Error(), query.Supported) {
			t.Errorf("Parse(%q) = %v: does not say what is supported", tc.sql, err)
		}
	}
}

// FuzzParse: any text parses to a query that can be evaluated, or is refused; never a panic.
func FuzzParse(f *testing.F) {
	for _, s := range []string{"SELECT * FROM devices WHERE tags.a.b = 'x' AND NOT (p IN [1, -2.5e3, null, true])",
		"SELECT * FROM devices.modules WHERE IS_DEFINED(properties.reported.x) OR x <= \"y\\\"\"", "SELECT deviceId FROM devices"} {
		f.Add(s)
	}
	var doc map[string]any
	_ = json.Unmarshal([]byte(docs["dev1"]), &doc)
	f.Fuzz(func(t *testing.T, s string) {
		q, err := query.Parse(s)
		if err != nil {
			if err.Error() == "" {
				t.Fatal("empty error")
			}
			return
		}
		q.Match(doc)
	})
}
