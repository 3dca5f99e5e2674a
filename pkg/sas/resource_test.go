package sas

import (
	"errors"
	"net/url"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// TestParseResource reads resources as published by independent sources (each row names
// it) and the shape mistakes users report, into their parts.
func TestParseResource(t *testing.T) {
	tests := []struct {
		name string
		sr   string // wire form, as the source prints it
		want Resource
	}{
		// The IoT Hub SAS guide's rule, "lower case URL-encoding of the lower case resource
		// URI" (learn.microsoft.com/azure/iot-hub/iot-hub-dev-guide-sas), its example hub.
		{"docs-lower-case-device", "myhub.azure-devices.net%2fdevices%2fdevice1",
			Resource{Kind: ResourceDevice, Plain: "myhub.azure-devices.net/devices/device1", Host: "myhub.azure-devices.net", DeviceID: "device1"}},
		// Azure SDK for Embedded C, az_iot_hub_client_sas.c: literal upper-case "%2Fdevices%2F";
		// the device of the IoT Hub MQTT docs.
		{"embedded-c-device", "contoso.azure-devices.net%2Fdevices%2FMyDevice01",
			Resource{Kind: ResourceDevice, Plain: "contoso.azure-devices.net/devices/MyDevice01", Host: "contoso.azure-devices.net", DeviceID: "MyDevice01"}},
		// Azure/azure-iot-cli-extension, azext_iot/tests/test_iot_ext_unit.py, TestSasTokenAuth:
		// module resource, and the hub-level policy resource (sr = host only).
		{"azure-cli-module", "iot-hub-for-test.azure-devices.net%2Fdevices%2Fiot-device-for-test%2Fmodules%2Fmodule-for-test",
			Resource{Kind: ResourceModule, Plain: "iot-hub-for-test.azure-devices.net/devices/iot-device-for-test/modules/module-for-test",
				Host: "iot-hub-for-test.azure-devices.net", DeviceID: "iot-device-for-test", ModuleID: "module-for-test"}},
		{"azure-cli-hub", "iot-hub-for-test.azure-devices.net",
			Resource{Kind: ResourceHub, Plain: "iot-hub-for-test.azure-devices.net", Host: "iot-hub-for-test.azure-devices.net"}},
		// The IoT Hub SAS guide's protocol-gateway pattern: a policy token over {host}/devices.
		{"docs-gateway-devices", "myhub.azure-devices.net%2Fdevices",
			Resource{Kind: ResourceDevices, Plain: "myhub.azure-devices.net/devices", Host: "myhub.azure-devices.net"}},
		// Azure SDK for Embedded C, az_iot_provisioning_client_sas.c: lower-case
		// "%2fregistrations%2f" (DPS symmetric-key docs: sr={idScope}/registrations/{registrationId}).
		{"embedded-c-dps", "0ne00000A0A%2fregistrations%2fsn-007-888-abc-mac-a1-b2-c3-d4-e5-f6",
			Resource{Kind: ResourceDPS, Plain: "0ne00000A0A/registrations/sn-007-888-abc-mac-a1-b2-c3-d4-e5-f6",
				IDScope: "0ne00000A0A", RegistrationID: "sn-007-888-abc-mac-a1-b2-c3-d4-e5-f6"}},
		// Service Bus SAS docs (learn.microsoft.com/azure/service-bus-messaging/service-bus-sas):
		// resourceUri "https://<namespace>.servicebus.windows.net/<entity>"; azure-sdk-for-java
		// ServiceBusSharedKeyCredentialTest signs "https%3A%2F%2Fentity-name.servicebus.windows.net%2F".
		{"servicebus-docs", "https://contoso-ns.servicebus.windows.net/telemetry",
			Resource{Kind: ResourceServiceBus, Plain: "https://contoso-ns.servicebus.windows.net/telemetry", Host: "contoso-ns.servicebus.windows.net"}},
		{"servicebus-java-sdk", "https%3A%2F%2Fentity-name.servicebus.windows.net%2F",
			Resource{Kind: ResourceServiceBus, Plain: "https://entity-name.servicebus.windows.net/", Host: "entity-name.servicebus.windows.net"}},
		{"servicebus-no-scheme", "ns.servicebus.windows.net/eh",
			Resource{Kind: ResourceServiceBus, Plain: "ns.servicebus.windows.net/eh", Host: "ns.servicebus.windows.net"}},

		// A policy token may cover every module of a device by path prefix (§2.4).
		{"modules-prefix", "h%2Fdevices%2Fd1%2Fmodules",
			Resource{Kind: ResourceModules, Plain: "h/devices/d1/modules", Host: "h", DeviceID: "d1"}},
		// IDs may hold '+', '%' and other characters IoT Hub allows; a plain sr keeps them.
		{"id-with-plus", "h%2Fdevices%2Fa%2Bb", Resource{Kind: ResourceDevice, Plain: "h/devices/a+b", Host: "h", DeviceID: "a+b"}},
		{"id-with-percent", "h%2Fdevices%2F100%25", Resource{Kind: ResourceDevice, Plain: "h/devices/100%", Host: "h", DeviceID: "100%"}},

		// Shape mistakes: the module path typo of MicrosoftDocs/azure-docs#101669, "/device/",
		// a port, a trailing slash, an empty segment, a path IoT Hub does not have.
		{"module-typo", "contoso.azure-devices.net/devices/MyDevice01/module/filter",
			Resource{Kind: ResourceUnknown, Plain: "contoso.azure-devices.net/devices/MyDevice01/module/filter", Host: "contoso.azure-devices.net",
				DeviceID: "MyDevice01", ModuleID: "filter", Typo: Typo{"module", "modules"}}},
		{"device-typo", "h%2Fdevice%2Fd1", Resource{Kind: ResourceUnknown, Plain: "h/device/d1", Host: "h", DeviceID: "d1", Typo: Typo{"device", "devices"}}},
		{"device-typo-prefix", "h/device", Resource{Kind: ResourceUnknown, Plain: "h/device", Host: "h", Typo: Typo{"device", "devices"}}},
		{"port", "h.azure-devices.net%3A8883%2Fdevices%2Fd1",
			Resource{Kind: ResourceDevice, Plain: "h.azure-devices.net:8883/devices/d1", Host: "h.azure-devices.net", Port: "8883", DeviceID: "d1"}},
		{"ipv6-port", "[::1]:8883/devices/d1", Resource{Kind: ResourceDevice, Plain: "[::1]:8883/devices/d1", Host: "[::1]", Port: "8883", DeviceID: "d1"}},
		{"ipv6-no-port", "::1/devices/d1", Resource{Kind: ResourceDevice, Plain: "::1/devices/d1", Host: "::1", DeviceID: "d1"}},
		{"colon-without-port", "h:/devices/d1", Resource{Kind: ResourceDevice, Plain: "h:/devices/d1", Host: "h:", DeviceID: "d1"}},
		{"trailing-slash-device", "h%2Fdevices%2Fd1%2F",
			Resource{Kind: ResourceDevice, Plain: "h/devices/d1/", Host: "h", DeviceID: "d1", TrailingSlash: true}},
		{"trailing-slash-devices", "h/devices/", Resource{Kind: ResourceDevices, Plain: "h/devices/", Host: "h", TrailingSlash: true}},
		{"trailing-slash-hub", "h/", Resource{Kind: ResourceHub, Plain: "h/", Host: "h", TrailingSlash: true}},
		{"two-trailing-slashes", "h/devices//", Resource{Kind: ResourceUnknown, Plain: "h/devices//", Host: "h", TrailingSlash: true}},
		{"empty-module-id", "h/devices/d/modules//x", Resource{Kind: ResourceUnknown, Plain: "h/devices/d/modules//x", Host: "h", DeviceID: "d"}},
		{"too-long", "h/devices/d/modules/m/x", Resource{Kind: ResourceUnknown, Plain: "h/devices/d/modules/m/x", Host: "h", DeviceID: "d", ModuleID: "m"}},
		{"other-path", "h/things/x", Resource{Kind: ResourceUnknown, Plain: "h/things/x", Host: "h"}},
		{"empty", "", Resource{Kind: ResourceUnknown}},
		{"no-host", "%2Fdevices%2Fd1", Resource{Kind: ResourceUnknown, Plain: "/devices/d1"}},
		{"dps-without-id", "0ne0/registrations/", Resource{Kind: ResourceUnknown, Plain: "0ne0/registrations/", Host: "0ne0", TrailingSlash: true}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseResource(tt.sr)
			if err != nil {
				t.Fatalf("ParseResource(%q) = %v", tt.sr, err)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("ParseResource(%q) (-want +got):\n%s", tt.sr, diff)
			}
		})
	}
}

func TestParseResourceErrors(t *testing.T) {
	for _, sr := range []string{"h%2Fdevices%2", "h%zz", "%"} {
		_, err := ParseResource(sr)
		var pe *ParseError
		if !errors.Is(err, ErrMalformed) || !errors.As(err, &pe) || pe.Field != "sr" {
			t.Errorf("ParseResource(%q) = %v, want a *ParseError for field sr wrapping ErrMalformed", sr, err)
		}
	}
}

// TestParsePlainResourceTakesPercentLiterally: a plain resource is not decoded again.
func TestParsePlainResourceTakesPercentLiterally(t *testing.T) {
	got := ParsePlainResource("h/devices/a%2Fb")
	if got.Kind != ResourceDevice || got.DeviceID != "a%2Fb" {
		t.Errorf("ParsePlainResource(%q) = %+v, want device %q", "h/devices/a%2Fb", got, "a%2Fb")
	}
}

func TestResourceAuthority(t *testing.T) {
	for plain, want := range map[string]string{
		"h.azure-devices.net/devices/d": "h.azure-devices.net",
		"h:8883/devices/d":              "h:8883",
		"0ne0/registrations/r":          "0ne0",
		"https://ns.servicebus.net/x":   "ns.servicebus.net",
		"":                              "",
	} {
		if got := ParsePlainResource(plain).Authority(); got != want {
			t.Errorf("ParsePlainResource(%q).Authority() = %q, want %q", plain, got, want)
		}
	}
}

// rebuild writes a resource back from its parts with the exported builders; ok is false
// for the kinds the parts do not fully describe (unknown, Event Hubs/Service Bus).
func rebuild(r Resource) (string, bool) {
	var s string
	switch r.Kind {
	case ResourceHub:
		s = HubResource(r.Authority())
	case ResourceDevices:
		s = HubResource(r.Authority()) + "/devices"
	case ResourceDevice:
		s = DeviceResource(r.Authority(), r.DeviceID)
	case ResourceModules:
		s = DeviceResource(r.Authority(), r.DeviceID) + "/modules"
	case ResourceModule:
		s = ModuleResource(r.Authority(), r.DeviceID, r.ModuleID)
	case ResourceDPS:
		s = DPSResource(r.IDScope, r.RegistrationID)
	default:
		return "", false
	}
	if r.TrailingSlash {
		s += "/"
	}
	return s, true
}

// FuzzParseResource: ParseResource rejects cleanly (a *ParseError on sr) or its parts
// describe the resource: built back from them with DeviceResource & co. it is the same
// resource, which parses to the same parts, also when encoded the SDK way.
func FuzzParseResource(f *testing.F) {
	for _, s := range []string{
		"contoso.azure-devices.net%2Fdevices%2FMyDevice01",
		"h%2fdevices%2fd%2fmodules%2fm",
		"h/devices/d/modules",
		"h:8883/devices/d/",
		"[::1]:8883",
		"0ne00000A0A%2fregistrations%2fsn-42",
		"https%3A%2F%2Fns.servicebus.windows.net%2Feh",
		"h/device/d/module/m",
		"h/devices//",
		"%zz",
	} {
		f.Add(s)
	}
	kinds := map[ResourceKind]bool{ResourceUnknown: true, ResourceHub: true, ResourceDevices: true, ResourceDevice: true,
		ResourceModules: true, ResourceModule: true, ResourceDPS: true, ResourceServiceBus: true}
	f.Fuzz(func(t *testing.T, sr string) {
		r, err := ParseResource(sr)
		if err != nil {
			var pe *ParseError
			if !errors.As(err, &pe) || pe.Field != "sr" || !errors.Is(err, ErrMalformed) {
				t.Fatalf("ParseResource(%q) = %v, want a *ParseError on sr", sr, err)
			}
			return
		}
		if plain, _ := url.PathUnescape(sr); r.Plain != plain {
			t.Fatalf("ParseResource(%q).Plain = %q, want the decoded sr %q", sr, r.Plain, plain)
		}
		if !kinds[r.Kind] {
			t.Fatalf("ParseResource(%q).Kind = %q, not a known kind", sr, r.Kind)
		}
		if r.Typo != (Typo{}) && r.Kind != ResourceUnknown {
			t.Fatalf("ParseResource(%q) = %+v: a typo must leave the kind unknown", sr, r)
		}
		if again := ParsePlainResource(r.Plain); !cmp.Equal(again, r) {
			t.Fatalf("ParsePlainResource(%q) = %+v, want %+v", r.Plain, again, r)
		}
		built, ok := rebuild(r)
		if !ok {
			return
		}
		if built != r.Plain {
			t.Fatalf("ParseResource(%q) = %+v; built back from its parts: %q, want %q", sr, r, built, r.Plain)
		}
		if strings.Contains(built, " ") {
			return // EncodeResource writes a space as '+', which decodes as '+' (as on the hub)
		}
		wire := EncodeResource(built)
		if again, err := ParseResource(wire); err != nil || !cmp.Equal(again, r) {
			t.Fatalf("ParseResource(EncodeResource(%q)) = %+v, %v; want %+v", built, again, err, r)
		}
	})
}
