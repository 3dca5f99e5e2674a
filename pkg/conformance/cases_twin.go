package conformance

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/hubkit/hubkit/pkg/device"
)

const docTwin = "learn.microsoft.com/azure/iot-hub/iot-hub-devguide-device-twins"

var twinCases = []Case{
	{
		ID:          "twin/get/initial",
		Requirement: "A twin GET on a new device answers 200 with {\"desired\":{\"$version\":1},\"reported\":{\"$version\":1}}.",
		Section:     "docs/iothub-behavior.md §4.3, §10.13; " + docMQTT + " (Retrieving a device twin's properties)",
		Certainty:   "C/O",
		Needs:       []string{NeedTwin},
		run: func(e *env) {
			cl := e.newClient(e.dev, nil)
			e.connectClient(cl, "reference client")
			tw := e.getTwin(cl)
			for _, s := range []struct {
				name    string
				doc     json.RawMessage
				version int64
			}{{"desired", tw.Desired, tw.DesiredVersion}, {"reported", tw.Reported, tw.ReportedVersion}} {
				if s.version != 1 {
					e.Errorf("new twin %s $version = %d, want 1", s.name, s.version)
				}
				var m map[string]any
				if err := json.Unmarshal(s.doc, &m); err != nil || len(m) != 1 {
					e.Errorf("new twin %s = %s, want {\"$version\":1}", s.name, s.doc)
				}
			}
		},
	},
	{
		ID:          "twin/patch/version",
		Requirement: "A reported-properties PATCH answers 204 with $version=2 on a new twin, and a later GET shows the property.",
		Section:     "docs/iothub-behavior.md §4.3, §10.13; " + docMQTT + " (Update device twin's reported properties)",
		Certainty:   "C/O",
		Needs:       []string{NeedTwin},
		run: func(e *env) {
			cl := e.newClient(e.dev, nil)
			e.connectClient(cl, "reference client")
			ctx, cancel := e.waitCtx(answerWithin)
			defer cancel()
			v, err := cl.UpdateReported(ctx, map[string]any{"conformance": 1})
			if err != nil {
				e.Fatalf("PATCH reported {\"conformance\":1}: %v, want 204", err)
			}
			if v != 2 {
				e.Errorf("PATCH reported on a new twin: $version = %d, want 2", v)
			}
			tw := e.getTwin(cl)
			var rep map[string]any
			_ = json.Unmarshal(tw.Reported, &rep)
			if rep["conformance"] != float64(1) || tw.ReportedVersion != v {
				e.Errorf("GET after the PATCH: reported = %s (version %d), want conformance=1 and $version %d", tw.Reported, tw.ReportedVersion, v)
			}
		},
	},
	{
		ID:          "twin/patch/invalid-400",
		Requirement: "A reported PATCH that is not valid JSON, or uses a key with '.', is answered 400.",
		Section:     "docs/iothub-behavior.md §4.3 (Status codes, Validation); " + docTwin,
		Certainty:   "C",
		Needs:       []string{NeedTwin},
		run: func(e *env) {
			cl := e.newClient(e.dev, nil)
			e.connectClient(cl, "reference client")
			for _, patch := range []string{`{"a":`, `{"a.b":1}`} {
				ctx, cancel := e.waitCtx(answerWithin)
				_, err := cl.UpdateReported(ctx, []byte(patch))
				cancel()
				var se *device.StatusError
				if !errors.As(err, &se) || se.Status != 400 {
					e.Errorf("PATCH reported %s: %v, want status 400", patch, errOrNil(err))
				}
			}
		},
	},
	{
		ID:          "twin/desired/notification",
		Requirement: "A desired-properties change made by the service reaches the connected device on $iothub/twin/PATCH/properties/desired/?$version=n, the body carrying the change and $version.",
		Section:     "docs/iothub-behavior.md §4.3 (Desired updates), §10.13; " + docMQTT,
		Certainty:   "C",
		Needs:       []string{NeedTwin, NeedTwinEditor},
		run: func(e *env) {
			type patch struct {
				body    json.RawMessage
				version int64
			}
			got := make(chan patch, 8)
			cl := e.newClient(e.dev, nil)
			cl.OnDesired(func(_ context.Context, p json.RawMessage, v int64) { got <- patch{p, v} })
			e.connectClient(cl, "reference client subscribed to desired properties")
			ctx, cancel := e.waitCtx(answerWithin)
			defer cancel()
			if err := e.target.(TwinEditor).UpdateDesired(ctx, e.dev.DeviceID, []byte(`{"fan":"on"}`)); err != nil {
				e.Fatalf("service update of desired {\"fan\":\"on\"}: %v", err)
			}
			timeout := time.After(answerWithin)
			for {
				select {
				case p := <-got:
					var m map[string]any
					_ = json.Unmarshal(p.body, &m)
					if m["fan"] != "on" {
						continue // the full desired document after (re)connecting
					}
					if _, ok := m["$version"]; !ok || p.version < 2 {
						e.Errorf("desired notification %s with version %d, want \"$version\" in the body and a version > 1", p.body, p.version)
					}
					return
				case <-timeout:
					e.Fatalf("no desired-properties notification within %v of the change", answerWithin)
				}
			}
		},
	},
}

func (e *env) getTwin(cl *device.Client) device.Twin {
	e.t.Helper()
	ctx, cancel := e.waitCtx(answerWithin)
	defer cancel()
	tw, err := cl.GetTwin(ctx)
	if err != nil {
		e.Fatalf("twin GET: %v, want 200", err)
	}
	return tw
}

func errOrNil(err error) string {
	if err == nil {
		return "accepted"
	}
	return fmt.Sprint(err)
}
