package iothub

import (
	"fmt"
	"strings"
)

// System property keys as they appear (decoded) in a property bag. On the wire the SDKs send
// "$." as "%24."; ParseProperties decodes both to the forms below.
const (
	PropMessageID       = "$.mid"   // message-id
	PropCorrelationID   = "$.cid"   // correlation-id
	PropUserID          = "$.uid"   // user-id
	PropContentType     = "$.ct"    // content-type, e.g. application/json
	PropContentEncoding = "$.ce"    // content-encoding, e.g. utf-8
	PropCreationTime    = "$.ctime" // iothub-creation-time-utc
	PropExpiry          = "$.exp"   // absolute-expiry-time
	PropTo              = "$.to"    // to (C2D only)
	PropInterfaceID     = "$.ifid"  // iothub-interface-id (legacy Plug and Play)
	PropSubject         = "$.sub"   // dt-subject (component name)
	PropOutputName      = "$.on"    // output name (IoT Edge modules)
	PropAck             = "iothub-ack"
)

// Properties the hub adds to telemetry for the service side (docs/iothub-behavior.md §4.1); a device
// cannot set them. Additions to the contract, so both sides spell them once.
const (
	PropConnectionDeviceID         = "iothub-connection-device-id"
	PropConnectionModuleID         = "iothub-connection-module-id"
	PropConnectionAuthMethod       = "iothub-connection-auth-method"
	PropConnectionAuthGenerationID = "iothub-connection-auth-generation-id"
	PropEnqueuedTime               = "iothub-enqueuedtime"
	PropMessageSource              = "iothub-message-source"
	PropMessageType                = "iothub-MessageType" // "Will" for a will message
	PropDataSchema                 = "dt-dataschema"      // from the user name's model-id
	PropMQTTRetain                 = "mqtt-retain"        // "true" when RETAIN was set
	PropMQTTDup                    = "mqtt-dup"           // "true" when DUP was set
)

// systemKeys are the keys System returns; everything else (including unknown "$." keys, which
// the hub passes through as application properties) goes to Application.
var systemKeys = map[string]bool{
	PropMessageID: true, PropCorrelationID: true, PropUserID: true, PropContentType: true,
	PropContentEncoding: true, PropCreationTime: true, PropExpiry: true, PropTo: true,
	PropInterfaceID: true, PropSubject: true, PropOutputName: true, PropAck: true,
}

// IsSystemProperty reports whether key (decoded, e.g. "$.mid") is a system property.
func IsSystemProperty(key string) bool { return systemKeys[key] }

// Property is one entry of a property bag. Null distinguishes a bare key ("k", no '=') from an
// empty value ("k=").
type Property struct {
	Key   string
	Value string
	Null  bool // bare key with no '='; Value is then ignored
}

// Properties is a property bag, in wire order. Keys may repeat; Get and the maps keep the first.
type Properties []Property

// ParseProperties parses a property bag "k1=v1&k2&k3=": k1 has value "v1", k2 is null, k3 is
// empty. Keys and values are percent-decoded ("%24.mid" becomes "$.mid"); a '+' stays a '+'
// (it is not a space). Empty entries ("a=1&&b=2", a trailing '&') are skipped. A bad escape or an
// empty key is an error naming the key.
func ParseProperties(bag string) (Properties, error) { return parseProperties(bag, false) }

// parseProperties is ParseProperties; strict also rejects bytes that should have been
// percent-encoded (see RequireEscapedProperties).
func parseProperties(bag string, strict bool) (Properties, error) {
	if bag == "" {
		return nil, nil
	}
	props := make(Properties, 0, strings.Count(bag, "&")+1)
	for entry := range strings.SplitSeq(bag, "&") {
		if entry == "" {
			continue
		}
		rawKey, rawValue, hasValue := strings.Cut(entry, "=")
		key, err := unescapeKey(rawKey)
		if err != nil {
			return nil, &ParseError{What: "property bag", Input: bag, Err: ErrProperties,
				Problem: fmt.Sprintf("key %q: %v", rawKey, err)}
		}
		if key == "" {
			return nil, &ParseError{What: "property bag", Input: bag, Err: ErrProperties,
				Problem: fmt.Sprintf("entry %q has an empty key", entry)}
		}
		value, err := unescape(rawValue)
		if err != nil {
			return nil, &ParseError{What: "property bag", Input: bag, Err: ErrProperties,
				Problem: fmt.Sprintf("value of key %q: %v", key, err)}
		}
		if strict {
			if i := unescapedAt(rawKey, true); i >= 0 {
				return nil, &ParseError{What: "property bag", Input: bag, Err: ErrProperties,
					Problem: fmt.Sprintf("key %q: %s", rawKey, unescapedProblem(rawKey, i))}
			}
			if i := unescapedAt(rawValue, false); i >= 0 {
				return nil, &ParseError{What: "property bag", Input: bag, Err: ErrProperties,
					Problem: fmt.Sprintf("value %q of key %q: %s", rawValue, key, unescapedProblem(rawValue, i))}
			}
		}
		props = append(props, Property{Key: key, Value: value, Null: !hasValue})
	}
	if len(props) == 0 {
		return nil, nil // "&&" is no property at all, as "" is
	}
	return props, nil
}

// Encode returns the wire form of the bag: keys and values percent-encoded (every byte except
// ASCII letters, digits and - . _ ~; a space becomes %20, "$." becomes "%24."), null properties
// as bare keys, in order. ParseProperties(p.Encode()) gives back p (with Value cleared on null
// properties).
func (p Properties) Encode() string {
	var b strings.Builder
	for i, prop := range p {
		if i > 0 {
			b.WriteByte('&')
		}
		escapeTo(&b, prop.Key)
		if !prop.Null {
			b.WriteByte('=')
			escapeTo(&b, prop.Value)
		}
	}
	return b.String()
}

// Get returns the value of the first property with the given (decoded) key; a null property
// gives "", true.
// Set returns p with key set to value: an existing key keeps its place and takes the new
// value, a new one is appended.
func (p Properties) Set(key, value string) Properties {
	for i := range p {
		if p[i].Key == key {
			p[i].Value = value
			return p
		}
	}
	return append(p, Property{Key: key, Value: value})
}

func (p Properties) Get(key string) (string, bool) {
	for _, prop := range p {
		if prop.Key == key {
			if prop.Null {
				return "", true
			}
			return prop.Value, true
		}
	}
	return "", false
}

// System returns the system properties (the Prop* keys, "$.mid", ..., "iothub-ack"), first
// occurrence of each key; null values map to "".
func (p Properties) System() map[string]string { return p.split(true) }

// Application returns every other property, including unknown "$." keys (the hub passes those
// through as application properties); first occurrence of each key; null values map to "".
func (p Properties) Application() map[string]string { return p.split(false) }

func (p Properties) split(system bool) map[string]string {
	m := make(map[string]string)
	for _, prop := range p {
		if systemKeys[prop.Key] != system {
			continue
		}
		if _, dup := m[prop.Key]; dup {
			continue
		}
		if prop.Null {
			m[prop.Key] = ""
		} else {
			m[prop.Key] = prop.Value
		}
	}
	return m
}

// Size returns what the properties count towards the message size limit: the values of system
// properties plus the names and values of application properties (docs/iothub-behavior.md §4.1).
func (p Properties) Size() int {
	n := 0
	for _, prop := range p {
		if !systemKeys[prop.Key] {
			n += len(prop.Key)
		}
		if !prop.Null {
			n += len(prop.Value)
		}
	}
	return n
}

const upperHex = "0123456789ABCDEF"

func isUnreserved(c byte) bool {
	return isAlnum(c) || c == '-' || c == '.' || c == '_' || c == '~'
}

// escape percent-encodes every byte except the RFC 3986 unreserved characters.
func escape(s string) string {
	var b strings.Builder
	escapeTo(&b, s)
	return b.String()
}

func escapeTo(b *strings.Builder, s string) {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if isUnreserved(c) {
			b.WriteByte(c)
			continue
		}
		b.WriteByte('%')
		b.WriteByte(upperHex[c>>4])
		b.WriteByte(upperHex[c&15])
	}
}

// encodedSystemKeys maps the wire form of each system property key ("%24.mid") to its decoded
// constant, so that the keys every SDK message carries cost no allocation to decode.
var encodedSystemKeys = func() map[string]string {
	m := map[string]string{}
	for k := range systemKeys {
		if rest, ok := strings.CutPrefix(k, "$."); ok {
			m["%24."+rest] = k
		}
	}
	return m
}()

// unescapeKey is unescape for a key, with the system keys' wire forms looked up.
func unescapeKey(s string) (string, error) {
	if k, ok := encodedSystemKeys[s]; ok {
		return k, nil
	}
	return unescape(s)
}

// unescape percent-decodes s; '+' stays '+'. Bytes that should have been escaped are kept as
// they are.
func unescape(s string) (string, error) {
	if !strings.Contains(s, "%") {
		return s, nil
	}
	var b strings.Builder
	b.Grow(len(s))
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c != '%' {
			b.WriteByte(c)
			continue
		}
		if i+2 >= len(s) || !isHex(s[i+1]) || !isHex(s[i+2]) {
			end := min(i+3, len(s))
			return "", fmt.Errorf("bad percent-escape %q at position %d (expected %% and two hex digits)", s[i:end], i+1)
		}
		b.WriteByte(unhex(s[i+1])<<4 | unhex(s[i+2]))
		i += 2
	}
	return b.String(), nil
}

// unescapedAt returns the index of the first byte of s that should have been percent-encoded,
// or -1. A '$' starting a key ("$.mid", "$rid") is the documented form and allowed.
func unescapedAt(s string, key bool) int {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if isUnreserved(c) || c == '%' || key && i == 0 && c == '$' {
			continue
		}
		return i
	}
	return -1
}

func unescapedProblem(s string, i int) string {
	return fmt.Sprintf("unescaped %s at position %d (percent-encode it as %%%02X)", describeChar(s[i:]), i+1, s[i])
}

func isHex(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}

func unhex(c byte) byte {
	switch {
	case '0' <= c && c <= '9':
		return c - '0'
	case 'a' <= c && c <= 'f':
		return c - 'a' + 10
	default:
		return c - 'A' + 10
	}
}
