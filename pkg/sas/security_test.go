package sas

import (
	"bytes"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"testing"
)

// TestVerifyExactAudience: with WithExactAudience (IoT Edge hub's rule) a token
// signed with a device's or module's own key must name exactly that identity;
// with WithAudience (IoT Hub's) it may cover it by prefix, as a policy token.
func TestVerifyExactAudience(t *testing.T) {
	dev2 := DeviceResource(testHost, "dev2")
	mod := ModuleResource(testHost, "dev2", "m1")
	sign := func(plain, skn string) Token { return Sign(EncodeResource(plain), skn, testKey, testExpiry) }
	tests := []struct {
		name     string
		tok      Token
		audience string
		exact    bool
		reason   Reason // "" = accepted
		detail   string
	}{
		{"device-exact", sign(dev2, ""), dev2, true, "", ""},
		{"device-exact-host-case", sign(DeviceResource(strings.ToUpper(testHost), "dev2"), ""), dev2, true, "", ""},
		{"device-exact-unencoded-sr", Sign(dev2, "", testKey, testExpiry), dev2, true, "", ""},
		{"module-exact", sign(mod, ""), mod, true, "", ""},
		{"dps-exact", sign(DPSResource("0ne0001", "reg1"), "registration"), DPSResource("0NE0001", "reg1"), true, "", ""},
		{"hub-scope-device-key", sign(testHost, ""), dev2, true, ReasonScopeMismatch,
			"a token signed with a device key must be scoped exactly to " + dev2 + ", not " + testHost +
				" (IoT Edge hub's rule: only shared access policy tokens, with skn, may cover several devices)"},
		{"hub-slash-scope-device-key", sign(testHost+"/", ""), dev2, true, ReasonScopeMismatch, "must be scoped exactly to " + dev2 + ", not " + testHost + "/ "},
		{"devices-scope-device-key", sign(testHost+"/devices", ""), dev2, true, ReasonScopeMismatch, "not " + testHost + "/devices "},
		{"devices-slash-scope-device-key", sign(testHost+"/devices/", ""), dev2, true, ReasonScopeMismatch, "must be scoped exactly"},
		{"device-trailing-slash", sign(dev2+"/", ""), dev2, true, ReasonScopeMismatch, "must be scoped exactly to " + dev2 + ", not " + dev2 + "/ "},
		{"device-scope-module-key", sign(DeviceResource(testHost, "dev2"), ""), mod, true, ReasonScopeMismatch,
			"a token signed with a module key must be scoped exactly to " + mod},
		{"device-id-case", sign(DeviceResource(testHost, "DEV2"), ""), dev2, true, ReasonScopeMismatch, "token is for devices/DEV2 but the connection is for devices/dev2"},
		{"other-device", sign(DeviceResource(testHost, "dev20"), ""), dev2, true, ReasonScopeMismatch, "token is for devices/dev20"},
		{"other-host", sign(DeviceResource("fabrikam.azure-devices.net", "dev2"), ""), dev2, true, ReasonHostMismatch, "host fabrikam.azure-devices.net"},
		{"dps-registrations-prefix", sign("0ne0001/registrations", "registration"), DPSResource("0ne0001", "reg1"), true, ReasonScopeMismatch,
			"a token signed with a device's own key must be scoped exactly"},
		// IoT Hub's prefix rule (WithAudience) for a device or module key.
		{"hub-scope-device-key-prefix-rule", sign(testHost, ""), dev2, false, "", ""},
		{"devices-scope-module-key-prefix-rule", sign(testHost+"/devices", ""), mod, false, "", ""},
		{"other-device-prefix-rule", sign(DeviceResource(testHost, "dev20"), ""), dev2, false, ReasonScopeMismatch, "token is for devices/dev20"},
		// The prefix rule for policy tokens.
		{"policy-hub-scope", sign(testHost, "device"), dev2, false, "", ""},
		{"policy-devices-scope", sign(testHost+"/devices", "iothubowner"), mod, false, "", ""},
		{"policy-other-device", sign(DeviceResource(testHost, "dev1"), "device"), dev2, false, ReasonScopeMismatch, "token is for devices/dev1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			opt := WithAudience(tt.audience)
			if tt.exact {
				opt = WithExactAudience(tt.audience)
			}
			err := tt.tok.Verify(testKey, testNow, opt)
			if tt.reason == "" {
				if err != nil {
					t.Fatalf("Verify() = %v, want nil", err)
				}
				return
			}
			var r *Rejection
			if !errors.As(err, &r) || r.Reason != tt.reason || !errors.Is(err, tt.reason.Err()) || !strings.Contains(r.Detail, tt.detail) {
				t.Fatalf("Verify() = %v, want reason %s with detail containing %q", err, tt.reason, tt.detail)
			}
			caseHint := strings.Contains(strings.Join(r.Hints, "\n"), "differ only in case")
			if want := strings.HasSuffix(tt.name, "-id-case"); caseHint != want {
				t.Errorf("hints %q: a case hint = %v, want %v (only when the IDs differ in case)", r.Hints, caseHint, want)
			}
			checkNoSecrets(t, r, tt.tok, testKey)
		})
	}
}

// TestVerifyExactAudienceOptions: the last audience option wins, and
// WithCaseInsensitiveIDs applies to the exact comparison.
func TestVerifyExactAudienceOptions(t *testing.T) {
	dev2 := DeviceResource(testHost, "dev2")
	hub := Sign(testHost, "", testKey, testExpiry)
	if err := hub.Verify(testKey, testNow, WithExactAudience(dev2), WithAudience(dev2)); err != nil {
		t.Errorf("Verify(WithExactAudience, WithAudience) = %v, want nil (the last option wins)", err)
	}
	if err := hub.Verify(testKey, testNow, WithAudience(dev2), WithExactAudience(dev2)); !errors.Is(err, ErrScope) {
		t.Errorf("Verify(WithAudience, WithExactAudience) = %v, want ErrScope (the last option wins)", err)
	}
	upper := Sign(EncodeResource(DeviceResource(testHost, "DEV2")), "", testKey, testExpiry)
	if err := upper.Verify(testKey, testNow, WithExactAudience(dev2), WithCaseInsensitiveIDs()); err != nil {
		t.Errorf("Verify(WithExactAudience, WithCaseInsensitiveIDs) = %v, want nil", err)
	}
	wider := Sign(EncodeResource(testHost+"/DEVICES"), "", testKey, testExpiry)
	if err := wider.Verify(testKey, testNow, WithExactAudience(dev2), WithCaseInsensitiveIDs()); !errors.Is(err, ErrScope) {
		t.Errorf("Verify(sr=h/DEVICES, WithExactAudience, WithCaseInsensitiveIDs) = %v, want ErrScope", err)
	}
}

func TestSameResource(t *testing.T) {
	tests := []struct {
		a, b string
		fold bool
		want bool
	}{
		{"h/devices/d", "h/devices/d", false, true},
		{"H/devices/d", "h/devices/d", false, true},
		{"h/devices/D", "h/devices/d", false, false},
		{"h/devices/D", "h/devices/d", true, true},
		{"h/devices/d/", "h/devices/d", false, false},
		{"h/devices", "h/devices/d", false, false},
		{"h", "h/devices/d", false, false},
		{"h/", "h", false, false},
		{"h", "h", false, true},
		{"h/devices/d/modules/m", "h/devices/d", false, false},
	}
	for _, tt := range tests {
		if got := sameResource(tt.a, tt.b, tt.fold); got != tt.want {
			t.Errorf("sameResource(%q, %q, %v) = %v, want %v", tt.a, tt.b, tt.fold, got, tt.want)
		}
	}
}

// TestVerifyEmptyKey: an HMAC under an empty key is no secret; Verify must
// refuse to use one, as the primary or the secondary key.
func TestVerifyEmptyKey(t *testing.T) {
	tok := Sign(testDevWire, "", nil, testExpiry)
	for _, key := range [][]byte{nil, {}} {
		err := tok.Verify(key, testNow, WithExactAudience(testDevRes))
		if !errors.Is(err, ErrEmptyKey) || !errors.Is(err, ErrKey) {
			t.Errorf("Verify(key %#v) = %v, want ErrEmptyKey wrapping ErrKey", key, err)
		}
		if _, ok := errors.AsType[*Rejection](err); ok {
			t.Errorf("Verify(key %#v) = %v, want a configuration error, not a *Rejection", key, err)
		}
	}
	for _, sec := range [][]byte{nil, {}} {
		err := tok.Verify(testKey, testNow, WithSecondaryKey(sec))
		if !errors.Is(err, ErrSignature) {
			t.Errorf("Verify(WithSecondaryKey(%#v)) of a token signed with an empty key = %v, want ErrSignature", sec, err)
		}
		if r, ok := errors.AsType[*Rejection](err); ok && strings.Contains(r.Detail, "secondary") {
			t.Errorf("Verify(WithSecondaryKey(%#v)) detail %q mentions a secondary key; an empty one is no key", sec, r.Detail)
		}
	}
}

func TestValidateKeyLength(t *testing.T) {
	for _, n := range []int{0, 1, MinKeyLength - 1, MaxKeyLength + 1, 128} {
		err := ValidateKeyLength(make([]byte, n))
		if !errors.Is(err, ErrKey) || !strings.Contains(err.Error(), fmt.Sprintf("%d bytes", n)) {
			t.Errorf("ValidateKeyLength(%d bytes) = %v, want ErrKey giving the length", n, err)
		}
	}
	for _, n := range []int{MinKeyLength, 32, MaxKeyLength} {
		if err := ValidateKeyLength(make([]byte, n)); err != nil {
			t.Errorf("ValidateKeyLength(%d bytes) = %v, want nil", n, err)
		}
	}
	k, _ := NewKey(bytes.NewReader(make([]byte, 64)))
	if err := ValidateKeyLength(mustKey(k)); err != nil {
		t.Errorf("ValidateKeyLength(NewKey()) = %v, want nil", err)
	}
}

// TestDecodeKeyHidesCharacters: two keys differing only in the offending
// character give the same error, so the error carries no key material.
func TestDecodeKeyHidesCharacters(t *testing.T) {
	const good = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8="
	for _, pair := range [][2]byte{{'*', '#'}, {'-', '_'}, {0xc3, 0x01}, {'!', '~'}} {
		a := good[:16] + string(pair[0]) + good[17:]
		b := good[:16] + string(pair[1]) + good[17:]
		_, errA := DecodeKey(a)
		_, errB := DecodeKey(b)
		if errA == nil || errB == nil || errA.Error() != errB.Error() {
			t.Errorf("DecodeKey errors for %q and %q = %v and %v, want the same error", pair[0], pair[1], errA, errB)
			continue
		}
		if !strings.Contains(errA.Error(), "offset 16") {
			t.Errorf("DecodeKey(%q) = %v, want the offset 16", a, errA)
		}
		if strings.ContainsRune(errA.Error(), rune(pair[0])) && pair[0] != '-' && pair[0] != '_' {
			t.Errorf("DecodeKey(%q) = %v, echoes the character", a, errA)
		}
	}
}

func TestTokenRedacted(t *testing.T) {
	tok := Sign(testDevWire, "iothubowner", testKey, testExpiry)
	want := "SharedAccessSignature sr=" + testDevWire + "&sig=<redacted>&se=1893456000&skn=iothubowner"
	if got := tok.Redacted(); got != want {
		t.Errorf("Redacted() = %q, want %q", got, want)
	}
	if back, err := Parse(tok.String()); err != nil || back != tok {
		t.Errorf("Parse(String()) = %+v, %v, want %+v (String must stay the inverse of Parse)", back, err, tok)
	}
}

// TestLogValue: a Token or ConnectionString logged with slog, by value or
// pointer, as an attribute or an argument, never shows the signature or key.
func TestLogValue(t *testing.T) {
	tok := Sign(testDevWire, "device", testKey, testExpiry)
	cs, err := ParseConnectionString("HostName=" + testHost + ";DeviceId=dev1;SharedAccessKey=" + base64.StdEncoding.EncodeToString(testKey))
	if err != nil {
		t.Fatal(err)
	}
	csSAS, err := ParseConnectionString("HostName=" + testHost + ";DeviceId=dev1;SharedAccessSignature=" + Sign(testDevWire, "", testKey, testExpiry).String())
	if err != nil {
		t.Fatal(err)
	}
	secrets := []string{
		tok.Signature, strings.Split(strings.Split(tok.String(), "sig=")[1], "&")[0],
		base64.StdEncoding.EncodeToString(testKey), csSAS.SharedAccessSignature,
		Sign(testDevWire, "", testKey, testExpiry).Signature,
	}
	for _, newHandler := range []func(*bytes.Buffer) slog.Handler{
		func(b *bytes.Buffer) slog.Handler {
			return slog.NewTextHandler(b, &slog.HandlerOptions{Level: slog.LevelDebug})
		},
		func(b *bytes.Buffer) slog.Handler {
			return slog.NewJSONHandler(b, &slog.HandlerOptions{Level: slog.LevelDebug})
		},
	} {
		var buf bytes.Buffer
		log := slog.New(newHandler(&buf))
		log.Info("connect", "token", tok, "tokenPtr", &tok, "cs", cs, "csPtr", &cs, "csSAS", csSAS)
		log.Debug("connect", slog.Any("token", tok), slog.Any("cs", cs))
		out := buf.String()
		for _, s := range secrets {
			if strings.Contains(out, s) {
				t.Errorf("slog output %q contains a secret", out)
			}
		}
		for _, want := range []string{testDevWire, "2030-01-01T00:00:00Z", "skn", "<redacted>", "DeviceId=dev1"} {
			if !strings.Contains(out, want) {
				t.Errorf("slog output %q lacks %q", out, want)
			}
		}
	}
}

// TestVerifyWithoutDiagnosisIsCheap: WithoutDiagnosis computes no HMAC beyond
// the real checks (measured as allocations, which the diagnosis multiplies).
func TestVerifyWithoutDiagnosisIsCheap(t *testing.T) {
	tok := Sign(testDevWire, "", otherKey, testExpiry)
	suspects := WithSuspectKeys(NamedKey{"device dev2 primary key", testKey2}, NamedKey{"policy iothubowner", policyKey})
	valid := Sign(testDevWire, "", testKey, testExpiry)
	base := testing.AllocsPerRun(20, func() { _ = valid.Verify(testKey, testNow, WithSecondaryKey(testKey2)) })
	cheap := testing.AllocsPerRun(20, func() {
		_ = tok.Verify(testKey, testNow, WithSecondaryKey(testKey2), suspects, WithoutDiagnosis())
	})
	full := testing.AllocsPerRun(5, func() { _ = tok.Verify(testKey, testNow, WithSecondaryKey(testKey2), suspects) })
	// base: one HMAC; cheap: two HMACs and the Rejection. The diagnosis is
	// hundreds of HMACs.
	t.Logf("allocations: valid %v, rejected WithoutDiagnosis %v, rejected with diagnosis %v", base, cheap, full)
	if cheap > 4*base+20 || full < 10*cheap {
		t.Errorf("allocations: valid %v, rejected WithoutDiagnosis %v, rejected with diagnosis %v; want WithoutDiagnosis close to valid and far below the diagnosis", base, cheap, full)
	}
}
