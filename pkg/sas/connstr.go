package sas

import (
	"fmt"
	"log/slog"
	"net/url"
	"slices"
	"strings"
	"time"
)

// Dialect says which service family a connection string belongs to.
type Dialect int

// Dialects.
const (
	// DialectIoTHub: HostName=...;DeviceId=...;SharedAccessKey=... and friends.
	// Keys are base64 and decoded before signing.
	DialectIoTHub Dialect = iota
	// DialectServiceBus: Endpoint=sb://ns.servicebus.windows.net/;... as used
	// by Event Hubs, Service Bus and IoT Hub's Event Hub-compatible endpoint.
	// Tokens are signed with the raw bytes of the key text.
	DialectServiceBus
)

// String returns "iothub" or "servicebus".
func (d Dialect) String() string {
	if d == DialectServiceBus {
		return "servicebus"
	}
	return "iothub"
}

// Kind is what a connection string identifies.
type Kind int

// Kinds of connection strings.
const (
	KindDevice     Kind = iota // HostName;DeviceId;(SharedAccessKey|SharedAccessSignature)
	KindModule                 // ... plus ModuleId
	KindPolicy                 // HostName;SharedAccessKeyName;SharedAccessKey (service side)
	KindServiceBus             // Endpoint=sb://...;SharedAccessKeyName;SharedAccessKey[;EntityPath]
)

// String returns "device", "module", "policy" or "servicebus".
func (k Kind) String() string {
	switch k {
	case KindDevice:
		return "device"
	case KindModule:
		return "module"
	case KindPolicy:
		return "policy"
	case KindServiceBus:
		return "servicebus"
	}
	return fmt.Sprintf("Kind(%d)", int(k))
}

// ConnectionString is a parsed IoT Hub or Event Hubs/Service Bus connection
// string. Values are kept as written.
type ConnectionString struct {
	HostName, DeviceID, ModuleID, SharedAccessKeyName, SharedAccessKey string
	GatewayHostName, SharedAccessSignature                             string
	Endpoint, EntityPath                                               string // Service Bus / Event Hubs
	Dialect                                                            Dialect
	// X509 is "x509=true": the device or module authenticates with its client certificate
	// (and an empty MQTT password) instead of a key, as the Azure SDKs write it.
	X509 bool
}

// connection-string key names in canonical spelling and output order.
const (
	csHostName  = "HostName"
	csDeviceID  = "DeviceId"
	csModuleID  = "ModuleId"
	csKeyName   = "SharedAccessKeyName"
	csKey       = "SharedAccessKey"
	csSignature = "SharedAccessSignature"
	csGateway   = "GatewayHostName"
	csEndpoint  = "Endpoint"
	csEntity    = "EntityPath"
	csX509      = "x509"
)

var csKnown = []string{csHostName, csDeviceID, csModuleID, csKeyName, csKey, csSignature, csGateway, csEndpoint, csEntity, csX509}

func (c *ConnectionString) field(name string) *string {
	switch name {
	case csHostName:
		return &c.HostName
	case csDeviceID:
		return &c.DeviceID
	case csModuleID:
		return &c.ModuleID
	case csKeyName:
		return &c.SharedAccessKeyName
	case csKey:
		return &c.SharedAccessKey
	case csSignature:
		return &c.SharedAccessSignature
	case csGateway:
		return &c.GatewayHostName
	case csEndpoint:
		return &c.Endpoint
	case csEntity:
		return &c.EntityPath
	}
	return nil
}

func csError(format string, args ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{ErrConnectionString}, args...)...)
}

// ParseConnectionString parses "Key=Value;Key=Value" in either dialect.
// Key names are matched case-insensitively, as the .NET SDKs do
// (CommonExtensionMethods.ToDictionary uses StringComparer.OrdinalIgnoreCase),
// and printed in canonical casing by String; values are kept as written (they
// may contain '='). Empty segments (a trailing ';') are ignored. Unknown
// keys, duplicated keys, empty values and incomplete or contradictory
// combinations are errors wrapping ErrConnectionString that say what was
// wrong and what was expected; they never contain the key or signature.
//
// IoT Hub forms:
//
//	HostName=h;DeviceId=d;SharedAccessKey=k                       device
//	HostName=h;DeviceId=d;ModuleId=m;SharedAccessKey=k            module
//	HostName=h;DeviceId=d[;ModuleId=m];x509=true                  device or module with an X.509 certificate
//	HostName=h;SharedAccessKeyName=p;SharedAccessKey=k            policy (service)
//	HostName=h;DeviceId=d;SharedAccessKeyName=p;SharedAccessKey=k device via a policy key (skn=p;
//	                                                               the .NET device SDK's
//	                                                               DeviceAuthenticationWithSharedAccessPolicyKey)
//	HostName=h;DeviceId=d;SharedAccessSignature=SharedAccessSignature sr=...  device with a ready token
//	...;GatewayHostName=g                                         device or module behind IoT Edge
//
// Event Hubs / Service Bus:
//
//	Endpoint=sb://ns.servicebus.windows.net/;SharedAccessKeyName=p;SharedAccessKey=k[;EntityPath=e]
func ParseConnectionString(s string) (ConnectionString, error) {
	var c ConnectionString
	seen := map[string]bool{}
	s = strings.TrimSpace(s)
	if s == "" {
		return c, csError("empty (want HostName=...;DeviceId=...;SharedAccessKey=...)")
	}
	if lq, rq := wrappingQuotes(s); lq != "" {
		return c, csError("the connection string is wrapped in quotes (%s ... %s): remove them (a quote inside other quotes, or in a .env file, is kept as part of the value)", lq, rq)
	}
	if slices.ContainsFunc(strings.Split(s, ";"), commaSeparated) {
		return c, csError("the segments are separated by ',': a connection string separates Key=Value pairs with ';' (HostName=...;DeviceId=...;SharedAccessKey=...)")
	}
	for seg := range strings.SplitSeq(s, ";") {
		if strings.TrimSpace(seg) == "" {
			continue
		}
		name, value, ok := strings.Cut(seg, "=")
		name = strings.TrimSpace(name)
		if !ok {
			return c, csError("segment %s has no '=' (want Key=Value)", quoteName(name))
		}
		canon := canonicalKey(name)
		if canon == "" {
			if msg, ok := unsupportedKeys[strings.ToLower(name)]; ok {
				return c, csError("%s", msg)
			}
			if sug := suggestKey(name); sug != "" {
				return c, csError("unknown key %s (did you mean %s?)", quoteName(name), sug)
			}
			return c, csError("unknown key %s (want one of %s)", quoteName(name), strings.Join(csKnown, ", "))
		}
		if seen[canon] {
			return c, csError("%s is set twice", canon)
		}
		seen[canon] = true
		if value == "" {
			return c, csError("%s is empty", canon)
		}
		if canon == csX509 {
			switch strings.ToLower(strings.TrimSpace(value)) {
			case "true":
				c.X509 = true
			case "false":
			default:
				return c, csError("x509=%s: want x509=true", quoteName(value))
			}
			continue
		}
		*c.field(canon) = value
	}
	if err := c.validate(); err != nil {
		return ConnectionString{}, err
	}
	return c, nil
}

// wrappingQuotes returns the quotes s is wrapped in (plain or typographic),
// or "", "".
func wrappingQuotes(s string) (lq, rq string) {
	for _, q := range [][2]string{{`"`, `"`}, {`'`, `'`}, {"`", "`"}, {"\u201c", "\u201d"}, {"\u2018", "\u2019"}} {
		if len(s) >= len(q[0])+len(q[1]) && strings.HasPrefix(s, q[0]) && strings.HasSuffix(s, q[1]) {
			return q[0], q[1]
		}
	}
	return "", ""
}

// commaSeparated reports whether s joins two or more Key=Value pairs of
// known keys with ',' (no value of a known key holds a ',').
func commaSeparated(s string) bool {
	n := 0
	for seg := range strings.SplitSeq(s, ",") {
		if name, _, ok := strings.Cut(seg, "="); ok && canonicalKey(strings.TrimSpace(name)) != "" {
			n++
		}
	}
	return n >= 2
}

// quoteName quotes a key name for an error unless it may be a secret pasted
// in the wrong place (long, or containing anything but letters, '_', '-', '.').
func quoteName(name string) string {
	if !looksLikeName(name, 24) {
		return fmt.Sprintf("(%d bytes, not shown)", len(name))
	}
	return fmt.Sprintf("%q", name)
}

func looksLikeName(s string, max int) bool {
	if s == "" || len(s) > max {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c == '_' || c == '-' || c == '.') {
			return false
		}
	}
	return true
}

func canonicalKey(name string) string {
	for _, k := range csKnown {
		if strings.EqualFold(k, name) {
			return k
		}
	}
	return ""
}

// unsupportedKeys are real connection-string keys of other tools or
// features, refused with a specific reason.
var unsupportedKeys = map[string]string{
	"repositoryid":           "RepositoryId (a retired Digital Twins preview key) is not supported; remove it",
	"modelid":                "ModelId is not a connection-string key here; send the model ID in the MQTT user name (model-id=...)",
	"usedevelopmentemulator": "UseDevelopmentEmulator (the Event Hubs emulator flag) is not supported; remove it",
}

// suggestKey returns a known key close to name (common misspellings).
func suggestKey(name string) string {
	n := strings.ToLower(strings.NewReplacer("_", "", "-", "", " ", "").Replace(name))
	aliases := map[string]string{
		"host": csHostName, "hostname": csHostName, "iothubhostname": csHostName, "hubname": csHostName,
		"device": csDeviceID, "deviceid": csDeviceID, "devid": csDeviceID,
		"module": csModuleID, "moduleid": csModuleID,
		"key": csKey, "sharedaccesskey": csKey, "primarykey": csKey, "secondarykey": csKey, "accesskey": csKey,
		"keyname": csKeyName, "policy": csKeyName, "policyname": csKeyName, "sharedaccesspolicyname": csKeyName,
		"sas": csSignature, "token": csSignature, "sastoken": csSignature, "signature": csSignature,
		"gateway": csGateway, "gatewayhost": csGateway, "gatewayhostname": csGateway,
		"endpoint": csEndpoint, "entity": csEntity, "entitypath": csEntity, "eventhubname": csEntity,
	}
	return aliases[n]
}

func (c *ConnectionString) validate() error {
	if c.Endpoint != "" || c.EntityPath != "" {
		c.Dialect = DialectServiceBus
		return c.validateServiceBus()
	}
	c.Dialect = DialectIoTHub
	switch {
	case c.HostName == "":
		return csError("HostName is missing (want HostName=<hub>.azure-devices.net)")
	case c.ModuleID != "" && c.DeviceID == "":
		return csError("ModuleId requires DeviceId")
	case c.SharedAccessKey != "" && c.SharedAccessSignature != "":
		return csError("SharedAccessKey and SharedAccessSignature cannot both be set (use one)")
	case c.X509 && (c.SharedAccessKey != "" || c.SharedAccessSignature != "" || c.SharedAccessKeyName != ""):
		return csError("x509=true cannot be combined with SharedAccessKey, SharedAccessKeyName or SharedAccessSignature (an X.509 identity authenticates with its certificate)")
	case c.X509 && c.DeviceID == "":
		return csError("x509=true requires DeviceId (HostName=...;DeviceId=...;x509=true)")
	case c.SharedAccessKey == "" && c.SharedAccessSignature == "" && !c.X509:
		return csError("SharedAccessKey or SharedAccessSignature is required (or x509=true for an X.509 identity)")
	case c.SharedAccessKeyName != "" && c.SharedAccessSignature != "":
		return csError("SharedAccessKeyName goes with SharedAccessKey, not with SharedAccessSignature (the token carries skn itself)")
	case c.SharedAccessKeyName == "" && c.DeviceID == "":
		return csError("DeviceId or SharedAccessKeyName is required (device: HostName;DeviceId;SharedAccessKey, service: HostName;SharedAccessKeyName;SharedAccessKey)")
	case c.SharedAccessKeyName != "" && c.ModuleID != "":
		return csError("ModuleId and SharedAccessKeyName cannot both be set (a module connects with its own key)")
	case c.GatewayHostName != "" && c.DeviceID == "":
		return csError("GatewayHostName requires DeviceId (it is for devices and modules behind IoT Edge)")
	}
	if c.SharedAccessKey != "" {
		key, err := DecodeKey(c.SharedAccessKey)
		if err == nil {
			err = ValidateKeyLength(key)
		}
		if err != nil {
			return csError("SharedAccessKey: %s", strings.TrimPrefix(err.Error(), ErrKey.Error()+": "))
		}
	}
	if c.SharedAccessSignature != "" {
		if _, err := Parse(c.SharedAccessSignature); err != nil {
			return csError("SharedAccessSignature: %s", strings.TrimPrefix(err.Error(), "sas: "))
		}
	}
	return nil
}

func (c *ConnectionString) validateServiceBus() error {
	for _, k := range []struct{ name, v string }{{csHostName, c.HostName}, {csDeviceID, c.DeviceID}, {csModuleID, c.ModuleID}, {csGateway, c.GatewayHostName}} {
		if k.v != "" {
			return csError("%s cannot be used with Endpoint/EntityPath (IoT Hub keys in an Event Hubs/Service Bus connection string)", k.name)
		}
	}
	if c.X509 {
		return csError("x509=true cannot be used with Endpoint/EntityPath (Event Hubs and Service Bus have no X.509 device identities)")
	}
	switch {
	case c.Endpoint == "":
		return csError("Endpoint is missing (want Endpoint=sb://<namespace>.servicebus.windows.net/)")
	case c.SharedAccessKey != "" && c.SharedAccessSignature != "":
		return csError("SharedAccessKey and SharedAccessSignature cannot both be set (use one)")
	case c.SharedAccessKey == "" && c.SharedAccessSignature == "":
		return csError("SharedAccessKey or SharedAccessSignature is required")
	case c.SharedAccessKey != "" && c.SharedAccessKeyName == "":
		return csError("SharedAccessKey requires SharedAccessKeyName (the policy name, e.g. RootManageSharedAccessKey)")
	case c.SharedAccessKeyName != "" && c.SharedAccessSignature != "":
		return csError("SharedAccessKeyName goes with SharedAccessKey, not with SharedAccessSignature (the token carries skn itself)")
	}
	u, err := url.Parse(c.Endpoint)
	if err != nil || u.Scheme != "sb" || u.Host == "" || (u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.User != nil {
		return csError("Endpoint must look like sb://<namespace>.servicebus.windows.net/")
	}
	if c.SharedAccessSignature != "" {
		if _, err := Parse(c.SharedAccessSignature); err != nil {
			return csError("SharedAccessSignature: %s", strings.TrimPrefix(err.Error(), "sas: "))
		}
	}
	return nil
}

// String returns the connection string with canonical key names in
// canonical order (HostName, DeviceId, ModuleId, SharedAccessKeyName,
// SharedAccessKey, SharedAccessSignature, GatewayHostName; Service Bus:
// Endpoint, SharedAccessKeyName, SharedAccessKey, SharedAccessSignature,
// EntityPath). It contains the key: treat it as a secret. Use Redacted for
// errors and logs (slog uses LogValue, which redacts, but fmt's %v and %s
// call String).
func (c ConnectionString) String() string { return c.format(false) }

// Redacted is String with SharedAccessKey=<redacted> and
// SharedAccessSignature=<redacted>, safe for logs and errors.
func (c ConnectionString) Redacted() string { return c.format(true) }

// LogValue makes slog log a ConnectionString as Redacted.
func (c ConnectionString) LogValue() slog.Value { return slog.StringValue(c.Redacted()) }

func (c ConnectionString) format(redact bool) string {
	order := []string{csHostName, csDeviceID, csModuleID, csKeyName, csKey, csSignature, csGateway}
	if c.Dialect == DialectServiceBus {
		order = []string{csEndpoint, csKeyName, csKey, csSignature, csEntity}
	}
	var b strings.Builder
	for _, k := range order {
		v := *c.field(k)
		if v == "" {
			continue
		}
		if redact && (k == csKey || k == csSignature) {
			v = redacted
		}
		if b.Len() > 0 {
			b.WriteByte(';')
		}
		b.WriteString(k)
		b.WriteByte('=')
		b.WriteString(v)
	}
	if c.X509 {
		b.WriteString(";" + csX509 + "=true")
	}
	return b.String()
}

// Kind says what c identifies.
func (c ConnectionString) Kind() Kind {
	switch {
	case c.Dialect == DialectServiceBus:
		return KindServiceBus
	case c.ModuleID != "":
		return KindModule
	case c.DeviceID != "":
		return KindDevice
	default:
		return KindPolicy
	}
}

// Resource returns the PLAIN resource a token for c is signed over:
// DeviceResource, ModuleResource or HubResource of HostName. For Service Bus
// it is the entity's resource URI "https://<namespace host>/<EntityPath>"
// ("https://<namespace host>/" without EntityPath), the form of Microsoft's
// Service Bus and Event Hubs SAS samples (createToken(resourceUri, ...) with
// resourceUri "https://<namespace>.servicebus.windows.net/<entity>",
// learn.microsoft.com/azure/service-bus-messaging/service-bus-sas) and of the
// sr in azure-sdk-for-java's ServiceBusSharedKeyCredentialTest
// ("https%3A%2F%2Fentity-name.servicebus.windows.net%2F"). Note that Go's
// azure-amqp-common-go signer lower-cases the encoded audience and the .NET
// clients sign "amqps://..." audiences; the service accepts any of them for
// the entity, this package picks the documented one.
func (c ConnectionString) Resource() string {
	switch c.Kind() {
	case KindServiceBus:
		host := c.Endpoint
		if u, err := url.Parse(c.Endpoint); err == nil && u.Host != "" {
			host = u.Host
		}
		return "https://" + host + "/" + c.EntityPath
	case KindModule:
		return ModuleResource(c.HostName, c.DeviceID, c.ModuleID)
	case KindDevice:
		return DeviceResource(c.HostName, c.DeviceID)
	default:
		return HubResource(c.HostName)
	}
}

// Key returns the signing key: the base64-decoded SharedAccessKey for IoT
// Hub, the raw bytes of the key text for Service Bus (Event Hubs and Service
// Bus do not decode keys). Without a SharedAccessKey it returns an error
// wrapping ErrKey.
func (c ConnectionString) Key() ([]byte, error) {
	if c.SharedAccessKey == "" {
		return nil, fmt.Errorf("%w: the connection string has no SharedAccessKey", ErrKey)
	}
	if c.Dialect == DialectServiceBus {
		return []byte(c.SharedAccessKey), nil
	}
	return DecodeKey(c.SharedAccessKey)
}

// Token returns a token for c expiring at expiry: Sign over
// EncodeResource(Resource()) with Key() and SharedAccessKeyName as skn. With
// an embedded SharedAccessSignature instead of a key it returns that token
// parsed (expiry is ignored).
func (c ConnectionString) Token(expiry time.Time) (Token, error) {
	if c.SharedAccessSignature != "" {
		return Parse(c.SharedAccessSignature)
	}
	key, err := c.Key()
	if err != nil {
		return Token{}, err
	}
	return Sign(EncodeResource(c.Resource()), c.SharedAccessKeyName, key, expiry), nil
}
