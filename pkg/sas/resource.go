package sas

import (
	"net/url"
	"strings"
)

// EncodeResource percent-encodes a plain resource the way the Azure SDKs do
// before signing (Go url.QueryEscape: '/' becomes "%2F", upper-case hex, a
// space becomes '+'). The result is the wire form to pass to Sign.
func EncodeResource(plain string) string { return url.QueryEscape(plain) }

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
// tokenResource grants access to the plain resource target. The first
// segment (the host, or the DPS ID scope) is compared case-insensitively;
// the rest by whole '/'-separated segments, exactly (case-sensitively):
// "h/devices/dev1" covers "h/devices/dev1" and "h/devices/dev1/modules/m",
// but never "h/devices/dev10".
func Covers(tokenResource, target string) bool {
	return covers(tokenResource, target, false)
}

func covers(tokenResource, target string, foldIDs bool) bool {
	th, tp, _ := strings.Cut(tokenResource, "/")
	gh, gp, _ := strings.Cut(target, "/")
	if !strings.EqualFold(th, gh) {
		return false
	}
	if !strings.Contains(tokenResource, "/") || tp == "" {
		return true // the whole hub ("h" or "h/")
	}
	if !strings.Contains(target, "/") {
		return false
	}
	if len(tp) > len(gp) {
		return false
	}
	prefix := gp[:len(tp)]
	if !(prefix == tp || foldIDs && strings.EqualFold(prefix, tp)) {
		return false
	}
	return len(gp) == len(tp) || gp[len(tp)] == '/' || strings.HasSuffix(tp, "/")
}
