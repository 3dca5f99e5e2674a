package iothub_test

import (
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/hubkit/hubkit/pkg/iothub"
)

func TestClassifyPublish(t *testing.T) {
	dev2 := iothub.Identity{DeviceID: "dev2"}
	tests := []struct {
		name    string
		self    iothub.Identity
		topic   string
		opts    []iothub.ParseOption
		want    iothub.DevicePublish
		rule    iothub.TopicRule
		wantErr string
	}{
		{name: "telemetry", self: dev1, topic: "devices/dev1/messages/events/",
			want: iothub.DevicePublish{Kind: iothub.TopicTelemetry, Identity: dev1}},
		{name: "telemetry-bag", self: dev1, topic: "devices/dev1/messages/events/%24.mid=1&a=b",
			want: iothub.DevicePublish{Kind: iothub.TopicTelemetry, Identity: dev1,
				Properties: iothub.Properties{{Key: "$.mid", Value: "1"}, {Key: "a", Value: "b"}}}},
		{name: "telemetry-no-slash", self: dev1, topic: "devices/dev1/messages/events",
			want: iothub.DevicePublish{Kind: iothub.TopicTelemetry, Identity: dev1}},
		{name: "module-telemetry", self: mod1, topic: "devices/dev1/modules/mod1/messages/events/",
			want: iothub.DevicePublish{Kind: iothub.TopicTelemetry, Identity: mod1}},
		{name: "telemetry-question-mark-lenient", self: dev1, topic: "devices/dev1/messages/events/?a=1", opts: []iothub.ParseOption{iothub.AllowQuestionMarkBag()},
			want: iothub.DevicePublish{Kind: iothub.TopicTelemetry, Identity: dev1, Properties: iothub.Properties{{Key: "a", Value: "1"}}}},
		{name: "twin-get", self: dev1, topic: "$iothub/twin/GET/?$rid=42",
			want: iothub.DevicePublish{Kind: iothub.TopicTwinGet, Identity: dev1, RID: "42", Properties: iothub.Properties{{Key: "$rid", Value: "42"}}}},
		{name: "twin-patch", self: mod1, topic: "$iothub/twin/PATCH/properties/reported/?$rid=a",
			want: iothub.DevicePublish{Kind: iothub.TopicTwinPatchReported, Identity: mod1, RID: "a", Properties: iothub.Properties{{Key: "$rid", Value: "a"}}}},
		{name: "method-response", self: dev1, topic: "$iothub/methods/res/201/?$rid=1f",
			want: iothub.DevicePublish{Kind: iothub.TopicMethodResponse, Identity: dev1, RID: "1f", Status: 201, Properties: iothub.Properties{{Key: "$rid", Value: "1f"}}}},

		{name: "other-device", self: dev1, topic: "devices/dev2/messages/events/", rule: iothub.RuleOtherIdentity,
			wantErr: "publish to another device's topic: devices/dev2/... but this connection is device dev1"},
		{name: "module-of-other-device", self: dev2, topic: "devices/dev1/modules/mod1/messages/events/", rule: iothub.RuleOtherIdentity,
			wantErr: "publish to another device's module's topic: devices/dev1/modules/mod1/... but this connection is device dev2"},
		{name: "device-to-own-module", self: dev1, topic: "devices/dev1/modules/mod1/messages/events/", rule: iothub.RuleOtherIdentity,
			wantErr: "publish to a module's topic: devices/dev1/modules/mod1/... but this connection is device dev1"},
		{name: "module-to-parent", self: mod1, topic: "devices/dev1/messages/events/", rule: iothub.RuleOtherIdentity,
			wantErr: "publish to the parent device's topic: devices/dev1/... but this connection is module dev1/mod1"},
		{name: "module-to-sibling", self: mod1, topic: "devices/dev1/modules/mod2/messages/events/", rule: iothub.RuleOtherIdentity,
			wantErr: "publish to another module's topic: devices/dev1/modules/mod2/... but this connection is module dev1/mod1"},
		{name: "id-case-matters", self: dev1, topic: "devices/DEV1/messages/events/", rule: iothub.RuleOtherIdentity,
			wantErr: "another device's topic"},
		{name: "wildcard-plus", self: dev1, topic: "devices/+/messages/events/", rule: iothub.RuleWildcard,
			wantErr: "wildcard '+' not allowed in a topic name"},
		{name: "wildcard-hash", self: dev1, topic: "devices/dev1/messages/events/#", rule: iothub.RuleWildcard,
			wantErr: "wildcard '#' not allowed in a topic name"},
		{name: "publish-c2d", self: dev1, topic: "devices/dev1/messages/devicebound/", rule: iothub.RuleDirection,
			wantErr: "publish to the C2D topic"},
		{name: "question-mark-strict", self: dev1, topic: "devices/dev1/messages/events/?a=1", rule: iothub.RuleMalformed,
			wantErr: "starts with '?'"},
		{name: "unknown-devices-topic", self: dev1, topic: "devices/dev1/messages/other", rule: iothub.RuleUnknownTopic,
			wantErr: "not a telemetry topic"},
		{name: "plain-topic", self: dev1, topic: "hello/world", rule: iothub.RuleUnknownTopic,
			wantErr: "unknown topic: a device may publish only to devices/dev1/messages/events/"},
		{name: "twin-get-no-rid", self: dev1, topic: "$iothub/twin/GET/", rule: iothub.RuleMissingRID,
			wantErr: "twin GET without $rid"},
		{name: "twin-patch-no-rid", self: dev1, topic: "$iothub/twin/PATCH/properties/reported/", rule: iothub.RuleMissingRID,
			wantErr: "twin PATCH reported without $rid"},
		{name: "twin-patch-desired", self: dev1, topic: "$iothub/twin/PATCH/properties/desired/?$rid=1", rule: iothub.RuleDirection,
			wantErr: "publish to a hub-to-device topic"},
		{name: "twin-res", self: dev1, topic: "$iothub/twin/res/200/?$rid=1", rule: iothub.RuleDirection,
			wantErr: "publish to a hub-to-device topic"},
		{name: "method-post", self: dev1, topic: "$iothub/methods/POST/x/?$rid=1", rule: iothub.RuleDirection,
			wantErr: "publish to a hub-to-device topic"},
		{name: "method-response-bad-status", self: dev1, topic: "$iothub/methods/res/ok/?$rid=1", rule: iothub.RuleMalformed,
			wantErr: `status "ok" is not an integer`},
		{name: "method-response-no-rid", self: dev1, topic: "$iothub/methods/res/200/", rule: iothub.RuleMissingRID,
			wantErr: "method response without $rid"},
		{name: "unknown-iothub", self: dev1, topic: "$iothub/twin/DELETE/?$rid=1", rule: iothub.RuleUnknownTopic,
			wantErr: "unknown $iothub topic"},
		{name: "dps-on-hub", self: dev1, topic: "$dps/registrations/PUT/iotdps-register/?$rid=1", rule: iothub.RuleUnknownTopic,
			wantErr: "unknown topic"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := iothub.ClassifyPublish(tt.self, tt.topic, tt.opts...)
			call := "ClassifyPublish(" + tt.self.String() + ", " + tt.topic + ")"
			if tt.wantErr != "" {
				wantTopicError(t, call, err, tt.topic, tt.rule, tt.wantErr)
				return
			}
			if err != nil {
				t.Fatalf("%s error = %v", call, err)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("%s mismatch (-want +got):\n%s", call, diff)
			}
		})
	}
}

// Every builder's output is accepted by ClassifyPublish for its own identity.
func TestClassifyPublishAcceptsBuilders(t *testing.T) {
	for _, self := range []iothub.Identity{dev1, mod1} {
		for _, tt := range []struct {
			topic string
			kind  iothub.TopicKind
		}{
			{iothub.TelemetryTopic(self, iothub.Properties{{Key: "$.mid", Value: "1"}}), iothub.TopicTelemetry},
			{iothub.TwinGetTopic("1"), iothub.TopicTwinGet},
			{iothub.TwinPatchReportedTopic("1"), iothub.TopicTwinPatchReported},
			{iothub.MethodResponseTopic(200, "1"), iothub.TopicMethodResponse},
		} {
			got, err := iothub.ClassifyPublish(self, tt.topic)
			if err != nil || got.Kind != tt.kind {
				t.Errorf("ClassifyPublish(%v, %q) = %v, %v; want %v", self, tt.topic, got.Kind, err, tt.kind)
			}
		}
	}
}

func TestClassifySubscribe(t *testing.T) {
	tests := []struct {
		name    string
		self    iothub.Identity
		filter  string
		want    iothub.TopicKind
		rule    iothub.TopicRule
		wantErr string
	}{
		{name: "c2d", self: dev1, filter: "devices/dev1/messages/devicebound/#", want: iothub.FilterC2D},
		{name: "c2d-plus", self: dev1, filter: "devices/+/messages/devicebound/#", want: iothub.FilterC2D},
		{name: "module-c2d", self: mod1, filter: "devices/dev1/modules/mod1/messages/devicebound/#", want: iothub.FilterC2D},
		{name: "module-c2d-plus", self: mod1, filter: "devices/+/modules/mod1/messages/devicebound/#", want: iothub.FilterC2D},
		{name: "module-documented-short", self: mod1, filter: "devices/dev1/modules/mod1/#", want: iothub.FilterC2D},
		{name: "module-embedded-c-constant", self: mod1, filter: "devices/+/messages/devicebound/#", want: iothub.FilterC2D},
		{name: "twin-res", self: dev1, filter: "$iothub/twin/res/#", want: iothub.FilterTwinResponse},
		{name: "twin-desired", self: mod1, filter: "$iothub/twin/PATCH/properties/desired/#", want: iothub.FilterTwinDesired},
		{name: "methods", self: dev1, filter: "$iothub/methods/POST/#", want: iothub.FilterMethods},
		{name: "one-method", self: dev1, filter: "$iothub/methods/POST/reboot/#", want: iothub.FilterMethods},

		{name: "other-device", self: dev1, filter: "devices/dev2/messages/devicebound/#", rule: iothub.RuleOtherIdentity,
			wantErr: "subscribe to another device's topic: devices/dev2/... but this connection is device dev1"},
		{name: "device-to-module-c2d", self: dev1, filter: "devices/dev1/modules/mod1/messages/devicebound/#", rule: iothub.RuleOtherIdentity,
			wantErr: "subscribe to a module's topic"},
		{name: "module-to-device-c2d", self: mod1, filter: "devices/dev1/messages/devicebound/#", rule: iothub.RuleOtherIdentity,
			wantErr: "subscribe to the parent device's topic"},
		{name: "c2d-subtopic", self: dev1, filter: "devices/dev1/messages/devicebound/x/#", rule: iothub.RuleC2DSubTopic,
			wantErr: "C2D filter must end in /# (sub-topic filtering is not supported): expected devices/dev1/messages/devicebound/#"},
		{name: "c2d-no-hash", self: dev1, filter: "devices/dev1/messages/devicebound/", rule: iothub.RuleC2DSubTopic,
			wantErr: "C2D filter must end in /#"},
		{name: "c2d-exact", self: dev1, filter: "devices/dev1/messages/devicebound", rule: iothub.RuleC2DSubTopic,
			wantErr: "C2D filter must end in /#"},
		{name: "c2d-plus-level", self: dev1, filter: "devices/dev1/messages/devicebound/+", rule: iothub.RuleWildcard,
			wantErr: "wildcard '+' is allowed only in the device segment"},
		{name: "module-plus", self: mod1, filter: "devices/dev1/modules/+/messages/devicebound/#", rule: iothub.RuleWildcard,
			wantErr: "not in the module segment"},
		{name: "device-hash", self: dev1, filter: "devices/dev1/#", rule: iothub.RuleUnknownTopic,
			wantErr: "a device subscribes to its C2D messages with devices/dev1/messages/devicebound/#"},
		{name: "all-devices", self: dev1, filter: "devices/#", rule: iothub.RuleUnknownTopic,
			wantErr: "unknown topic filter"},
		{name: "telemetry", self: dev1, filter: "devices/dev1/messages/events/#", rule: iothub.RuleUnknownTopic,
			wantErr: "expected devices/dev1/messages/devicebound/#"},
		{name: "everything", self: dev1, filter: "#", rule: iothub.RuleUnknownTopic,
			wantErr: "unknown topic filter"},
		{name: "plus-root", self: dev1, filter: "+/dev1/messages/devicebound/#", rule: iothub.RuleWildcard,
			wantErr: "wildcard '+' is allowed only in the device segment of the C2D filter"},
		{name: "iothub-hash", self: dev1, filter: "$iothub/#", rule: iothub.RuleUnknownTopic,
			wantErr: "unknown $iothub topic filter"},
		{name: "twin-res-exact", self: dev1, filter: "$iothub/twin/res/200/?$rid=1", rule: iothub.RuleUnknownTopic,
			wantErr: "unknown $iothub topic filter"},
		{name: "twin-res-plus", self: dev1, filter: "$iothub/twin/res/+/#", rule: iothub.RuleWildcard,
			wantErr: "wildcard '+' is allowed only"},
		{name: "methods-plus", self: dev1, filter: "$iothub/methods/POST/+/#", rule: iothub.RuleWildcard,
			wantErr: "wildcard '+' is allowed only"},
		{name: "methods-no-hash", self: dev1, filter: "$iothub/methods/POST/reboot", rule: iothub.RuleUnknownTopic,
			wantErr: "unknown methods filter"},
		{name: "hash-not-last", self: dev1, filter: "devices/#/x", rule: iothub.RuleMalformed,
			wantErr: "'#' must be the last level"},
		{name: "plus-partial", self: dev1, filter: "devices/d+/messages/devicebound/#", rule: iothub.RuleMalformed,
			wantErr: "'+' must occupy a whole level"},
		{name: "empty", self: dev1, filter: "", rule: iothub.RuleMalformed, wantErr: "empty topic filter"},
		{name: "empty-device", self: dev1, filter: "devices//messages/devicebound/#", rule: iothub.RuleMalformed,
			wantErr: "empty device segment"},
		{name: "bad-device-id", self: dev1, filter: "devices/a b/messages/devicebound/#", rule: iothub.RuleMalformed,
			wantErr: `device ID "a b": character ' '`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := iothub.ClassifySubscribe(tt.self, tt.filter)
			call := "ClassifySubscribe(" + tt.self.String() + ", " + tt.filter + ")"
			if tt.wantErr != "" {
				wantTopicError(t, call, err, tt.filter, tt.rule, tt.wantErr)
				if got != iothub.TopicUnknown {
					t.Errorf("%s kind = %v on error, want unknown", call, got)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Fatalf("%s = %v, %v; want %v", call, got, err, tt.want)
			}
			if !got.IsFilter() {
				t.Errorf("%v.IsFilter() = false", got)
			}
		})
	}
}

func TestClassifySubscribeAcceptsBuilders(t *testing.T) {
	for _, self := range []iothub.Identity{dev1, mod1} {
		for _, f := range []string{iothub.C2DFilter(self), iothub.TwinResponseFilter, iothub.TwinDesiredFilter, iothub.MethodsFilter} {
			if _, err := iothub.ClassifySubscribe(self, f); err != nil {
				t.Errorf("ClassifySubscribe(%v, %q) = %v", self, f, err)
			}
		}
	}
}

func TestTopicKindString(t *testing.T) {
	want := map[iothub.TopicKind]string{
		iothub.TopicUnknown: "unknown", iothub.TopicTelemetry: "telemetry", iothub.TopicTwinGet: "twin-get",
		iothub.TopicTwinPatchReported: "twin-patch-reported", iothub.TopicMethodResponse: "method-response",
		iothub.FilterC2D: "c2d-filter", iothub.FilterTwinResponse: "twin-response-filter",
		iothub.FilterTwinDesired: "twin-desired-filter", iothub.FilterMethods: "methods-filter",
		iothub.TopicDPSRegister: "dps-register", iothub.TopicDPSPoll: "dps-poll", iothub.FilterDPSResponse: "dps-response-filter",
		99: "TopicKind(99)", -1: "TopicKind(-1)",
	}
	for k, w := range want {
		if got := k.String(); got != w {
			t.Errorf("TopicKind(%d).String() = %q, want %q", int(k), got, w)
		}
	}
}
