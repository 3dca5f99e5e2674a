package fakehub_test

import (
	"context"
	"fmt"
	"log/slog"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hubkit/hubkit/internal/mqttraw"
	"github.com/hubkit/hubkit/internal/testutil"
	"github.com/hubkit/hubkit/pkg/fakehub"
	"github.com/hubkit/hubkit/pkg/iothub"
	"github.com/hubkit/hubkit/pkg/sas"
)

func TestConnectAccepted(t *testing.T) {
	h := startHub(t, fakehub.Options{})
	pol, _ := h.Registry().Policy("device")
	owner, _ := h.Registry().Policy("iothubowner")
	polKey, _ := sas.DecodeKey(pol.PrimaryKey)
	ownerKey, _ := sas.DecodeKey(owner.SecondaryKey)
	hour := time.Now().Add(time.Hour)
	tests := []struct {
		name     string
		id       iothub.Identity
		user     string
		password string
	}{
		{"device-primary-key", dev1, userName("localhost", dev1), deviceToken("localhost", dev1, keyDev1A)},
		{"device-secondary-key", dev1, userName("localhost", dev1), deviceToken("localhost", dev1, keyDev1B)},
		{"module-key", mod1, userName("localhost", mod1), deviceToken("localhost", mod1, keyModA)},
		{"policy-device-scoped", dev2, userName("localhost", dev2), token("localhost/devices/dev2", "device", polKey, hour)},
		{"policy-hub-wide", dev2, userName("localhost", dev2), token("localhost", "iothubowner", ownerKey, hour)},
		{"policy-devices-prefix", dev2, userName("localhost", dev2), token("localhost/devices", "device", polKey, hour)},
		{"legacy-user-name-without-question-mark", dev1, "localhost/dev1/api-version=2016-11-14", deviceToken("localhost", dev1, keyDev1A)},
		{"bare-user-name", dev1, "localhost/dev1", deviceToken("localhost", dev1, keyDev1A)},
		{"host-with-port-and-case", dev1, "LocalHost:8883/dev1/?api-version=2021-04-12", deviceToken("localhost:8883", dev1, keyDev1A)},
		{"sr-lower-case-escapes", dev1, userName("localhost", dev1),
			sas.Sign("localhost%2fdevices%2fdev1", "", keyDev1A, hour).String()},
		{"token-within-skew", dev1, userName("localhost", dev1), token("localhost/devices/dev1", "", keyDev1A, time.Now().Add(-time.Minute))},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, err := pahoConnect(t, h, tt.id, tt.user, tt.password)
			if err != nil {
				t.Fatalf("connect: %v; rejections %+v", err, h.Rejections())
			}
			testutil.Eventually(t, "session", func() bool { return h.Connected(tt.id) })
			r.c.Disconnect(100)
			testutil.Eventually(t, "disconnect", func() bool { return !h.Connected(tt.id) })
		})
	}
}

func TestConnectRefused(t *testing.T) {
	// Only startHub's devices: the suspect keys (16) then cover every
	// policy, mod1, dev10 and dev2, so other-device-key is diagnosed.
	h := startHub(t, fakehub.Options{})
	reader, _ := h.Registry().Policy("registryRead")
	readerKey, _ := sas.DecodeKey(reader.PrimaryKey)
	owner, _ := h.Registry().Policy("iothubowner")
	ownerKey, _ := sas.DecodeKey(owner.PrimaryKey)
	hour := time.Now().Add(time.Hour)
	tests := []struct {
		name   string
		edit   func(p *mqttraw.ConnectPacket)
		reason sas.Reason
		hint   string // a substring of Detail or a hint, if set
	}{
		{"wrong-key", func(p *mqttraw.ConnectPacket) { p.Password = mqttraw.String(deviceToken("localhost", dev1, keyWrong)) },
			sas.ReasonSignatureMismatch, ""},
		{"other-device-key", func(p *mqttraw.ConnectPacket) { p.Password = mqttraw.String(deviceToken("localhost", dev1, keyDev2B)) },
			sas.ReasonSignatureMismatch, "dev2"},
		{"policy-key-without-skn", func(p *mqttraw.ConnectPacket) {
			p.Password = mqttraw.String(token("localhost/devices/dev1", "", ownerKey, hour))
		}, sas.ReasonSignatureMismatch, "iothubowner"},
		{"expired", func(p *mqttraw.ConnectPacket) {
			p.Password = mqttraw.String(token("localhost/devices/dev1", "", keyDev1A, time.Now().Add(-time.Hour)))
		}, sas.ReasonExpired, ""},
		{"token-for-other-device", func(p *mqttraw.ConnectPacket) { p.Password = mqttraw.String(deviceToken("localhost", dev2, keyDev2A)) },
			sas.ReasonScopeMismatch, ""},
		{"token-for-device-prefix", func(p *mqttraw.ConnectPacket) {
			p.Password = mqttraw.String(token("localhost/devices/dev1", "", keyDev1A, hour))
			p.ClientID, p.UserName = "dev10", mqttraw.String(userName("localhost", iothub.Identity{DeviceID: "dev10"}))
		}, sas.ReasonScopeMismatch, ""},
		{"policy-token-for-device-prefix", func(p *mqttraw.ConnectPacket) {
			p.Password = mqttraw.String(token("localhost/devices/dev1", "iothubowner", ownerKey, hour))
			p.ClientID, p.UserName = "dev10", mqttraw.String(userName("localhost", iothub.Identity{DeviceID: "dev10"}))
		}, sas.ReasonScopeMismatch, ""},
		// A device key's token for the whole hub opens only its own device (the signature).
		{"device-key-hub-wide-other-device", asDev2(token("localhost", "", keyDev1A, hour)), sas.ReasonSignatureMismatch, ""},
		{"client-id-other-than-user-name", func(p *mqttraw.ConnectPacket) { p.ClientID = "dev2" }, sas.ReasonUserNameMismatch, ""},
		{"client-id-invalid", func(p *mqttraw.ConnectPacket) { p.ClientID = "a/b/c" }, sas.ReasonClientIDMismatch, ""},
		{"client-id-empty", func(p *mqttraw.ConnectPacket) { p.ClientID, p.CleanSession = "", false }, sas.ReasonClientIDMismatch, ""},
		{"unknown-device", func(p *mqttraw.ConnectPacket) {
			id := iothub.Identity{DeviceID: "ghost"}
			p.ClientID, p.UserName, p.Password = "ghost", mqttraw.String(userName("localhost", id)), mqttraw.String(deviceToken("localhost", id, keyDev1A))
		}, sas.ReasonUnknownIdentity, ""},
		{"unknown-module", func(p *mqttraw.ConnectPacket) {
			id := iothub.Identity{DeviceID: "dev1", ModuleID: "nope"}
			p.ClientID, p.UserName, p.Password = id.ClientID(), mqttraw.String(userName("localhost", id)), mqttraw.String(deviceToken("localhost", id, keyModA))
		}, sas.ReasonUnknownIdentity, ""},
		{"module-with-device-key", func(p *mqttraw.ConnectPacket) {
			p.ClientID, p.UserName = mod1.ClientID(), mqttraw.String(userName("localhost", mod1))
			p.Password = mqttraw.String(deviceToken("localhost", dev1, keyDev1A))
		}, sas.ReasonSignatureMismatch, ""},
		{"no-password", func(p *mqttraw.ConnectPacket) { p.Password = nil }, sas.ReasonNoPassword, ""},
		{"empty-password", func(p *mqttraw.ConnectPacket) { p.Password = mqttraw.String("") }, sas.ReasonNoPassword, ""},
		{"no-user-name", func(p *mqttraw.ConnectPacket) { p.UserName, p.Password = nil, nil }, sas.ReasonUserNameMalformed, ""}, // a password without a user name closes (MQTT-3.1.2-22)
		{"malformed-user-name", func(p *mqttraw.ConnectPacket) { p.UserName = mqttraw.String("localhost") }, sas.ReasonUserNameMalformed, ""},
		{"malformed-token", func(p *mqttraw.ConnectPacket) { p.Password = mqttraw.String("SharedAccessSignature sr=x") }, sas.ReasonMalformed, ""},
		{"token-not-sas", func(p *mqttraw.ConnectPacket) { p.Password = mqttraw.String("hunter2") }, sas.ReasonMalformed, ""},
		{"wrong-host-in-user-name", func(p *mqttraw.ConnectPacket) { p.UserName = mqttraw.String(userName("other.azure-devices.net", dev1)) },
			sas.ReasonHostMismatch, "other.azure-devices.net"},
		{"wrong-host-in-token", func(p *mqttraw.ConnectPacket) { p.Password = mqttraw.String(deviceToken("otherhub", dev1, keyDev1A)) },
			sas.ReasonHostMismatch, "otherhub"},
		{"unknown-policy", func(p *mqttraw.ConnectPacket) {
			p.Password = mqttraw.String(token("localhost/devices/dev1", "nosuch", keyDev1A, hour))
		}, sas.ReasonUnknownPolicy, "nosuch"},
		{"policy-without-device-connect", func(p *mqttraw.ConnectPacket) {
			p.Password = mqttraw.String(token("localhost/devices/dev1", "registryRead", readerKey, hour))
		}, sas.ReasonPolicyPermission, "registryRead"},
		{"will-to-c2d-topic", func(p *mqttraw.ConnectPacket) {
			p.Will = &mqttraw.Will{Topic: "devices/dev1/messages/devicebound/", Payload: []byte("bye")}
		}, fakehub.ReasonWillTopic, ""},
		{"will-to-other-device", func(p *mqttraw.ConnectPacket) {
			p.Will = &mqttraw.Will{Topic: "devices/dev2/messages/events/", Payload: []byte("bye")}
		}, fakehub.ReasonWillTopic, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := goodConnect(dev1, keyDev1A)
			tt.edit(&p)
			before := len(h.Rejections())
			ack, c := rawConnect(t, h, p)
			if ack.ReturnCode != 5 {
				t.Errorf("CONNACK %d, want 5", ack.ReturnCode)
			}
			expectClosedSilently(t, c)
			rs := h.Rejections()
			if len(rs) <= before {
				t.Fatalf("no rejection recorded")
			}
			r := rs[len(rs)-1]
			if r.Reason != tt.reason {
				t.Errorf("reason %q (%s), want %q", r.Reason, r.Detail, tt.reason)
			}
			if tt.hint != "" && !strings.Contains(r.Detail+strings.Join(r.Hints, "|"), tt.hint) {
				t.Errorf("detail %q hints %q do not mention %q", r.Detail, r.Hints, tt.hint)
			}
			if p.Password != nil {
				if leak := secretIn(fmt.Sprintf("%+v", r), *p.Password); leak != "" {
					t.Errorf("rejection leaks the password's %s: %+v", leak, r)
				}
			}
			if p.UserName != nil && r.UserName != *p.UserName {
				t.Errorf("UserName %q, want %q", r.UserName, *p.UserName)
			}
			if r.RemoteAddr == "" || r.Time.IsZero() {
				t.Errorf("rejection without time or address: %+v", r)
			}
		})
	}
}

// secretIn names the part of password (the whole of it, a SAS token's sig=,
// its signature, escaped or not) that text contains, or "".
func secretIn(text, password string) string {
	if password == "" {
		return ""
	}
	if strings.Contains(text, password) {
		return "whole text"
	}
	tok, err := sas.Parse(password)
	if err != nil {
		return ""
	}
	for what, v := range map[string]string{"signature": tok.Signature, "escaped signature": url.QueryEscape(tok.Signature)} {
		if v != "" && strings.Contains(text, v) {
			return what
		}
	}
	if strings.Contains(strings.ReplaceAll(text, "sig=<redacted>", ""), "sig=") {
		return "sig="
	}
	return ""
}

func TestSwappedUserNameAndPasswordLeakNothing(t *testing.T) {
	lb := &fakehub.LogBuffer{}
	h := startHub(t, fakehub.Options{Logger: slog.New(slog.NewTextHandler(lb, nil))})
	p := goodConnect(dev1, keyDev1A)
	tok := *p.Password
	p.UserName, p.Password = p.Password, p.UserName
	ack, _ := rawConnect(t, h, p)
	if ack.ReturnCode != 5 {
		t.Errorf("CONNACK %d, want 5", ack.ReturnCode)
	}
	r := waitRejection(t, h, 0, sas.ReasonUserNameMalformed)
	if leak := secretIn(fmt.Sprintf("%+v", r), tok); leak != "" {
		t.Errorf("rejection leaks the token's %s: %+v", leak, r)
	}
	if !strings.Contains(r.Detail, "swapped") {
		t.Errorf("detail %q does not say the fields look swapped", r.Detail)
	}
	testutil.Eventually(t, "WARN line", func() bool { return strings.Contains(lb.String(), "level=WARN") })
	if leak := secretIn(lb.String(), tok); leak != "" {
		t.Errorf("log leaks the token's %s: %s", leak, lb.String())
	}
}

// asDev2 makes the CONNECT dev2's, with password tok.
func asDev2(tok string) func(p *mqttraw.ConnectPacket) {
	return func(p *mqttraw.ConnectPacket) {
		p.ClientID, p.UserName, p.Password = "dev2", mqttraw.String(userName("localhost", dev2)), mqttraw.String(tok)
	}
}

func TestProtocolChecks(t *testing.T) {
	h := startHub(t, fakehub.Options{ConnectTimeout: 300 * time.Millisecond})
	t.Run("level-3-gets-connack-1", func(t *testing.T) {
		p := goodConnect(dev1, keyDev1A)
		p.ProtocolName, p.ProtocolLevel = "MQIsdp", 3
		// A wrong name is checked first; use MQTT with level 3.
		p.ProtocolName = "MQTT"
		ack, c := rawConnect(t, h, p)
		if ack.ReturnCode != 1 {
			t.Errorf("CONNACK %d, want 1", ack.ReturnCode)
		}
		expectClosedSilently(t, c)
		waitRejection(t, h, 0, fakehub.ReasonProtocolVersion)
	})
	t.Run("level-5-gets-3.1.1-connack-1", func(t *testing.T) {
		c := rawDial(t, h)
		// MQTT 5 CONNECT: name, level 5, clean, keep-alive 60, no properties, client ID "dev1".
		v5 := []byte{0x10, 17, 0, 4, 'M', 'Q', 'T', 'T', 5, 0x02, 0, 60, 0, 0, 4, 'd', 'e', 'v', '1'}
		if err := c.WriteRaw(v5); err != nil {
			t.Fatal(err)
		}
		pk, err := c.ReadPacket(5 * time.Second)
		if err != nil {
			t.Fatal(err)
		}
		if got := pk.Raw; string(got) != "\x20\x02\x00\x01" {
			t.Errorf("got % x, want 20 02 00 01", got)
		}
		expectClosedSilently(t, c)
	})
	closedWithoutConnack := []struct {
		name   string
		edit   func(p *mqttraw.ConnectPacket)
		reason sas.Reason
	}{
		{"wrong-protocol-name", func(p *mqttraw.ConnectPacket) { p.ProtocolName = "MQIsdp" }, fakehub.ReasonProtocolName},
		{"reserved-flag", func(p *mqttraw.ConnectPacket) { p.ReservedFlag = true }, fakehub.ReasonMalformedConnect},
	}
	for _, tt := range closedWithoutConnack {
		t.Run(tt.name+"-closes-without-connack", func(t *testing.T) {
			p := goodConnect(dev1, keyDev1A)
			tt.edit(&p)
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			c, err := mqttraw.Dial(ctx, h.Addr(), h.ClientTLS())
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			if err := c.Connect(p); err != nil {
				t.Fatal(err)
			}
			expectClosedSilently(t, c)
			waitRejection(t, h, 0, tt.reason)
		})
	}
	t.Run("no-connect-within-timeout", func(t *testing.T) {
		c := rawDial(t, h)
		expectClosedSilently(t, c)
		waitRejection(t, h, 0, fakehub.ReasonConnectTimeout)
	})
	t.Run("first-packet-not-connect", func(t *testing.T) {
		c := rawDial(t, h)
		if err := c.Pingreq(); err != nil {
			t.Fatal(err)
		}
		expectClosedSilently(t, c)
	})
	t.Run("second-connect-closes", func(t *testing.T) {
		c := rawSession(t, h, goodConnect(dev1, keyDev1A))
		if err := c.Connect(goodConnect(dev1, keyDev1A)); err != nil {
			t.Fatal(err)
		}
		expectClosedSilently(t, c)
		waitRejection(t, h, 0, fakehub.ReasonDuplicateConnect)
	})
}

func TestDisabledDeviceRefused(t *testing.T) {
	h := startHub(t, fakehub.Options{})
	if err := h.Registry().SetStatus("dev10", iothub.StatusDisabled); err != nil {
		t.Fatal(err)
	}
	id := iothub.Identity{DeviceID: "dev10"}
	ack, c := rawConnect(t, h, goodConnect(id, keyWrong))
	if ack.ReturnCode != 5 {
		t.Errorf("CONNACK %d, want 5", ack.ReturnCode)
	}
	expectClosedSilently(t, c)
	waitRejection(t, h, 0, sas.ReasonDisabled)
}

func TestDisabledDeviceCodeQuirk(t *testing.T) {
	h := startHub(t, fakehub.Options{Quirks: fakehub.Quirks{DisabledDeviceCode: 3}})
	if err := h.Registry().SetStatus("dev1", iothub.StatusDisabled); err != nil {
		t.Fatal(err)
	}
	ack, c := rawConnect(t, h, goodConnect(dev1, keyDev1A))
	if ack.ReturnCode != 3 {
		t.Errorf("CONNACK %d, want 3", ack.ReturnCode)
	}
	expectClosedSilently(t, c)
}

func TestAuthQuirks(t *testing.T) {
	t.Run("device-key-for-module", func(t *testing.T) {
		h := startHub(t, fakehub.Options{Quirks: fakehub.Quirks{AllowDeviceKeyForModule: true}})
		p := goodConnect(mod1, keyModA)
		p.Password = mqttraw.String(token("localhost/devices/dev1", "", keyDev1A, time.Now().Add(time.Hour)))
		rawSession(t, h, p)
	})
	t.Run("device-key-for-module-exact-scope-needs-device-resource", func(t *testing.T) {
		h := startHub(t, fakehub.Options{Quirks: fakehub.Quirks{AllowDeviceKeyForModule: true, ExactDeviceKeyScope: true}})
		p := goodConnect(mod1, keyModA)
		p.Password = mqttraw.String(token("localhost/devices", "", keyDev1A, time.Now().Add(time.Hour)))
		ack, _ := rawConnect(t, h, p)
		if ack.ReturnCode != 5 {
			t.Errorf("CONNACK %d, want 5", ack.ReturnCode)
		}
		waitRejection(t, h, 0, sas.ReasonScopeMismatch)
	})
	// IoT Hub's prefix rule holds for a device key's token too (amenzhinsky/iothub signs
	// sr={host}); the key still binds it to its own device.
	t.Run("hub-scoped-device-key-by-default", func(t *testing.T) {
		h := startHub(t, fakehub.Options{})
		for _, sr := range []string{"localhost", "localhost/", "localhost/devices"} {
			p := goodConnect(dev2, keyDev2A)
			p.Password = mqttraw.String(token(sr, "", keyDev2A, time.Now().Add(time.Hour)))
			rawSession(t, h, p)
		}
		p := goodConnect(mod1, keyModA)
		p.Password = mqttraw.String(token("localhost", "", keyModA, time.Now().Add(time.Hour)))
		rawSession(t, h, p)
		// dev2's hub-scoped token does not open dev1: the signature is dev2's.
		p = goodConnect(dev1, keyDev1A)
		p.Password = mqttraw.String(token("localhost", "", keyDev2A, time.Now().Add(time.Hour)))
		if ack, _ := rawConnect(t, h, p); ack.ReturnCode != 5 {
			t.Errorf("dev2's hub-scoped token as dev1: CONNACK %d, want 5", ack.ReturnCode)
		}
		waitRejection(t, h, 0, sas.ReasonSignatureMismatch)
		// A prefix by whole segment only: devices/dev1 does not cover devices/dev10.
		p = goodConnect(iothub.Identity{DeviceID: "dev10"}, keyDev10)
		p.Password = mqttraw.String(token("localhost/devices/dev1", "", keyDev10, time.Now().Add(time.Hour)))
		if ack, _ := rawConnect(t, h, p); ack.ReturnCode != 5 {
			t.Errorf("sr=devices/dev1 as dev10: CONNACK %d, want 5", ack.ReturnCode)
		}
		waitRejection(t, h, 0, sas.ReasonScopeMismatch)
	})
	t.Run("exact-device-key-scope", func(t *testing.T) {
		h := startHub(t, fakehub.Options{Quirks: fakehub.Quirks{ExactDeviceKeyScope: true}})
		for i, sr := range []string{"localhost", "localhost/", "localhost/devices", "localhost/devices/dev1"} {
			p := goodConnect(dev2, keyDev2A)
			key := keyDev2A
			if sr == "localhost/devices/dev1" { // a module key over its device's resource
				p, key = goodConnect(mod1, keyModA), keyModA
			}
			p.Password = mqttraw.String(token(sr, "", key, time.Now().Add(time.Hour)))
			if ack, _ := rawConnect(t, h, p); ack.ReturnCode != 5 {
				t.Errorf("sr=%s with ExactDeviceKeyScope: CONNACK %d, want 5", sr, ack.ReturnCode)
			}
			if r := waitRejection(t, h, i, sas.ReasonScopeMismatch); !strings.Contains(r.Detail, "must be scoped exactly") {
				t.Errorf("rejection detail %q, want the exact-scope rule", r.Detail)
			}
		}
	})
	t.Run("case-insensitive-ids-in-sr", func(t *testing.T) {
		h := startHub(t, fakehub.Options{Quirks: fakehub.Quirks{CaseInsensitiveIDsInSR: true}})
		p := goodConnect(dev1, keyDev1A)
		p.Password = mqttraw.String(token("localhost/devices/DEV1", "", keyDev1A, time.Now().Add(time.Hour)))
		rawSession(t, h, p)
	})
	t.Run("case-sensitive-ids-in-sr-by-default", func(t *testing.T) {
		h := startHub(t, fakehub.Options{})
		p := goodConnect(dev1, keyDev1A)
		p.Password = mqttraw.String(token("localhost/devices/DEV1", "", keyDev1A, time.Now().Add(time.Hour)))
		ack, _ := rawConnect(t, h, p)
		if ack.ReturnCode != 5 {
			t.Errorf("CONNACK %d, want 5", ack.ReturnCode)
		}
		waitRejection(t, h, 0, sas.ReasonScopeMismatch)
	})
	t.Run("drop-invalid-will", func(t *testing.T) {
		h := startHub(t, fakehub.Options{Quirks: fakehub.Quirks{DropInvalidWill: true}})
		p := goodConnect(dev1, keyDev1A)
		p.Will = &mqttraw.Will{Topic: "devices/dev2/messages/events/", Payload: []byte("bye")}
		rawSession(t, h, p)
	})
	t.Run("alias-host-name", func(t *testing.T) {
		h := startHub(t, fakehub.Options{HostName: "myhub.azure-devices.net", Aliases: []string{"localhost"}})
		rawSession(t, h, goodConnect(dev1, keyDev1A))
	})
}

func TestTakeover(t *testing.T) {
	h := startHub(t, fakehub.Options{})
	t.Run("new-connection-drops-old-without-disconnect-packet", func(t *testing.T) {
		old := rawSession(t, h, goodConnect(dev1, keyDev1A))
		rawSession(t, h, goodConnect(dev1, keyDev1B))
		expectClosedSilently(t, old)
		r := waitRejection(t, h, 0, fakehub.ReasonReplaced)
		if r.Identity() != dev1 {
			t.Errorf("identity %v, want dev1", r.Identity())
		}
		testutil.Eventually(t, "dev1 connected", func() bool { return h.Connected(dev1) })
	})
	t.Run("persistent-session-takeover", func(t *testing.T) {
		p := goodConnect(dev2, keyDev2A)
		p.CleanSession = false
		old := rawSession(t, h, p)
		ack, _ := rawConnect(t, h, p)
		if ack.ReturnCode != 0 || !ack.SessionPresent {
			t.Errorf("CONNACK %+v, want 0 with session present", ack)
		}
		expectClosedSilently(t, old)
	})
	t.Run("paho-old-client-loses-connection", func(t *testing.T) {
		a, err := pahoConnect(t, h, mod1, userName("localhost", mod1), deviceToken("localhost", mod1, keyModA))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := pahoConnect(t, h, mod1, userName("localhost", mod1), deviceToken("localhost", mod1, keyModB)); err != nil {
			t.Fatal(err)
		}
		waitLost(t, a)
		if !h.Connected(mod1) {
			t.Error("the new connection is gone too")
		}
	})
	t.Run("device-and-module-coexist", func(t *testing.T) {
		d := rawSession(t, h, goodConnect(dev1, keyDev1A))
		rawSession(t, h, goodConnect(mod1, keyModA))
		if err := d.Pingreq(); err != nil {
			t.Fatal(err)
		}
		if p, err := d.ReadPacket(5 * time.Second); err != nil || p.Type != mqttraw.TypePingresp {
			t.Fatalf("device connection after module connect: %v %v", p, err)
		}
	})
}

func TestTokenExpiry(t *testing.T) {
	t.Run("fake-clock-and-check", func(t *testing.T) {
		clock := testutil.NewClock(time.Now())
		h := startHub(t, fakehub.Options{Now: clock.Now})
		p := goodConnect(dev1, keyDev1A)
		p.Password = mqttraw.String(token("localhost/devices/dev1", "", keyDev1A, clock.Now().Add(time.Hour)))
		p.Will = &mqttraw.Will{Topic: "devices/dev1/messages/events/", Payload: []byte("bye")}
		c := rawSession(t, h, p)
		h.CheckTokens()
		if !h.Connected(dev1) {
			t.Fatal("dropped before expiry")
		}
		clock.Advance(time.Hour + 4*time.Minute) // within the 5 min grace
		h.CheckTokens()
		if !h.Connected(dev1) {
			t.Fatal("dropped within the grace")
		}
		clock.Advance(2 * time.Minute)
		h.CheckTokens()
		expectClosedSilently(t, c)
		r := waitRejection(t, h, 0, sas.ReasonExpired)
		if r.Identity() != dev1 {
			t.Errorf("identity %v", r.Identity())
		}
		if n := len(h.TelemetrySince(0).All()); n != 0 {
			t.Errorf("%d telemetry messages (the will?), want none on expiry", n)
		}
	})
	t.Run("timer-waits-for-the-injected-clock", func(t *testing.T) {
		clock := testutil.NewClock(time.Now().Truncate(time.Second))
		start := clock.Now()
		reads := make(chan struct{}, 1)
		var watch atomic.Bool
		now := func() time.Time {
			if watch.Load() {
				select {
				case reads <- struct{}{}:
				default:
				}
			}
			return clock.Now()
		}
		h := startHub(t, fakehub.Options{Now: now, TokenExpiryGrace: -1})
		p := goodConnect(dev1, keyDev1A)
		p.Password = mqttraw.String(token("localhost/devices/dev1", "", keyDev1A, start.Add(time.Second)))
		c := rawSession(t, h, p)
		testutil.Eventually(t, "session", func() bool { return h.Connected(dev1) })
		watch.Store(true)
		// The real-time timer fires after 1 s and reads the clock, which has
		// not moved: the token has not expired by it.
		select {
		case <-reads:
		case <-time.After(5 * time.Second):
			t.Fatal("the expiry timer never read the clock")
		}
		clock.Advance(10 * time.Second)
		expectClosedSilently(t, c)
		r := waitRejection(t, h, 0, sas.ReasonExpired)
		if !r.Time.After(start.Add(time.Second)) {
			t.Errorf("expired at %s by the injected clock, before the token's expiry %s", r.Time, start.Add(time.Second))
		}
	})
	t.Run("real-timer", func(t *testing.T) {
		h := startHub(t, fakehub.Options{TokenExpiryGrace: -1})
		r, err := pahoConnect(t, h, dev1, userName("localhost", dev1),
			token("localhost/devices/dev1", "", keyDev1A, time.Now().Add(3*time.Second)))
		if err != nil {
			t.Fatal(err)
		}
		waitLost(t, r)
		waitRejection(t, h, 0, sas.ReasonExpired)
	})
}

func TestKeepAlive(t *testing.T) {
	t.Run("silent-client-closed-after-1.5x", func(t *testing.T) {
		h := startHub(t, fakehub.Options{})
		p := goodConnect(dev1, keyDev1A)
		p.KeepAlive = 1
		c := rawSession(t, h, p)
		start := time.Now()
		expectClosedSilently(t, c)
		// mochi's own deadline is keepalive + keepalive/2 in whole seconds
		// (1 s here). Only an early close is checked: a loaded machine may
		// close late.
		if d := time.Since(start); d < 1400*time.Millisecond {
			t.Errorf("closed after %s of silence, want 1.5 s (1.5 × keep-alive 1 s)", d.Round(time.Millisecond))
		}
		if r := waitRejection(t, h, 0, fakehub.ReasonKeepAlive); !strings.Contains(r.Detail, "1.5s") {
			t.Errorf("detail %q, want the 1.5s time-out", r.Detail)
		}
	})
	t.Run("zero-means-cap", func(t *testing.T) {
		h := startHub(t, fakehub.Options{Quirks: fakehub.Quirks{KeepAliveCap: 2 * time.Second}})
		p := goodConnect(dev1, keyDev1A)
		p.KeepAlive = 0
		c := rawSession(t, h, p)
		expectClosedSilently(t, c)
		waitRejection(t, h, 0, fakehub.ReasonKeepAlive)
	})
	t.Run("large-value-capped", func(t *testing.T) {
		h := startHub(t, fakehub.Options{Quirks: fakehub.Quirks{KeepAliveCap: 2 * time.Second}})
		p := goodConnect(dev1, keyDev1A)
		p.KeepAlive = 3600
		c := rawSession(t, h, p)
		expectClosedSilently(t, c)
	})
	t.Run("pings-keep-it-open", func(t *testing.T) {
		h := startHub(t, fakehub.Options{})
		p := goodConnect(dev1, keyDev1A)
		p.KeepAlive = 2 // closed after 3 s of silence
		c := rawSession(t, h, p)
		for end := time.Now().Add(4 * time.Second); time.Now().Before(end); time.Sleep(300 * time.Millisecond) {
			expectPing(t, c)
		}
	})
}

func TestDisableConnectedDevice(t *testing.T) {
	h := startHub(t, fakehub.Options{})
	d := rawSession(t, h, goodConnect(dev1, keyDev1A))
	m := rawSession(t, h, goodConnect(mod1, keyModA))
	other := rawSession(t, h, goodConnect(dev2, keyDev2A))
	if err := h.Registry().SetStatus("dev1", iothub.StatusDisabled); err != nil {
		t.Fatal(err)
	}
	expectClosedSilently(t, d)
	expectClosedSilently(t, m)
	waitRejection(t, h, 0, sas.ReasonDisabled)
	if err := other.Pingreq(); err != nil {
		t.Fatal(err)
	}
	if p, err := other.ReadPacket(5 * time.Second); err != nil || p.Type != mqttraw.TypePingresp {
		t.Fatalf("other device disturbed: %v %v", p, err)
	}
	ack, _ := rawConnect(t, h, goodConnect(dev1, keyDev1A))
	if ack.ReturnCode != 5 {
		t.Errorf("reconnect of a disabled device: CONNACK %d, want 5", ack.ReturnCode)
	}
	if err := h.Registry().Delete(iothub.Identity{DeviceID: "dev2"}, ""); err != nil {
		t.Fatal(err)
	}
	expectClosedSilently(t, other)
	waitRejection(t, h, 0, sas.ReasonUnknownIdentity)
}
