package iothub_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/hubkit/hubkit/pkg/iothub"
)

const host = "contoso.azure-devices.net"

func TestParseUserName(t *testing.T) {
	dev := iothub.Identity{DeviceID: "dev1"}
	mod := iothub.Identity{DeviceID: "dev1", ModuleID: "mod1"}
	tests := []struct {
		name      string
		in        string
		want      iothub.UserName
		canonical bool // String() gives back the input exactly
		wantErr   string
	}{
		{name: "documented-device", in: host + "/dev1/?api-version=2021-04-12", canonical: true,
			want: iothub.UserName{Host: host, Identity: dev, APIVersion: "2021-04-12"}},
		{name: "documented-module", in: host + "/dev1/mod1/?api-version=2021-04-12", canonical: true,
			want: iothub.UserName{Host: host, Identity: mod, APIVersion: "2021-04-12"}},
		// docs/iothub-behavior.md §1.9: the C SDK's DeviceClientType as it surfaces in connection logs.
		{name: "c-sdk-device-client-type",
			in: host + "/dev1/?api-version=2020-09-30&DeviceClientType=iothubclient%2f1.9.0%20(native%3b%20Linux%3b%20aarch64)",
			want: iothub.UserName{Host: host, Identity: dev, APIVersion: "2020-09-30",
				DeviceClientType: "iothubclient/1.9.0 (native; Linux; aarch64)"}},
		{name: "model-id-raw", in: host + "/dev1/?api-version=2020-09-30&model-id=dtmi:com:example:Thermostat;1",
			want: iothub.UserName{Host: host, Identity: dev, APIVersion: "2020-09-30", ModelID: "dtmi:com:example:Thermostat;1"}},
		{name: "model-id-encoded", in: host + "/dev1/?api-version=2020-09-30&model-id=dtmi%3Acom%3Aexample%3AThermostat%3B1", canonical: true,
			want: iothub.UserName{Host: host, Identity: dev, APIVersion: "2020-09-30", ModelID: "dtmi:com:example:Thermostat;1"}},
		{name: "all-fields-and-extra", in: host + "/dev1/mod1/?api-version=2021-04-12&DeviceClientType=hubkit%2F0.1&model-id=dtmi%3Ax%3By%3B1&auth-chain=edge1&flag",
			canonical: true,
			want: iothub.UserName{Host: host, Identity: mod, APIVersion: "2021-04-12", DeviceClientType: "hubkit/0.1",
				ModelID: "dtmi:x;y;1", Extra: iothub.Properties{{Key: "auth-chain", Value: "edge1"}, {Key: "flag", Null: true}}}},
		// docs/iothub-behavior.md §1.11(a): old docs and amenzhinsky/iothub.
		{name: "legacy-no-question-mark", in: host + "/dev1/api-version=2016-11-14", canonical: true,
			want: iothub.UserName{Host: host, Identity: dev, APIVersion: "2016-11-14", Form: iothub.FormLegacyNoQuestionMark}},
		{name: "legacy-module", in: host + "/dev1/mod1/api-version=2020-09-30&DeviceClientType=x", canonical: true,
			want: iothub.UserName{Host: host, Identity: mod, APIVersion: "2020-09-30", DeviceClientType: "x", Form: iothub.FormLegacyNoQuestionMark}},
		// docs/iothub-behavior.md §1.11(b): the SAS doc's "Protocol specifics".
		{name: "bare", in: host + "/dev1", canonical: true,
			want: iothub.UserName{Host: host, Identity: dev, Form: iothub.FormBare}},
		{name: "bare-module", in: host + "/dev1/mod1", canonical: true,
			want: iothub.UserName{Host: host, Identity: mod, Form: iothub.FormBare}},
		{name: "host-with-port", in: "localhost:8883/dev1/?api-version=2021-04-12", canonical: true,
			want: iothub.UserName{Host: "localhost:8883", Identity: dev, APIVersion: "2021-04-12"}},
		{name: "ipv6-host", in: "[::1]:8883/dev1/?api-version=2021-04-12", canonical: true,
			want: iothub.UserName{Host: "[::1]:8883", Identity: dev, APIVersion: "2021-04-12"}},
		{name: "ipv6-host-no-port", in: "[fe80::1]/dev1", canonical: true,
			want: iothub.UserName{Host: "[fe80::1]", Identity: dev, Form: iothub.FormBare}},
		{name: "preview-api-version", in: host + "/dev1/?api-version=2021-06-30-preview", canonical: true,
			want: iothub.UserName{Host: host, Identity: dev, APIVersion: "2021-06-30-preview"}},
		{name: "query-without-api-version", in: host + "/dev1/?DeviceClientType=x", canonical: true,
			want: iothub.UserName{Host: host, Identity: dev, DeviceClientType: "x"}},
		{name: "empty-query", in: host + "/dev1/?", canonical: true,
			want: iothub.UserName{Host: host, Identity: dev}},
		{name: "duplicate-key-first-wins", in: host + "/dev1/?api-version=2021-04-12&api-version=bogus&x=1&x=2",
			want: iothub.UserName{Host: host, Identity: dev, APIVersion: "2021-04-12", Extra: iothub.Properties{{Key: "x", Value: "1"}}}},
		{name: "ids-not-decoded", in: host + "/dev%41/?api-version=2021-04-12", canonical: true,
			want: iothub.UserName{Host: host, Identity: iothub.Identity{DeviceID: "dev%41"}, APIVersion: "2021-04-12"}},
		{name: "unencoded-slash-in-value", in: host + "/dev1/?api-version=2021-04-12&DeviceClientType=paho/1.5 go",
			want: iothub.UserName{Host: host, Identity: dev, APIVersion: "2021-04-12", DeviceClientType: "paho/1.5 go"}},
		{name: "plus-is-not-space", in: host + "/dev1/?api-version=2021-04-12&DeviceClientType=a+b",
			want: iothub.UserName{Host: host, Identity: dev, APIVersion: "2021-04-12", DeviceClientType: "a+b"}},

		{name: "no-device", in: host, wantErr: "no '/' after the host name"},
		{name: "empty-host", in: "/dev1/?api-version=2021-04-12", wantErr: `host "": is empty`},
		{name: "empty-device", in: host + "//?api-version=2021-04-12", wantErr: `device ID "": must not be empty`},
		{name: "trailing-slash", in: host + "/dev1/", wantErr: "empty segment after the device ID"},
		{name: "too-many-segments", in: host + "/devices/dev1/modules/mod1", wantErr: "found 5 '/'-separated segments"},
		{name: "bad-device-char", in: host + "/dev#1/?api-version=2021-04-12", wantErr: `device ID "dev#1": character '#' at position 4`},
		{name: "bad-api-version", in: host + "/dev1/?api-version=2021-4-12", wantErr: `api-version "2021-4-12" is not a date (expected YYYY-MM-DD or YYYY-MM-DD-preview`},
		{name: "api-version-word", in: host + "/dev1/?api-version=latest", wantErr: `api-version "latest" is not a date`},
		{name: "empty-api-version", in: host + "/dev1/?api-version=", wantErr: "api-version is present but empty"},
		{name: "null-api-version", in: host + "/dev1/?api-version&x=1", wantErr: "api-version is present but empty"},
		{name: "bad-month", in: host + "/dev1/?api-version=2021-13-01", wantErr: `api-version "2021-13-01" is not a date`},
		{name: "bad-escape", in: host + "/dev1/?api-version=2021-04-12&DeviceClientType=%G1", wantErr: `value of key "DeviceClientType": bad percent-escape "%G1"`},
		{name: "bad-port", in: "localhost:88x3/dev1", wantErr: `port "88x3" is not a number`},
		{name: "bad-ipv6", in: "[::g]/dev1", wantErr: `"[::g]" is not an IPv6 address`},
		{name: "ipv6-junk-after", in: "[::1]x/dev1", wantErr: `expected ':' and a port after ']', found "x"`},
		{name: "ipv6-unclosed", in: "[::1/dev1", wantErr: `has '[' without ']'`},
		{name: "bad-host-char", in: "host name/dev1", wantErr: `character ' ' (U+0020) at position 5 is not allowed in a host name`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := iothub.ParseUserName(tt.in)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("ParseUserName(%q) error = %v, want it to contain %q", tt.in, err, tt.wantErr)
				}
				if !errors.Is(err, iothub.ErrUserName) {
					t.Errorf("error %v does not wrap ErrUserName", err)
				}
				return
			}
			if err != nil {
				t.Fatalf("ParseUserName(%q) error = %v", tt.in, err)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("ParseUserName(%q) mismatch (-want +got):\n%s", tt.in, diff)
			}
			s := got.String()
			if tt.canonical && s != tt.in {
				t.Errorf("String() = %q, want the input %q", s, tt.in)
			}
			again, err := iothub.ParseUserName(s)
			if err != nil {
				t.Fatalf("ParseUserName(String()) = %v (String() = %q)", err, s)
			}
			if diff := cmp.Diff(got, again); diff != "" {
				t.Errorf("round trip via %q mismatch (-want +got):\n%s", s, diff)
			}
		})
	}
}

func TestUserNameString(t *testing.T) {
	u := iothub.UserName{Host: host, Identity: iothub.Identity{DeviceID: "d"}, APIVersion: iothub.DefaultAPIVersion,
		DeviceClientType: "hubkit/0.1 (go; linux)"}
	want := host + "/d/?api-version=2021-04-12&DeviceClientType=hubkit%2F0.1%20%28go%3B%20linux%29"
	if got := u.String(); got != want {
		t.Errorf("String() = %q, want %q", got, want)
	}
}

func TestUserNameHostName(t *testing.T) {
	for _, tt := range []struct{ host, want string }{
		{"h.example", "h.example"}, {"h.example:8883", "h.example"}, {"[::1]:8883", "[::1]"}, {"localhost:1", "localhost"},
	} {
		if got := (iothub.UserName{Host: tt.host}).HostName(); got != tt.want {
			t.Errorf("UserName{Host: %q}.HostName() = %q, want %q", tt.host, got, tt.want)
		}
	}
}

func TestUserNameFormString(t *testing.T) {
	for f, want := range map[iothub.UserNameForm]string{
		iothub.FormQuery: "query", iothub.FormLegacyNoQuestionMark: "legacy-no-question-mark", iothub.FormBare: "bare", 7: "UserNameForm(7)",
	} {
		if got := f.String(); got != want {
			t.Errorf("UserNameForm(%d).String() = %q, want %q", int(f), got, want)
		}
	}
}
