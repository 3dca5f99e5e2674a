package iothub

import (
	"fmt"
	"strings"
)

// TopicKind is what a topic name or filter is, as the hub classifies it.
type TopicKind int

// Topic kinds. TopicUnknown (the zero value) is an addition to the contract so that a zero
// DevicePublish is not mistaken for telemetry.
const (
	TopicUnknown TopicKind = iota
	// Topic names a device publishes.
	TopicTelemetry         // devices/{d}[/modules/{m}]/messages/events/[{bag}]
	TopicTwinGet           // $iothub/twin/GET/?$rid={rid}
	TopicTwinPatchReported // $iothub/twin/PATCH/properties/reported/?$rid={rid}
	TopicMethodResponse    // $iothub/methods/res/{status}/?$rid={rid}
	// Filters a device subscribes to.
	FilterC2D          // devices/{d}[/modules/{m}]/messages/devicebound/#
	FilterTwinResponse // $iothub/twin/res/#
	FilterTwinDesired  // $iothub/twin/PATCH/properties/desired/#
	FilterMethods      // $iothub/methods/POST/#
	// DPS (see dps.go).
	TopicDPSRegister  // $dps/registrations/PUT/iotdps-register/?$rid={rid}
	TopicDPSPoll      // $dps/registrations/GET/iotdps-get-operationstatus/?$rid={rid}&operationId={id}
	FilterDPSResponse // $dps/registrations/res/#
)

var topicKindNames = [...]string{
	TopicUnknown:           "unknown",
	TopicTelemetry:         "telemetry",
	TopicTwinGet:           "twin-get",
	TopicTwinPatchReported: "twin-patch-reported",
	TopicMethodResponse:    "method-response",
	FilterC2D:              "c2d-filter",
	FilterTwinResponse:     "twin-response-filter",
	FilterTwinDesired:      "twin-desired-filter",
	FilterMethods:          "methods-filter",
	TopicDPSRegister:       "dps-register",
	TopicDPSPoll:           "dps-poll",
	FilterDPSResponse:      "dps-response-filter",
}

// String returns a stable kebab-case name such as "telemetry" or "c2d-filter", suitable as a
// log value or metric label.
func (k TopicKind) String() string {
	if k >= 0 && int(k) < len(topicKindNames) {
		return topicKindNames[k]
	}
	return fmt.Sprintf("TopicKind(%d)", int(k))
}

// IsFilter reports whether k is a subscription filter kind.
func (k TopicKind) IsFilter() bool {
	switch k {
	case FilterC2D, FilterTwinResponse, FilterTwinDesired, FilterMethods, FilterDPSResponse:
		return true
	}
	return false
}

// DevicePublish is a PUBLISH from a device, classified by ClassifyPublish.
type DevicePublish struct {
	Kind       TopicKind
	Identity   Identity   // the identity in the topic (telemetry); self for $iothub topics
	Properties Properties // the property bag (telemetry: message properties; twin/methods: $rid...)
	RID        string     // $rid of twin requests and method responses
	Status     int        // status of a method response
	// OperationID is the operationId of a DPS poll (addition to the contract).
	OperationID string
}

// ClassifyPublish decides, as the hub does, whether the identity self may publish to topic:
// its own telemetry topic (with any property bag), a twin GET or reported-properties PATCH
// carrying a $rid, or a method response with an integer status and a $rid. Anything else is a
// *TopicError naming the rule broken (the hub closes the connection for these).
func ClassifyPublish(self Identity, topic string, opts ...ParseOption) (DevicePublish, error) {
	if err := checkTopicName(topic); err != nil {
		return DevicePublish{}, err
	}
	switch {
	case strings.HasPrefix(topic, "devices/"):
		return classifyDevicesPublish(self, topic, newParseConfig(opts))
	case strings.HasPrefix(topic, "$iothub/"):
		return classifyIoTHubPublish(self, topic)
	}
	return DevicePublish{}, topicErr(topic, RuleUnknownTopic,
		"unknown topic: a device may publish only to %smessages/events/ and $iothub/ twin and method topics",
		identityPrefix(self))
}

func classifyDevicesPublish(self Identity, topic string, cfg parseConfig) (DevicePublish, error) {
	id, rest, err := cutIdentity(topic, func() string { return "expected " + identityPrefix(self) + "messages/events/[{properties}]" })
	if err != nil {
		return DevicePublish{}, err
	}
	if id != self {
		return DevicePublish{}, otherIdentity(self, id, topic, "publish to")
	}
	if rest == "messages/devicebound" || strings.HasPrefix(rest, "messages/devicebound/") {
		return DevicePublish{}, topicErr(topic, RuleDirection,
			"publish to the C2D topic: only the hub sends on messages/devicebound; telemetry goes to %smessages/events/",
			identityPrefix(self))
	}
	_, props, err := parseTopicSuffix(topic, id, rest, "messages/events", "telemetry", cfg, false)
	if err != nil {
		return DevicePublish{}, err
	}
	return DevicePublish{Kind: TopicTelemetry, Identity: id, Properties: props}, nil
}

func otherIdentity(self, other Identity, topic, verb string) *TopicError {
	whose := "another device's"
	switch {
	case other.DeviceID == self.DeviceID && other.IsModule():
		whose = "a module's"
		if self.IsModule() {
			whose = "another module's"
		}
	case other.DeviceID == self.DeviceID:
		whose = "the parent device's"
	case other.IsModule():
		whose = "another device's module's"
	}
	return topicErr(topic, RuleOtherIdentity, "%s %s topic: %s... but this connection is %s",
		verb, whose, identityPrefix(other), self.describe())
}

func classifyIoTHubPublish(self Identity, topic string) (DevicePublish, error) {
	switch {
	case strings.HasPrefix(topic, "$iothub/twin/GET"):
		rid, props, err := parseRIDTopic(topic, twinGetPrefix, "twin GET")
		if err != nil {
			return DevicePublish{}, err
		}
		return DevicePublish{Kind: TopicTwinGet, Identity: self, Properties: props, RID: rid}, nil
	case strings.HasPrefix(topic, "$iothub/twin/PATCH/properties/reported"):
		rid, props, err := parseRIDTopic(topic, twinPatchReportedPrefix, "twin PATCH reported")
		if err != nil {
			return DevicePublish{}, err
		}
		return DevicePublish{Kind: TopicTwinPatchReported, Identity: self, Properties: props, RID: rid}, nil
	case strings.HasPrefix(topic, methodResponsePrefix):
		status, rid, props, err := parseStatusTopic(topic, methodResponsePrefix, "method response")
		if err != nil {
			return DevicePublish{}, err
		}
		return DevicePublish{Kind: TopicMethodResponse, Identity: self, Properties: props, RID: rid, Status: status}, nil
	case strings.HasPrefix(topic, twinResponsePrefix), strings.HasPrefix(topic, twinDesiredPrefix),
		strings.HasPrefix(topic, methodRequestPrefix):
		return DevicePublish{}, topicErr(topic, RuleDirection,
			"publish to a hub-to-device topic: devices subscribe to it, only the hub publishes there")
	}
	return DevicePublish{}, topicErr(topic, RuleUnknownTopic,
		"unknown $iothub topic: a device may publish to %s?$rid=, %s?$rid= and %s{status}/?$rid=",
		twinGetPrefix, twinPatchReportedPrefix, methodResponsePrefix)
}

// ClassifySubscribe decides, as the hub does, whether the identity self may subscribe to filter.
// Allowed: its C2D filter (devices/{d}/messages/devicebound/#, with '+' accepted in the device
// segment as the Azure SDK for Embedded C sends it; for a module
// devices/{d}/modules/{m}/messages/devicebound/# or the documented devices/{d}/modules/{m}/#),
// TwinResponseFilter, TwinDesiredFilter, MethodsFilter and the per-method form
// $iothub/methods/POST/{name}/#. Anything else is a *TopicError naming the rule broken (the hub
// closes the connection rather than answering SUBACK 0x80).
func ClassifySubscribe(self Identity, filter string) (TopicKind, error) {
	if err := checkFilter(filter); err != nil {
		return TopicUnknown, err
	}
	switch filter {
	case TwinResponseFilter:
		return FilterTwinResponse, nil
	case TwinDesiredFilter:
		return FilterTwinDesired, nil
	case MethodsFilter:
		return FilterMethods, nil
	}
	switch {
	case strings.HasPrefix(filter, "devices/"):
		return classifyC2DFilter(self, filter)
	case strings.HasPrefix(filter, methodRequestPrefix):
		name, rest, _ := strings.Cut(filter[len(methodRequestPrefix):], "/")
		if rest == "#" && name != "" && !strings.ContainsAny(name, "+#") {
			return FilterMethods, nil
		}
		return TopicUnknown, filterWildcardOr(filter, RuleUnknownTopic,
			"unknown methods filter: expected %s (or %s{name}/#)", MethodsFilter, methodRequestPrefix)
	case strings.HasPrefix(filter, "$iothub/"):
		return TopicUnknown, filterWildcardOr(filter, RuleUnknownTopic,
			"unknown $iothub topic filter: a device may subscribe to %s, %s and %s",
			TwinResponseFilter, TwinDesiredFilter, MethodsFilter)
	}
	return TopicUnknown, filterWildcardOr(filter, RuleUnknownTopic,
		"unknown topic filter: a device may subscribe to %s and the $iothub twin and method filters", C2DFilter(self))
}

// filterWildcardOr reports a misplaced '+' (which would otherwise read as an unknown topic) with
// RuleWildcard, anything else with rule.
func filterWildcardOr(filter string, rule TopicRule, format string, args ...any) *TopicError {
	if strings.Contains(filter, "+") {
		return topicErr(filter, RuleWildcard,
			"wildcard '+' is allowed only in the device segment of the C2D filter devices/+/messages/devicebound/#")
	}
	return topicErr(filter, rule, format, args...)
}

func classifyC2DFilter(self Identity, filter string) (TopicKind, error) {
	segs := strings.Split(filter, "/")
	// segs[0] == "devices"
	dev := segs[1]
	if dev == "" {
		return TopicUnknown, topicErr(filter, RuleMalformed, "empty device segment: expected %s", C2DFilter(self))
	}
	var other Identity
	rest := segs[2:]
	if dev != "+" {
		other.DeviceID = dev
	}
	if len(rest) >= 2 && rest[0] == "modules" {
		other.ModuleID = rest[1]
		rest = rest[2:]
		if other.ModuleID == "+" {
			return TopicUnknown, topicErr(filter, RuleWildcard,
				"wildcard '+' is allowed only in the device segment of the C2D filter, not in the module segment")
		}
		if other.ModuleID == "" {
			return TopicUnknown, topicErr(filter, RuleMalformed, "empty module segment: expected %s", C2DFilter(self))
		}
	}
	for _, s := range rest {
		if s == "+" {
			return TopicUnknown, topicErr(filter, RuleWildcard,
				"wildcard '+' is allowed only in the device segment of the C2D filter")
		}
	}
	moduleShort := other.IsModule() && len(rest) == 1 && rest[0] == "#" // devices/{d}/modules/{m}/#
	if !moduleShort && (len(rest) < 2 || rest[0] != "messages" || rest[1] != "devicebound") {
		if len(rest) == 1 && rest[0] == "#" {
			return TopicUnknown, topicErr(filter, RuleUnknownTopic,
				"unknown topic filter: a device subscribes to its C2D messages with %s", C2DFilter(self))
		}
		return TopicUnknown, topicErr(filter, RuleUnknownTopic,
			"unknown topic filter: expected %s", C2DFilter(self))
	}
	if !moduleShort && (len(rest) != 3 || rest[2] != "#") {
		return TopicUnknown, topicErr(filter, RuleC2DSubTopic,
			"C2D filter must end in /# (sub-topic filtering is not supported): expected %s", C2DFilter(self))
	}
	// Identity check: '+' matches any device ID.
	if other.DeviceID == "" {
		other.DeviceID = self.DeviceID
	} else if err := validateID("device ID", other.DeviceID); err != nil {
		return TopicUnknown, topicErr(filter, RuleMalformed, "%s", err.(*ParseError).detail())
	}
	if other.IsModule() {
		if err := validateID("module ID", other.ModuleID); err != nil {
			return TopicUnknown, topicErr(filter, RuleMalformed, "%s", err.(*ParseError).detail())
		}
	}
	// A module may use the device-form filter with '+' (the Embedded C SDK's constant).
	if dev == "+" && !other.IsModule() && self.IsModule() {
		return FilterC2D, nil
	}
	if other != self {
		return TopicUnknown, otherIdentity(self, other, filter, "subscribe to")
	}
	return FilterC2D, nil
}

// checkFilter rejects filters MQTT forbids: empty, U+0000, '#' not last or not a whole level,
// '+' not a whole level.
func checkFilter(filter string) error {
	if filter == "" {
		return topicErr(filter, RuleMalformed, "empty topic filter")
	}
	if strings.IndexByte(filter, 0) >= 0 {
		return topicErr(filter, RuleMalformed, "U+0000 not allowed in a topic filter")
	}
	segs := strings.Split(filter, "/")
	for i, s := range segs {
		if strings.Contains(s, "#") && (s != "#" || i != len(segs)-1) {
			return topicErr(filter, RuleMalformed, "'#' must be the last level of a topic filter, on its own")
		}
		if strings.Contains(s, "+") && s != "+" {
			return topicErr(filter, RuleMalformed, "'+' must occupy a whole level of a topic filter")
		}
	}
	return nil
}
