package sas

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

const (
	csKeyB64 = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8="
	csSAS    = "SharedAccessSignature sr=h.azure-devices.net%2Fdevices%2Fd1&sig=abc%3D&se=1893456000"
)

func TestParseConnectionString(t *testing.T) {
	tests := []struct {
		name  string
		in    string
		want  ConnectionString
		kind  Kind
		res   string
		canon string // "" = same as in
	}{
		{
			name: "device",
			in:   "HostName=h.azure-devices.net;DeviceId=d1;SharedAccessKey=" + csKeyB64,
			want: ConnectionString{HostName: "h.azure-devices.net", DeviceID: "d1", SharedAccessKey: csKeyB64},
			kind: KindDevice, res: "h.azure-devices.net/devices/d1",
		},
		{
			name: "module",
			in:   "HostName=h.azure-devices.net;DeviceId=d1;ModuleId=m1;SharedAccessKey=" + csKeyB64,
			want: ConnectionString{HostName: "h.azure-devices.net", DeviceID: "d1", ModuleID: "m1", SharedAccessKey: csKeyB64},
			kind: KindModule, res: "h.azure-devices.net/devices/d1/modules/m1",
		},
		{
			name: "service-policy",
			in:   "HostName=h.azure-devices.net;SharedAccessKeyName=iothubowner;SharedAccessKey=" + csKeyB64,
			want: ConnectionString{HostName: "h.azure-devices.net", SharedAccessKeyName: "iothubowner", SharedAccessKey: csKeyB64},
			kind: KindPolicy, res: "h.azure-devices.net",
		},
		{
			name: "device-via-policy-key",
			in:   "HostName=h.azure-devices.net;DeviceId=d1;SharedAccessKeyName=device;SharedAccessKey=" + csKeyB64,
			want: ConnectionString{HostName: "h.azure-devices.net", DeviceID: "d1", SharedAccessKeyName: "device", SharedAccessKey: csKeyB64},
			kind: KindDevice, res: "h.azure-devices.net/devices/d1",
		},
		{
			name: "edge-child-gateway",
			in:   "HostName=h.azure-devices.net;DeviceId=d1;SharedAccessKey=" + csKeyB64 + ";GatewayHostName=edge.local",
			want: ConnectionString{HostName: "h.azure-devices.net", DeviceID: "d1", SharedAccessKey: csKeyB64, GatewayHostName: "edge.local"},
			kind: KindDevice, res: "h.azure-devices.net/devices/d1",
		},
		{
			name: "embedded-token",
			in:   "HostName=h.azure-devices.net;DeviceId=d1;SharedAccessSignature=" + csSAS,
			want: ConnectionString{HostName: "h.azure-devices.net", DeviceID: "d1", SharedAccessSignature: csSAS},
			kind: KindDevice, res: "h.azure-devices.net/devices/d1",
		},
		{
			name: "keys-any-case-any-order-trailing-semicolon",
			in:   "sharedaccesskey=" + csKeyB64 + ";DEVICEID=d1;hostname=localhost:8883;",
			want: ConnectionString{HostName: "localhost:8883", DeviceID: "d1", SharedAccessKey: csKeyB64},
			kind: KindDevice, res: "localhost:8883/devices/d1",
			canon: "HostName=localhost:8883;DeviceId=d1;SharedAccessKey=" + csKeyB64,
		},
		{
			name: "event-hubs",
			in:   "Endpoint=sb://ns.servicebus.windows.net/;SharedAccessKeyName=RootManageSharedAccessKey;SharedAccessKey=not/base64+needed;EntityPath=hub1",
			want: ConnectionString{Endpoint: "sb://ns.servicebus.windows.net/", SharedAccessKeyName: "RootManageSharedAccessKey",
				SharedAccessKey: "not/base64+needed", EntityPath: "hub1", Dialect: DialectServiceBus},
			kind: KindServiceBus, res: "https://ns.servicebus.windows.net/hub1",
		},
		{
			name: "service-bus-namespace",
			in:   "Endpoint=sb://ns.servicebus.windows.net/;SharedAccessKeyName=p;SharedAccessKey=k",
			want: ConnectionString{Endpoint: "sb://ns.servicebus.windows.net/", SharedAccessKeyName: "p", SharedAccessKey: "k", Dialect: DialectServiceBus},
			kind: KindServiceBus, res: "https://ns.servicebus.windows.net/",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseConnectionString(tt.in)
			if err != nil {
				t.Fatalf("ParseConnectionString(%q) = %v, want nil error", tt.in, err)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Fatalf("ParseConnectionString(%q) mismatch (-want +got):\n%s", tt.in, diff)
			}
			if got.Kind() != tt.kind || got.Resource() != tt.res {
				t.Errorf("Kind(), Resource() = %v, %q, want %v, %q", got.Kind(), got.Resource(), tt.kind, tt.res)
			}
			canon := tt.canon
			if canon == "" {
				canon = tt.in
			}
			if s := got.String(); s != canon {
				t.Errorf("String() = %q, want %q", s, canon)
			}
			red := got.Redacted()
			for _, secret := range []string{got.SharedAccessKey, got.SharedAccessSignature} {
				if secret != "" && strings.Contains(red, secret) {
					t.Errorf("Redacted() = %q contains a secret", red)
				}
			}
		})
	}
}

func TestParseConnectionStringErrors(t *testing.T) {
	k := ";SharedAccessKey=" + csKeyB64
	tests := []struct {
		name, in, want string
	}{
		{"empty", "  ", "empty"},
		{"double-quoted", `"HostName=h;DeviceId=d` + k + `"`, `the connection string is wrapped in quotes (" ... "): remove them`},
		{"single-quoted", `'HostName=h;DeviceId=d` + k + `'`, `the connection string is wrapped in quotes (' ... '): remove them`},
		{"smart-quoted", "\u201cHostName=h;DeviceId=d" + k + "\u201d", "wrapped in quotes (\u201c ... \u201d)"},
		{"comma-separated", "HostName=h,DeviceId=d,SharedAccessKey=" + csKeyB64, "the segments are separated by ',': a connection string separates Key=Value pairs with ';'"},
		{"comma-in-one-segment", "HostName=h;DeviceId=d,SharedAccessKey=" + csKeyB64, "separated by ','"},
		{"key-too-short", "HostName=h;DeviceId=d;SharedAccessKey=AAECAwQF", "SharedAccessKey: 6 bytes; IoT Hub and DPS keys are 16 to 64 bytes"},
		{"key-too-long", "HostName=h;DeviceId=d;SharedAccessKey=" + strings.Repeat("AAAA", 22), "SharedAccessKey: 66 bytes; IoT Hub and DPS keys are 16 to 64 bytes"},
		{"no-equals", "HostName=h;DeviceId", `segment "DeviceId" has no '='`},
		{"unknown-key", "HostName=h;DeviceId=d;Foo=bar" + k, `unknown key "Foo"`},
		{"did-you-mean", "HostName=h;Device=d" + k, `unknown key "Device" (did you mean DeviceId?)`},
		{"did-you-mean-key", "HostName=h;DeviceId=d;PrimaryKey=" + csKeyB64, "did you mean SharedAccessKey?"},
		{"pasted-key-not-echoed", "HostName=h;DeviceId=d;AAECAwQFBgcICQoLDA0ODw==", "unknown key (22 bytes, not shown)"},
		{"x509-and-key", "HostName=h;DeviceId=d;x509=true" + k, "x509=true cannot be combined with SharedAccessKey"},
		{"x509-no-device", "HostName=h;x509=true", "x509=true requires DeviceId"},
		{"x509-bad-value", "HostName=h;DeviceId=d;x509=yes", "x509=\"yes\": want x509=true"},
		{"x509-false-no-key", "HostName=h;DeviceId=d;x509=false", "SharedAccessKey or SharedAccessSignature is required (or x509=true"},
		{"repository-id", "HostName=h;DeviceId=d;RepositoryId=r" + k, "RepositoryId (a retired Digital Twins preview key)"},
		{"emulator", "Endpoint=sb://localhost;SharedAccessKeyName=p;SharedAccessKey=k;UseDevelopmentEmulator=true", "UseDevelopmentEmulator"},
		{"duplicate", "HostName=h;DeviceId=d;deviceid=e" + k, "DeviceId is set twice"},
		{"empty-value", "HostName=h;DeviceId=" + k, "DeviceId is empty"},
		{"no-host", "DeviceId=d" + k, "HostName is missing"},
		{"module-without-device", "HostName=h;ModuleId=m" + k, "ModuleId requires DeviceId"},
		{"key-and-token", "HostName=h;DeviceId=d" + k + ";SharedAccessSignature=" + csSAS, "SharedAccessKey and SharedAccessSignature cannot both be set"},
		{"no-credential", "HostName=h;DeviceId=d", "SharedAccessKey or SharedAccessSignature is required"},
		{"neither-device-nor-policy", "HostName=h" + k, "DeviceId or SharedAccessKeyName is required"},
		{"module-and-policy", "HostName=h;DeviceId=d;ModuleId=m;SharedAccessKeyName=p" + k, "ModuleId and SharedAccessKeyName cannot both be set"},
		{"policy-with-token", "HostName=h;DeviceId=d;SharedAccessKeyName=p;SharedAccessSignature=" + csSAS, "SharedAccessKeyName goes with SharedAccessKey"},
		{"gateway-for-service", "HostName=h;SharedAccessKeyName=p;GatewayHostName=g" + k, "GatewayHostName requires DeviceId"},
		{"bad-key", "HostName=h;DeviceId=d;SharedAccessKey=abc-def", "SharedAccessKey: not standard base64"},
		{"bad-token", "HostName=h;DeviceId=d;SharedAccessSignature=SharedAccessSignature sr=h", "SharedAccessSignature: malformed token"},
		{"sb-with-device", "Endpoint=sb://ns.servicebus.windows.net/;DeviceId=d;SharedAccessKeyName=p;SharedAccessKey=k", "DeviceId cannot be used with Endpoint"},
		{"sb-with-hostname", "Endpoint=sb://ns/;HostName=h;SharedAccessKeyName=p;SharedAccessKey=k", "HostName cannot be used with Endpoint"},
		{"sb-no-endpoint", "EntityPath=e;SharedAccessKeyName=p;SharedAccessKey=k", "Endpoint is missing"},
		{"sb-no-keyname", "Endpoint=sb://ns.servicebus.windows.net/;SharedAccessKey=k", "SharedAccessKey requires SharedAccessKeyName"},
		{"sb-bad-endpoint", "Endpoint=https://ns.servicebus.windows.net/;SharedAccessKeyName=p;SharedAccessKey=k", "Endpoint must look like sb://"},
		{"sb-endpoint-path", "Endpoint=sb://ns.servicebus.windows.net/x;SharedAccessKeyName=p;SharedAccessKey=k", "Endpoint must look like sb://"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ParseConnectionString(tt.in)
			if !errors.Is(err, ErrConnectionString) || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("ParseConnectionString(%q) = %v, want ErrConnectionString containing %q", tt.in, err, tt.want)
			}
			if strings.Contains(err.Error(), csKeyB64) || strings.Contains(err.Error(), "abc-def") || strings.Contains(err.Error(), "AAECAwQF") || strings.Contains(err.Error(), "sig=") {
				t.Errorf("ParseConnectionString(%q) error %q contains a secret", tt.in, err)
			}
		})
	}
}

func TestConnectionStringKeyAndToken(t *testing.T) {
	exp := time.Unix(1893456000, 0)
	dev, err := ParseConnectionString("HostName=contoso.azure-devices.net;DeviceId=MyDevice01;SharedAccessKey=" + csKeyB64)
	if err != nil {
		t.Fatal(err)
	}
	tok, err := dev.Token(exp)
	if err != nil {
		t.Fatal(err)
	}
	// docs/iothub-behavior.md §2.6.1: same key, resource and expiry.
	want := Token{Resource: "contoso.azure-devices.net%2Fdevices%2FMyDevice01", Signature: "dpCx63CkFH4MIH+L+fb5N6i6du+8r74HUI3+7Gfg1Wc=", Expiry: 1893456000}
	if diff := cmp.Diff(want, tok); diff != "" {
		t.Errorf("Token() mismatch (-want +got):\n%s", diff)
	}

	// Notification Hubs / Service Bus: raw key bytes (testdata/tokens.txt notification-hubs-raw-key).
	sb := ConnectionString{Endpoint: "sb://ns.servicebus.windows.net/", SharedAccessKeyName: "keyName", SharedAccessKey: "keyVal", Dialect: DialectServiceBus}
	key, err := sb.Key()
	if err != nil || string(key) != "keyVal" {
		t.Errorf("Key() = %q, %v, want the raw key text", key, err)
	}
	sbTok, err := sb.Token(exp)
	if err != nil || sbTok.KeyName != "keyName" || sbTok.Resource != "https%3A%2F%2Fns.servicebus.windows.net%2F" {
		t.Errorf("Token() = %+v, %v", sbTok, err)
	}

	withSAS, err := ParseConnectionString("HostName=h.azure-devices.net;DeviceId=d1;SharedAccessSignature=" + csSAS)
	if err != nil {
		t.Fatal(err)
	}
	if got, err := withSAS.Token(exp); err != nil || got.Resource != "h.azure-devices.net%2Fdevices%2Fd1" {
		t.Errorf("Token() with embedded SAS = %+v, %v", got, err)
	}
	if _, err := withSAS.Key(); !errors.Is(err, ErrKey) {
		t.Errorf("Key() without SharedAccessKey = %v, want ErrKey", err)
	}
	if got := withSAS.Redacted(); got != "HostName=h.azure-devices.net;DeviceId=d1;SharedAccessSignature=<redacted>" {
		t.Errorf("Redacted() = %q", got)
	}
}

func FuzzParseConnectionString(f *testing.F) {
	for _, s := range []string{
		"HostName=h.azure-devices.net;DeviceId=d1;SharedAccessKey=" + csKeyB64,
		"HostName=h;DeviceId=d;ModuleId=m;SharedAccessKey=" + csKeyB64 + ";GatewayHostName=g",
		"HostName=h;SharedAccessKeyName=iothubowner;SharedAccessKey=" + csKeyB64,
		"HostName=h;DeviceId=d1;SharedAccessSignature=" + csSAS,
		"Endpoint=sb://ns.servicebus.windows.net/;SharedAccessKeyName=p;SharedAccessKey=k;EntityPath=e",
		"hostname=h;deviceid=d;sharedaccesskey=" + csKeyB64 + ";;",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		c, err := ParseConnectionString(s)
		if err != nil {
			if !errors.Is(err, ErrConnectionString) {
				t.Fatalf("ParseConnectionString(%q) = %v, want an error wrapping ErrConnectionString", s, err)
			}
			return
		}
		again, err := ParseConnectionString(c.String())
		if err != nil {
			t.Fatalf("ParseConnectionString(%q) (from %q) = %v", c.String(), s, err)
		}
		if again != c {
			t.Fatalf("round trip of %q: got %+v, want %+v", s, again, c)
		}
		_ = c.Redacted()
		_ = c.Resource()
	})
}

// TestParseX509ConnectionString: the form the Azure SDKs use for certificate identities
// (azure-iot-device's ConnectionString.createWithX509Certificate writes
// "HostName=...;DeviceId=...;x509=true").
func TestParseX509ConnectionString(t *testing.T) {
	for _, in := range []string{"HostName=h;DeviceId=d;x509=true", "hostname=h;deviceid=d;X509=True"} {
		c, err := ParseConnectionString(in)
		if err != nil || !c.X509 || c.Kind() != KindDevice || c.DeviceID != "d" {
			t.Errorf("ParseConnectionString(%q) = %+v, %v", in, c, err)
			continue
		}
		if got := c.String(); got != "HostName=h;DeviceId=d;x509=true" {
			t.Errorf("String() = %q", got)
		}
	}
	c, err := ParseConnectionString("HostName=h;DeviceId=d;ModuleId=m;x509=true")
	if err != nil || c.Kind() != KindModule || !c.X509 {
		t.Errorf("module: %+v, %v", c, err)
	}
}
