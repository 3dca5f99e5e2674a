package iothub_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/hubkit/hubkit/pkg/iothub"
)

// The fuzz targets assert, for every input, either a clean rejection (an error of the
// documented type wrapping the documented sentinel) or a round trip: building the parsed value
// again and parsing that gives back the same value. None may panic.

func wantParseError(t *testing.T, err error, sentinel error) {
	t.Helper()
	var pe *iothub.ParseError
	if !errors.As(err, &pe) || !errors.Is(err, sentinel) {
		t.Fatalf("error %v (%T) is not a *ParseError wrapping %v", err, err, sentinel)
	}
	wantNoSecret(t, err)
}

// wantNoSecret checks that an error message never carries what looks like a SAS token.
func wantNoSecret(t *testing.T, err error) {
	t.Helper()
	if l := strings.ToLower(err.Error()); strings.Contains(l, "sig=") || strings.Contains(l, "sharedaccesssignature") || strings.Contains(l, "sharedaccesskey=") {
		t.Fatalf("error %q echoes what looks like a secret", err)
	}
}

func wantTopicErr(t *testing.T, err error) {
	t.Helper()
	var te *iothub.TopicError
	if !errors.As(err, &te) || !errors.Is(err, iothub.ErrTopic) || te.Rule == "" || te.Problem == "" {
		t.Fatalf("error %v (%T) is not a *TopicError with a rule and a problem", err, err)
	}
	wantNoSecret(t, err)
}

func FuzzParseClientID(f *testing.F) {
	for _, s := range []string{"dev1", "dev1/mod1", "a/b/c", "", "dev+", "/m", "d/", "é"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		id, err := iothub.ParseClientID(s)
		if err != nil {
			wantParseError(t, err, iothub.ErrClientID)
			return
		}
		if id.ClientID() != s {
			t.Fatalf("ParseClientID(%q).ClientID() = %q", s, id.ClientID())
		}
	})
}

func FuzzParseUserName(f *testing.F) {
	for _, s := range []string{
		host + "/dev1/?api-version=2021-04-12",
		host + "/dev1/mod1/?api-version=2021-04-12&DeviceClientType=iothubclient%2f1.9.0%20(native%3b%20Linux%3b%20aarch64)",
		host + "/dev1/api-version=2016-11-14", host + "/dev1", "h:8883/d/?model-id=dtmi:a;1&x&y=",
		"h/d/?api-version=2021-04-12&x=a/b", "h/d/a=api-version=", "h/?d/?m/?x", "",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		u, err := iothub.ParseUserName(s)
		if err != nil {
			wantParseError(t, err, iothub.ErrUserName)
			return
		}
		again, err := iothub.ParseUserName(u.String())
		if err != nil {
			t.Fatalf("ParseUserName(%q) = %+v, but its String() %q does not parse: %v", s, u, u.String(), err)
		}
		if diff := cmp.Diff(u, again); diff != "" {
			t.Fatalf("round trip of %q via %q mismatch (-first +second):\n%s", s, u.String(), diff)
		}
	})
}

func FuzzParseProperties(f *testing.F) {
	for _, s := range []string{"k1=v1&k2&k3=", "%24.mid=1&$.ct=a%2Fb", "a=1+2", "a=%zz", "=v", "&&", "a=b=c"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		p, err := iothub.ParseProperties(s)
		if err != nil {
			wantParseError(t, err, iothub.ErrProperties)
			return
		}
		again, err := iothub.ParseProperties(p.Encode())
		if err != nil {
			t.Fatalf("ParseProperties(%q) ok, but its Encode() %q does not parse: %v", s, p.Encode(), err)
		}
		if diff := cmp.Diff(p, again); diff != "" {
			t.Fatalf("round trip of %q mismatch (-first +second):\n%s", s, diff)
		}
		_, _ = p.System(), p.Application()
	})
}

func FuzzParseTelemetryTopic(f *testing.F) {
	for _, s := range []string{
		"devices/dev1/messages/events/", "devices/dev1/messages/events", "devices/d/modules/m/messages/events/%24.mid=1&a",
		"devices/d/messages/events/?a=1", "devices/d/messages/events/a=b/c", "devices/d/modules//messages/events/",
	} {
		f.Add(s, false, false)
	}
	f.Fuzz(func(t *testing.T, s string, lenient, strict bool) {
		var opts []iothub.ParseOption
		if lenient {
			opts = append(opts, iothub.AllowQuestionMarkBag())
		}
		if strict {
			opts = append(opts, iothub.RequireEscapedProperties())
		}
		id, p, err := iothub.ParseTelemetryTopic(s, opts...)
		if err != nil {
			wantTopicErr(t, err)
			return
		}
		// What the builder emits passes even the strict parser.
		topic := iothub.TelemetryTopic(id, p)
		id2, p2, err := iothub.ParseTelemetryTopic(topic, iothub.RequireEscapedProperties())
		if err != nil || id2 != id || !cmp.Equal(p, p2) {
			t.Fatalf("ParseTelemetryTopic(%q) = %v, %v; rebuilt %q parses as %v, %v, %v", s, id, p, topic, id2, p2, err)
		}
	})
}

func FuzzParseC2DTopic(f *testing.F) {
	for _, s := range []string{
		"devices/pubsub/messages/devicebound/%24.mid=2c&%24.to=%2Fdevices%2Fpubsub%2Fmessages%2Fdevicebound&%24.ce=utf-8&iothub-ack=none",
		"devices/d/modules/m/messages/deviceBound/%24.cid&%24.uid", "devices/d/messages/devicebound",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		id, p, err := iothub.ParseC2DTopic(s)
		if err != nil {
			wantTopicErr(t, err)
			return
		}
		topic := iothub.C2DTopic(id, p)
		id2, p2, err := iothub.ParseC2DTopic(topic)
		if err != nil || id2 != id || !cmp.Equal(p, p2) {
			t.Fatalf("ParseC2DTopic(%q) = %v, %v; rebuilt %q parses as %v, %v, %v", s, id, p, topic, id2, p2, err)
		}
	})
}

func FuzzParseTwinResponseTopic(f *testing.F) {
	for _, s := range []string{
		"$iothub/twin/res/200/?$rid=1", "$iothub/twin/res/204/?$rid=1&$version=2", "$iothub/twin/res/429/?%24rid=a%20b",
		"$iothub/twin/res/-1/?$rid=1&$version=-0", "$iothub/twin/res/x/?$rid=1",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		status, rid, version, err := iothub.ParseTwinResponseTopic(s)
		if err != nil {
			wantTopicErr(t, err)
			return
		}
		topic := iothub.TwinResponseTopic(status, rid, version)
		s2, r2, v2, err := iothub.ParseTwinResponseTopic(topic)
		if err != nil || s2 != status || r2 != rid || v2 != version {
			t.Fatalf("ParseTwinResponseTopic(%q) = %d, %q, %d; rebuilt %q parses as %d, %q, %d, %v", s, status, rid, version, topic, s2, r2, v2, err)
		}
	})
}

func FuzzParseMethodRequestTopic(f *testing.F) {
	for _, s := range []string{"$iothub/methods/POST/reboot/?$rid=1", "$iothub/methods/POST//?$rid=1", "$iothub/methods/POST/a/b/?$rid=1"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		name, rid, err := iothub.ParseMethodRequestTopic(s)
		if err != nil {
			wantTopicErr(t, err)
			return
		}
		topic := iothub.MethodRequestTopic(name, rid)
		n2, r2, err := iothub.ParseMethodRequestTopic(topic)
		if err != nil || n2 != name || r2 != rid {
			t.Fatalf("ParseMethodRequestTopic(%q) = %q, %q; rebuilt %q parses as %q, %q, %v", s, name, rid, topic, n2, r2, err)
		}
	})
}

func FuzzClassifyPublish(f *testing.F) {
	for _, s := range []string{
		"devices/dev1/messages/events/%24.mid=1", "devices/dev2/messages/events/", "devices/dev1/modules/mod1/messages/events",
		"$iothub/twin/GET/?$rid=1", "$iothub/twin/PATCH/properties/reported/?$rid=1&x", "$iothub/methods/res/200/?$rid=1",
		"$iothub/methods/res/+/?$rid=1", "$iothub/twin/res/200/?$rid=1", "x",
	} {
		f.Add("dev1", s)
		f.Add("dev1/mod1", s)
	}
	f.Fuzz(func(t *testing.T, clientID, topic string) {
		self, err := iothub.ParseClientID(clientID)
		if err != nil {
			return
		}
		got, err := iothub.ClassifyPublish(self, topic)
		if err != nil {
			wantTopicErr(t, err)
			return
		}
		if got.Identity != self {
			t.Fatalf("ClassifyPublish(%v, %q) accepted identity %v", self, topic, got.Identity)
		}
		var rebuilt string
		switch got.Kind {
		case iothub.TopicTelemetry:
			rebuilt = iothub.TelemetryTopic(self, got.Properties)
		case iothub.TopicTwinGet:
			rebuilt = iothub.TwinGetTopic(got.RID)
		case iothub.TopicTwinPatchReported:
			rebuilt = iothub.TwinPatchReportedTopic(got.RID)
		case iothub.TopicMethodResponse:
			rebuilt = iothub.MethodResponseTopic(got.Status, got.RID)
		default:
			t.Fatalf("ClassifyPublish(%v, %q) kind = %v", self, topic, got.Kind)
		}
		again, err := iothub.ClassifyPublish(self, rebuilt)
		if err != nil || again.Kind != got.Kind || again.RID != got.RID || again.Status != got.Status {
			t.Fatalf("ClassifyPublish(%v, %q) = %+v; rebuilt %q gives %+v, %v", self, topic, got, rebuilt, again, err)
		}
		if got.Kind == iothub.TopicTelemetry && !cmp.Equal(again.Properties, got.Properties) {
			t.Fatalf("telemetry properties changed: %v -> %v", got.Properties, again.Properties)
		}
	})
}

func FuzzClassifySubscribe(f *testing.F) {
	for _, s := range []string{
		"devices/dev1/messages/devicebound/#", "devices/+/messages/devicebound/#", "devices/dev1/modules/mod1/#",
		"$iothub/twin/res/#", "$iothub/methods/POST/x/#", "devices/#", "#", "+", "devices/dev1/messages/devicebound/+",
	} {
		f.Add("dev1", s)
		f.Add("dev1/mod1", s)
	}
	f.Fuzz(func(t *testing.T, clientID, filter string) {
		self, err := iothub.ParseClientID(clientID)
		if err != nil {
			return
		}
		kind, err := iothub.ClassifySubscribe(self, filter)
		if err != nil {
			wantTopicErr(t, err)
			if kind != iothub.TopicUnknown {
				t.Fatalf("ClassifySubscribe(%v, %q) = %v with error %v", self, filter, kind, err)
			}
			return
		}
		if !kind.IsFilter() {
			t.Fatalf("ClassifySubscribe(%v, %q) = %v, not a filter kind", self, filter, kind)
		}
	})
}
