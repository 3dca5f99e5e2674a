package iothub_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/hubkit/hubkit/pkg/iothub"
)

func TestDPSTopics(t *testing.T) {
	// The wire forms of docs/iothub-behavior.md §7.
	for _, tt := range []struct{ got, want string }{
		{iothub.DPSRegisterTopic("1"), "$dps/registrations/PUT/iotdps-register/?$rid=1"},
		{iothub.DPSPollTopic("2", "4.d0a6b1c2.6e5d"), "$dps/registrations/GET/iotdps-get-operationstatus/?$rid=2&operationId=4.d0a6b1c2.6e5d"},
		{iothub.DPSResponseTopic(202, "1", 3), "$dps/registrations/res/202/?$rid=1&retry-after=3"},
		{iothub.DPSResponseTopic(200, "2", 0), "$dps/registrations/res/200/?$rid=2"},
	} {
		if tt.got != tt.want {
			t.Errorf("built %q, want %q", tt.got, tt.want)
		}
	}
	for _, rid := range rids {
		if got, err := iothub.ParseDPSRegisterTopic(iothub.DPSRegisterTopic(rid)); err != nil || got != rid {
			t.Errorf("ParseDPSRegisterTopic(DPSRegisterTopic(%q)) = %q, %v", rid, got, err)
		}
		r, op, err := iothub.ParseDPSPollTopic(iothub.DPSPollTopic(rid, "op&"+rid))
		if err != nil || r != rid || op != "op&"+rid {
			t.Errorf("ParseDPSPollTopic(DPSPollTopic(%q)) = %q, %q, %v", rid, r, op, err)
		}
		for _, status := range []int{200, 202, 401, 429} {
			for _, ra := range []int{0, 3} {
				s, r, a, err := iothub.ParseDPSResponseTopic(iothub.DPSResponseTopic(status, rid, ra))
				if err != nil || s != status || r != rid || a != ra {
					t.Errorf("ParseDPSResponseTopic(DPSResponseTopic(%d, %q, %d)) = %d, %q, %d, %v", status, rid, ra, s, r, a, err)
				}
			}
		}
	}
}

func TestClassifyDPS(t *testing.T) {
	tests := []struct {
		name    string
		topic   string
		want    iothub.DevicePublish
		rule    iothub.TopicRule
		wantErr string
	}{
		{name: "register", topic: "$dps/registrations/PUT/iotdps-register/?$rid=1",
			want: iothub.DevicePublish{Kind: iothub.TopicDPSRegister, RID: "1", Properties: iothub.Properties{{Key: "$rid", Value: "1"}}}},
		{name: "poll", topic: "$dps/registrations/GET/iotdps-get-operationstatus/?$rid=2&operationId=op1",
			want: iothub.DevicePublish{Kind: iothub.TopicDPSPoll, RID: "2", OperationID: "op1",
				Properties: iothub.Properties{{Key: "$rid", Value: "2"}, {Key: "operationId", Value: "op1"}}}},
		{name: "register-no-rid", topic: "$dps/registrations/PUT/iotdps-register/", rule: iothub.RuleMissingRID, wantErr: "DPS register request without $rid"},
		{name: "poll-no-operation", topic: "$dps/registrations/GET/iotdps-get-operationstatus/?$rid=2", rule: iothub.RuleMalformed, wantErr: "DPS poll without operationId"},
		{name: "response", topic: "$dps/registrations/res/200/?$rid=1", rule: iothub.RuleDirection, wantErr: "publish to a DPS response topic"},
		{name: "hub-topic", topic: "devices/d/messages/events/", rule: iothub.RuleUnknownTopic, wantErr: "unknown DPS topic"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := iothub.ClassifyDPSPublish(tt.topic)
			if tt.wantErr != "" {
				wantTopicError(t, "ClassifyDPSPublish("+tt.topic+")", err, tt.topic, tt.rule, tt.wantErr)
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("ClassifyDPSPublish(%q) mismatch (-want +got):\n%s", tt.topic, diff)
			}
		})
	}
	if k, err := iothub.ClassifyDPSSubscribe(iothub.DPSResponseFilter); err != nil || k != iothub.FilterDPSResponse {
		t.Errorf("ClassifyDPSSubscribe(%q) = %v, %v", iothub.DPSResponseFilter, k, err)
	}
	for _, f := range []string{"$dps/#", "$dps/registrations/res/+/#", "$dps/registrations/res/200"} {
		_, err := iothub.ClassifyDPSSubscribe(f)
		var te *iothub.TopicError
		if !errors.As(err, &te) {
			t.Errorf("ClassifyDPSSubscribe(%q) = %v, want a *TopicError", f, err)
		}
	}
}

func TestParseDPSUserName(t *testing.T) {
	tests := []struct {
		name      string
		in        string
		want      iothub.DPSUserName
		canonical bool
		wantErr   string
	}{
		{name: "documented", in: "0ne00000A0A/registrations/sn-007-888-abc-mac-a1-b2-c3-d4-e5-f6/api-version=2019-03-31", canonical: true,
			want: iothub.DPSUserName{IDScope: "0ne00000A0A", RegistrationID: "sn-007-888-abc-mac-a1-b2-c3-d4-e5-f6", APIVersion: "2019-03-31"}},
		{name: "client-version", in: "0ne00000A0A/registrations/dev1/api-version=2019-03-31&ClientVersion=azure-iot-provisioning-devicesdk%2F1.0", canonical: true,
			want: iothub.DPSUserName{IDScope: "0ne00000A0A", RegistrationID: "dev1", APIVersion: "2019-03-31", ClientVersion: "azure-iot-provisioning-devicesdk/1.0"}},
		{name: "question-mark-tolerated", in: "0ne1/registrations/dev1/?api-version=2019-03-31&x=1",
			want: iothub.DPSUserName{IDScope: "0ne1", RegistrationID: "dev1", APIVersion: "2019-03-31", Extra: iothub.Properties{{Key: "x", Value: "1"}}}},
		{name: "no-api-version", in: "0ne1/registrations/dev1/", wantErr: "api-version is missing or empty"},
		{name: "no-bag", in: "0ne1/registrations/dev1", wantErr: "no api-version after the registration ID"},
		{name: "hub-user-name", in: "h.azure-devices.net/dev1/?api-version=2021-04-12", wantErr: "no /registrations/"},
		{name: "bad-registration-id", in: "0ne1/registrations/dev$1/api-version=2019-03-31", wantErr: `registration ID "dev$1": character '$' at position 4`},
		{name: "registration-id-ends-in-dot", in: "0ne1/registrations/dev1./api-version=2019-03-31", wantErr: "must end in a letter, digit or '-'"},
		{name: "bad-api-version", in: "0ne1/registrations/dev1/api-version=2019", wantErr: `api-version "2019" is not a date`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := iothub.ParseDPSUserName(tt.in)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) || !errors.Is(err, iothub.ErrUserName) {
					t.Fatalf("ParseDPSUserName(%q) error = %v, want ErrUserName containing %q", tt.in, err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("ParseDPSUserName(%q) error = %v", tt.in, err)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("ParseDPSUserName(%q) mismatch (-want +got):\n%s", tt.in, diff)
			}
			if tt.canonical && got.String() != tt.in {
				t.Errorf("String() = %q, want %q", got.String(), tt.in)
			}
			again, err := iothub.ParseDPSUserName(got.String())
			if err != nil || !cmp.Equal(got, again) {
				t.Errorf("round trip via %q = %+v, %v", got.String(), again, err)
			}
		})
	}
}

func TestValidateRegistrationID(t *testing.T) {
	for _, tt := range []struct {
		id string
		ok bool
	}{
		{"sn-007-888-abc-mac-a1-b2-c3-d4-e5-f6", true}, {"Dev_1.a:b", true}, {"dev-", true}, {strings.Repeat("a", 128), true},
		{"", false}, {strings.Repeat("a", 129), false}, {"dev_", false}, {"dev:", false}, {"a b", false}, {"dev/1", false},
	} {
		if err := iothub.ValidateRegistrationID(tt.id); (err == nil) != tt.ok {
			t.Errorf("ValidateRegistrationID(%q) = %v, want ok=%v", tt.id, err, tt.ok)
		}
	}
}

func FuzzParseDPSUserName(f *testing.F) {
	f.Add("0ne00000A0A/registrations/dev1/api-version=2019-03-31&ClientVersion=x%2F1")
	f.Add("0ne1/registrations/dev1/?api-version=2019-03-31&x")
	f.Fuzz(func(t *testing.T, s string) {
		u, err := iothub.ParseDPSUserName(s)
		if err != nil {
			wantParseError(t, err, iothub.ErrUserName)
			return
		}
		again, err := iothub.ParseDPSUserName(u.String())
		if err != nil || !cmp.Equal(u, again) {
			t.Fatalf("ParseDPSUserName(%q) = %+v; String() %q parses as %+v, %v", s, u, u.String(), again, err)
		}
	})
}

func FuzzParseDPSResponseTopic(f *testing.F) {
	f.Add("$dps/registrations/res/202/?$rid=1&retry-after=3")
	f.Add("$dps/registrations/res/200/?$rid=1")
	f.Fuzz(func(t *testing.T, s string) {
		status, rid, ra, err := iothub.ParseDPSResponseTopic(s)
		if err != nil {
			wantTopicErr(t, err)
			return
		}
		s2, r2, a2, err := iothub.ParseDPSResponseTopic(iothub.DPSResponseTopic(status, rid, ra))
		if err != nil || s2 != status || r2 != rid || a2 != ra {
			t.Fatalf("ParseDPSResponseTopic(%q) = %d, %q, %d; rebuilt parses as %d, %q, %d, %v", s, status, rid, ra, s2, r2, a2, err)
		}
	})
}
