package iothub

import (
	"fmt"
	"strings"
)

// DefaultAPIVersion is the api-version the device client sends.
const DefaultAPIVersion = "2021-04-12"

// DefaultPort is the MQTT-over-TLS port of IoT Hub.
const DefaultPort = 8883

// UserNameForm is the shape of an MQTT user name.
type UserNameForm int

const (
	// FormQuery is the documented form "{host}/{deviceId}/?api-version={v}&...".
	FormQuery UserNameForm = iota
	// FormLegacyNoQuestionMark is the old form without '?': "{host}/{deviceId}/api-version={v}".
	FormLegacyNoQuestionMark
	// FormBare has no property bag at all: "{host}/{deviceId}".
	FormBare
)

// String returns the form's kebab-case name: "query", "legacy-no-question-mark" or "bare".
func (f UserNameForm) String() string {
	switch f {
	case FormQuery:
		return "query"
	case FormLegacyNoQuestionMark:
		return "legacy-no-question-mark"
	case FormBare:
		return "bare"
	}
	return fmt.Sprintf("UserNameForm(%d)", int(f))
}

// User-name property keys.
const (
	userNameAPIVersion       = "api-version"
	userNameDeviceClientType = "DeviceClientType"
	userNameModelID          = "model-id"
)

// UserName is a parsed MQTT user name.
type UserName struct {
	Host             string // as sent, possibly with ":port"; not URL-decoded
	Identity         Identity
	APIVersion       string // "" when absent (FormBare, or a bag without api-version)
	DeviceClientType string // decoded
	ModelID          string // decoded, e.g. "dtmi:com:example:Thermostat;1"
	Form             UserNameForm
	Extra            Properties // unknown properties, kept in order (e.g. auth-chain)
}

// String returns the wire form: FormQuery "{host}/{dev}[/{mod}]/?api-version=...", the legacy
// form without '?', or the bare "{host}/{dev}[/{mod}]". api-version comes first, then
// DeviceClientType and model-id (percent-encoded), then Extra; empty fields are omitted.
func (u UserName) String() string {
	s := u.Host + "/" + u.Identity.ClientID()
	if u.Form == FormBare {
		return s
	}
	var bag Properties
	if u.APIVersion != "" {
		bag = append(bag, Property{Key: userNameAPIVersion, Value: u.APIVersion})
	}
	if u.DeviceClientType != "" {
		bag = append(bag, Property{Key: userNameDeviceClientType, Value: u.DeviceClientType})
	}
	if u.ModelID != "" {
		bag = append(bag, Property{Key: userNameModelID, Value: u.ModelID})
	}
	bag = append(bag, u.Extra...)
	if u.Form == FormLegacyNoQuestionMark {
		return s + "/" + bag.Encode()
	}
	return s + "/?" + bag.Encode()
}

// HostName returns Host without a ":port" suffix.
func (u UserName) HostName() string {
	if i := strings.LastIndexByte(u.Host, ':'); i >= 0 && !strings.Contains(u.Host[i:], "]") {
		return u.Host[:i]
	}
	return u.Host
}

// ParseUserName parses an MQTT user name in any of the three forms (docs/iothub-behavior.md §1.9–§1.12):
//
//	{host}/{deviceId}/?api-version={v}[&DeviceClientType={enc}][&model-id={enc}][&...]
//	{host}/{deviceId}/{moduleId}/?api-version={v}...
//	{host}/{deviceId}[/{moduleId}]/api-version={v}...   (legacy, no '?')
//	{host}/{deviceId}[/{moduleId}]                        (bare, no api-version)
//
// The user name is split on '/'; the last segment is the property bag when it starts with '?'
// or contains "api-version=". If it does not but an earlier segment after the device ID does,
// the bag starts there (a property value with an unencoded '/'). Host and IDs are not
// URL-decoded (the IDs must pass ValidateID); property values are. Unknown properties go to
// Extra; for a repeated key the first wins. api-version, when present, must look like
// YYYY-MM-DD or YYYY-MM-DD-preview.
func ParseUserName(s string) (UserName, error) {
	fail := func(format string, args ...any) (UserName, error) {
		return UserName{}, &ParseError{What: "user name", Input: s, Err: ErrUserName,
			Problem: fmt.Sprintf(format, args...)}
	}
	const expected = "expected {host}/{deviceId}[/{moduleId}]/?api-version=YYYY-MM-DD"
	segs := strings.Split(s, "/")
	var u UserName
	u.Form = FormBare
	bagAt := -1
	if n := len(segs); n >= 3 && isUserNameBag(segs[n-1]) {
		bagAt = n - 1
	} else {
		for i := 2; i < n; i++ {
			if isUserNameBag(segs[i]) {
				bagAt = i
				break
			}
		}
	}
	var bag string
	if bagAt >= 0 {
		bag = strings.Join(segs[bagAt:], "/")
		segs = segs[:bagAt]
		u.Form = FormLegacyNoQuestionMark
		if strings.HasPrefix(bag, "?") {
			u.Form = FormQuery
			bag = bag[1:]
		}
	}
	switch len(segs) {
	case 2:
		u.Identity = Identity{DeviceID: segs[1]}
	case 3:
		if segs[2] == "" {
			return fail("%s: empty segment after the device ID (a trailing '/' needs a property bag: /?api-version=...)", expected)
		}
		u.Identity = Identity{DeviceID: segs[1], ModuleID: segs[2]}
	default:
		if len(segs) < 2 {
			return fail("%s: no '/' after the host name", expected)
		}
		return fail("%s: found %d '/'-separated segments before the property bag", expected, len(segs))
	}
	u.Host = segs[0]
	if err := validateHost(u.Host); err != nil {
		return fail("host %q: %v", u.Host, err)
	}
	if err := u.Identity.Validate(); err != nil {
		return fail("%s", err.(*ParseError).detail())
	}
	if u.Form == FormBare {
		return u, nil
	}
	props, err := ParseProperties(bag)
	if err != nil {
		return fail("property bag: %s", err.(*ParseError).Problem)
	}
	seen := make(map[string]bool)
	for _, p := range props {
		if seen[p.Key] {
			continue // a repeated key: the first wins
		}
		seen[p.Key] = true
		switch p.Key {
		case userNameAPIVersion:
			if p.Null || p.Value == "" {
				return fail("api-version is present but empty (expected api-version=YYYY-MM-DD, e.g. %s)", DefaultAPIVersion)
			}
			if err := ValidateAPIVersion(p.Value); err != nil {
				return fail("%v", err)
			}
			u.APIVersion = p.Value
		case userNameDeviceClientType:
			u.DeviceClientType = p.Value
		case userNameModelID:
			u.ModelID = p.Value
		default:
			u.Extra = append(u.Extra, p)
		}
	}
	if u.Form == FormLegacyNoQuestionMark && u.APIVersion == "" {
		return fail("the last segment %q reads as a property bag without '?' (it contains \"api-version=\") but has no api-version property; expected .../?api-version=YYYY-MM-DD", bag)
	}
	return u, nil
}

func isUserNameBag(seg string) bool {
	return strings.HasPrefix(seg, "?") || strings.Contains(seg, "api-version=")
}

func validateHost(h string) error {
	if h == "" {
		return fmt.Errorf("is empty")
	}
	name, port, hasPort := strings.Cut(h, ":")
	if strings.HasPrefix(h, "[") { // an IPv6 literal: "[::1]" or "[::1]:8883"
		end := strings.IndexByte(h, ']')
		if end < 0 {
			return fmt.Errorf("has '[' without ']'")
		}
		name, port = h[1:end], h[end+1:]
		if name == "" || strings.Trim(name, "0123456789abcdefABCDEF:.") != "" {
			return fmt.Errorf("%q is not an IPv6 address", h[:end+1])
		}
		if port, hasPort = strings.CutPrefix(port, ":"); !hasPort && port != "" {
			return fmt.Errorf("expected ':' and a port after ']', found %q", port)
		}
	} else {
		if name == "" {
			return fmt.Errorf("has an empty name before ':'")
		}
		for i := 0; i < len(name); i++ {
			if c := name[i]; !isAlnum(c) && c != '-' && c != '.' && c != '_' {
				return fmt.Errorf("character %s at position %d is not allowed in a host name", describeChar(name[i:]), i+1)
			}
		}
	}
	if hasPort {
		if port == "" || len(port) > 5 || strings.Trim(port, "0123456789") != "" {
			return fmt.Errorf("port %q is not a number", port)
		}
	}
	return nil
}

// ValidateAPIVersion checks that v looks like an IoT Hub api-version: YYYY-MM-DD, optionally
// followed by "-preview". The value itself is not checked against a list (docs/iothub-behavior.md §1.13).
func ValidateAPIVersion(v string) error {
	date := strings.TrimSuffix(v, "-preview")
	ok := len(date) == 10 && date[4] == '-' && date[7] == '-'
	for i := 0; ok && i < len(date); i++ {
		if i != 4 && i != 7 && (date[i] < '0' || date[i] > '9') {
			ok = false
		}
	}
	if ok {
		month, day := int(date[5]-'0')*10+int(date[6]-'0'), int(date[8]-'0')*10+int(date[9]-'0')
		ok = month >= 1 && month <= 12 && day >= 1 && day <= 31
	}
	if !ok {
		return fmt.Errorf("api-version %q is not a date (expected YYYY-MM-DD or YYYY-MM-DD-preview, e.g. %s)", v, DefaultAPIVersion)
	}
	return nil
}
