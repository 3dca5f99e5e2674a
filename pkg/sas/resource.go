package sas

import (
	"net/url"
	"slices"
	"strings"
)

// EncodeResource percent-encodes a plain resource the way the Azure SDKs do
// before signing, byte for byte as azure-iot-sdk-python's
// urllib.parse.quote(uri, safe=""): the RFC 3986 unreserved characters
// A-Z a-z 0-9 - _ . ~ stay, every other byte of the UTF-8 text becomes %XX
// with upper-case hex ('/' is "%2F", a space "%20", '+' "%2B", '(' "%28").
// azure-iot-sdk-node's encodeUriComponentStrict gives the same except '*'
// as "%2a" (testdata/encoding.txt). The result is the wire form to pass to
// Sign.
func EncodeResource(plain string) string {
	// url.QueryEscape keeps exactly the unreserved set and writes a space as
	// '+' (a literal '+' is "%2B"), so every '+' in its output is a space.
	return strings.ReplaceAll(url.QueryEscape(plain), "+", "%20")
}

// DeviceResource returns the plain resource "host/devices/deviceID".
func DeviceResource(host, deviceID string) string { return host + "/devices/" + deviceID }

// ModuleResource returns the plain resource "host/devices/deviceID/modules/moduleID".
func ModuleResource(host, deviceID, moduleID string) string {
	return host + "/devices/" + deviceID + "/modules/" + moduleID
}

// HubResource returns the plain resource for a whole hub: its host name.
func HubResource(host string) string { return host }

// DPSResource returns the plain DPS resource "idScope/registrations/registrationID".
func DPSResource(idScope, registrationID string) string {
	return idScope + "/registrations/" + registrationID
}

// Covers reports whether a token whose plain (decoded) resource is
// tokenResource grants access to the plain resource target, by path prefix.
// The first segment (the host, or the DPS ID scope) is compared
// case-insensitively; the rest by whole '/'-separated segments, exactly
// (case-sensitively): "h/devices/dev1" covers "h/devices/dev1" and
// "h/devices/dev1/modules/m", but never "h/devices/dev10". A single
// trailing slash on tokenResource is ignored, so "h/devices/dev1/" covers
// exactly what "h/devices/dev1" covers, and "h/" what "h" covers (a second
// one is an empty segment that matches nothing).
//
// Prefix coverage is IoT Hub's rule for every token (a policy's, and a
// device's or module's own, whose key binds it to that identity). IoT Edge
// hub requires a device or module key's token to name exactly that
// identity: see WithExactAudience.
func Covers(tokenResource, target string) bool {
	return covers(tokenResource, target, false)
}

func covers(tokenResource, target string, foldIDs bool) bool {
	tokenResource = strings.TrimSuffix(tokenResource, "/")
	th, tp, hasPath := strings.Cut(tokenResource, "/")
	gh, gp, targetHasPath := strings.Cut(target, "/")
	if !strings.EqualFold(th, gh) {
		return false
	}
	if !hasPath {
		return true // the whole hub ("h" or "h/")
	}
	if !targetHasPath || len(tp) > len(gp) {
		return false
	}
	prefix := gp[:len(tp)]
	if !(prefix == tp || foldIDs && strings.EqualFold(prefix, tp)) {
		return false
	}
	return len(gp) == len(tp) || gp[len(tp)] == '/'
}

// sameResource reports whether the plain resources a and b are the same:
// the first segment compared case-insensitively, the rest exactly (or
// case-insensitively with foldIDs). A trailing slash makes a difference.
func sameResource(a, b string, foldIDs bool) bool {
	ah, ap, aok := strings.Cut(a, "/")
	bh, bp, bok := strings.Cut(b, "/")
	return strings.EqualFold(ah, bh) && aok == bok && (ap == bp || foldIDs && strings.EqualFold(ap, bp))
}

// ResourceKind names what a token's resource grants access to. The values
// are stable (sastool prints them in --json output).
type ResourceKind string

// Resource kinds. The IoT Hub and DPS shapes are those of
// docs/iothub-behavior.md §2.4; Event Hubs/Service Bus audiences are URLs
// (see ConnectionString.Resource).
const (
	ResourceUnknown    ResourceKind = "unknown"    // no shape IoT Hub, DPS or Event Hubs knows
	ResourceHub        ResourceKind = "hub"        // {host}: the whole hub (policy tokens)
	ResourceDevices    ResourceKind = "devices"    // {host}/devices: every device of the hub (policy tokens)
	ResourceDevice     ResourceKind = "device"     // {host}/devices/{deviceId}
	ResourceModules    ResourceKind = "modules"    // {host}/devices/{deviceId}/modules: every module of a device (policy tokens)
	ResourceModule     ResourceKind = "module"     // {host}/devices/{deviceId}/modules/{moduleId}
	ResourceDPS        ResourceKind = "dps"        // {idScope}/registrations/{registrationId}
	ResourceServiceBus ResourceKind = "servicebus" // an Event Hubs or Service Bus audience: a URL, or a *.servicebus.* host
)

// Resource is a token's resource (sr) read into its parts, with the shape
// mistakes people make recognised rather than rejected: a port after the
// host, a trailing slash, "/module/" for "/modules/" and "/device/" for
// "/devices/". Nothing is validated against a registry; ParseResource only
// says what the resource names.
type Resource struct {
	Kind  ResourceKind
	Plain string // the resource percent-decoded, exactly as parsed

	// Host is the first segment without its port: the hub's host name as
	// written (any case), or the Event Hubs/Service Bus namespace host. It is
	// empty for a DPS resource, whose first segment is the IDScope.
	Host string
	// Port is a port written after the host ("8883" in "h:8883/devices/d").
	// IoT Hub resources carry none; a token with one names another resource.
	Port string

	DeviceID       string // set for devices/{id}..., even in an unknown shape or with Typo
	ModuleID       string // set for .../modules/{id}..., even in an unknown shape or with Typo
	IDScope        string // DPS
	RegistrationID string // DPS

	// TrailingSlash is true when the resource ends with one '/' (dropped
	// before the parts were read). Policy coverage ignores it (Covers); an
	// identity's own key must name its resource exactly, without it.
	TrailingSlash bool
	// Typo is a misspelt fixed path segment; when set, Kind is
	// ResourceUnknown and the IDs are read as if the segment were right.
	Typo Typo
}

// Typo is a misspelt fixed path segment of a resource: Got "module" where
// Want "modules" belongs. The zero Typo means none.
type Typo struct{ Got, Want string }

// ParseResource reads a token's sr, percent-encoded as on the wire (upper- or
// lower-case escapes) or not encoded at all: it is percent-decoded first, as
// the hub decodes it, then read by ParsePlainResource. The only error is a
// bad percent-escape; it wraps ErrMalformed, like Token.PlainResource.
func ParseResource(sr string) (Resource, error) {
	plain, err := Token{Resource: sr}.PlainResource()
	if err != nil {
		return Resource{}, err
	}
	return ParsePlainResource(plain), nil
}

// ParsePlainResource reads a resource that is already decoded (as
// Token.PlainResource returns it, or as people write it: a '%' is taken
// literally). It never fails: what it cannot name is ResourceUnknown.
func ParsePlainResource(plain string) Resource {
	r := Resource{Kind: ResourceUnknown, Plain: plain}
	if i := strings.Index(plain, "://"); i >= 0 { // Event Hubs/Service Bus audiences are URLs
		r.Kind = ResourceServiceBus
		r.Host, _, _ = strings.Cut(plain[i+3:], "/")
		return r
	}
	s, slash := strings.CutSuffix(plain, "/")
	r.TrailingSlash = slash
	seg := strings.Split(s, "/")
	first := seg[0]
	if strings.Contains(strings.ToLower(first), ".servicebus.") {
		r.Kind, r.Host = ResourceServiceBus, first
		return r
	}
	if len(seg) >= 2 && seg[1] == "registrations" {
		if len(seg) == 3 && first != "" && seg[2] != "" {
			r.Kind, r.IDScope, r.RegistrationID = ResourceDPS, first, seg[2]
		} else {
			r.Host, r.Port = splitPort(first)
		}
		return r
	}
	r.Host, r.Port = splitPort(first)
	if r.Host == "" {
		return r
	}
	if len(seg) == 1 {
		r.Kind = ResourceHub
		return r
	}
	switch seg[1] {
	case "devices":
	case "device":
		r.Typo = Typo{"device", "devices"}
	default:
		return r
	}
	if len(seg) == 2 {
		r.kindUnlessTypo(ResourceDevices)
		return r
	}
	r.DeviceID = seg[2]
	if len(seg) > 3 {
		switch seg[3] {
		case "modules":
		case "module":
			if r.Typo == (Typo{}) {
				r.Typo = Typo{"module", "modules"}
			}
		default:
			return r
		}
		if len(seg) > 4 {
			r.ModuleID = seg[4]
		}
	}
	if slices.Contains(seg[2:], "") {
		return r // an empty ID names nothing
	}
	switch len(seg) {
	case 3:
		r.kindUnlessTypo(ResourceDevice)
	case 4:
		r.kindUnlessTypo(ResourceModules)
	case 5:
		r.kindUnlessTypo(ResourceModule)
	}
	return r
}

func (r *Resource) kindUnlessTypo(k ResourceKind) {
	if r.Typo == (Typo{}) {
		r.Kind = k
	}
}

// splitPort splits "host:port" when exactly one ':' (or "]:" after a bracketed
// IPv6 literal) is followed by a non-empty port; anything else is all host.
func splitPort(s string) (host, port string) {
	i := strings.LastIndex(s, ":")
	if i <= 0 || i == len(s)-1 {
		return s, ""
	}
	if strings.HasPrefix(s, "[") {
		if s[i-1] != ']' {
			return s, ""
		}
	} else if strings.Count(s, ":") > 1 {
		return s, "" // an IPv6 literal without brackets
	}
	return s[:i], s[i+1:]
}

// Authority returns the first segment of the resource as written: host[:port]
// (the namespace host for Event Hubs/Service Bus), or the ID scope of a DPS
// resource. It is what a hub compares with its own host name.
func (r Resource) Authority() string {
	if r.Kind == ResourceDPS {
		return r.IDScope
	}
	if r.Port != "" {
		return r.Host + ":" + r.Port
	}
	return r.Host
}
