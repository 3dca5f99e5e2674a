package fakehub_test

import (
	"bytes"
	"context"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/hubkit/hubkit/internal/mqttraw"
	"github.com/hubkit/hubkit/pkg/fakehub"
	"github.com/hubkit/hubkit/pkg/fakehub/fakehubtest"
	"github.com/hubkit/hubkit/pkg/iothub"
	"github.com/hubkit/hubkit/pkg/sas"
)

// bypassAttempt is one forged or borrowed credential: connect as id with
// password, which the hub must refuse with reason ("" = any refusal).
type bypassAttempt struct {
	name     string
	id       iothub.Identity
	password string
	reason   sas.Reason
	// exactReason, if set, is the reason under Quirks.ExactDeviceKeyScope,
	// where a device key's token must name exactly its identity.
	exactReason sas.Reason
	// prefixOK marks dev1's own key signing a prefix of dev1's own
	// resource, used as dev1: IoT Hub accepts it (docs/iothub-behavior.md
	// §2.4, §2.7), so the default hub must too; Quirks.ExactDeviceKeyScope
	// refuses it with scope-mismatch.
	prefixOK bool
	// acceptAlways marks dev1's own resource spelt with the host re-cased,
	// used as dev1: host names are compared without regard to case
	// (docs/iothub-behavior.md §2.4, §11.2) under both scope rules.
	acceptAlways bool
}

// signatureWith returns a time near at whose token for sr under key has a
// signature containing every one of chars, so that an attack rewriting
// those characters really changes the token.
func signatureWith(t testing.TB, sr string, key []byte, at time.Time, chars string) time.Time {
	t.Helper()
	for i := range 10000 {
		se := at.Add(time.Duration(i) * time.Second)
		sig := sas.Sign(sr, "", key, se).Signature
		if !strings.ContainsFunc(chars, func(r rune) bool { return !strings.ContainsRune(sig, r) }) {
			return se
		}
	}
	t.Fatalf("no signature with %q among 10000 expiries", chars)
	return time.Time{}
}

// bypassAttempts are the attacks of someone who holds dev1's device key (or
// a token service's device-policy token scoped to dev1) and nothing else,
// and tries to become another identity, or to stretch dev1's token: borrowed tokens for longer, re-cased, prefixed and module
// identities; sr tricks; skn tricks; odd or duplicated se and sig.
func bypassAttempts(t testing.TB, h interface{ Registry() *fakehub.Registry }) []bypassAttempt {
	// The expiry is chosen so that dev1's token has a '+' and a '/' in its
	// signature: the sig-url-safe and sig-plus-unescaped attacks rewrite
	// them, and would send the valid token unchanged without them.
	hour := signatureWith(t, sas.EncodeResource("localhost/devices/dev1"), keyDev1A, time.Now().Add(time.Hour), "+/")
	signed := func(sr, skn string, se time.Time) string { return sas.Sign(sr, skn, keyDev1A, se).String() }
	dev1Tok := signed(sas.EncodeResource("localhost/devices/dev1"), "", hour)
	var out []bypassAttempt
	add := func(name string, id iothub.Identity, pw string, r sas.Reason) *bypassAttempt {
		out = append(out, bypassAttempt{name: name, id: id, password: pw, reason: r})
		return &out[len(out)-1]
	}
	// dev1's own token, and tokens for the victim's resource signed with dev1's key.
	victims := []iothub.Identity{{DeviceID: "dev10"}, {DeviceID: "Dev1"}, {DeviceID: "DEV1"}, {DeviceID: "xdev1"}, {DeviceID: "dev1x"},
		{DeviceID: "dev1", ModuleID: "mod1"}, {DeviceID: "dev2"}, {DeviceID: "dev1", ModuleID: "mod1x"}, {DeviceID: "ghost"}, {DeviceID: "dev1", ModuleID: "ghost"}}
	for _, v := range victims {
		wantScope, wantSig := sas.ReasonScopeMismatch, sas.ReasonSignatureMismatch
		if err := h.Registry().Exists(v); err != nil {
			wantScope, wantSig = sas.ReasonUnknownIdentity, sas.ReasonUnknownIdentity
		}
		res := sas.DeviceResource("localhost", v.DeviceID)
		if v.IsModule() {
			res = sas.ModuleResource("localhost", v.DeviceID, v.ModuleID)
		}
		if v.IsModule() && wantScope == sas.ReasonScopeMismatch {
			// dev1's sr covers its modules' resources, so under IoT Hub's
			// prefix rule the token is checked against the module's key.
			add("borrowed-dev1-token-as-"+v.ClientID(), v, dev1Tok, wantSig).exactReason = wantScope
		} else {
			add("borrowed-dev1-token-as-"+v.ClientID(), v, dev1Tok, wantScope)
		}
		add("dev1-key-over-"+v.ClientID(), v, signed(sas.EncodeResource(res), "", hour), wantSig)
		add("dev1-key-over-"+v.ClientID()+"-plain-sr", v, signed(res, "", hour), wantSig)
	}
	// sr tricks, signed with dev1's key: as dev1 (must not be normalised into
	// dev1's resource) and as dev2 (must not reach dev2).
	srTricks := map[string]string{
		"dot-dot":               "localhost/devices/dev2/../dev1",
		"dot-dot-encoded":       "localhost%2Fdevices%2Fdev2%2F%2e%2e%2Fdev1",
		"dot-dot-upper-encoded": "localhost%2Fdevices%2Fdev2%2F%2E%2E%2Fdev1",
		"encoded-slash-in-id":   "localhost%2Fdevices%2Fdev2%252Fdev1",
		"double-encoded":        "localhost%252Fdevices%252Fdev1",
		"trailing-slash":        "localhost%2Fdevices%2Fdev1%2F",
		"double-slash":          "localhost%2F%2Fdevices%2Fdev1",
		"other-hub":             "otherhub.azure-devices.net%2Fdevices%2Fdev1",
		"hub-suffix":            "localhost.evil%2Fdevices%2Fdev1",
		"query-string":          "localhost%2Fdevices%2Fdev1%3Fx%3D1",
		"query-string-raw":      "localhost/devices/dev1?x=1",
		"fragment":              "localhost%2Fdevices%2Fdev1%23x",
		"encoded-nul":           "localhost%2Fdevices%2Fdev1%00",
		"nul-then-other":        "localhost%2Fdevices%2Fdev1%00%2F..%2Fdev2",
		"hub-only":              "localhost",
		"devices-only":          "localhost%2Fdevices",
		"module-of-dev1":        "localhost%2Fdevices%2Fdev1%2Fmodules%2Fmod1",
		"typo-device":           "localhost%2Fdevice%2Fdev1",
		"space-padded":          "localhost%2Fdevices%2F%20dev1",
		"userinfo":              "dev1%40localhost%2Fdevices%2Fdev1",
		"scheme":                "https%3A%2F%2Flocalhost%2Fdevices%2Fdev1",
		"backslash":             "localhost%5Cdevices%5Cdev1",
		"re-cased-id":           "localhost%2Fdevices%2FDEV1",
		"re-cased-id-first":     "localhost%2Fdevices%2FDev1",
		"re-cased-devices":      "localhost%2FDEVICES%2Fdev1",
		"re-cased-host":         "LOCALHOST%2Fdevices%2Fdev1",
	}
	// dev1's own resource or a prefix of it: {host}, {host}/devices, and
	// {host}/devices/dev1/ (IoT Hub ignores a trailing slash on sr;
	// docs/iothub-behavior.md §2.7).
	prefixOfDev1 := map[string]bool{"hub-only": true, "devices-only": true, "trailing-slash": true}
	for name, sr := range srTricks {
		for _, as := range []iothub.Identity{dev1, dev2} {
			pw := signed(sr, "", hour)
			if _, err := sas.Parse(pw); err != nil {
				add("sr-"+name+"-as-"+as.DeviceID, as, pw, sas.ReasonMalformed)
				continue
			}
			a := add("sr-"+name+"-as-"+as.DeviceID, as, pw, "")
			if as == dev1 && prefixOfDev1[name] {
				a.prefixOK, a.exactReason = true, sas.ReasonScopeMismatch
			}
			if as == dev1 && name == "re-cased-host" {
				a.acceptAlways = true
			}
			if strings.HasPrefix(name, "re-cased-") && name != "re-cased-host" {
				// IDs (and the devices segment) are compared
				// case-sensitively (§2.7, §11.3): DEV1's resource is
				// not dev1's, whoever signed it.
				a.reason = sas.ReasonScopeMismatch
			}
		}
	}
	// skn tricks: dev1's key with a policy name, policy names re-cased, a
	// policy without DeviceConnect.
	rr, _ := h.Registry().Policy("registryRead")
	rrKey, _ := sas.DecodeKey(rr.PrimaryKey)
	for _, skn := range []string{"device", "iothubowner", "DEVICE", "Device", "device%00", "device ", "registryread", "nosuchpolicy"} {
		for _, sr := range []string{"localhost%2Fdevices%2Fdev2", "localhost"} {
			add("skn-"+url.QueryEscape(skn)+"-sr-"+sr, dev2, signed(sr, skn, hour), "")
		}
	}
	// A token service's token for dev1 (the device policy's key, sr scoped
	// to dev1): it covers dev1 by whole segments, never dev10 or Dev1.
	dp, _ := h.Registry().Policy("device")
	dpKey, _ := sas.DecodeKey(dp.PrimaryKey)
	svcTok := sas.Sign(sas.EncodeResource("localhost/devices/dev1"), "device", dpKey, hour).String()
	for _, v := range []string{"dev10", "Dev1", "xdev1", "dev1x", "dev2"} {
		add("device-policy-token-for-dev1-as-"+v, iothub.Identity{DeviceID: v}, svcTok, sas.ReasonScopeMismatch)
	}
	add("skn-registryRead-with-its-key", dev2, sas.Sign("localhost", "registryRead", rrKey, hour).String(), sas.ReasonPolicyPermission)
	// se and sig tricks.
	good, _ := sas.Parse(dev1Tok)
	sig := url.QueryEscape(good.Signature)
	sr := good.Resource
	se := "&se=" + strings.TrimPrefix(dev1Tok[strings.LastIndex(dev1Tok, "&se=")+4:], "")
	raw := func(s string) string { return "SharedAccessSignature " + s }
	for name, pw := range map[string]string{
		"duplicated-se":          dev1Tok + "&se=99999999999",
		"duplicated-sig":         dev1Tok + "&sig=" + sig,
		"se-decimal-point":       raw("sr=" + sr + "&sig=" + sig + "&se=1.5e9"),
		"se-negative":            raw("sr=" + sr + "&sig=" + sig + "&se=-1"),
		"se-leading-zeros":       raw("sr=" + sr + "&sig=" + sig + "&se=0" + se[4:]),
		"se-hex":                 raw("sr=" + sr + "&sig=" + sig + "&se=0x70000000"),
		"se-empty":               raw("sr=" + sr + "&sig=" + sig + "&se="),
		"se-missing":             raw("sr=" + sr + "&sig=" + sig),
		"se-milliseconds":        signed(sr, "", time.UnixMilli(hour.UnixMilli()*1000)),
		"se-overflow":            raw("sr=" + sr + "&sig=" + sig + "&se=99999999999999999999999"),
		"sig-missing":            raw("sr=" + sr + se),
		"sig-empty":              raw("sr=" + sr + "&sig=" + se),
		"sig-url-safe":           raw("sr=" + sr + "&sig=" + strings.NewReplacer("+", "-", "/", "_").Replace(good.Signature) + se),
		"sig-unpadded":           raw("sr=" + sr + "&sig=" + url.QueryEscape(strings.TrimRight(good.Signature, "=")) + se),
		"sig-extra-padding":      raw("sr=" + sr + "&sig=" + url.QueryEscape(good.Signature+"==") + se),
		"sig-plus-unescaped":     raw("sr=" + sr + "&sig=" + good.Signature + se),
		"sig-double-encoded":     raw("sr=" + sr + "&sig=" + url.QueryEscape(sig) + se),
		"sig-truncated":          raw("sr=" + sr + "&sig=" + url.QueryEscape(good.Signature[:20]) + se),
		"sig-other-device":       sas.Sign(sas.EncodeResource("localhost/devices/dev1"), "", keyDev2A, hour).String(),
		"prefix-lower-case":      strings.Replace(dev1Tok, "SharedAccessSignature", "sharedaccesssignature", 1),
		"prefix-two-spaces":      strings.Replace(dev1Tok, "SharedAccessSignature ", "SharedAccessSignature  ", 1),
		"unknown-field":          dev1Tok + "&x=1",
		"two-tokens":             dev1Tok + " " + dev1Tok,
		"expired":                signed(sr, "", time.Now().Add(-time.Hour)),
		"expired-within-no-skew": signed(sr, "", time.Now().Add(-6*time.Minute)),
		"token-in-user-name":     "",
	} {
		if name == "token-in-user-name" {
			continue // covered by TestSwappedUserNameAndPasswordLeakNothing
		}
		add("se-sig-"+name, dev1, pw, "")
	}
	return out
}

// TestAuthBypass tries every bypass attempt against a hub that knows dev1's
// keys, under IoT Hub's scope rule (the default) and IoT Edge hub's
// (Quirks.ExactDeviceKeyScope). Each must be refused with CONNACK 5 (or, for
// a packet MQTT says to close on, no CONNACK) and a rejection whose reason
// matches the attack (when the table names one). The only tokens accepted
// are dev1's own key, used as dev1, over dev1's resource with the host
// re-cased (both rules) or over a prefix of it (the default rule only), as
// IoT Hub accepts them.
func TestAuthBypass(t *testing.T) {
	for _, tc := range []struct {
		name  string
		exact bool
	}{{"azure", false}, {"exact-device-key-scope", true}} {
		t.Run(tc.name, func(t *testing.T) {
			h := startHub(t, fakehub.Options{Quirks: fakehub.Quirks{ExactDeviceKeyScope: tc.exact}})
			// Victims whose IDs are near dev1's are registered, so that the
			// scope check (not the registry lookup) is what refuses them.
			for i, id := range []string{"Dev1", "DEV1", "xdev1", "dev1x"} {
				mustDo(t, func() error { _, err := h.AddDevice(id, bytes.Repeat([]byte{byte(20 + i)}, 32)); return err })
			}
			mustDo(t, func() error {
				_, err := h.Registry().Add(iothub.Device{DeviceID: "dev1", ModuleID: "mod1x", Authentication: b64auth(keyWrong, keyDev10)})
				return err
			})
			tried, accepted, byReason := runBypass(t, h, bypassAttempts(t, h), tc.exact)
			t.Logf("%d bypass attempts: %d accepted (dev1's own key over dev1's resource with the host re-cased, and by default over a prefix of it, as IoT Hub accepts), the rest refused: %v", tried, accepted, byReason)
		})
	}
}

// runBypass tries each attempt with each of the three user-name forms.
func runBypass(t *testing.T, h *fakehubtest.Hub, attempts []bypassAttempt, exact bool) (tried, accepted int, byReason map[sas.Reason]int) {
	t.Helper()
	forms := []func(iothub.Identity) string{
		func(id iothub.Identity) string { return userName("localhost", id) },
		func(id iothub.Identity) string { return "localhost/" + id.ClientID() + "/api-version=2016-11-14" },
		func(id iothub.Identity) string { return "localhost/" + id.ClientID() },
	}
	byReason = map[sas.Reason]int{}
	for _, a := range attempts {
		want, accept := a.reason, a.prefixOK && !exact || a.acceptAlways
		if exact && a.exactReason != "" {
			want = a.exactReason
		}
		for fi, form := range forms {
			since := len(h.Rejections())
			tried++
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			ack, c, err := mqttraw.ConnectAndWait(ctx, h.Addr(), h.ClientTLS(), mqttraw.ConnectPacket{
				ClientID: a.id.ClientID(), UserName: mqttraw.String(form(a.id)), Password: mqttraw.String(a.password), CleanSession: true, KeepAlive: 60})
			cancel()
			if c != nil {
				_ = c.Close()
			}
			ok := err == nil && ack.ReturnCode == 0
			switch {
			case ok && accept:
				accepted++
				continue
			case ok:
				t.Errorf("%s (user-name form %d): ACCEPTED (CONNACK 0)", a.name, fi)
				continue
			case accept:
				t.Errorf("%s (user-name form %d): refused (%v, CONNACK %d), want accepted: IoT Hub accepts a device key's token for a prefix of its own resource", a.name, fi, err, ack.ReturnCode)
			case err == nil && ack.ReturnCode != 5:
				t.Errorf("%s: CONNACK %d, want 5", a.name, ack.ReturnCode)
			}
			r := waitRejectionAny(t, h, since, allReasons...)
			byReason[r.Reason]++
			if want != "" && r.Reason != want {
				t.Errorf("%s (form %d): refused as %s (%s), want %s", a.name, fi, r.Reason, r.Detail, want)
			}
		}
	}
	return tried, accepted, byReason
}

var allReasons = []sas.Reason{sas.ReasonMalformed, sas.ReasonExpired, sas.ReasonSignatureMismatch, sas.ReasonScopeMismatch, sas.ReasonHostMismatch,
	sas.ReasonUnknownIdentity, sas.ReasonDisabled, sas.ReasonClientIDMismatch, sas.ReasonUserNameMalformed, sas.ReasonUserNameMismatch,
	sas.ReasonUnknownPolicy, sas.ReasonPolicyPermission, sas.ReasonNoPassword, fakehub.ReasonMalformedConnect}
