package main

import (
	"fmt"
	"strings"
)

// resourceInfo is what a plain (decoded) token resource says about its scope. pkg/sas only
// needs "does this cover that" (sas.Covers); naming the scope is for people, so it lives here.
type resourceInfo struct {
	Kind           string // device, module, devices (every device of a hub), hub, dps, servicebus, unknown
	Host           string
	DeviceID       string
	ModuleID       string
	IDScope        string
	RegistrationID string
	Problem        string // a likely typo, e.g. "/module/" for "/modules/"
}

func classifyResource(plain string) resourceInfo {
	s := plain
	if i := strings.Index(s, "://"); i >= 0 { // Event Hubs/Service Bus audiences are URLs
		return resourceInfo{Kind: "servicebus", Host: strings.SplitN(s[i+3:], "/", 2)[0]}
	}
	s = strings.TrimSuffix(s, "/")
	seg := strings.Split(s, "/")
	host := seg[0]
	if strings.Contains(strings.ToLower(host), ".servicebus.") {
		return resourceInfo{Kind: "servicebus", Host: host}
	}
	ri := resourceInfo{Kind: "unknown", Host: host}
	switch {
	case host == "":
		ri.Problem = "empty host"
	case len(seg) == 1:
		ri.Kind = "hub"
	case len(seg) == 2 && seg[1] == "devices":
		ri.Kind = "devices"
	case len(seg) == 3 && seg[1] == "devices":
		ri.Kind, ri.DeviceID = "device", seg[2]
	case len(seg) == 5 && seg[1] == "devices" && seg[3] == "modules":
		ri.Kind, ri.DeviceID, ri.ModuleID = "module", seg[2], seg[4]
	case len(seg) == 3 && seg[1] == "registrations":
		ri = resourceInfo{Kind: "dps", IDScope: host, RegistrationID: seg[2]}
	case len(seg) == 5 && seg[1] == "devices" && seg[3] == "module":
		ri.DeviceID, ri.ModuleID = seg[2], seg[4]
		ri.Problem = `"/module/" should be "/modules/"`
	case len(seg) >= 2 && seg[1] == "device":
		ri.Problem = `"/device/" should be "/devices/"`
	}
	return ri
}

// describe is the one-line human form: "device dev1 on hub h", "DPS registration r in scope s".
func (ri resourceInfo) describe() string {
	switch ri.Kind {
	case "device":
		return fmt.Sprintf("device %s on hub %s", ri.DeviceID, ri.Host)
	case "module":
		return fmt.Sprintf("module %s of device %s on hub %s", ri.ModuleID, ri.DeviceID, ri.Host)
	case "devices":
		return fmt.Sprintf("every device on hub %s", ri.Host)
	case "hub":
		return fmt.Sprintf("the whole hub %s", ri.Host)
	case "dps":
		return fmt.Sprintf("DPS registration %s in ID scope %s", ri.RegistrationID, ri.IDScope)
	case "servicebus":
		return fmt.Sprintf("Event Hubs/Service Bus entity on %s", ri.Host)
	}
	if ri.Problem != "" {
		return "unrecognised resource: " + ri.Problem
	}
	return "unrecognised resource"
}

// looksEncoded reports whether a resource given as plain already contains percent-escapes
// of '/' or ':' (someone pasted an sr).
func looksEncoded(s string) bool {
	l := strings.ToLower(s)
	return strings.Contains(l, "%2f") || strings.Contains(l, "%3a")
}

// srEncoding names how the wire sr was percent-encoded (pains: lower- vs upper-case escapes,
// encoding before or after signing).
func srEncoding(sr string) string {
	switch {
	case strings.Contains(sr, "%2F") && strings.Contains(sr, "%2f"):
		return "mixed-case %2F/%2f escapes (unusual; the hub signs sr exactly as sent)"
	case strings.Contains(sr, "%2F"):
		return "upper-case %2F escapes (as the Azure SDKs write it)"
	case strings.Contains(sr, "%2f"):
		return "lower-case %2f escapes (as the IoT Hub docs write it; accepted)"
	case strings.Contains(sr, "/"):
		return "not percent-encoded (accepted by the hub, which signs sr exactly as sent)"
	}
	return "no '/' in sr"
}
