package grade_test

import (
	"context"
	"net"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/hubkit/hubkit/internal/nodetest"
	"github.com/hubkit/hubkit/pkg/fakehub"
	"github.com/hubkit/hubkit/pkg/fakehub/fakehubtest"
	"github.com/hubkit/hubkit/pkg/grade"
	"github.com/hubkit/hubkit/pkg/iothub"
	"github.com/hubkit/hubkit/pkg/sas"
)

// sdkKey is the key of the SDK devices graded here (base64, as in a connection string).
const sdkKey = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8="

// TestGradeNodeDeviceSDK grades the official Azure IoT Node.js device SDK (azure-iot-device
// 1.18.4 + azure-iot-device-mqtt 1.16.4, pinned in testdata/node/package-lock.json) written as
// the SDK's own samples are (testdata/node/sample.js), in another process, on its own clock.
//
// Timing: the defaults of fakehub grade (what a user gets), except RealTimeBudget. The
// sample asks the SDK (setOptions tokenRenewal) for 60 s tokens renewed 20 s before expiry,
// so the token case waits at most 60 s of real time; a budget of 90 s leaves room for a
// loaded machine. Reconnect (60 s) and Answer (10 s) are far above the SDK's first retries
// (100 ms), and the back-off episodes (8-30 s) cover its retry schedule well beyond that.
//
// The SDK passes everything it can be put through except what it really does wrong
// (sources: node_modules of the pinned versions):
//
//   - device/twin/subscribes-before-get and device/restart/recovers: after the hub's
//     restart (CONNACK session present 0) it sends its twin GET without subscribing to
//     $iothub/twin/res/# again, and never subscribes to the desired-properties topic again.
//     azure-iot-device-mqtt/dist/mqtt_twin_client.js keeps each twin topic in a state
//     machine (_topicFsm) that enters 'subscribed' once and is never reset on a disconnect;
//     getTwin and enableTwinDesiredPropertiesUpdates subscribe only "if not already
//     subscribed" (SRS_NODE_DEVICE_MQTT_TWIN_CLIENT_16_002, _16_019): it relies on its
//     clean-session-false session and ignores session present. C2D and methods come back
//     (mqtt.js subscribes them again on each re-enable). docs/iothub-behavior.md §1.16, §4.3.
//   - device/throttle/backs-off: MQTT cannot carry 429001 (the hub closes the connection,
//     §6.2), so each refused sendEvent is retried by its own RetryOperation
//     (azure-iot-device/dist/internal_client.js sendEvent) with the normal, not the throttled,
//     parameters of ExponentialBackOffWithJitter (azure-iot-common/dist/retry_policy.js:
//     throttled only for a ThrottlingError), whose jitter is drawn from [0, C*(Jd-Ju)]
//     (0-25 ms) rather than [C*(1-Jd), C*(1-Ju)] (50-75 ms) as its own formula
//     (SRS_NODE_COMMON_RETRY_POLICY_16_007) says: waits of 100 ms plus a little, about 4
//     refused messages a second against one every 2 s normally.
//   - device/reconnect/backoff-with-jitter, in most grades: every pending operation retries
//     on its own schedule (the re-enabling of C2D in device_client.js
//     _deviceDisconnectHandler, of methods and the twin in internal_client.js
//     _disconnectHandler, and each sendEvent the sample's timer keeps making), each starting
//     at 100 ms, and each drives its own connection attempt: the hub sees 10 or more CONNECTs
//     a second (a median wait below 100 ms after each refusal). How many operations are
//     pending when the hub closes the connection varies, and an episode with few of them
//     shows a growing, jittered back-off: the case then passes. Either verdict is the SDK's.
func TestGradeNodeDeviceSDK(t *testing.T) {
	nodetest.Install(t)
	hub := fakehubtest.Start(t, fakehub.Options{})
	id := iothub.Identity{DeviceID: "node-sample"}
	if _, err := hub.Registry().Add(iothub.Device{DeviceID: id.DeviceID, Authentication: iothub.SASAuth(sdkKey, "")}); err != nil {
		t.Fatal(err)
	}
	cs := sas.ConnectionString{HostName: hub.HostName(), DeviceID: id.DeviceID, SharedAccessKey: sdkKey,
		GatewayHostName: net.JoinHostPort("localhost", hub.Port)}
	p := nodetest.Start(t, "sample.js", map[string]string{
		// NODE_EXTRA_CA_CERTS: the hub's CA and both roots of the root-change drill (the TLS cases).
		"NODE_EXTRA_CA_CERTS": hub.DrillTrustFile(), "HUBKIT_DEVICE_CS": cs.String(), "HUBKIT_STDIN_EXIT": "1",
		"HUBKIT_TOKEN_TTL": "60", "HUBKIT_TOKEN_MARGIN": "20",
	})
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	rep, err := grade.Run(ctx, hub.GradeHub(), grade.Options{Identity: id, Method: "echo", DeviceClock: iothub.GradeClockOwn,
		WaitConnect: 90 * time.Second, Timing: grade.Timing{RealTimeBudget: 90 * time.Second}})
	if err != nil {
		t.Fatalf("grade.Run: %v\n%s\nsample stderr: %s", err, text(rep), p.Stderr())
	}
	const backoff = "device/reconnect/backoff-with-jitter"
	want := []string{"device/twin/subscribes-before-get", backoff, "device/restart/recovers", "device/throttle/backs-off"} // catalogue order
	got := verdicts(rep, iothub.GradeFail)
	if !slices.Contains(got, backoff) {
		want = slices.DeleteFunc(want, func(id string) bool { return id == backoff })
	}
	if !slices.Equal(got, want) {
		t.Errorf("failed %v, want exactly %v\n%s", got, want, text(rep))
	}
	for _, c := range rep.Cases {
		switch {
		case c.ID == backoff && c.Verdict == iothub.GradeFail && !strings.Contains(c.Reason, "a tight loop"):
			t.Errorf("%s failed for another reason than the SDK's parallel retries: %s", c.ID, c.Reason)
		case c.ID == "device/throttle/backs-off" && !strings.Contains(c.Reason, "faster while throttled than it usually does"):
			t.Errorf("%s: %s; want it to say the SDK resends faster than its usual interval", c.ID, c.Reason)
		case c.ID == "device/token/renews-before-expiry" && (c.Verdict != iothub.GradePass || !strings.Contains(c.Reason, "(real time)")):
			t.Errorf("%s = %s (%s), want a pass in real time (the SDK's tokenRenewal)", c.ID, c.Verdict, c.Reason)
		}
	}
	if got := verdicts(rep, iothub.GradeNotExercised); !slices.Equal(got, notExercisedOnFakehub) {
		t.Errorf("not exercised %v, want %v\n%s", got, notExercisedOnFakehub, text(rep))
	}
	t.Logf("%s", text(rep))
	p.Close(ctx)
}
