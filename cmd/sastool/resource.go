package main

import (
	"fmt"
	"strings"

	"github.com/hubkit/hubkit/pkg/sas"
)

// describe is the one-line human form of a resource's scope: "device dev1 on hub h",
// "DPS registration r in ID scope s". pkg/sas reads the resource (sas.ParseResource);
// naming the scope is for people, so it lives here.
func describe(r sas.Resource) string {
	host := r.Authority() // with the port, if the resource has one
	switch r.Kind {
	case sas.ResourceDevice:
		return fmt.Sprintf("device %s on hub %s", r.DeviceID, host)
	case sas.ResourceModule:
		return fmt.Sprintf("module %s of device %s on hub %s", r.ModuleID, r.DeviceID, host)
	case sas.ResourceModules:
		return fmt.Sprintf("every module of device %s on hub %s", r.DeviceID, host)
	case sas.ResourceDevices:
		return fmt.Sprintf("every device on hub %s", host)
	case sas.ResourceHub:
		return fmt.Sprintf("the whole hub %s", host)
	case sas.ResourceDPS:
		return fmt.Sprintf("DPS registration %s in ID scope %s", r.RegistrationID, r.IDScope)
	case sas.ResourceServiceBus:
		return fmt.Sprintf("Event Hubs/Service Bus entity on %s", host)
	}
	if p := resourceProblem(r); p != "" {
		return "unrecognised resource: " + p
	}
	return "unrecognised resource"
}

// resourceProblem names a likely mistake in the shape of a resource ("" if none seen).
func resourceProblem(r sas.Resource) string {
	switch {
	case r.Typo != (sas.Typo{}):
		return fmt.Sprintf("%q should be %q", "/"+r.Typo.Got+"/", "/"+r.Typo.Want+"/")
	case r.Kind == sas.ResourceUnknown && r.Authority() == "":
		return "empty host"
	}
	return ""
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
