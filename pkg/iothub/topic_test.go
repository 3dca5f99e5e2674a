package iothub_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/hubkit/hubkit/pkg/iothub"
)

var (
	dev1 = iothub.Identity{DeviceID: "dev1"}
	mod1 = iothub.Identity{DeviceID: "dev1", ModuleID: "mod1"}
)

// wantTopicError checks that err is a *TopicError for topic with the given rule whose message
// contains want.
func wantTopicError(t *testing.T, call string, err error, topic string, rule iothub.TopicRule, want string) {
	t.Helper()
	var te *iothub.TopicError
	if !errors.As(err, &te) {
		t.Fatalf("%s error = %v, want a *TopicError", call, err)
	}
	if !errors.Is(err, iothub.ErrTopic) {
		t.Errorf("%s error %v does not wrap ErrTopic", call, err)
	}
	if te.Topic != topic {
		t.Errorf("%s TopicError.Topic = %q, want %q", call, te.Topic, topic)
	}
	if rule != "" && te.Rule != rule {
		t.Errorf("%s rule = %q, want %q (%v)", call, te.Rule, rule, err)
	}
	if !strings.Contains(err.Error(), want) {
		t.Errorf("%s error = %v, want it to contain %q", call, err, want)
	}
}

func TestParseTelemetryTopic(t *testing.T) {
	tests := []struct {
		name      string
		topic     string
		opts      []iothub.ParseOption
		wantID    iothub.Identity
		wantProps iothub.Properties
		rule      iothub.TopicRule
		wantErr   string
	}{
		{name: "device", topic: "devices/dev1/messages/events/", wantID: dev1},
		{name: "device-no-trailing-slash", topic: "devices/dev1/messages/events", wantID: dev1},
		{name: "module", topic: "devices/dev1/modules/mod1/messages/events/", wantID: mod1},
		{name: "module-no-trailing-slash", topic: "devices/dev1/modules/mod1/messages/events", wantID: mod1},
		{name: "device-named-modules", topic: "devices/modules/messages/events/", wantID: iothub.Identity{DeviceID: "modules"}},
		{name: "properties", topic: "devices/dev1/messages/events/%24.mid=m1&$.ct=application%2Fjson&%24.ce=utf-8&color=red",
			wantID: dev1, wantProps: iothub.Properties{{Key: "$.mid", Value: "m1"}, {Key: "$.ct", Value: "application/json"},
				{Key: "$.ce", Value: "utf-8"}, {Key: "color", Value: "red"}}},
		{name: "unencoded-slash-in-value", topic: "devices/dev1/messages/events/$.ct=application/json",
			wantID: dev1, wantProps: iothub.Properties{{Key: "$.ct", Value: "application/json"}}},
		{name: "question-mark-allowed-by-option", topic: "devices/dev1/messages/events/?$.mid=1", opts: []iothub.ParseOption{iothub.AllowQuestionMarkBag()},
			wantID: dev1, wantProps: iothub.Properties{{Key: "$.mid", Value: "1"}}},

		{name: "strict-escaped-ok", topic: "devices/dev1/messages/events/%24.mid=1&timestamp=2019-02-15T15%3A11%3A31Z&$.ct=a%2Fb",
			opts: []iothub.ParseOption{iothub.RequireEscapedProperties()}, wantID: dev1,
			wantProps: iothub.Properties{{Key: "$.mid", Value: "1"}, {Key: "timestamp", Value: "2019-02-15T15:11:31Z"}, {Key: "$.ct", Value: "a/b"}}},
		// Captured in Azure/azure-iot-sdk-c#869: the hub disconnected this client.
		{name: "strict-raw-colon", topic: "devices/dev1/messages/events/timestamp=2019-02-15T15:11:31Z&%24.mid=4429df08",
			opts: []iothub.ParseOption{iothub.RequireEscapedProperties()}, rule: iothub.RuleMalformed,
			wantErr: `property bag: value "2019-02-15T15:11:31Z" of key "timestamp": unescaped ':' at position 14 (percent-encode it as %3A)`},
		{name: "strict-raw-slash", topic: "devices/dev1/messages/events/$.ct=application/json",
			opts: []iothub.ParseOption{iothub.RequireEscapedProperties()}, rule: iothub.RuleMalformed,
			wantErr: `unescaped '/' at position 12 (percent-encode it as %2F)`},
		{name: "strict-raw-dollar-in-key", topic: "devices/dev1/messages/events/a$b=1",
			opts: []iothub.ParseOption{iothub.RequireEscapedProperties()}, rule: iothub.RuleMalformed,
			wantErr: `key "a$b": unescaped '$' at position 2`},
		{name: "question-mark-rejected", topic: "devices/dev1/messages/events/?$.mid=1", rule: iothub.RuleMalformed,
			wantErr: "the property bag starts with '?'"},
		{name: "plus-wildcard", topic: "devices/dev1/messages/events/a=1+1", rule: iothub.RuleWildcard,
			wantErr: "wildcard '+' not allowed in a topic name"},
		{name: "hash-wildcard", topic: "devices/dev1/messages/events/#", rule: iothub.RuleWildcard,
			wantErr: "wildcard '#' not allowed in a topic name"},
		{name: "empty", topic: "", rule: iothub.RuleMalformed, wantErr: "empty topic name"},
		{name: "nul", topic: "devices/dev1/messages/events/\x00", rule: iothub.RuleMalformed, wantErr: "U+0000"},
		{name: "c2d-topic", topic: "devices/dev1/messages/devicebound/", rule: iothub.RuleUnknownTopic,
			wantErr: "not a telemetry topic: expected devices/{deviceId}[/modules/{moduleId}]/messages/events/[{properties}]"},
		{name: "eventsx", topic: "devices/dev1/messages/eventsx", rule: iothub.RuleUnknownTopic, wantErr: "not a telemetry topic"},
		{name: "wrong-case", topic: "devices/dev1/messages/Events/", rule: iothub.RuleUnknownTopic, wantErr: "not a telemetry topic"},
		{name: "not-devices", topic: "device/dev1/messages/events/", rule: iothub.RuleUnknownTopic, wantErr: "expected devices/"},
		{name: "no-device-slash", topic: "devices/dev1", rule: iothub.RuleUnknownTopic, wantErr: "expected devices/"},
		{name: "empty-module", topic: "devices/dev1/modules//messages/events/", rule: iothub.RuleUnknownTopic, wantErr: "expected devices/"},
		{name: "bad-device-id", topic: "devices/dev 1/messages/events/", rule: iothub.RuleMalformed,
			wantErr: `device ID "dev 1": character ' ' (U+0020) at position 4`},
		{name: "bad-property", topic: "devices/dev1/messages/events/a=%ZZ", rule: iothub.RuleMalformed,
			wantErr: `property bag: value of key "a": bad percent-escape "%ZZ"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			id, props, err := iothub.ParseTelemetryTopic(tt.topic, tt.opts...)
			call := "ParseTelemetryTopic(" + tt.topic + ")"
			if tt.wantErr != "" {
				wantTopicError(t, call, err, tt.topic, tt.rule, tt.wantErr)
				return
			}
			if err != nil {
				t.Fatalf("%s error = %v", call, err)
			}
			if id != tt.wantID {
				t.Errorf("%s identity = %+v, want %+v", call, id, tt.wantID)
			}
			if diff := cmp.Diff(tt.wantProps, props); diff != "" {
				t.Errorf("%s properties mismatch (-want +got):\n%s", call, diff)
			}
		})
	}
}

func TestTelemetryTopicRoundTrip(t *testing.T) {
	bags := []iothub.Properties{
		nil,
		{{Key: "$.mid", Value: "m1"}},
		{{Key: "$.ct", Value: "application/json"}, {Key: "$.ce", Value: "utf-8"}, {Key: "a b", Value: "x+y&z=/#?"}, {Key: "n", Null: true}, {Key: "e"}},
	}
	for _, id := range []iothub.Identity{dev1, mod1, {DeviceID: "d-.%_*?!(),:=@$'"}} {
		for _, p := range bags {
			topic := iothub.TelemetryTopic(id, p)
			gotID, gotProps, err := iothub.ParseTelemetryTopic(topic)
			if err != nil {
				t.Fatalf("ParseTelemetryTopic(%q) error = %v", topic, err)
			}
			if gotID != id {
				t.Errorf("ParseTelemetryTopic(%q) identity = %+v, want %+v", topic, gotID, id)
			}
			if diff := cmp.Diff(p, gotProps); diff != "" {
				t.Errorf("ParseTelemetryTopic(%q) properties mismatch (-want +got):\n%s", topic, diff)
			}
		}
	}
	if got, want := iothub.TelemetryTopic(dev1, nil), "devices/dev1/messages/events/"; got != want {
		t.Errorf("TelemetryTopic(dev1, nil) = %q, want %q", got, want)
	}
	if got, want := iothub.TelemetryTopic(mod1, iothub.Properties{{Key: "$.mid", Value: "1"}}), "devices/dev1/modules/mod1/messages/events/%24.mid=1"; got != want {
		t.Errorf("TelemetryTopic(mod1, $.mid) = %q, want %q", got, want)
	}
}

// Captured C2D topics (docs/iothub-behavior.md §4.2: Java/Python SDK unit tests, Azure-Samples
// IoTMQTTSample, azure-iot-sdk-node#1007). The message IDs, elided in the reference, are
// filled in.
func TestParseC2DTopicCaptured(t *testing.T) {
	tests := []struct {
		name      string
		topic     string
		wantID    iothub.Identity
		wantProps iothub.Properties
	}{
		{name: "java-python-sdk-tests",
			topic:  "devices/pubsub/messages/devicebound/%24.mid=2c2db32a-6f93-4ba4-8a1c-9d1f6c1b2a77&%24.to=%2Fdevices%2Fpubsub%2Fmessages%2Fdevicebound&%24.ce=utf-8&iothub-ack=none",
			wantID: iothub.Identity{DeviceID: "pubsub"},
			wantProps: iothub.Properties{{Key: "$.mid", Value: "2c2db32a-6f93-4ba4-8a1c-9d1f6c1b2a77"}, {Key: "$.to", Value: "/devices/pubsub/messages/devicebound"},
				{Key: "$.ce", Value: "utf-8"}, {Key: "iothub-ack", Value: "none"}}},
		{name: "iotmqttsample",
			topic:  "devices/deviceID/messages/devicebound/%24.mid=7f3a&%24.exp=0&%24.to=%2Fdevices%2FdeviceID%2Fmessages%2FdeviceBound&%24.cid=c1&iothub-ack=full&property1=value1",
			wantID: iothub.Identity{DeviceID: "deviceID"},
			wantProps: iothub.Properties{{Key: "$.mid", Value: "7f3a"}, {Key: "$.exp", Value: "0"}, {Key: "$.to", Value: "/devices/deviceID/messages/deviceBound"},
				{Key: "$.cid", Value: "c1"}, {Key: "iothub-ack", Value: "full"}, {Key: "property1", Value: "value1"}}},
		{name: "older-null-properties",
			topic:  "devices/dev1/messages/devicebound/iothub-ack=Full&%24.to=%2Fdevices%2Fdev1%2Fmessages%2FdeviceBound&%24.cid&%24.uid",
			wantID: dev1,
			wantProps: iothub.Properties{{Key: "iothub-ack", Value: "Full"}, {Key: "$.to", Value: "/devices/dev1/messages/deviceBound"},
				{Key: "$.cid", Null: true}, {Key: "$.uid", Null: true}}},
		{name: "module-node-1007",
			topic:     "devices/dev1/modules/mod1/messages/devicebound/%24.mid=m&%24.to=%2Fdevices%2Fdev1%2Fmodules%2Fmod1%2Fmessages%2FdeviceBound",
			wantID:    mod1,
			wantProps: iothub.Properties{{Key: "$.mid", Value: "m"}, {Key: "$.to", Value: "/devices/dev1/modules/mod1/messages/deviceBound"}}},
		{name: "device-bound-capital-b", topic: "devices/dev1/messages/deviceBound/%24.mid=m",
			wantID: dev1, wantProps: iothub.Properties{{Key: "$.mid", Value: "m"}}},
		{name: "no-properties", topic: "devices/dev1/messages/devicebound/", wantID: dev1},
		{name: "no-trailing-slash", topic: "devices/dev1/messages/devicebound", wantID: dev1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			id, props, err := iothub.ParseC2DTopic(tt.topic)
			if err != nil {
				t.Fatalf("ParseC2DTopic(%q) error = %v", tt.topic, err)
			}
			if id != tt.wantID {
				t.Errorf("ParseC2DTopic(%q) identity = %+v, want %+v", tt.topic, id, tt.wantID)
			}
			if diff := cmp.Diff(tt.wantProps, props); diff != "" {
				t.Errorf("ParseC2DTopic(%q) properties mismatch (-want +got):\n%s", tt.topic, diff)
			}
			// The hub's builder emits the same properties; parsing them back gives them again.
			again, gotProps, err := iothub.ParseC2DTopic(iothub.C2DTopic(id, props))
			if err != nil || again != id || !cmp.Equal(props, gotProps) {
				t.Errorf("C2D round trip = %+v, %v, %v; want %+v, %v", again, gotProps, err, id, props)
			}
		})
	}
}

func TestC2DTopicBuilders(t *testing.T) {
	p := iothub.Properties{{Key: "$.mid", Value: "m1"}, {Key: "$.to", Value: "/devices/dev1/messages/devicebound"}, {Key: "iothub-ack", Value: "none"}}
	if got, want := iothub.C2DTopic(dev1, p), "devices/dev1/messages/devicebound/%24.mid=m1&%24.to=%2Fdevices%2Fdev1%2Fmessages%2Fdevicebound&iothub-ack=none"; got != want {
		t.Errorf("C2DTopic = %q, want %q", got, want)
	}
	if got, want := iothub.C2DFilter(dev1), "devices/dev1/messages/devicebound/#"; got != want {
		t.Errorf("C2DFilter(dev1) = %q, want %q", got, want)
	}
	if got, want := iothub.C2DFilter(mod1), "devices/dev1/modules/mod1/messages/devicebound/#"; got != want {
		t.Errorf("C2DFilter(mod1) = %q, want %q", got, want)
	}
}

func TestParseC2DTopicErrors(t *testing.T) {
	for _, tt := range []struct {
		name, topic string
		rule        iothub.TopicRule
		want        string
	}{
		{"telemetry-topic", "devices/dev1/messages/events/", iothub.RuleUnknownTopic, "not a C2D topic"},
		{"wildcard", "devices/+/messages/devicebound/#", iothub.RuleWildcard, "wildcard '+' not allowed in a topic name"},
		{"bad-bag", "devices/dev1/messages/devicebound/%24.mid=%", iothub.RuleMalformed, `value of key "$.mid": bad percent-escape`},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, _, err := iothub.ParseC2DTopic(tt.topic)
			wantTopicError(t, "ParseC2DTopic("+tt.topic+")", err, tt.topic, tt.rule, tt.want)
		})
	}
}
