package dashboard_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/hubkit/hubkit/internal/mqttraw"
	"github.com/hubkit/hubkit/internal/testutil"
	"github.com/hubkit/hubkit/pkg/device"
	"github.com/hubkit/hubkit/pkg/fakehub"
	"github.com/hubkit/hubkit/pkg/fakehub/fakehubtest"
	"github.com/hubkit/hubkit/pkg/iothub"
	"github.com/hubkit/hubkit/pkg/iothub/dps"
	"github.com/hubkit/hubkit/pkg/sas"
)

// ScreenshotDirEnv names the folder the browser test saves its screenshots
// in (CI keeps them as artifacts; `make screenshots` refreshes the committed
// ones in docs/screenshots). Unset: a temporary folder.
const ScreenshotDirEnv = "HUBKIT_SCREENSHOTS"

// chromium starts a headless Chromium for the test, with the flags this
// kind of machine needs (no sandbox as root, no outbound traffic of its
// own), and returns a browser context.
func chromium(t *testing.T) context.Context {
	t.Helper()
	path := ""
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			path = p
			break
		}
	}
	if path == "" {
		testutil.MissingTool(t, "no Chromium for the browser tests (apt-get install chromium chromium-driver)")
		return nil
	}
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(path),
		chromedp.Headless, chromedp.NoSandbox, chromedp.DisableGPU, chromedp.NoFirstRun, chromedp.NoDefaultBrowserCheck,
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.Flag("ignore-certificate-errors", true), // the hub's test CA is not in Chromium's store
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1280, 860),
	}
	actx, cancelA := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancelB := chromedp.NewContext(actx, chromedp.WithErrorf(t.Logf))
	t.Cleanup(func() { cancelB(); cancelA() })
	if err := chromedp.Do(ctx); err != nil { // starts the browser
		t.Fatalf("starting Chromium (%s): %v", path, err)
	}
	return ctx
}

// step runs actions with a deadline, failing the test with what it was doing.
func step(t *testing.T, ctx context.Context, what string, actions ...chromedp.Action[chromedp.Void]) {
	t.Helper()
	stepWithin(t, ctx, 20*time.Second, what, actions...)
}

// stepWithin is step with another deadline.
func stepWithin(t *testing.T, ctx context.Context, d time.Duration, what string, actions ...chromedp.Action[chromedp.Void]) {
	t.Helper()
	sctx, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	if err := chromedp.Do(sctx, actions...); err != nil {
		dctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		defer cancel()
		body, _ := chromedp.Run(dctx, chromedp.Evaluate[string]("location.href + '\\n' + document.body.innerText"))
		t.Fatalf("%s: %v\npage %s", what, err, body)
	}
}

// shot saves a full-page screenshot as name.png.
func shot(dir, name string) chromedp.Action[chromedp.Void] {
	return chromedp.Func(func(ctx context.Context, tg *chromedp.Target) error {
		buf, err := chromedp.FullScreenshot(100)(ctx, tg)
		if err != nil {
			return err
		}
		return os.WriteFile(filepath.Join(dir, name+".png"), buf, 0o644)
	})
}

// text waits until the element matching sel contains want.
func text(sel, want string) chromedp.Action[chromedp.Void] {
	return poll(fmt.Sprintf(`(() => { const e = document.querySelector(%q); return !!e && e.textContent.includes(%q); })()`, sel, want))
}

// poll waits until the JavaScript expression is true.
func poll(js string) chromedp.Action[chromedp.Void] {
	return chromedp.Poll[chromedp.Void](js, chromedp.WithPollingInterval(50*time.Millisecond))
}

// set sets a form field's value.
func set(sel, value string) chromedp.Action[chromedp.Void] {
	return chromedp.SetValue(chromedp.CSS(sel), value)
}

// submit clicks the submit button of the form whose action ends in action
// and waits for the page that answers.
func submit(action string) chromedp.Action[chromedp.Void] {
	return chromedp.Func(func(ctx context.Context, _ *chromedp.Target) error {
		_, err := chromedp.RunResponse(ctx, chromedp.Click(chromedp.CSS(fmt.Sprintf(`form[action$=%q] button[type=submit]`, action))))
		return err
	})
}

func screenshotDir(t *testing.T) string {
	dir := os.Getenv(ScreenshotDirEnv)
	if dir == "" {
		return t.TempDir()
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	return dir
}

// TestBrowser drives the dashboard in headless Chromium as a developer
// would: log in with the banner's link, watch a device connect and its
// telemetry arrive, read why another was refused, send a C2D message and
// see it completed, change a desired property and see the device get it,
// invoke a direct method and read the answer.
func TestBrowser(t *testing.T) {
	ctx := chromium(t)
	shots := screenshotDir(t)
	h := fakehubtest.Start(t, fakehub.Options{ServiceAddr: "127.0.0.1:0"})
	key := []byte("dashboard browser test key 32 b!")
	if _, err := h.AddDevice("thermostat-01", key); err != nil {
		t.Fatal(err)
	}
	for i := 2; i <= 24; i++ {
		if _, err := h.AddDevice(fmt.Sprintf("sensor-%02d", i)); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := h.Registry().Add(iothub.Device{DeviceID: "thermostat-01", ModuleID: "climate"}); err != nil {
		t.Fatal(err)
	}
	base := "https://localhost:" + h.ServiceAddr()[strings.LastIndex(h.ServiceAddr(), ":")+1:]

	step(t, ctx, "the login page", chromedp.Navigate(base+"/"), chromedp.WaitVisible(chromedp.CSS("#cs")), shot(shots, "login"))
	step(t, ctx, "log in with the one-time link",
		chromedp.Navigate(strings.Replace(h.DashboardLoginURL(), h.ServiceURL(), base, 1)),
		text("h1", "Overview"), text("#live-status", "live"))

	// A device connects: its row turns to connected without a reload.
	step(t, ctx, "the device list", chromedp.Navigate(base+"/ui/devices"), text("#live-status", "live"),
		text("#dev-thermostat-01", "disconnected"))
	dev, err := device.FromConnectionString(
		"HostName=localhost;DeviceId=thermostat-01;SharedAccessKey="+base64.StdEncoding.EncodeToString(key),
		device.WithEndpoint(h.Addr()), device.WithRootCAs(h.CAPool))
	if err != nil {
		t.Fatal(err)
	}
	c2d := make(chan string, 4)
	desired := make(chan json.RawMessage, 4)
	dev.OnC2D(func(_ context.Context, m device.C2DMessage) {
		select {
		case c2d <- string(m.Payload):
		default: // the grade below sends more than the test reads
		}
	})
	dev.OnDesired(func(ctx context.Context, patch json.RawMessage, _ int64) {
		desired <- patch
		var p map[string]any
		if json.Unmarshal(patch, &p) == nil {
			delete(p, "$version")
			_, _ = dev.UpdateReported(ctx, p) // echo it, as a well-behaved device does
		}
	})
	dev.OnMethod("reboot", func(_ context.Context, payload []byte) (int, any, error) {
		return 200, map[string]any{"rebooting": true, "request": json.RawMessage(payload)}, nil
	})
	cctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := dev.Connect(cctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = dev.Close(context.Background()) })
	step(t, ctx, "see the device connect", text("#dev-thermostat-01", "connected"),
		poll(`!document.querySelector("#dev-thermostat-01").textContent.includes("disconnected")`),
		text("#dev-thermostat-01", "MQTT over TLS"), shot(shots, "devices"))

	// Its telemetry arrives in the live view.
	step(t, ctx, "the telemetry view", chromedp.Navigate(base+"/ui/telemetry"), text("#live-status", "live"))
	for i, p := range []string{`{"temperature":21.5,"humidity":40}`, "plain text status: ok"} {
		ev := device.Event{Payload: []byte(p), ContentType: "application/json", Properties: iothub.Properties{}.Set("alert", fmt.Sprint(i == 1))}
		if i == 1 {
			ev.ContentType = "text/plain"
		}
		if err := dev.SendEvent(cctx, ev); err != nil {
			t.Fatal(err)
		}
	}
	step(t, ctx, "see its telemetry arrive", text("#telemetry-rows", `"temperature": 21.5`), text("#telemetry-rows", "plain text status: ok"),
		text("#telemetry-rows", "content-type"), shot(shots, "telemetry"))
	step(t, ctx, "payload as hex", set("#payload-view", "hex"),
		chromedp.Evaluate[chromedp.Void](`document.querySelector("#payload-view").dispatchEvent(new Event("change"))`),
		poll(`getComputedStyle(document.querySelector("#telemetry-rows .p-hex")).display === "block"`))

	// A refusal shows on the overview, with its reason, detail and hints.
	step(t, ctx, "the overview", chromedp.Navigate(base+"/"), text("#live-status", "live"))
	wrong := mqttraw.ConnectPacket{
		ClientID: "sensor-02", UserName: mqttraw.String("localhost/sensor-02/?api-version=" + iothub.DefaultAPIVersion),
		Password:     mqttraw.String(sas.Sign(sas.EncodeResource(sas.DeviceResource("localhost", "sensor-02")), "", key, time.Now().Add(time.Hour)).String()),
		CleanSession: true, KeepAlive: 60,
	}
	ack, conn, err := mqttraw.ConnectAndWait(cctx, h.Addr(), h.ClientTLS(), wrong)
	if err != nil {
		t.Fatal(err)
	}
	_ = conn.Close()
	if ack.ReturnCode != 5 {
		t.Fatalf("CONNACK %d for a token signed with another device's key, want 5", ack.ReturnCode)
	}
	step(t, ctx, "see the refusal and its reason", text("#recent-rejections", "signature-mismatch"),
		text("#recent-rejections", "sensor-02"), text("#recent-rejections .hints", "key"), shot(shots, "overview"))

	// The device page: C2D, desired properties, a direct method.
	page := base + "/ui/devices/thermostat-01"
	step(t, ctx, "the device page", chromedp.Navigate(page), text("#live-status", "live"), text("#conn-state", "connected"))
	step(t, ctx, "send a C2D message",
		set("#c2d-payload", `{"led":"on"}`), submit("/c2d"),
		text(".flash", "sent"), text("#live-status", "live"))
	select {
	case p := <-c2d:
		if p != `{"led":"on"}` {
			t.Errorf("device got C2D %q, want {\"led\":\"on\"}", p)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the device got no C2D message")
	}
	step(t, ctx, "see it completed", text("#c2d-list", "completed"), text("#c2d-list", "Success"))

	step(t, ctx, "edit a desired property",
		set("#patch", `{"interval": 10}`), submit("/twin"),
		text(".flash", "Desired properties updated"), text("#twin-desired", `"interval": 10`), text("#live-status", "live"))
	select {
	case p := <-desired:
		if !strings.Contains(string(p), `"interval":10`) {
			t.Errorf("device got desired patch %s, want interval 10", p)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the device got no desired-properties patch")
	}
	step(t, ctx, "see the device report it", text("#twin-reported", `"interval": 10`))

	step(t, ctx, "invoke a direct method",
		set("#m-name", "reboot"), set("#m-payload", `{"delay": 1}`), submit("/method"),
		text("#method-result", "answered status 200"), text("#method-result", `"rebooting": true`),
		shot(shots, "device"))

	step(t, ctx, "keys only on request",
		poll(fmt.Sprintf(`!document.body.textContent.includes(%q)`, base64.StdEncoding.EncodeToString(key))),
		submit("/keys"),
		text("main", base64.StdEncoding.EncodeToString(key)))

	step(t, ctx, "the rejection list", chromedp.Navigate(base+"/ui/rejections"), text("#rejection-list", "signature-mismatch"),
		shot(shots, "rejections"))

	// Grade the device from its page: two quick cases; the verdicts arrive live.
	step(t, ctx, "the device page links to the grade form", chromedp.Navigate(page), click("#grade-this"),
		text("h1", "Grades"), poll(`document.querySelector("#grade-device").value === "thermostat-01"`))
	sending := make(chan struct{})
	go func() { // telemetry for device/publish/no-qos2 to judge, across the grader's reconnect
		for {
			select {
			case <-sending:
				return
			case <-time.After(300 * time.Millisecond):
			}
			sctx, cancel := context.WithTimeout(cctx, 2*time.Second)
			_ = dev.SendEvent(sctx, device.Event{Payload: []byte(`{"temperature":21}`)})
			cancel()
		}
	}()
	defer close(sending)
	step(t, ctx, "start a grade", set("#grade-cases", "device/publish device/c2d"), submit("/ui/grades"),
		text("h1", "Grade g"), text("#grade-summary", "thermostat-01"), text("#live-status", "live"),
		chromedp.Evaluate[chromedp.Void](`window.sameDocument = true`))
	stepWithin(t, ctx, 90*time.Second, "see the grade finish live", text("#grade-state", "done"),
		text(`[id="case-device/c2d/acks"] .verdict`, "pass"), text(`[id="case-device/publish/no-qos2"] .verdict`, "pass"),
		text("#grade-counts", "2 pass"),
		poll(`window.sameDocument === true`), shot(shots, "grade"))
	step(t, ctx, "the grades list", chromedp.Navigate(base+"/ui/grades"), text("#grade-list", "thermostat-01"), text("#grade-list", "done"))
}

// click clicks the link matched by sel and waits for the page it opens.
func click(sel string) chromedp.Action[chromedp.Void] {
	return chromedp.Func(func(ctx context.Context, _ *chromedp.Target) error {
		_, err := chromedp.RunResponse(ctx, chromedp.Click(chromedp.CSS(sel)))
		return err
	})
}

// TestBrowserTestControls drives the DPS and test-control pages: see a
// device's registration arrive, the faults and throttles in force, move the
// hub's clock, clear the faults, and reset the hub's state through the
// confirm step.
func TestBrowserTestControls(t *testing.T) {
	ctx := chromium(t)
	shots := screenshotDir(t)
	groupKey := base64.StdEncoding.EncodeToString([]byte("dashboard DPS group key, 32 byte"))
	pumpKey := base64.StdEncoding.EncodeToString([]byte("dashboard DPS pump key, 32 bytes"))
	sym := func(k string) dps.Attestation {
		return dps.Attestation{Type: dps.AttestationSymmetricKey, SymmetricKey: &iothub.SymmetricKey{PrimaryKey: k, SecondaryKey: k}}
	}
	var enrollments []dps.Enrollment
	for i := 1; i <= 3; i++ {
		enrollments = append(enrollments, dps.Enrollment{RegistrationID: fmt.Sprintf("pump-%02d", i), Attestation: sym(pumpKey)})
	}
	h := fakehubtest.Start(t, fakehub.Options{ServiceAddr: "127.0.0.1:0", Profile: fakehub.ProfileStrict,
		Limits: fakehub.Limits{D2C: fakehub.Throttle{PerSecond: 100}, TwinUpdates: fakehub.Throttle{PerSecond: 10}, DailyMessages: 400000},
		DPS:    &fakehub.DPSOptions{Enrollments: enrollments, Groups: []dps.EnrollmentGroup{{EnrollmentGroupID: "fleet", Attestation: sym(groupKey)}}}})
	h.RefuseConnections(iothub.Identity{DeviceID: "pump-02"}, 10*time.Minute)
	h.DelayPubacks(iothub.Identity{}, 2*time.Second)
	base := "https://localhost:" + h.ServiceAddr()[strings.LastIndex(h.ServiceAddr(), ":")+1:]
	step(t, ctx, "log in with the one-time link",
		chromedp.Navigate(strings.Replace(h.DashboardLoginURL(), h.ServiceURL(), base, 1)), text("h1", "Overview"))

	// A device registers through the enrollment group: its registration shows up.
	step(t, ctx, "the DPS page", chromedp.Navigate(base+"/ui/dps"), text("#live-status", "live"), text("main", h.DPS().IDScope()))
	pctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for _, reg := range []device.ProvisionConfig{
		{RegistrationID: "sensor-fleet-01", GroupKey: groupKey},
		{RegistrationID: "pump-01", SymmetricKey: pumpKey},
	} {
		reg.GlobalEndpoint, reg.Endpoint, reg.IDScope, reg.RootCAs = "localhost", h.DPS().Addr(), h.DPS().IDScope(), h.CAPool
		if _, err := device.Provision(pctx, reg); err != nil {
			t.Fatalf("provisioning %s: %v", reg.RegistrationID, err)
		}
	}
	step(t, ctx, "see the registrations arrive", text("#reg-sensor-fleet-01", "assigned"), text("#reg-sensor-fleet-01 .reg-group", "fleet"),
		text("#reg-pump-01 .reg-group", "individual"), text("main", "3 individual enrollments, 1 enrollment groups, 2 registrations"), shot(shots, "dps"))
	step(t, ctx, "the enrollments", chromedp.Navigate(base+"/ui/dps?list=enrollments"), text("#dps-list", "pump-03"),
		poll(fmt.Sprintf(`!document.body.textContent.includes(%q)`, pumpKey)))

	// The test controls: faults and throttles in force, the clock moved, faults cleared.
	step(t, ctx, "the test controls", chromedp.Navigate(base+"/ui/hub"), text("#live-status", "live"),
		text("#hub-faults", "refuse connections"), text("#hub-faults", "pump-02"), text("#hub-faults", "delay PUBACKs"),
		text("#hub-limits", "device-to-cloud sends"), text("main", "WarnDocumentedMistakes"))
	step(t, ctx, "advance the clock",
		set("#clock-advance", "55m"), chromedp.Func(func(ctx context.Context, _ *chromedp.Target) error {
			_, err := chromedp.RunResponse(ctx, chromedp.Click(chromedp.CSS(`button[value=advance]`)))
			return err
		}),
		text(".flash", "offset 55m0s"), text("#clock-offset", "55m0s"), text("#live-status", "live"), shot(shots, "controls"))
	if got := h.Clock().Offset(); got != 55*time.Minute {
		t.Errorf("after the form the hub's clock offset is %v, want 55m", got)
	}
	step(t, ctx, "clear the faults", submit("/faults/clear"), text(".flash", "cleared"), text("#hub-faults", "No fault in force"))

	// Reset: a confirm step, then the state is gone.
	if _, err := h.SendC2D(pctx, "pump-01", iothub.C2DMessage{Payload: []byte("queued")}); err != nil {
		t.Fatal(err)
	}
	step(t, ctx, "ask to reset", submit("/hub/reset"), text("h1", "Reset the hub's state?"), text("main", "c2d"), shot(shots, "reset"))
	if n := len(h.C2DMessages(iothub.Identity{DeviceID: "pump-01"})); n != 1 {
		t.Fatalf("the reset happened before it was confirmed: %d C2D messages, want 1", n)
	}
	step(t, ctx, "confirm the reset", chromedp.Func(func(ctx context.Context, _ *chromedp.Target) error {
		_, err := chromedp.RunResponse(ctx, chromedp.Click(chromedp.CSS(`#reset-confirm`)))
		return err
	}), text(".flash", "Reset: telemetry, rejections, c2d, twins"))
	if n := len(h.C2DMessages(iothub.Identity{DeviceID: "pump-01"})); n != 0 {
		t.Errorf("after the confirmed reset: %d C2D messages, want 0", n)
	}
}
