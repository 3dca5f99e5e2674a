package fakehub_test

import (
	"context"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/hubkit/hubkit/internal/mqttraw"
	"github.com/hubkit/hubkit/pkg/fakehub"
	"github.com/hubkit/hubkit/pkg/iothub"
	"github.com/hubkit/hubkit/pkg/sas"
)

// bypassAttempt is one forged or borrowed credential: connect as id with
// password, which the hub must refuse with reason.
type bypassAttempt struct {
	name     string
	id       iothub.Identity
	password string
	reason   sas.Reason
}

// bypassAttempts are the attacks of someone who holds dev1's device key (and
// nothing else) and tries to become another identity, or to stretch dev1's
// token: borrowed tokens for longer, re-cased, prefixed and module
// identities; sr tricks; skn tricks; odd or duplicated se and sig.
func bypassAttempts(t testing.TB, h interface{ Registry() *fakehub.Registry }) []bypassAttempt {
	hour := time.Now().Add(time.Hour)
	signed := func(sr, skn string, se time.Time) string { return sas.Sign(sr, skn, keyDev1A, se).String() }
	dev1Tok := signed(sas.EncodeResource("localhost/devices/dev1"), "", hour)
	var out []bypassAttempt
	add := func(name string, id iothub.Identity, pw string, r sas.Reason) {
		out = append(out, bypassAttempt{name, id, pw, r})
	}
	// dev1's own token, and tokens for the victim's resource signed with dev1's key.
	victims := []iothub.Identity{{DeviceID: "dev10"}, {DeviceID: "Dev1"}, {DeviceID: "DEV1"}, {DeviceID: "xdev1"}, {DeviceID: "dev1x"},
		{DeviceID: "dev1", ModuleID: "mod1"}, {DeviceID: "dev2"}, {DeviceID: "dev1", ModuleID: "mod1x"}}
	for _, v := range victims {
		wantScope, wantSig := sas.ReasonScopeMismatch, sas.ReasonSignatureMismatch
		if err := h.Registry().Exists(v); err != nil {
			wantScope, wantSig = sas.ReasonUnknownIdentity, sas.ReasonUnknownIdentity
		}
		res := sas.DeviceResource("localhost", v.DeviceID)
		if v.IsModule() {
			res = sas.ModuleResource("localhost", v.DeviceID, v.ModuleID)
		}
		add("borrowed-dev1-token-as-"+v.ClientID(), v, dev1Tok, wantScope)
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
	}
	for name, sr := range srTricks {
		for _, as := range []iothub.Identity{dev1, dev2} {
			pw := signed(sr, "", hour)
			if _, err := sas.Parse(pw); err != nil {
				add("sr-"+name+"-as-"+as.DeviceID, as, pw, sas.ReasonMalformed)
				continue
			}
			add("sr-"+name+"-as-"+as.DeviceID, as, pw, "")
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
// keys; each must be refused with CONNACK 5 (or, for a packet MQTT says to
// close on, no CONNACK) and a rejection whose reason matches the attack
// (when the table names one) and is never "accepted".
func TestAuthBypass(t *testing.T) {
	h := startHub(t, fakehub.Options{})
	attempts := bypassAttempts(t, h)
	// Each attempt also with the two other user-name forms.
	forms := []func(iothub.Identity) string{
		func(id iothub.Identity) string { return userName("localhost", id) },
		func(id iothub.Identity) string { return "localhost/" + id.ClientID() + "/api-version=2016-11-14" },
		func(id iothub.Identity) string { return "localhost/" + id.ClientID() },
	}
	tried, byReason := 0, map[sas.Reason]int{}
	for _, a := range attempts {
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
			if err == nil && ack.ReturnCode == 0 {
				t.Errorf("%s (user-name form %d): ACCEPTED (CONNACK 0)", a.name, fi)
				continue
			}
			if err == nil && ack.ReturnCode != 5 {
				t.Errorf("%s: CONNACK %d, want 5", a.name, ack.ReturnCode)
			}
			r := waitRejectionAny(t, h, since, allReasons...)
			byReason[r.Reason]++
			if a.reason != "" && r.Reason != a.reason {
				t.Errorf("%s (form %d): refused as %s (%s), want %s", a.name, fi, r.Reason, r.Detail, a.reason)
			}
		}
	}
	t.Logf("%d bypass attempts (%d attacks × %d user-name forms), every one refused: %v", tried, len(attempts), len(forms), byReason)
}

var allReasons = []sas.Reason{sas.ReasonMalformed, sas.ReasonExpired, sas.ReasonSignatureMismatch, sas.ReasonScopeMismatch, sas.ReasonHostMismatch,
	sas.ReasonUnknownIdentity, sas.ReasonDisabled, sas.ReasonClientIDMismatch, sas.ReasonUserNameMalformed, sas.ReasonUserNameMismatch,
	sas.ReasonUnknownPolicy, sas.ReasonPolicyPermission, sas.ReasonNoPassword, fakehub.ReasonMalformedConnect}
