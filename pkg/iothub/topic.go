package iothub

import (
	"strconv"
	"strings"
)

// MaxTelemetrySize is the largest telemetry message: body plus property names and values
// (see Properties.Size).
const MaxTelemetrySize = 256 * 1024

// MaxC2DSize is the largest cloud-to-device message.
const MaxC2DSize = 64 * 1024

// ParseOption changes how a topic parser treats a known deviation from the documented grammar.
// Options are additions to the contract; with none, parsers accept only the documented forms
// and the deviations that real clients are known to need.
type ParseOption func(*parseConfig)

type parseConfig struct {
	questionMarkBag bool
	strictEscaping  bool
}

// AllowQuestionMarkBag accepts a '?' before a telemetry property bag
// ("devices/d/messages/events/?$.mid=1"), as the Python SDK wiki writes it. Whether the real
// hub tolerates it is an open question (docs/iothub-behavior.md §11.9), so it is rejected by default.
func AllowQuestionMarkBag() ParseOption {
	return func(c *parseConfig) { c.questionMarkBag = true }
}

// RequireEscapedProperties rejects a telemetry property bag in which a key or value contains a
// byte that should have been percent-encoded (anything but ASCII letters, digits, - . _ ~ and
// %XX escapes; a '$' may start a key). The real hub was seen disconnecting clients that sent a
// raw ':' in a value, e.g. an ISO 8601 timestamp (Azure/azure-iot-sdk-c#869); by default such
// bytes are accepted and kept as they are.
func RequireEscapedProperties() ParseOption {
	return func(c *parseConfig) { c.strictEscaping = true }
}

func newParseConfig(opts []ParseOption) parseConfig {
	var c parseConfig
	for _, o := range opts {
		o(&c)
	}
	return c
}

// identityPrefix returns "devices/{d}/" or "devices/{d}/modules/{m}/".
func identityPrefix(id Identity) string {
	if id.IsModule() {
		return "devices/" + id.DeviceID + "/modules/" + id.ModuleID + "/"
	}
	return "devices/" + id.DeviceID + "/"
}

// TelemetryTopic returns the device-to-cloud topic "devices/{d}/messages/events/{bag}" (module:
// "devices/{d}/modules/{m}/messages/events/{bag}"); the bag is p.Encode(), empty for no
// properties.
func TelemetryTopic(id Identity, p Properties) string {
	return identityPrefix(id) + "messages/events/" + p.Encode()
}

// ParseTelemetryTopic parses a telemetry topic as the hub does. It accepts the device and module
// forms, with or without the trailing '/', and a property bag after "events/" (everything up to
// the end of the topic, so an unencoded '/' in a value is kept). A '?' before the bag is
// rejected unless AllowQuestionMarkBag is given.
func ParseTelemetryTopic(topic string, opts ...ParseOption) (Identity, Properties, error) {
	return parseIdentityTopic(topic, "messages/events", "telemetry", newParseConfig(opts), false)
}

// C2DTopic returns the cloud-to-device topic "devices/{d}/messages/devicebound/{bag}" (module:
// "devices/{d}/modules/{m}/messages/devicebound/{bag}"). The hub always sends $.to, so callers
// normally include it.
func C2DTopic(id Identity, p Properties) string {
	return identityPrefix(id) + "messages/devicebound/" + p.Encode()
}

// ParseC2DTopic parses a cloud-to-device topic as a device receives it. The "devicebound"
// segment is compared case-insensitively (older hubs were seen sending "deviceBound").
func ParseC2DTopic(topic string) (Identity, Properties, error) {
	return parseIdentityTopic(topic, "messages/devicebound", "C2D", parseConfig{}, true)
}

// C2DFilter returns the subscription filter for an identity's cloud-to-device messages:
// "devices/{d}/messages/devicebound/#" or "devices/{d}/modules/{m}/messages/devicebound/#".
func C2DFilter(id Identity) string {
	return identityPrefix(id) + "messages/devicebound/#"
}

// parseIdentityTopic parses "devices/{d}[/modules/{m}]/{suffix}[/[{bag}]]".
func parseIdentityTopic(topic, suffix, what string, cfg parseConfig, foldSuffix bool) (Identity, Properties, error) {
	if err := checkTopicName(topic); err != nil {
		return Identity{}, nil, err
	}
	id, rest, err := cutIdentity(topic, func() string { return expectedIdentityTopic(suffix) })
	if err != nil {
		return Identity{}, nil, err
	}
	return parseTopicSuffix(topic, id, rest, suffix, what, cfg, foldSuffix)
}

// parseTopicSuffix parses the rest of an identity topic after "devices/{d}[/modules/{m}]/":
// "{suffix}[/[{bag}]]".
func parseTopicSuffix(topic string, id Identity, rest, suffix, what string, cfg parseConfig, foldSuffix bool) (Identity, Properties, error) {
	if !hasPrefixFold(rest, suffix, foldSuffix) {
		return Identity{}, nil, topicErr(topic, RuleUnknownTopic, "not a %s topic: %s", what, expectedIdentityTopic(suffix))
	}
	rest = rest[len(suffix):]
	if rest == "" {
		return id, nil, nil
	}
	if rest[0] != '/' {
		return Identity{}, nil, topicErr(topic, RuleUnknownTopic, "not a %s topic: %s", what, expectedIdentityTopic(suffix))
	}
	bag := rest[1:]
	if strings.HasPrefix(bag, "?") {
		if !cfg.questionMarkBag {
			return Identity{}, nil, topicErr(topic, RuleMalformed,
				"the property bag starts with '?': write %s/{properties} without '?'", suffix)
		}
		bag = bag[1:]
	}
	props, err := parseProperties(bag, cfg.strictEscaping)
	if err != nil {
		return Identity{}, nil, topicErr(topic, RuleMalformed, "property bag: %s", err.(*ParseError).Problem)
	}
	return id, props, nil
}

func hasPrefixFold(s, prefix string, fold bool) bool {
	if !fold {
		return strings.HasPrefix(s, prefix)
	}
	return len(s) >= len(prefix) && strings.EqualFold(s[:len(prefix)], prefix)
}

// expectedIdentityTopic describes the identity topic ending in suffix, for errors.
func expectedIdentityTopic(suffix string) string {
	return "expected devices/{deviceId}[/modules/{moduleId}]/" + suffix + "/[{properties}]"
}

// cutIdentity parses "devices/{d}/" or "devices/{d}/modules/{m}/" at the start of topic and
// returns the identity and the rest. expected describes the topic for the error; it is only
// called on one (every PUBLISH is parsed: the happy path builds no text).
func cutIdentity(topic string, expected func() string) (Identity, string, error) {
	rest, ok := strings.CutPrefix(topic, "devices/")
	if !ok {
		return Identity{}, "", topicErr(topic, RuleUnknownTopic, "%s", expected())
	}
	dev, rest, ok := strings.Cut(rest, "/")
	if !ok {
		return Identity{}, "", topicErr(topic, RuleUnknownTopic, "%s", expected())
	}
	id := Identity{DeviceID: dev}
	if after, isModule := strings.CutPrefix(rest, "modules/"); isModule {
		mod, after, ok := strings.Cut(after, "/")
		if !ok || mod == "" {
			return Identity{}, "", topicErr(topic, RuleUnknownTopic, "%s", expected())
		}
		id.ModuleID, rest = mod, after
	}
	if err := id.Validate(); err != nil {
		return Identity{}, "", topicErr(topic, RuleMalformed, "%s", err.(*ParseError).detail())
	}
	return id, rest, nil
}

// checkTopicName rejects what MQTT forbids in a topic name: emptiness, wildcards and U+0000.
func checkTopicName(topic string) error {
	if topic == "" {
		return topicErr(topic, RuleMalformed, "empty topic name")
	}
	for i := 0; i < len(topic); i++ { // one pass, no set to build: every PUBLISH comes here
		switch topic[i] {
		case '+', '#':
			return topicErr(topic, RuleWildcard, "wildcard '%c' not allowed in a topic name", topic[i])
		case 0:
			if strings.ContainsAny(topic[i:], "+#") {
				continue // the wildcard is the clearer error
			}
			return topicErr(topic, RuleMalformed, "U+0000 not allowed in a topic name")
		}
	}
	return nil
}

// Twin and method topics and filters.
const (
	TwinResponseFilter = "$iothub/twin/res/#"
	TwinDesiredFilter  = "$iothub/twin/PATCH/properties/desired/#"
	MethodsFilter      = "$iothub/methods/POST/#"

	twinGetPrefix           = "$iothub/twin/GET/"
	twinPatchReportedPrefix = "$iothub/twin/PATCH/properties/reported/"
	twinResponsePrefix      = "$iothub/twin/res/"
	twinDesiredPrefix       = "$iothub/twin/PATCH/properties/desired/"
	methodRequestPrefix     = "$iothub/methods/POST/"
	methodResponsePrefix    = "$iothub/methods/res/"

	keyRID     = "$rid"
	keyVersion = "$version"
)

// TwinGetTopic returns "$iothub/twin/GET/?$rid={rid}" (rid percent-encoded).
func TwinGetTopic(rid string) string { return twinGetPrefix + ridBag(rid) }

// ParseTwinGetTopic parses a twin GET request and returns its $rid.
func ParseTwinGetTopic(topic string) (rid string, err error) {
	rid, _, err = parseRIDTopic(topic, twinGetPrefix, "twin GET")
	return rid, err
}

// TwinPatchReportedTopic returns "$iothub/twin/PATCH/properties/reported/?$rid={rid}".
func TwinPatchReportedTopic(rid string) string {
	return twinPatchReportedPrefix + ridBag(rid)
}

// ParseTwinPatchReportedTopic parses a reported-properties PATCH and returns its $rid.
func ParseTwinPatchReportedTopic(topic string) (rid string, err error) {
	rid, _, err = parseRIDTopic(topic, twinPatchReportedPrefix, "twin PATCH reported")
	return rid, err
}

// TwinResponseTopic returns "$iothub/twin/res/{status}/?$rid={rid}[&$version={version}]";
// version 0 is omitted (GET responses carry none).
func TwinResponseTopic(status int, rid string, version int64) string {
	s := twinResponsePrefix + strconv.Itoa(status) + "/" + ridBag(rid)
	if version != 0 {
		s += "&" + keyVersion + "=" + strconv.FormatInt(version, 10)
	}
	return s
}

// ParseTwinResponseTopic parses "$iothub/twin/res/{status}/?$rid={rid}[&$version={v}]". The
// status must be an integer; a missing $version gives 0.
func ParseTwinResponseTopic(topic string) (status int, rid string, version int64, err error) {
	status, rid, props, err := parseStatusTopic(topic, twinResponsePrefix, "twin response")
	if err != nil {
		return 0, "", 0, err
	}
	version, _, err = versionProperty(topic, props, false)
	if err != nil {
		return 0, "", 0, err
	}
	return status, rid, version, nil
}

// TwinDesiredPatchTopic returns "$iothub/twin/PATCH/properties/desired/?$version={version}".
func TwinDesiredPatchTopic(version int64) string {
	return twinDesiredPrefix + "?" + keyVersion + "=" + strconv.FormatInt(version, 10)
}

// ParseTwinDesiredPatchTopic parses a desired-properties notification and returns its
// $version, which must be present.
func ParseTwinDesiredPatchTopic(topic string) (version int64, err error) {
	props, err := parseBagTopic(topic, twinDesiredPrefix, "desired-properties patch")
	if err != nil {
		return 0, err
	}
	version, _, err = versionProperty(topic, props, true)
	return version, err
}

// MethodRequestTopic returns "$iothub/methods/POST/{name}/?$rid={rid}".
func MethodRequestTopic(name, rid string) string {
	return methodRequestPrefix + name + "/" + ridBag(rid)
}

// ParseMethodRequestTopic parses a direct-method request and returns the method name and $rid.
func ParseMethodRequestTopic(topic string) (name, rid string, err error) {
	if err := checkTopicName(topic); err != nil {
		return "", "", err
	}
	const expected = "expected $iothub/methods/POST/{name}/?$rid={rid}"
	rest, ok := strings.CutPrefix(topic, methodRequestPrefix)
	if !ok {
		return "", "", topicErr(topic, RuleUnknownTopic, "not a method request: %s", expected)
	}
	name, _, ok = strings.Cut(rest, "/")
	if !ok || name == "" {
		return "", "", topicErr(topic, RuleMalformed, "no method name: %s", expected)
	}
	rid, _, err = parseRIDTopic(topic, methodRequestPrefix+name+"/", "method request")
	if err != nil {
		return "", "", err
	}
	return name, rid, nil
}

// MethodResponseTopic returns "$iothub/methods/res/{status}/?$rid={rid}".
func MethodResponseTopic(status int, rid string) string {
	return methodResponsePrefix + strconv.Itoa(status) + "/" + ridBag(rid)
}

// ParseMethodResponseTopic parses a direct-method response; the status must be an integer
// (negative values are allowed: it is the device's own code).
func ParseMethodResponseTopic(topic string) (status int, rid string, err error) {
	status, rid, _, err = parseStatusTopic(topic, methodResponsePrefix, "method response")
	return status, rid, err
}

// parseStatusTopic parses "{prefix}{status}/?$rid={rid}[&...]": the status must be an integer
// and $rid non-empty.
func parseStatusTopic(topic, prefix, what string) (int, string, Properties, error) {
	status, rest, err := cutStatus(topic, prefix, what)
	if err != nil {
		return 0, "", nil, err
	}
	rid, props, err := parseRIDTopic(topic, topic[:len(topic)-len(rest)], what)
	if err != nil {
		return 0, "", nil, err
	}
	return status, rid, props, nil
}

// cutStatus parses "{prefix}{status}/..." and returns the status and the rest after the '/'.
func cutStatus(topic, prefix, what string) (int, string, error) {
	if err := checkTopicName(topic); err != nil {
		return 0, "", err
	}
	expected := "expected " + prefix + "{status}/?$rid={rid}"
	rest, ok := strings.CutPrefix(topic, prefix)
	if !ok {
		return 0, "", topicErr(topic, RuleUnknownTopic, "not a %s: %s", what, expected)
	}
	code, rest, ok := strings.Cut(rest, "/")
	if !ok {
		return 0, "", topicErr(topic, RuleMalformed, "%s: no '/' after the status", expected)
	}
	status, err := parseStatus(code)
	if err != nil {
		return 0, "", topicErr(topic, RuleMalformed, "status %q is not an integer (%s)", code, expected)
	}
	return status, rest, nil
}

func parseStatus(s string) (int, error) {
	digits := strings.TrimPrefix(s, "-")
	if digits == "" || len(digits) > 9 || strings.Trim(digits, "0123456789") != "" {
		return 0, strconv.ErrSyntax
	}
	return strconv.Atoi(s)
}

// parseBagTopic parses "{prefix}?{bag}" and returns the bag.
func parseBagTopic(topic, prefix, what string) (Properties, error) {
	if err := checkTopicName(topic); err != nil {
		return nil, err
	}
	rest, ok := strings.CutPrefix(topic, prefix)
	if !ok {
		return nil, topicErr(topic, RuleUnknownTopic, "not a %s: expected %s?{properties}", what, prefix)
	}
	if rest == "" {
		return nil, nil
	}
	bag, ok := strings.CutPrefix(rest, "?")
	if !ok {
		return nil, topicErr(topic, RuleMalformed, "%s: expected '?' after %q, found %q", what, prefix, rest)
	}
	props, err := ParseProperties(bag)
	if err != nil {
		return nil, topicErr(topic, RuleMalformed, "property bag: %s", err.(*ParseError).Problem)
	}
	return props, nil
}

// parseRIDTopic parses "{prefix}?$rid={rid}[&...]" and returns the (non-empty) $rid and the bag.
func parseRIDTopic(topic, prefix, what string) (string, Properties, error) {
	var props Properties
	var err error
	if strings.TrimSuffix(topic, "/") == strings.TrimSuffix(prefix, "/") {
		// "$iothub/twin/GET" without the trailing "/?$rid=": a missing $rid, not an unknown topic.
	} else if props, err = parseBagTopic(topic, prefix, what); err != nil {
		return "", nil, err
	}
	rid, ok := props.Get(keyRID)
	if !ok {
		return "", nil, topicErr(topic, RuleMissingRID, "%s without $rid: expected %s?$rid={rid}", what, prefix)
	}
	if rid == "" {
		return "", nil, topicErr(topic, RuleMissingRID, "%s with an empty $rid: expected %s?$rid={rid}", what, prefix)
	}
	return rid, props, nil
}

// versionProperty returns $version as a non-negative integer; absent gives 0 unless required.
func versionProperty(topic string, props Properties, required bool) (int64, bool, error) {
	v, ok := props.Get(keyVersion)
	if !ok {
		if required {
			return 0, false, topicErr(topic, RuleMalformed, "no $version: expected ?$version={n}")
		}
		return 0, false, nil
	}
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil || n < 0 || strings.HasPrefix(v, "+") {
		return 0, false, topicErr(topic, RuleMalformed, "$version %q is not a non-negative integer", v)
	}
	return n, true, nil
}

// ridBag returns "?$rid={rid}" with rid percent-encoded.
func ridBag(rid string) string { return "?" + keyRID + "=" + escape(rid) }
