package iothub

import (
	"fmt"
	"strconv"
	"strings"
)

// Device Provisioning Service (DPS) over MQTT (docs/iothub-behavior.md §7). The client ID is the
// registration ID; the user name is "{idScope}/registrations/{registrationId}/api-version=...".
const (
	DPSGlobalHost        = "global.azure-devices-provisioning.net"
	DPSDefaultAPIVersion = "2019-03-31"
	DPSResponseFilter    = "$dps/registrations/res/#"

	dpsRegisterPrefix = "$dps/registrations/PUT/iotdps-register/"
	dpsPollPrefix     = "$dps/registrations/GET/iotdps-get-operationstatus/"
	dpsResponsePrefix = "$dps/registrations/res/"

	keyOperationID = "operationId"
	keyRetryAfter  = "retry-after"
)

// ValidateRegistrationID reports whether s is a valid DPS registration ID: 1 to 128 characters,
// ASCII letters and digits plus - . _ :, ending in a letter, digit or '-'. (Registration IDs are
// case-insensitive; the check does not change case.)
func ValidateRegistrationID(s string) error {
	fail := func(problem string) error {
		return &ParseError{What: "registration ID", Input: s, Err: ErrClientID, Problem: problem}
	}
	if s == "" {
		return fail("must not be empty")
	}
	if len(s) > MaxIDLength {
		return fail(fmt.Sprintf("is %d characters long, the limit is %d", len(s), MaxIDLength))
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; !isAlnum(c) && c != '-' && c != '.' && c != '_' && c != ':' {
			return fail(fmt.Sprintf("character %s at position %d is not allowed (allowed: ASCII letters, digits and - . _ :)",
				describeChar(s[i:]), i+1))
		}
	}
	if c := s[len(s)-1]; !isAlnum(c) && c != '-' {
		return fail(fmt.Sprintf("must end in a letter, digit or '-', not '%c'", c))
	}
	return nil
}

// DPSUserName is a parsed DPS MQTT user name.
type DPSUserName struct {
	IDScope        string // e.g. "0ne00000A0A"
	RegistrationID string
	APIVersion     string
	ClientVersion  string     // decoded; optional
	Extra          Properties // unknown properties, in order
}

// String returns "{idScope}/registrations/{registrationId}/api-version={v}[&ClientVersion={enc}]"
// (no '?', as the SDKs send it).
func (u DPSUserName) String() string {
	bag := Properties{{Key: userNameAPIVersion, Value: u.APIVersion}}
	if u.ClientVersion != "" {
		bag = append(bag, Property{Key: "ClientVersion", Value: u.ClientVersion})
	}
	bag = append(bag, u.Extra...)
	return u.IDScope + "/registrations/" + u.RegistrationID + "/" + bag.Encode()
}

// ParseDPSUserName parses "{idScope}/registrations/{registrationId}/api-version={v}[&...]". A
// '?' before the bag is tolerated. api-version is required and must look like YYYY-MM-DD.
func ParseDPSUserName(s string) (DPSUserName, error) {
	fail := func(format string, args ...any) (DPSUserName, error) {
		return DPSUserName{}, &ParseError{What: "DPS user name", Input: s, Err: ErrUserName,
			Problem: fmt.Sprintf(format, args...)}
	}
	const expected = "expected {idScope}/registrations/{registrationId}/api-version=" + DPSDefaultAPIVersion
	scope, rest, ok := strings.Cut(s, "/registrations/")
	if !ok {
		return fail("%s: no /registrations/", expected)
	}
	regID, bag, ok := strings.Cut(rest, "/")
	if !ok {
		return fail("%s: no api-version after the registration ID", expected)
	}
	if scope == "" || strings.Contains(scope, "/") {
		return fail("%s: ID scope %q is empty or contains '/'", expected, scope)
	}
	if err := ValidateRegistrationID(regID); err != nil {
		return fail("%s", err.(*ParseError).detail())
	}
	props, err := ParseProperties(strings.TrimPrefix(bag, "?"))
	if err != nil {
		return fail("property bag: %s", err.(*ParseError).Problem)
	}
	u := DPSUserName{IDScope: scope, RegistrationID: regID}
	seen := make(map[string]bool)
	for _, p := range props {
		if seen[p.Key] {
			continue
		}
		seen[p.Key] = true
		switch p.Key {
		case userNameAPIVersion:
			u.APIVersion = p.Value
		case "ClientVersion":
			u.ClientVersion = p.Value
		default:
			u.Extra = append(u.Extra, p)
		}
	}
	if u.APIVersion == "" {
		return fail("%s: api-version is missing or empty", expected)
	}
	if err := ValidateAPIVersion(u.APIVersion); err != nil {
		return fail("%v", err)
	}
	return u, nil
}

// DPSRegisterTopic returns "$dps/registrations/PUT/iotdps-register/?$rid={rid}".
func DPSRegisterTopic(rid string) string {
	return dpsRegisterPrefix + ridBag(rid)
}

// ParseDPSRegisterTopic parses a registration request and returns its $rid.
func ParseDPSRegisterTopic(topic string) (rid string, err error) {
	rid, _, err = parseRIDTopic(topic, dpsRegisterPrefix, "DPS register request")
	return rid, err
}

// DPSPollTopic returns
// "$dps/registrations/GET/iotdps-get-operationstatus/?$rid={rid}&operationId={operationID}".
func DPSPollTopic(rid, operationID string) string {
	return dpsPollPrefix + ridBag(rid) + "&" + keyOperationID + "=" + escape(operationID)
}

// ParseDPSPollTopic parses an operation-status poll and returns its $rid and operationId (both
// required).
func ParseDPSPollTopic(topic string) (rid, operationID string, err error) {
	rid, props, err := parseRIDTopic(topic, dpsPollPrefix, "DPS poll")
	if err != nil {
		return "", "", err
	}
	operationID, _ = props.Get(keyOperationID)
	if operationID == "" {
		return "", "", topicErr(topic, RuleMalformed, "DPS poll without operationId: expected %s?$rid={rid}&operationId={id}", dpsPollPrefix)
	}
	return rid, operationID, nil
}

// DPSResponseTopic returns "$dps/registrations/res/{status}/?$rid={rid}[&retry-after={s}]";
// retryAfter 0 is omitted.
func DPSResponseTopic(status int, rid string, retryAfter int) string {
	s := dpsResponsePrefix + strconv.Itoa(status) + "/" + ridBag(rid)
	if retryAfter != 0 {
		s += "&" + keyRetryAfter + "=" + strconv.Itoa(retryAfter)
	}
	return s
}

// ParseDPSResponseTopic parses a DPS response; a missing retry-after gives 0.
func ParseDPSResponseTopic(topic string) (status int, rid string, retryAfter int, err error) {
	status, rid, props, err := parseStatusTopic(topic, dpsResponsePrefix, "DPS response")
	if err != nil {
		return 0, "", 0, err
	}
	if v, ok := props.Get(keyRetryAfter); ok {
		n, err := parseStatus(v)
		if err != nil || n < 0 {
			return 0, "", 0, topicErr(topic, RuleMalformed, "retry-after %q is not a non-negative number of seconds", v)
		}
		retryAfter = n
	}
	return status, rid, retryAfter, nil
}

// ClassifyDPSPublish decides, as DPS does, whether a device may publish to topic: a register
// request or an operation-status poll, each with a $rid (DevicePublish.RID; the poll's
// operationId is in DevicePublish.OperationID).
func ClassifyDPSPublish(topic string) (DevicePublish, error) {
	if err := checkTopicName(topic); err != nil {
		return DevicePublish{}, err
	}
	switch {
	case strings.HasPrefix(topic, "$dps/registrations/PUT/iotdps-register"):
		rid, props, err := parseRIDTopic(topic, dpsRegisterPrefix, "DPS register request")
		if err != nil {
			return DevicePublish{}, err
		}
		return DevicePublish{Kind: TopicDPSRegister, Properties: props, RID: rid}, nil
	case strings.HasPrefix(topic, "$dps/registrations/GET/iotdps-get-operationstatus"):
		rid, opID, err := ParseDPSPollTopic(topic)
		if err != nil {
			return DevicePublish{}, err
		}
		props, _ := parseBagTopic(topic, dpsPollPrefix, "DPS poll")
		return DevicePublish{Kind: TopicDPSPoll, Properties: props, RID: rid, OperationID: opID}, nil
	case strings.HasPrefix(topic, dpsResponsePrefix):
		return DevicePublish{}, topicErr(topic, RuleDirection,
			"publish to a DPS response topic: devices subscribe to %s, only DPS publishes there", DPSResponseFilter)
	}
	return DevicePublish{}, topicErr(topic, RuleUnknownTopic,
		"unknown DPS topic: a device may publish to %s?$rid= and %s?$rid=&operationId=", dpsRegisterPrefix, dpsPollPrefix)
}

// ClassifyDPSSubscribe accepts only DPSResponseFilter.
func ClassifyDPSSubscribe(filter string) (TopicKind, error) {
	if err := checkFilter(filter); err != nil {
		return TopicUnknown, err
	}
	if filter == DPSResponseFilter {
		return FilterDPSResponse, nil
	}
	if strings.Contains(filter, "+") {
		return TopicUnknown, topicErr(filter, RuleWildcard, "wildcard '+' is not allowed: a device subscribes to %s", DPSResponseFilter)
	}
	return TopicUnknown, topicErr(filter, RuleUnknownTopic, "unknown DPS topic filter: a device subscribes to %s", DPSResponseFilter)
}
