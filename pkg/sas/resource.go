package sas

import (
	"net/url"
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
