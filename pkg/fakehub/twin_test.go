package fakehub_test

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"

	paho "github.com/eclipse/paho.mqtt.golang"

	"github.com/hubkit/hubkit/pkg/fakehub"
	"github.com/hubkit/hubkit/pkg/iothub"
)

// twinAnswer publishes on topic and returns the hub's answer on
// $iothub/twin/res/: status, version and body.
func twinAnswer(t *testing.T, d *device, topic, body, rid string) (int, int64, string) {
	t.Helper()
	d.publish(t, topic, body)
	m := d.next(t)
	status, gotRID, version, err := iothub.ParseTwinResponseTopic(m.Topic())
	if err != nil || gotRID != rid {
		t.Fatalf("answer on %q: rid %q, %v; want rid %q", m.Topic(), gotRID, err, rid)
	}
	return status, version, string(m.Payload())
}

func TestTwinDevice(t *testing.T) {
	h := startHub(t, fakehub.Options{})
	d := connectDevice(t, h, dev1, keyDev1A, true)
	d.subscribe(t, iothub.TwinResponseFilter, 0)

	if st, _, body := twinAnswer(t, d, iothub.TwinGetTopic("g1"), "", "g1"); st != 200 || body != `{"desired":{"$version":1},"reported":{"$version":1}}` {
		t.Fatalf("GET = %d %s", st, body)
	}
	for i, patch := range []string{`{"fw":"1.0","temp":20}`, `{"temp":null,"mode":{"a":1}}`} {
		rid := "p" + string(rune('1'+i))
		st, v, body := twinAnswer(t, d, iothub.TwinPatchReportedTopic(rid), patch, rid)
		if st != 204 || v != int64(i+2) || body != "" {
			t.Fatalf("PATCH %d = %d $version=%d %q, want 204 $version=%d", i, st, v, body, i+2)
		}
	}
	for _, bad := range []struct{ name, body string }{
		{"invalid-json", `{"a":`},
		{"not-an-object", `[1]`},
		{"key-with-dollar", `{"$bad":1}`},
		{"too-deep", strings.Repeat(`{"a":`, 12) + "1" + strings.Repeat("}", 12)},
		{"section-over-32k", `{"big":"` + strings.Repeat("x", 33*1024) + `"}`},
	} {
		t.Run(bad.name, func(t *testing.T) {
			if st, v, _ := twinAnswer(t, d, iothub.TwinPatchReportedTopic("bad"), bad.body, "bad"); st != 400 || v != 0 {
				t.Errorf("PATCH %s = %d $version=%d, want 400 without version", bad.name, st, v)
			}
		})
	}
	// Each refused PATCH is recorded, with the reason the device never sees.
	var refused []iothub.Rejection
	for _, r := range h.Rejections() {
		if r.Reason == fakehub.ReasonTwinPatchRefused {
			refused = append(refused, r)
		}
	}
	if len(refused) != 5 || refused[0].Identity() != dev1 || !strings.Contains(refused[0].Detail, "answered 400") {
		t.Errorf("twin-patch-refused rejections = %+v, want 5 for dev1 saying 400 and why", refused)
	}
	tw, err := h.DeviceTwin(dev1)
	if err != nil || tw.ReportedVersion() != 3 || !strings.Contains(string(tw.Reported), `"fw":"1.0"`) || strings.Contains(string(tw.Reported), "temp") {
		t.Fatalf("Twin = %+v, %v", tw, err)
	}

	t.Run("desired-notification", func(t *testing.T) {
		d.subscribe(t, iothub.TwinDesiredFilter, 0)
		for i, patch := range []string{`{"interval":5}`, `{"interval":10}`} {
			tw, err := h.UpdateDesired(context.Background(), dev1, []byte(patch))
			if err != nil {
				t.Fatal(err)
			}
			m := d.next(t)
			v, err := iothub.ParseTwinDesiredPatchTopic(m.Topic())
			want := int64(i + 2)
			if err != nil || v != want || tw.DesiredVersion() != want {
				t.Fatalf("notification %q (%v), twin desired version %d; want $version=%d", m.Topic(), err, tw.DesiredVersion(), want)
			}
			var body map[string]any
			if err := json.Unmarshal(m.Payload(), &body); err != nil || body["$version"] != float64(want) || body["interval"] == nil {
				t.Errorf("notification body %s", m.Payload())
			}
		}
		if st, _, body := twinAnswer(t, d, iothub.TwinGetTopic("g2"), "", "g2"); st != 200 || !strings.Contains(body, `"interval":10`) {
			t.Errorf("GET after desired = %d %s", st, body)
		}
	})
	t.Run("service-errors", func(t *testing.T) {
		if _, err := h.UpdateDesired(context.Background(), dev1, []byte(`{"a":`)); !errors.Is(err, iothub.ErrInvalidArgument) {
			t.Errorf("invalid desired: %v, want ErrInvalidArgument", err)
		}
		if _, err := h.UpdateTwin(context.Background(), dev1, iothub.TwinUpdate{Tags: []byte(`{"x":1}`), IfMatch: "stale"}); !errors.Is(err, iothub.ErrPreconditionFailed) {
			t.Errorf("stale If-Match: %v, want ErrPreconditionFailed", err)
		}
		if _, err := h.Twin(iothub.Identity{DeviceID: "nobody"}); !errors.Is(err, iothub.ErrDeviceNotFound) {
			t.Errorf("Twin(nobody): %v", err)
		}
		tw, _ := h.Twin(dev1)
		tw2, err := h.UpdateTwin(context.Background(), dev1, iothub.TwinUpdate{Tags: []byte(`{"site":"lab"}`), IfMatch: tw.ETag})
		if err != nil || string(tw2.Tags) != `{"site":"lab"}` {
			t.Errorf("tags update: %s %v", tw2.Tags, err)
		}
	})
}

func TestTwinModule(t *testing.T) {
	h := startHub(t, fakehub.Options{})
	d := connectDevice(t, h, mod1, keyModA, true)
	d.subscribe(t, iothub.TwinResponseFilter, 0)
	d.subscribe(t, iothub.TwinDesiredFilter, 0)
	if st, v, _ := twinAnswer(t, d, iothub.TwinPatchReportedTopic("1"), `{"m":1}`, "1"); st != 204 || v != 2 {
		t.Fatalf("module PATCH = %d %d", st, v)
	}
	if _, err := h.UpdateDesired(context.Background(), mod1, []byte(`{"k":"v"}`)); err != nil {
		t.Fatal(err)
	}
	if m := d.next(t); !strings.HasPrefix(m.Topic(), "$iothub/twin/PATCH/properties/desired/?$version=2") {
		t.Errorf("module notification %s", m.Topic())
	}
	dt, _ := h.Twin(dev1)
	if dt.ReportedVersion() != 1 {
		t.Errorf("the device twin changed with its module's: %+v", dt)
	}
}

// A user name without api-version ("{host}/{device}", the SAS doc's and the classic Paho
// sample's form) connects, but IoT Hub answered a reported PATCH from it with 400
// (docs/iothub-behavior.md §1.11); Quirks.TwinPatchWithoutAPIVersion accepts it.
func TestTwinPatchWithoutAPIVersion(t *testing.T) {
	for _, tc := range []struct {
		name       string
		quirks     fakehub.Quirks
		wantStatus int
	}{
		{"refused-by-default", fakehub.Quirks{}, 400},
		{"quirk-accepts", fakehub.Quirks{TwinPatchWithoutAPIVersion: true}, 204},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := startHub(t, fakehub.Options{Quirks: tc.quirks})
			d := connectDevice(t, h, dev1, keyDev1A, true, func(o *paho.ClientOptions) { o.SetUsername("localhost/dev1") })
			d.subscribe(t, iothub.TwinResponseFilter, 0)
			if st, _, _ := twinAnswer(t, d, iothub.TwinGetTopic("g"), "", "g"); st != 200 {
				t.Errorf("GET = %d, want 200", st)
			}
			st, _, _ := twinAnswer(t, d, iothub.TwinPatchReportedTopic("p"), `{"fw":"1.0"}`, "p")
			if st != tc.wantStatus {
				t.Fatalf("PATCH = %d, want %d", st, tc.wantStatus)
			}
			if st != 400 {
				return
			}
			r := waitRejection(t, h, 0, fakehub.ReasonTwinPatchRefused)
			if !strings.Contains(r.Detail, "has no api-version") || len(r.Hints) == 0 ||
				r.Hints[0] != "put the api-version in the user name: localhost/dev1/?api-version="+iothub.DefaultAPIVersion {
				t.Errorf("rejection = %+v, want the missing api-version and the user name to use", r)
			}
			if tw, _ := h.Twin(dev1); tw.ReportedVersion() != 1 {
				t.Errorf("reported version = %d after a refused PATCH, want 1", tw.ReportedVersion())
			}
		})
	}
}
