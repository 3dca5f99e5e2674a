package conformance_test

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hubkit/hubkit/internal/testutil"
	"github.com/hubkit/hubkit/pkg/conformance"
	"github.com/hubkit/hubkit/pkg/fakehub"
	"github.com/hubkit/hubkit/pkg/iothub"
	"github.com/hubkit/hubkit/pkg/sas"
)

// Interop tests: clients nobody here wrote, against the in-process fakehub.
// A missing tool skips the test, except with HUBKIT_REQUIRE_INTEROP=1 (set
// by .ci/run), where it fails: CI must really run them.

// processTimeout bounds every external process.
const processTimeout = 30 * time.Second

// connectionString is the device connection string for d on the fake hub.
func connectionString(host string, d conformance.DeviceIdentity) string {
	return sas.ConnectionString{HostName: host, DeviceID: d.DeviceID, SharedAccessKey: d.PrimaryKey}.String()
}

// waitTelemetry reads the device's next telemetry from the fake hub.
func waitTelemetry(t *testing.T, f *fakeTarget, deviceID string) iothub.Event {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	m, err := f.NextTelemetry(ctx, deviceID)
	if err != nil {
		t.Fatalf("telemetry of %s: %v, want the message the client published", deviceID, err)
	}
	return m
}

// waitSubscribed waits until the fake hub holds filter for deviceID.
func waitSubscribed(t *testing.T, f *fakeTarget, deviceID, filter string) {
	t.Helper()
	if !testutil.Poll(10*time.Second, func() bool {
		return slices.ContainsFunc(f.hub.Sessions(), func(s fakehub.Session) bool {
			_, ok := s.Subscriptions[filter]
			return ok && s.Identity.DeviceID == deviceID
		})
	}) {
		t.Fatalf("%s did not subscribe %s within 10s", deviceID, filter)
	}
}

// lines runs cmd and delivers its stdout line by line.
type lines struct {
	mu     sync.Mutex
	all    []string
	ch     chan string
	stderr bytes.Buffer
}

func startLines(t *testing.T, cmd *exec.Cmd) *lines {
	t.Helper()
	l := &lines{ch: make(chan string, 64)}
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = &l.stderr
	if err := cmd.Start(); err != nil {
		t.Fatalf("starting %s: %v", cmd.Path, err)
	}
	go func() {
		defer close(l.ch)
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			l.mu.Lock()
			l.all = append(l.all, sc.Text())
			l.mu.Unlock()
			l.ch <- sc.Text()
		}
	}()
	return l
}

func (l *lines) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return strings.Join(l.all, "\n") + "\n" + l.stderr.String()
}

// await returns once a line starting with prefix arrives (false: stdout ended).
func (l *lines) await(prefix string) (string, bool) {
	for s := range l.ch {
		if strings.HasPrefix(s, prefix) {
			return s, true
		}
	}
	return "", false
}

func TestInteropPahoPython(t *testing.T) {
	t.Parallel()
	python := testutil.PahoPython(t)
	ctx, cancel := context.WithTimeout(context.Background(), processTimeout)
	defer cancel()
	f := newFakeTarget(t)
	dev := f.NewDevice(t)
	c2d, hasC2D := any(f).(conformance.CloudToDevice)

	cmd := exec.CommandContext(ctx, python, filepath.Join("testdata", "iothub_sample.py"))
	cmd.Env = append(os.Environ(),
		"HUB_HOSTNAME="+f.hub.HostName(), "HUB_ADDR="+f.hub.Host, "HUB_PORT="+f.hub.Port, "CA_FILE="+f.hub.CAFile,
		"DEVICE_ID="+dev.DeviceID, "DEVICE_KEY="+dev.PrimaryKey, "TIMEOUT=20", "EXPECT_C2D="+map[bool]string{true: "1", false: "0"}[hasC2D])
	out := startLines(t, cmd)
	if hasC2D {
		if _, ok := out.await("READY"); ok {
			if err := c2d.SendC2D(ctx, dev.DeviceID, iothub.C2DMessage{MessageID: "c2d-py", Payload: []byte("hello python")}); err != nil {
				t.Errorf("SendC2D: %v", err)
			}
		}
	}
	for range out.ch { // drain
	}
	if err := cmd.Wait(); err != nil {
		t.Fatalf("paho-python sample: %v, want exit 0\n%s", err, out)
	}
	text := out.String()
	for _, want := range []string{"CONNACK 0", "SUBACK 1", "PUBACK"} {
		if !strings.Contains(text, want) {
			t.Errorf("paho-python output lacks %q:\n%s", want, text)
		}
	}
	m := waitTelemetry(t, f, dev.DeviceID)
	if string(m.Payload) != `{"temperature": 21.5}` || m.SystemProperties[iothub.PropMessageID] != "py-1" ||
		m.SystemProperties[iothub.PropContentType] != "application/json" || m.Properties["source"] != "paho-python" {
		t.Errorf("captured telemetry = body %q, system %v, application %v; want the sample's body, $.mid=py-1, $.ct=application/json, source=paho-python",
			m.Payload, m.SystemProperties, m.Properties)
	}
	t.Run("c2d", func(t *testing.T) {
		if !hasC2D {
			t.Skip("fakehub cannot send C2D yet (the cloud side has not landed)")
		}
		if !strings.Contains(text, "C2D devices/"+dev.DeviceID+"/messages/devicebound/") || !strings.Contains(text, "hello python") {
			t.Errorf("paho-python did not print the C2D message:\n%s", text)
		}
	})
}

// buildSastool builds cmd/sastool into a temporary directory.
func buildSastool(t *testing.T) string {
	t.Helper()
	goTool := testutil.GoTool(t)
	bin := filepath.Join(t.TempDir(), "sastool")
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if out, err := exec.CommandContext(ctx, goTool, "build", "-o", bin, "github.com/hubkit/hubkit/cmd/sastool").CombinedOutput(); err != nil {
		testutil.MissingTool(t, "cmd/sastool does not build yet: %v\n%s", err, out)
	}
	return bin
}

// mosquittoCommands runs `sastool mqtt --format mosquitto` for the device and
// returns the argument lists of the mosquitto_pub and mosquitto_sub commands
// it prints, dialling the fake hub's address (the hub host name does not
// resolve offline).
func mosquittoCommands(t *testing.T, sastool string, f *fakeTarget, dev conformance.DeviceIdentity) (pub, sub []string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), processTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, sastool, "mqtt", "-c", "-", "--ca", f.hub.CAFile, "--port", f.hub.Port, "--format", "mosquitto")
	cmd.Stdin = strings.NewReader(connectionString(f.hub.HostName(), dev))
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("sastool mqtt --format mosquitto: %v", err)
	}
	for _, c := range shellCommands(string(out)) {
		if len(c) == 0 {
			continue
		}
		if i := slices.Index(c, "-h"); i >= 0 && i+1 < len(c) {
			c[i+1] = f.hub.Host
		}
		switch c[0] {
		case "mosquitto_pub":
			pub = c[1:]
		case "mosquitto_sub":
			sub = c[1:]
		}
	}
	if pub == nil || sub == nil {
		t.Fatalf("sastool mqtt --format mosquitto printed no mosquitto_pub and mosquitto_sub commands:\n%s", out)
	}
	return pub, sub
}

// shellCommands splits the commands of a small shell script: '#' comments,
// backslash-newline continuations, single-quoted words.
func shellCommands(script string) [][]string {
	var cmds [][]string
	script = strings.ReplaceAll(script, "\\\n", " ")
	for _, line := range strings.Split(script, "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		var words []string
		var w strings.Builder
		inWord, quoted := false, false
		for _, r := range line {
			switch {
			case quoted && r == '\'':
				quoted = false
			case quoted:
				w.WriteRune(r)
			case r == '\'':
				quoted, inWord = true, true
			case r == ' ' || r == '\t':
				if inWord {
					words = append(words, w.String())
					w.Reset()
					inWord = false
				}
			default:
				w.WriteRune(r)
				inWord = true
			}
		}
		if inWord {
			words = append(words, w.String())
		}
		cmds = append(cmds, words)
	}
	return cmds
}

func flagValue(args []string, name string) string {
	if i := slices.Index(args, name); i >= 0 && i+1 < len(args) {
		return args[i+1]
	}
	return ""
}

func TestInteropMosquitto(t *testing.T) {
	t.Parallel()
	pubTool := testutil.LookTool(t, "mosquitto_pub", "mosquitto-clients")
	subTool := testutil.LookTool(t, "mosquitto_sub", "mosquitto-clients")
	sastool := buildSastool(t)
	f := newFakeTarget(t)

	t.Run("telemetry", func(t *testing.T) {
		dev := f.NewDevice(t)
		pub, _ := mosquittoCommands(t, sastool, f, dev)
		ctx, cancel := context.WithTimeout(context.Background(), processTimeout)
		defer cancel()
		if out, err := exec.CommandContext(ctx, pubTool, pub...).CombinedOutput(); err != nil {
			t.Fatalf("mosquitto_pub %s: %v, want exit 0\n%s", redactArgs(pub), err, out)
		}
		m := waitTelemetry(t, f, dev.DeviceID)
		if want := flagValue(pub, "-m"); string(m.Payload) != want {
			t.Errorf("captured telemetry body = %q, want %q (mosquitto_pub -m)", m.Payload, want)
		}
	})

	t.Run("refused-bad-token", func(t *testing.T) {
		dev := f.NewDevice(t)
		pub, _ := mosquittoCommands(t, sastool, f, dev)
		i := slices.Index(pub, "-P")
		tok, err := sas.Parse(pub[i+1])
		if err != nil {
			t.Fatalf("sastool's password is not a SAS token: %v", err)
		}
		tok.Signature = sas.Sign(tok.Resource, "", []byte("not the device key"), tok.ExpiresAt()).Signature
		pub[i+1] = tok.String()
		ctx, cancel := context.WithTimeout(context.Background(), processTimeout)
		defer cancel()
		out, err := exec.CommandContext(ctx, pubTool, pub...).CombinedOutput()
		var ee *exec.ExitError
		if !errors.As(err, &ee) || ee.ExitCode() != 5 {
			t.Fatalf("mosquitto_pub with a wrongly signed token: %v, want exit status 5 (CONNACK 5, not authorised)\n%s", err, out)
		}
		r, err := f.Rejection(ctx, dev.DeviceID)
		if err != nil || r.Reason != sas.ReasonSignatureMismatch {
			t.Errorf("fakehub's recorded refusal = %+v, %v; want reason %s", r, err, sas.ReasonSignatureMismatch)
		}
	})

	t.Run("c2d", func(t *testing.T) {
		c2d, ok := any(f).(conformance.CloudToDevice)
		if !ok {
			t.Skip("fakehub cannot send C2D yet (the cloud side has not landed)")
		}
		dev := f.NewDevice(t)
		_, sub := mosquittoCommands(t, sastool, f, dev)
		ctx, cancel := context.WithTimeout(context.Background(), processTimeout)
		defer cancel()
		cmd := exec.CommandContext(ctx, subTool, append(sub, "-C", "1", "-W", "20")...)
		out := startLines(t, cmd)
		waitSubscribed(t, f, dev.DeviceID, flagValue(sub, "-t"))
		if err := c2d.SendC2D(ctx, dev.DeviceID, iothub.C2DMessage{MessageID: "c2d-mosquitto", Payload: []byte("hello mosquitto")}); err != nil {
			t.Fatalf("SendC2D: %v", err)
		}
		for range out.ch {
		}
		if err := cmd.Wait(); err != nil {
			t.Fatalf("mosquitto_sub -C 1: %v, want exit 0\n%s", err, out)
		}
		if text := out.String(); !strings.Contains(text, "devices/"+dev.DeviceID+"/messages/devicebound/") || !strings.Contains(text, "hello mosquitto") {
			t.Errorf("mosquitto_sub -v printed %q, want the C2D topic and body", text)
		}
	})
}

// redactArgs hides the password in a command line for error messages.
func redactArgs(args []string) string {
	c := slices.Clone(args)
	if i := slices.Index(c, "-P"); i >= 0 && i+1 < len(c) {
		c[i+1] = "<token>"
	}
	return strings.Join(c, " ")
}
