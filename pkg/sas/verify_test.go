package sas

import (
	"encoding/base64"
	"errors"
	"net/url"
	"strings"
	"testing"
	"time"
)

var (
	testHost    = "contoso.azure-devices.net"
	testKey     = mustKey("AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=")
	testKey2    = mustKey("ICEiIyQlJicoKSorLC0uLzAxMjM0NTY3ODk6Ozw9Pj8=")
	otherKey    = mustKey("QEFCQ0RFRkdISUpLTE1OT1BRUlNUVVZXWFlaW1xdXl8=")
	policyKey   = mustKey("YGFiY2RlZmdoaWprbG1ub3BxcnN0dXZ3eHl6e3x9fn8=")
	testExpiry  = time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	testNow     = testExpiry.Add(-time.Hour)
	testDevRes  = DeviceResource(testHost, "dev1")
	testDevWire = EncodeResource(testDevRes)
)

func mustKey(s string) []byte {
	k, err := DecodeKey(s)
	if err != nil {
		panic(err)
	}
	return k
}

// forge returns a token whose sig is HMAC(key, msg) but whose fields are sr, se.
func forge(sr string, se int64, skn string, key []byte, msg string) Token {
	return Token{Resource: sr, Expiry: se, KeyName: skn, Signature: base64.StdEncoding.EncodeToString(mac(key, msg))}
}

func TestVerify(t *testing.T) {
	good := Sign(testDevWire, "", testKey, testExpiry)
	tests := []struct {
		name   string
		tok    Token
		key    []byte
		now    time.Time
		opts   []VerifyOption
		reason Reason // "" = accepted
		sent   error
		detail string // substring
	}{
		{name: "valid", tok: good, key: testKey, now: testNow},
		{name: "valid-with-audience", tok: good, key: testKey, now: testNow, opts: []VerifyOption{WithAudience(testDevRes)}},
		{name: "valid-module-under-device-token", tok: good, key: testKey, now: testNow,
			opts: []VerifyOption{WithAudience(ModuleResource(testHost, "dev1", "m1"))}},
		{name: "valid-host-case-insensitive", tok: good, key: testKey, now: testNow,
			opts: []VerifyOption{WithAudience(DeviceResource(strings.ToUpper(testHost), "dev1"))}},
		{name: "valid-secondary", tok: Sign(testDevWire, "", testKey2, testExpiry), key: testKey, now: testNow,
			opts: []VerifyOption{WithSecondaryKey(testKey2)}},
		{name: "valid-within-skew", tok: good, key: testKey, now: testExpiry.Add(5 * time.Minute)},
		{name: "expired-after-skew", tok: good, key: testKey, now: testExpiry.Add(5*time.Minute + time.Second),
			reason: ReasonExpired, sent: ErrExpired, detail: "token expired at 2030-01-01T00:00:00Z, 5m1s ago (skew allowance 5m0s)"},
		{name: "expired-zero-skew", tok: good, key: testKey, now: testExpiry.Add(time.Second), opts: []VerifyOption{WithSkew(0)},
			reason: ReasonExpired, sent: ErrExpired, detail: "1s ago (skew allowance 0s)"},
		{name: "wrong-key", tok: good, key: otherKey, now: testNow, reason: ReasonSignatureMismatch, sent: ErrSignature,
			detail: `under the key for "contoso.azure-devices.net%2Fdevices%2Fdev1"`},
		{name: "secondary-not-given", tok: Sign(testDevWire, "", testKey2, testExpiry), key: testKey, now: testNow,
			reason: ReasonSignatureMismatch, sent: ErrSignature},
		{name: "scope-other-device", tok: good, key: testKey, now: testNow, opts: []VerifyOption{WithAudience(DeviceResource(testHost, "dev10"))},
			reason: ReasonScopeMismatch, sent: ErrScope, detail: "token is for devices/dev1 but the connection is for devices/dev10"},
		{name: "scope-id-case", tok: good, key: testKey, now: testNow, opts: []VerifyOption{WithAudience(DeviceResource(testHost, "DEV1"))},
			reason: ReasonScopeMismatch, sent: ErrScope},
		{name: "scope-id-case-folded", tok: good, key: testKey, now: testNow,
			opts: []VerifyOption{WithAudience(DeviceResource(testHost, "DEV1")), WithCaseInsensitiveIDs()}},
		{name: "host-mismatch", tok: good, key: testKey, now: testNow, opts: []VerifyOption{WithAudience(DeviceResource("fabrikam.azure-devices.net", "dev1"))},
			reason: ReasonHostMismatch, sent: ErrHost, detail: "token is for host contoso.azure-devices.net but the connection is for host fabrikam.azure-devices.net"},
		{name: "sr-bad-escape", tok: Token{Resource: "h%zz", Signature: "x", Expiry: 1}, key: testKey, now: testNow,
			opts: []VerifyOption{WithAudience("h/devices/d")}, reason: ReasonMalformed, sent: ErrMalformed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.tok.Verify(tt.key, tt.now, tt.opts...)
			if tt.reason == "" {
				if err != nil {
					t.Fatalf("Verify() = %v, want nil", err)
				}
				return
			}
			var r *Rejection
			if !errors.As(err, &r) {
				t.Fatalf("Verify() = %v, want *Rejection", err)
			}
			if r.Reason != tt.reason || !errors.Is(err, tt.sent) || !strings.Contains(r.Detail, tt.detail) {
				t.Errorf("Verify() = %v (reason %s), want reason %s wrapping %v with detail containing %q", err, r.Reason, tt.reason, tt.sent, tt.detail)
			}
			if !strings.HasPrefix(err.Error(), "sas: "+string(tt.reason)+": ") {
				t.Errorf("Error() = %q, want prefix %q", err.Error(), "sas: "+string(tt.reason)+": ")
			}
		})
	}
}

// TestDiagnosis forges tokens with each known mistake and checks that the
// first hint names it.
func TestDiagnosis(t *testing.T) {
	se := testExpiry.Unix()
	sts := func(sr string) string { return stringToSign(sr, se) }
	plusSig := func() Token {
		// find an expiry whose signature contains '+', then send it unescaped
		for s := se; ; s++ {
			tok := Sign(testDevWire, "", testKey, time.Unix(s, 0))
			if strings.Contains(tok.Signature, "+") {
				tok.Signature = strings.ReplaceAll(tok.Signature, "+", " ")
				return tok
			}
		}
	}()
	lowerSr := strings.ToLower(testDevWire)
	tests := []struct {
		name string
		tok  Token
		key  []byte
		opts []VerifyOption
		hint string // substring of the first hint
	}{
		{"sr-lower-cased-after-signing", forge(testDevWire, se, "", testKey, sts(strings.ToLower(testDevWire))), testKey, nil, "lower-case escapes"},
		{"sr-upper-escapes-after-signing", forge(lowerSr, se, "", testKey, sts(testDevWire)), testKey, nil, "upper-case escapes"},
		{"sr-lowered-whole", forge(EncodeResource(DeviceResource(testHost, "MyDev")), se, "", testKey,
			sts(strings.ToLower(EncodeResource(DeviceResource(testHost, "MyDev"))))), testKey, nil, "lower-cased"},
		{"signed-plain-sent-encoded", forge(testDevWire, se, "", testKey, sts(testDevRes)), testKey, nil, "plain, unencoded resource"},
		{"signed-encoded-sent-plain", forge(testDevRes, se, "", testKey, sts(testDevWire)), testKey, nil, "url.QueryEscape form"},
		{"signed-double-encoded", forge(testDevWire, se, "", testKey, sts(EncodeResource(testDevWire))), testKey, nil, "double-encoded"},
		// sr sent with '+' for the space (url.QueryEscape, quote_plus), signed over %20.
		{"space-as-plus-vs-%20", forge(url.QueryEscape(testHost+"/devices/a b"), se, "", testKey,
			sts(EncodeResource(testHost+"/devices/a b"))), testKey, nil, "%20"},
		{"sig-plus-unescaped", plusSig, testKey, nil, "'+' in the base64 signature was not percent-encoded"},
		{"secondary-as-suspect", Sign(testDevWire, "", testKey2, testExpiry), testKey,
			[]VerifyOption{WithSuspectKeys(NamedKey{"device dev1 secondary key", testKey2})}, "signed with device dev1 secondary key"},
		{"raw-key-bytes", Sign(testDevWire, "", []byte(base64.StdEncoding.EncodeToString(testKey)), testExpiry), testKey, nil,
			"base64 text was used as the HMAC key"},
		{"service-bus-key-decoded", Sign("sb", "p", testKey, testExpiry), []byte(base64.StdEncoding.EncodeToString(testKey)), nil,
			"base64-decoded before signing"},
		{"se-in-milliseconds-when-signing", forge(testDevWire, se, "", testKey, stringToSign(testDevWire, se*1000)), testKey, nil, "milliseconds"},
		{"se-in-milliseconds-in-token", forge(testDevWire, se*1000, "", testKey, sts(testDevWire)), testKey, nil, "carries milliseconds"},
		{"se-off-by-one", forge(testDevWire, se, "", testKey, stringToSign(testDevWire, se-1)), testKey, nil, "compute se once"},
		{"policy-key-without-skn", Sign(testDevWire, "", policyKey, testExpiry), testKey,
			[]VerifyOption{WithSuspectKeys(NamedKey{"device dev2 primary key", otherKey}, NamedKey{"policy iothubowner", policyKey})},
			"policy iothubowner, not with this identity's key (a token signed with a policy key must carry skn=iothubowner)"},
		{"policy-primary-key-without-skn", Sign(testDevWire, "", policyKey, testExpiry), testKey,
			[]VerifyOption{WithSuspectKeys(NamedKey{"dev", otherKey}, NamedKey{"Policy registryReadWrite primary key", policyKey})},
			"must carry skn=registryReadWrite)"},
		{"another-device-key", Sign(testDevWire, "", otherKey, testExpiry), testKey,
			[]VerifyOption{WithSuspectKeys(NamedKey{"device dev2 primary key", otherKey})}, "signed with device dev2 primary key"},
		{"suspect-and-encoding", forge(testDevWire, se, "", otherKey, sts(testDevRes)), testKey,
			[]VerifyOption{WithSuspectKeys(NamedKey{"device dev2 primary key", otherKey})}, "device dev2 primary key, not with this identity's key; and the signature was computed over the plain"},
		{"trailing-slash", forge(testDevWire, se, "", testKey, sts(testDevWire+"%2F")), testKey, nil, "trailing %2F"},
		{"trailing-slash-plain", forge(testDevRes, se, "", testKey, sts(testDevRes+"/")), testKey, nil, "trailing slash"},
		{"host-with-port", forge(testDevWire, se, "", testKey, sts(testHost+":8883%2Fdevices%2Fdev1")), testKey, nil, "with the port"},
		{"host-with-encoded-port", forge(testDevWire, se, "", testKey, sts(testHost+"%3A8883%2Fdevices%2Fdev1")), testKey, nil, "with the port"},
		{"signed-without-port", forge(testHost+":8883%2Fdevices%2Fdev1", se, "", testKey, sts(testDevWire)), testKey, nil, "without the port"},
		{"signed-without-host", forge(testDevWire, se, "", testKey, sts("devices/dev1")), testKey, nil, "without the host"},
		{"signed-without-host-encoded", forge(testDevWire, se, "", testKey, sts("devices%2Fdev1")), testKey, nil, "without the host"},
		{"no-newline", forge(testDevWire, se, "", testKey, testDevWire+"1893456000"), testKey, nil, "lacks the newline"},
		{"sig-url-safe", func() Token {
			tok := Sign(testDevWire, "", testKey, testExpiry)
			tok.Signature = base64.URLEncoding.EncodeToString(mac(testKey, sts(testDevWire)))
			return tok
		}(), testKey, nil, "URL-safe"},
		{"sig-unpadded", func() Token {
			tok := Sign(testDevWire, "", testKey, testExpiry)
			tok.Signature = strings.TrimRight(tok.Signature, "=")
			return tok
		}(), testKey, nil, "padding"},
		{"sig-double-encoded", func() Token {
			tok := Sign(testDevWire, "", testKey, testExpiry)
			tok.Signature = strings.NewReplacer("=", "%3D", "/", "%2F", "+", "%2B").Replace(tok.Signature)
			return tok
		}(), testKey, nil, "percent-encoded twice"},
		{"sig-with-line-break", func() Token {
			tok := Sign(testDevWire, "", testKey, testExpiry)
			tok.Signature = tok.Signature[:20] + "\n" + tok.Signature[20:]
			return tok
		}(), testKey, nil, "not canonical base64"},
		{"skn-but-device-key", Sign(testDevWire, "device", policyKey, testExpiry), testKey, nil, "names a policy (skn=device)"},
		{"nothing-explains", Sign(testDevWire, "", otherKey, testExpiry), testKey, nil, "no known mistake"},
		{"sig-wrong-length", Token{Resource: testDevWire, Signature: "YWJjZA==", Expiry: se}, testKey, nil, "decodes to 4 bytes"},
		{"sig-not-base64", Token{Resource: testDevWire, Signature: "not*base64", Expiry: se}, testKey, nil, "not standard base64"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.tok.Verify(tt.key, testNow, tt.opts...)
			var r *Rejection
			if !errors.As(err, &r) || r.Reason != ReasonSignatureMismatch {
				t.Fatalf("Verify() = %v, want a signature-mismatch Rejection", err)
			}
			if len(r.Hints) == 0 || !strings.Contains(r.Hints[0], tt.hint) {
				t.Fatalf("Verify() hints = %q, want first hint containing %q", r.Hints, tt.hint)
			}
			checkNoSecrets(t, r, tt.tok, tt.key)
		})
	}
}

func checkNoSecrets(t *testing.T, r *Rejection, tok Token, keys ...[]byte) {
	t.Helper()
	texts := append([]string{r.Error()}, r.Hints...)
	secrets := []string{tok.Signature, strings.ReplaceAll(tok.Signature, " ", "+")}
	for _, k := range keys {
		secrets = append(secrets, base64.StdEncoding.EncodeToString(k), string(k))
	}
	for _, txt := range texts {
		for _, s := range secrets {
			if len(s) >= 8 && strings.Contains(txt, s) {
				t.Errorf("rejection text %q contains a secret", txt)
			}
		}
	}
}

func TestDiagnosisOff(t *testing.T) {
	tok := Sign(testDevWire, "", []byte(base64.StdEncoding.EncodeToString(testKey)), testExpiry)
	err := tok.Verify(testKey, testNow, WithoutDiagnosis())
	var r *Rejection
	if !errors.As(err, &r) || len(r.Hints) != 0 {
		t.Errorf("Verify(WithoutDiagnosis) = %v with hints %q, want a rejection without hints", err, r.Hints)
	}
}

func TestDiagnosisExtraHints(t *testing.T) {
	tok := Sign(testDevWire, "", otherKey, testExpiry)
	err := tok.Verify(testKey, testExpiry.Add(time.Hour))
	var r *Rejection
	if !errors.As(err, &r) || r.Reason != ReasonSignatureMismatch {
		t.Fatalf("Verify() = %v, want signature mismatch", err)
	}
	if last := r.Hints[len(r.Hints)-1]; !strings.Contains(last, "also expired") {
		t.Errorf("hints = %q, want the last one to say the token is also expired", r.Hints)
	}
	ms := Sign(testDevWire, "", otherKey, time.Unix(testExpiry.Unix()*1000, 0))
	err = ms.Verify(testKey, testNow)
	if !errors.As(err, &r) || !containsAny(r.Hints, "looks like milliseconds") {
		t.Errorf("Verify(se in ms) hints = %q, want one saying se looks like milliseconds", r.Hints)
	}
}

func TestExpiryHints(t *testing.T) {
	tests := []struct {
		name string
		se   int64
		now  time.Time
		hint string
	}{
		{"near-epoch", 3600, testNow, "near the Unix epoch: if the device has no RTC/NTP its clock may be wrong"},
		{"years-ago", time.Date(2021, 1, 1, 0, 0, 0, 0, time.UTC).Unix(), testNow, "if the device has no RTC/NTP its clock may be wrong"},
		{"just-expired", testExpiry.Unix(), testExpiry.Add(time.Hour), "mint a new token"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tok := Sign(testDevWire, "", testKey, time.Unix(tt.se, 0))
			err := tok.Verify(testKey, tt.now)
			var r *Rejection
			if !errors.As(err, &r) || r.Reason != ReasonExpired || !strings.Contains(r.Hints[0], tt.hint) {
				t.Errorf("Verify() = %v, hints %q, want expired with first hint containing %q", err, r.Hints, tt.hint)
			}
		})
	}
}

func TestScopeHints(t *testing.T) {
	tests := []struct {
		name, tokenPlain, audience, hint string
	}{
		{"module-typo", testHost + "/devices/dev1/module/m1", ModuleResource(testHost, "dev1", "m1"), `"module"; the path segment is "modules"`},
		{"device-typo", testHost + "/device/dev1", DeviceResource(testHost, "dev1"), `"device"; the path segment is "devices"`},
		{"trailing-slash", testHost + "/devices/dev1/", DeviceResource(testHost, "dev1"), "trailing slash"},
		{"port", testHost + ":8883/devices/dev1", DeviceResource(testHost, "dev1"), "sr includes a port"},
		{"short-hub-name", "contoso/devices/dev1", DeviceResource(testHost, "dev1"), "without its domain"},
		{"case-only", DeviceResource(testHost, "Dev1"), DeviceResource(testHost, "dev1"), "differ only in case"},
		{"module-token-device-connection", ModuleResource(testHost, "dev1", "m1"), DeviceResource(testHost, "dev1"), "module token cannot open a device connection"},
		{"dps-token-at-hub", DPSResource("0ne0001", "dev1"), DeviceResource(testHost, "dev1"), "DPS resource"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tok := Sign(EncodeResource(tt.tokenPlain), "", testKey, testExpiry)
			err := tok.Verify(testKey, testNow, WithExactAudience(tt.audience))
			var r *Rejection
			if !errors.As(err, &r) || !containsAny(r.Hints, tt.hint) {
				t.Errorf("Verify(WithExactAudience(%q)) = %v, hints %q, want a hint containing %q", tt.audience, err, r.Hints, tt.hint)
			}
		})
	}
}

func containsAny(hints []string, sub string) bool {
	for _, h := range hints {
		if strings.Contains(h, sub) {
			return true
		}
	}
	return false
}

func TestRejectAndReasons(t *testing.T) {
	tests := []struct {
		reason Reason
		want   error
	}{
		{ReasonMalformed, ErrMalformed}, {ReasonExpired, ErrExpired}, {ReasonSignatureMismatch, ErrSignature},
		{ReasonScopeMismatch, ErrScope}, {ReasonHostMismatch, ErrHost}, {ReasonUnknownIdentity, ErrUnknownIdentity},
		{ReasonDisabled, ErrDisabled}, {ReasonClientIDMismatch, ErrClientID}, {ReasonUserNameMalformed, ErrUserName},
		{ReasonUserNameMismatch, ErrUserName}, {ReasonUnknownPolicy, ErrPolicy}, {ReasonPolicyPermission, ErrPolicy},
		{ReasonNoPassword, ErrNoPassword},
	}
	for _, tt := range tests {
		t.Run(string(tt.reason), func(t *testing.T) {
			r := Reject(tt.reason, "device dev9 is not registered", "create it first")
			if !errors.Is(r, tt.want) {
				t.Errorf("Reject(%s) does not wrap %v", tt.reason, tt.want)
			}
			if got, want := r.Error(), "sas: "+string(tt.reason)+": device dev9 is not registered"; got != want {
				t.Errorf("Error() = %q, want %q", got, want)
			}
		})
	}
	if got := Reject(ReasonNoPassword, "").Error(); got != "sas: no-password" {
		t.Errorf("Error() = %q, want %q", got, "sas: no-password")
	}
}

// FuzzVerify checks that Verify (and so the diagnosis) never panics and
// always answers nil or a *Rejection without secrets.
func FuzzVerify(f *testing.F) {
	f.Add("SharedAccessSignature sr=contoso.azure-devices.net%2Fdevices%2Fdev1&sig=abc%2B%3D&se=1893456000", "contoso.azure-devices.net/devices/dev1")
	f.Add("SharedAccessSignature sr=h:8883%2f&sig=a b&se=99999999999999&skn=p", "h")
	f.Add("SharedAccessSignature sr=%2F%2f/&sig=-_==&se=0", "/")
	f.Fuzz(func(t *testing.T, s, audience string) {
		tok, err := Parse(s)
		if err != nil {
			return
		}
		err = tok.Verify(testKey, testNow, WithAudience(audience), WithSecondaryKey(testKey2),
			WithSuspectKeys(NamedKey{"policy iothubowner", policyKey}))
		if err == nil {
			return
		}
		var r *Rejection
		if !errors.As(err, &r) {
			t.Fatalf("Verify() = %T %v, want *Rejection", err, err)
		}
		checkNoSecrets(t, r, Token{}, testKey, testKey2, policyKey)
	})
}

func TestWarnings(t *testing.T) {
	tests := []struct {
		name string
		tok  Token
		want string // "" = no warnings
	}{
		{"clean", Sign(testDevWire, "", testKey, testExpiry), ""},
		{"milliseconds", Token{Resource: testDevWire, Expiry: testExpiry.Unix() * 1000}, "looks like milliseconds"},
		{"long-lived", Token{Resource: testDevWire, Expiry: testNow.Add(5 * 365 * 24 * time.Hour).Unix()}, "valid for 5 years more"},
		{"unencoded", Token{Resource: testDevRes, Expiry: testExpiry.Unix()}, "not percent-encoded"},
		{"lower-escapes", Token{Resource: strings.ToLower(testDevWire), Expiry: testExpiry.Unix()}, "lower-case escapes"},
		{"port", Token{Resource: EncodeResource(testHost + ":8883/devices/d"), Expiry: testExpiry.Unix()}, "includes a port"},
		{"trailing-slash", Token{Resource: EncodeResource(testDevRes + "/"), Expiry: testExpiry.Unix()}, "ends with '/'"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := tt.tok.Warnings(testNow)
			if tt.want == "" {
				if len(got) != 0 {
					t.Errorf("Warnings() = %q, want none", got)
				}
				return
			}
			if !containsAny(got, tt.want) {
				t.Errorf("Warnings() = %q, want one containing %q", got, tt.want)
			}
		})
	}
}

func TestDiagnosisBounded(t *testing.T) {
	for _, sr := range []string{
		testDevWire,
		url.QueryEscape(testHost+"/devices/a b") + "%20x",
		testHost + ":8883%2Fdevices%2Fd%2F",
		"h",
		"",
	} {
		tok := Token{Resource: sr, Expiry: testExpiry.Unix()}
		if n := len(tok.variants()); n > 31 {
			t.Errorf("variants(%q) = %d strings to sign, want at most 31 (the documented bound)", sr, n)
		}
	}
}

// The shortcuts of the hot path agree with the standard library: pathUnescape
// with url.PathUnescape on every input, and encodesExactly never claims a
// match that decoding would deny.
func FuzzDecodingShortcuts(f *testing.F) {
	for _, s := range []string{"contoso.azure-devices.net%2Fdevices%2FMyDevice01", "h%2fdevices%2fd", "h/devices/d", "a%zz", "%", "%2", "a+b%20c",
		"h%2Fdevices%2Fd%2F", "H%2Fdevices%2Fd", "%68%2Fdevices%2Fd", "h%252Fd"} {
		f.Add(s, "h/devices/d")
		f.Add(s, "contoso.azure-devices.net/devices/MyDevice01")
	}
	f.Fuzz(func(t *testing.T, enc, plain string) {
		got, ok := pathUnescape(enc)
		want, err := url.PathUnescape(enc)
		if ok != (err == nil) || ok && got != want {
			t.Fatalf("pathUnescape(%q) = %q, %t; url.PathUnescape = %q, %v", enc, got, ok, want, err)
		}
		if encodesExactly(enc, plain) && (err != nil || want != plain) {
			t.Fatalf("encodesExactly(%q, %q) = true, but it decodes to %q (%v)", enc, plain, want, err)
		}
	})
}

func TestEncodesExactly(t *testing.T) {
	for _, tc := range []struct {
		enc, plain string
		want       bool
	}{
		{"h%2Fdevices%2Fd", "h/devices/d", true},
		{"h%2fdevices%2fd", "h/devices/d", true},
		{"h/devices/d", "h/devices/d", true},
		{"h%2Fdevices%2Fd%2F", "h/devices/d", false}, // a trailing slash: decided the long way
		{"H%2Fdevices%2Fd", "h/devices/d", false},    // host case: decided the long way
		{"h%2Fdevices%2Fd1", "h/devices/d", false},
		{"h%2Fdevices", "h/devices/d", false},
		{"h%2Fdevices%2Fd%2Bx", "h/devices/d+x", false}, // '+' is not unreserved: decided the long way
	} {
		if got := encodesExactly(tc.enc, tc.plain); got != tc.want {
			t.Errorf("encodesExactly(%q, %q) = %t, want %t", tc.enc, tc.plain, got, tc.want)
		}
	}
}
