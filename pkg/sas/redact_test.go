package sas

import (
	"net/url"
	"strings"
	"testing"
	"time"
)

func TestRedact(t *testing.T) {
	tok := Sign(testDevWire, "", testKey, testExpiry)
	sig := tok.Signature
	once := url.QueryEscape(tok.String())
	twice := url.QueryEscape(once)
	tests := []struct {
		name, in string
		want     string // "" = only check that no secret is left
	}{
		{"token", tok.String(), "SharedAccessSignature sr=contoso.azure-devices.net/devices/dev1&sig=<redacted>&se=1893456000"},
		{"token-encoded-once", once, "SharedAccessSignature+sr=contoso.azure-devices.net/devices/dev1&sig=<redacted>&se=1893456000"},
		{"token-encoded-twice", twice, "SharedAccessSignature+sr=contoso.azure-devices.net/devices/dev1&sig=<redacted>&se=1893456000"},
		{"token-encoded-five-times", url.QueryEscape(url.QueryEscape(url.QueryEscape(twice))), ""},
		{"sig-name-percent-encoded", "sig%3D" + url.QueryEscape(sig), "sig=<redacted>"},
		{"sig-name-upper-case", "SIG=" + sig + "&se=1", "SIG=<redacted>&se=1"},
		{"connection-string", "HostName=h;DeviceId=d;SharedAccessKey=AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=", "HostName=h;DeviceId=d;SharedAccessKey=<redacted>"},
		{"json-key", `{"primaryKey":"AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=","x":1}`, `{"primaryKey":"<redacted>","x":1}`},
		{"bare-signature", "client " + sig + " here", "client <redacted> here"},
		{"bare-signature-url-safe-unpadded", "dpCx63CkFH4MIH-L-fb5N6i6du-8r74HUI3-7Gfg1Wc", "<redacted>"},
		{"bare-key-unpadded-43", "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8", "<redacted>"},
		// Not secrets: left exactly as they are.
		{"device-id", "MyDevice01", "MyDevice01"},
		{"long-device-id", "ThermostatBuilding42Floor3Room7", "ThermostatBuilding42Floor3Room7"},
		{"resource-path", "contoso.azure-devices.net/devices/MyDevice01/modules/sensorModule42", "contoso.azure-devices.net/devices/MyDevice01/modules/sensorModule42"},
		{"encoded-resource", "localhost%2Fdevices%2Fdev1", "localhost%2Fdevices%2Fdev1"},
		{"user-name", "contoso.azure-devices.net/dev1/?api-version=2021-04-12&DeviceClientType=iothubclient%2f1.9.0", "contoso.azure-devices.net/dev1/?api-version=2021-04-12&DeviceClientType=iothubclient%2f1.9.0"},
		{"diagnosis-detail", `sig is not the HMAC-SHA256 of the token's sr and se under the key for "localhost%2Fdevices%2Fk"`, `sig is not the HMAC-SHA256 of the token's sr and se under the key for "localhost%2Fdevices%2Fk"`},
		{"guid", "3f2504e0-4f89-11d3-9a0c-0305e82c3301", "3f2504e0-4f89-11d3-9a0c-0305e82c3301"},
		{"key-word-alone", "the key was regenerated", "the key was regenerated"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := Redact(tt.in)
			if tt.want != "" && got != tt.want {
				t.Errorf("Redact(%q) = %q, want %q", tt.in, got, tt.want)
			}
			if leak := leakedSecret(got, sig, "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8"); leak != "" {
				t.Errorf("Redact(%q) = %q, still holds %q", tt.in, got, leak)
			}
		})
	}
}

// leakedSecret returns the form of a secret (plain or percent-encoded up to 6
// times, standard or URL-safe base64) found in s, or "".
func leakedSecret(s string, secrets ...string) string {
	for _, sec := range secrets {
		forms := []string{sec, strings.TrimRight(sec, "="), strings.NewReplacer("+", "-", "/", "_").Replace(strings.TrimRight(sec, "="))}
		for _, f := range forms {
			e := f
			for i := 0; i < 7; i++ {
				if len(e) >= 16 && strings.Contains(s, e) {
					return e
				}
				e = url.QueryEscape(e)
			}
		}
	}
	return ""
}

// FuzzRedact embeds a token, percent-encoded 0 to 5 times, between arbitrary
// text: no encoding of its signature may survive Redact, and Redact never
// panics on any input.
func FuzzRedact(f *testing.F) {
	f.Add("client ", " trailer", byte(1), uint8(0), false)
	f.Add("", "", byte(2), uint8(2), true)
	f.Add("%", "%2", byte(3), uint8(1), false)
	f.Add("sig=", "&sig=", byte(4), uint8(3), true)
	f.Fuzz(func(t *testing.T, prefix, suffix string, seed byte, depth uint8, path bool) {
		key := make([]byte, 32)
		for i := range key {
			key[i] = seed + byte(i)*31
		}
		tok := Sign(testDevWire, "", key, time.Unix(1893456000, 0)).String()
		enc := tok
		for i := 0; i < int(depth%6); i++ {
			if path {
				enc = url.PathEscape(enc)
			} else {
				enc = url.QueryEscape(enc)
			}
		}
		s := prefix + enc + suffix
		got := Redact(s)
		sig := Sign(testDevWire, "", key, time.Unix(1893456000, 0)).Signature
		if leak := leakedSecret(got, sig); leak != "" && !strings.Contains(prefix+suffix, leak) {
			t.Fatalf("Redact(%q) = %q, still holds %q", s, got, leak)
		}
		_ = Redact(prefix)
	})
}
