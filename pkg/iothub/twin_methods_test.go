package iothub_test

import (
	"testing"

	"github.com/hubkit/hubkit/pkg/iothub"
)

func TestTwinAndMethodBuilders(t *testing.T) {
	// The documented wire forms (docs/iothub-behavior.md §4.3, §4.4).
	for _, tt := range []struct{ got, want string }{
		{iothub.TwinGetTopic("1"), "$iothub/twin/GET/?$rid=1"},
		{iothub.TwinPatchReportedTopic("2"), "$iothub/twin/PATCH/properties/reported/?$rid=2"},
		{iothub.TwinResponseTopic(200, "1", 0), "$iothub/twin/res/200/?$rid=1"},
		{iothub.TwinResponseTopic(204, "1", 2), "$iothub/twin/res/204/?$rid=1&$version=2"},
		{iothub.TwinResponseTopic(429, "a b", 0), "$iothub/twin/res/429/?$rid=a%20b"},
		{iothub.TwinDesiredPatchTopic(7), "$iothub/twin/PATCH/properties/desired/?$version=7"},
		{iothub.MethodRequestTopic("reboot", "1f"), "$iothub/methods/POST/reboot/?$rid=1f"},
		{iothub.MethodResponseTopic(200, "1f"), "$iothub/methods/res/200/?$rid=1f"},
		{iothub.MethodResponseTopic(-1, "x&y"), "$iothub/methods/res/-1/?$rid=x%26y"},
	} {
		if tt.got != tt.want {
			t.Errorf("built %q, want %q", tt.got, tt.want)
		}
	}
}

var rids = []string{"1", "0", "4294967295", "6f1e0c2a-3b5d-4f7a-9c8e-2d1b0a9f8e7d", "a b", "x&y=z", "%24", "+", "#", "/", "é", "?$rid=2"}

func TestTwinRoundTrip(t *testing.T) {
	for _, rid := range rids {
		if got, err := iothub.ParseTwinGetTopic(iothub.TwinGetTopic(rid)); err != nil || got != rid {
			t.Errorf("ParseTwinGetTopic(TwinGetTopic(%q)) = %q, %v", rid, got, err)
		}
		if got, err := iothub.ParseTwinPatchReportedTopic(iothub.TwinPatchReportedTopic(rid)); err != nil || got != rid {
			t.Errorf("ParseTwinPatchReportedTopic(TwinPatchReportedTopic(%q)) = %q, %v", rid, got, err)
		}
		for _, status := range []int{200, 204, 400, 429, 500} {
			for _, version := range []int64{0, 1, 2, 1 << 40} {
				topic := iothub.TwinResponseTopic(status, rid, version)
				s, r, v, err := iothub.ParseTwinResponseTopic(topic)
				if err != nil || s != status || r != rid || v != version {
					t.Errorf("ParseTwinResponseTopic(%q) = %d, %q, %d, %v; want %d, %q, %d", topic, s, r, v, err, status, rid, version)
				}
			}
		}
	}
	for _, version := range []int64{0, 1, 9007199254740993} {
		if got, err := iothub.ParseTwinDesiredPatchTopic(iothub.TwinDesiredPatchTopic(version)); err != nil || got != version {
			t.Errorf("ParseTwinDesiredPatchTopic(TwinDesiredPatchTopic(%d)) = %d, %v", version, got, err)
		}
	}
}

func TestMethodRoundTrip(t *testing.T) {
	for _, rid := range rids {
		for _, name := range []string{"reboot", "get-status", "a.b_c", "$weird"} {
			topic := iothub.MethodRequestTopic(name, rid)
			n, r, err := iothub.ParseMethodRequestTopic(topic)
			if err != nil || n != name || r != rid {
				t.Errorf("ParseMethodRequestTopic(%q) = %q, %q, %v; want %q, %q", topic, n, r, err, name, rid)
			}
		}
		for _, status := range []int{200, 404, 500, 0, -1, 999999999} {
			topic := iothub.MethodResponseTopic(status, rid)
			s, r, err := iothub.ParseMethodResponseTopic(topic)
			if err != nil || s != status || r != rid {
				t.Errorf("ParseMethodResponseTopic(%q) = %d, %q, %v; want %d, %q", topic, s, r, err, status, rid)
			}
		}
	}
}

func TestTwinParseAcceptsExtras(t *testing.T) {
	// Encoded "$rid" key, extra properties, and a version on a GET response.
	s, rid, v, err := iothub.ParseTwinResponseTopic("$iothub/twin/res/200/?%24rid=7&retry-after=3&$version=5")
	if err != nil || s != 200 || rid != "7" || v != 5 {
		t.Errorf("ParseTwinResponseTopic = %d, %q, %d, %v; want 200, \"7\", 5", s, rid, v, err)
	}
	if rid, err := iothub.ParseTwinPatchReportedTopic("$iothub/twin/PATCH/properties/reported/?$rid=3&$version=4"); err != nil || rid != "3" {
		t.Errorf("ParseTwinPatchReportedTopic with $version = %q, %v", rid, err)
	}
}

func TestTwinAndMethodParseErrors(t *testing.T) {
	tests := []struct {
		name  string
		parse func(string) error
		topic string
		rule  iothub.TopicRule
		want  string
	}{
		{"get-without-rid", parseTwinGet, "$iothub/twin/GET/", iothub.RuleMissingRID, "twin GET without $rid: expected $iothub/twin/GET/?$rid={rid}"},
		{"get-without-slash", parseTwinGet, "$iothub/twin/GET", iothub.RuleMissingRID, "twin GET without $rid"},
		{"get-other-property", parseTwinGet, "$iothub/twin/GET/?rid=1", iothub.RuleMissingRID, "twin GET without $rid"},
		{"get-empty-rid", parseTwinGet, "$iothub/twin/GET/?$rid=", iothub.RuleMissingRID, "twin GET with an empty $rid"},
		{"get-null-rid", parseTwinGet, "$iothub/twin/GET/?$rid", iothub.RuleMissingRID, "twin GET with an empty $rid"},
		{"get-no-question-mark", parseTwinGet, "$iothub/twin/GET/$rid=1", iothub.RuleMalformed, `twin GET: expected '?' after "$iothub/twin/GET/"`},
		{"get-bad-escape", parseTwinGet, "$iothub/twin/GET/?$rid=%", iothub.RuleMalformed, `value of key "$rid": bad percent-escape`},
		{"get-wrong-case", parseTwinGet, "$iothub/twin/get/?$rid=1", iothub.RuleUnknownTopic, "not a twin GET"},
		{"patch-without-rid", parseTwinPatch, "$iothub/twin/PATCH/properties/reported/", iothub.RuleMissingRID, "twin PATCH reported without $rid"},
		{"response-status-word", parseTwinResponse, "$iothub/twin/res/ok/?$rid=1", iothub.RuleMalformed, `status "ok" is not an integer`},
		{"response-status-empty", parseTwinResponse, "$iothub/twin/res//?$rid=1", iothub.RuleMalformed, `status "" is not an integer`},
		{"response-no-slash", parseTwinResponse, "$iothub/twin/res/200", iothub.RuleMalformed, "no '/' after the status"},
		{"response-bad-version", parseTwinResponse, "$iothub/twin/res/204/?$rid=1&$version=x", iothub.RuleMalformed, `$version "x" is not a non-negative integer`},
		{"response-negative-version", parseTwinResponse, "$iothub/twin/res/204/?$rid=1&$version=-2", iothub.RuleMalformed, `$version "-2"`},
		{"response-no-rid", parseTwinResponse, "$iothub/twin/res/204/?$version=2", iothub.RuleMissingRID, "twin response without $rid"},
		{"desired-no-version", parseTwinDesired, "$iothub/twin/PATCH/properties/desired/", iothub.RuleMalformed, "no $version"},
		{"desired-wrong-topic", parseTwinDesired, "$iothub/twin/PATCH/properties/reported/?$version=1", iothub.RuleUnknownTopic, "not a desired-properties patch"},
		{"method-no-name", parseMethodRequest, "$iothub/methods/POST//?$rid=1", iothub.RuleMalformed, "no method name"},
		{"method-no-rid", parseMethodRequest, "$iothub/methods/POST/reboot/", iothub.RuleMissingRID, "method request without $rid"},
		{"method-wrong-prefix", parseMethodRequest, "$iothub/methods/res/200/?$rid=1", iothub.RuleUnknownTopic, "not a method request"},
		{"method-response-float", parseMethodResponse, "$iothub/methods/res/200.5/?$rid=1", iothub.RuleMalformed, `status "200.5" is not an integer`},
		{"method-response-huge", parseMethodResponse, "$iothub/methods/res/99999999999/?$rid=1", iothub.RuleMalformed, "is not an integer"},
		{"method-response-no-rid", parseMethodResponse, "$iothub/methods/res/200/", iothub.RuleMissingRID, "method response without $rid"},
		{"method-response-wildcard", parseMethodResponse, "$iothub/methods/res/+/?$rid=1", iothub.RuleWildcard, "wildcard '+'"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			wantTopicError(t, "parse("+tt.topic+")", tt.parse(tt.topic), tt.topic, tt.rule, tt.want)
		})
	}
}

func parseTwinGet(s string) error {
	_, err := iothub.ParseTwinGetTopic(s)
	return err
}

func parseTwinPatch(s string) error {
	_, err := iothub.ParseTwinPatchReportedTopic(s)
	return err
}

func parseTwinResponse(s string) error {
	_, _, _, err := iothub.ParseTwinResponseTopic(s)
	return err
}

func parseTwinDesired(s string) error {
	_, err := iothub.ParseTwinDesiredPatchTopic(s)
	return err
}

func parseMethodRequest(s string) error {
	_, _, err := iothub.ParseMethodRequestTopic(s)
	return err
}

func parseMethodResponse(s string) error {
	_, _, err := iothub.ParseMethodResponseTopic(s)
	return err
}
