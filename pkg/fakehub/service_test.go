package fakehub_test

import (
	"bufio"
	"crypto/tls"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/hubkit/hubkit/internal/testutil"
	"github.com/hubkit/hubkit/pkg/fakehub"
	"github.com/hubkit/hubkit/pkg/fakehub/fakehubtest"
	"github.com/hubkit/hubkit/pkg/iothub"
	"github.com/hubkit/hubkit/pkg/sas"
)

// curl sends requests shaped like curl's: its User-Agent and Accept, the
// Authorization header of a token minted as
// `sastool gen --uri localhost --key KEY --policy iothubowner` does, and
// Content-Type only where the command line would set it with -H.
type curl struct {
	t     *testing.T
	base  string
	auth  string
	httpc *http.Client
}

func newCurl(t *testing.T, h *fakehubtest.Hub) *curl {
	t.Helper()
	p, ok := h.Registry().Policy("iothubowner")
	if !ok {
		t.Fatal("no iothubowner policy")
	}
	key, err := sas.DecodeKey(p.PrimaryKey)
	if err != nil {
		t.Fatal(err)
	}
	tok := sas.Sign(sas.EncodeResource("localhost"), "iothubowner", key, time.Now().Add(time.Hour))
	tr := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: h.CAPool, ServerName: "localhost", MinVersion: tls.VersionTLS12}}
	t.Cleanup(tr.CloseIdleConnections)
	return &curl{t: t, base: "https://" + h.ServiceAddr(), auth: tok.String(), httpc: &http.Client{Transport: tr, Timeout: 10 * time.Second}}
}

// do runs "curl -X method URL [-H h]... [-d body]" and returns the status,
// the headers and the body.
func (c *curl) do(method, path, body string, headers ...string) (int, http.Header, string) {
	c.t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, c.base+path, rd)
	if err != nil {
		c.t.Fatal(err)
	}
	req.Header.Set("User-Agent", "curl/8.5.0")
	req.Header.Set("Accept", "*/*")
	req.Header.Set("Authorization", c.auth)
	if body != "" {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded") // curl -d's default, unless -H says otherwise
	}
	for _, hd := range headers {
		k, v, _ := strings.Cut(hd, ": ")
		req.Header.Set(k, v)
	}
	resp, err := c.httpc.Do(req)
	if err != nil {
		c.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header, string(b)
}

const av = "?api-version=2021-04-12"

func TestServiceAPI(t *testing.T) {
	h := startHub(t, fakehub.Options{ServiceAddr: "127.0.0.1:0"})
	c := newCurl(t, h)
	if !strings.HasPrefix(h.ServiceConnectionString(), "HostName=localhost;SharedAccessKeyName=iothubowner;SharedAccessKey=") {
		t.Errorf("ServiceConnectionString = %q", h.ServiceConnectionString())
	}
	if !strings.HasPrefix(h.ServiceURL(), "https://localhost:") {
		t.Errorf("ServiceURL = %q", h.ServiceURL())
	}
	ctJSON := "Content-Type: application/json"

	t.Run("registry", func(t *testing.T) {
		st, _, body := c.do("PUT", "/devices/rest1"+av, `{"deviceId":"rest1"}`, ctJSON)
		if st != http.StatusOK || !strings.Contains(body, `"deviceId":"rest1"`) || !strings.Contains(body, `"primaryKey"`) {
			t.Fatalf("PUT device = %d %s", st, body)
		}
		if _, ok := h.Registry().Get(iothub.Identity{DeviceID: "rest1"}); !ok {
			t.Fatal("PUT did not add the device to the registry")
		}
		if st, _, body := c.do("PUT", "/devices/rest1"+av, `{"deviceId":"rest1"}`, ctJSON); st != http.StatusConflict {
			t.Errorf("second PUT = %d %s, want 409", st, body)
		}
		if st, _, body := c.do("GET", "/devices/rest1"+av, ""); st != 200 || !strings.Contains(body, `"connectionState":"Disconnected"`) {
			t.Errorf("GET device = %d %s", st, body)
		}
		if st, _, body := c.do("GET", "/devices"+av, ""); st != 200 || !strings.Contains(body, `"rest1"`) || !strings.Contains(body, `"dev2"`) {
			t.Errorf("GET /devices = %d %s", st, body)
		}
		if st, _, body := c.do("DELETE", "/devices/rest1"+av, "", "If-Match: *"); st != http.StatusNoContent {
			t.Errorf("DELETE = %d %s", st, body)
		}
		if st, _, _ := c.do("GET", "/devices/rest1"+av, ""); st != http.StatusNotFound {
			t.Errorf("GET deleted device = %d, want 404", st)
		}
	})

	t.Run("unauthorized", func(t *testing.T) {
		bad := *c
		bad.auth = sas.Sign(sas.EncodeResource("localhost"), "iothubowner", keyWrong, time.Now().Add(time.Hour)).String()
		if st, hd, _ := bad.do("GET", "/devices"+av, ""); st != http.StatusUnauthorized || hd.Get("X-Hubkit-Reason") != string(sas.ReasonSignatureMismatch) {
			t.Errorf("wrong key = %d %q", st, hd.Get("X-Hubkit-Reason"))
		}
	})

	d := connectDevice(t, h, dev1, keyDev1A, true)
	d.subscribe(t, iothub.TwinResponseFilter, 0)
	d.subscribe(t, iothub.TwinDesiredFilter, 0)
	d.subscribe(t, iothub.C2DFilter(dev1), 1)
	answerMethods(t, d, 200)

	t.Run("twin", func(t *testing.T) {
		st, hd, body := c.do("GET", "/twins/dev1"+av, "")
		if st != 200 || !strings.Contains(body, `"connectionState":"Connected"`) || hd.Get("ETag") == "" {
			t.Fatalf("GET twin = %d %s", st, body)
		}
		st, _, body = c.do("PATCH", "/twins/dev1"+av, `{"properties":{"desired":{"interval":7}}}`, ctJSON, "If-Match: "+hd.Get("ETag"))
		if st != 200 || !strings.Contains(body, `"interval":7`) {
			t.Fatalf("PATCH twin = %d %s", st, body)
		}
		if m := d.next(t); m.Topic() != "$iothub/twin/PATCH/properties/desired/?$version=2" {
			t.Errorf("device got %s", m.Topic())
		}
		if st, _, _ := c.do("PATCH", "/twins/dev1"+av, `{"tags":{"a":1}}`, ctJSON, `If-Match: "AAAAAAAAAAE="`); st != http.StatusPreconditionFailed {
			t.Errorf("stale If-Match = %d, want 412", st)
		}
	})

	t.Run("methods", func(t *testing.T) {
		st, _, body := c.do("POST", "/twins/dev1/methods"+av, `{"methodName":"reboot","payload":{"now":true},"responseTimeoutInSeconds":10}`, ctJSON)
		if st != 200 || body != `{"status":200,"payload":{"echo":{"now":true}}}`+"\n" && body != `{"status":200,"payload":{"echo":{"now":true}}}` {
			t.Errorf("invoke = %d %q", st, body)
		}
		if st, hd, _ := c.do("POST", "/twins/dev2/methods"+av, `{"methodName":"reboot"}`, ctJSON); st != http.StatusNotFound || hd.Get("iothub-errorcode") != "DeviceNotOnline" {
			t.Errorf("offline = %d %q, want 404 DeviceNotOnline", st, hd.Get("iothub-errorcode"))
		}
		if st, _, _ := c.do("POST", "/twins/dev1/methods"+av, `{"methodName":"x","responseTimeoutInSeconds":1}`, ctJSON); st != http.StatusBadRequest {
			t.Errorf("timeout 1 s = %d, want 400 (5-300 s on the service API)", st)
		}
		// connectTimeoutInSeconds waits for the device to come online (the
		// call may reach the hub before or after the device: both must work).
		type answer struct {
			st   int
			body string
		}
		got := make(chan answer, 1)
		go func() {
			st, _, body := c.do("POST", "/twins/dev2/methods"+av, `{"methodName":"late","connectTimeoutInSeconds":10}`, ctJSON)
			got <- answer{st, body}
		}()
		d2 := connectDevice(t, h, dev2, keyDev2A, true)
		answerMethods(t, d2, 202)
		if a := <-got; a.st != 200 || !strings.Contains(a.body, `"status":202`) {
			t.Errorf("with connectTimeoutInSeconds = %d %s", a.st, a.body)
		}
	})

	t.Run("c2d", func(t *testing.T) {
		st, hd, body := c.do("POST", "/devices/dev1/messages/devicebound"+av, "hello", "iothub-messageid: rest-m1", "iothub-app-color: blue", "iothub-ack: full")
		if st != http.StatusCreated || hd.Get("iothub-messageid") != "rest-m1" {
			t.Fatalf("send = %d %s", st, body)
		}
		m := d.next(t)
		if _, props, _ := iothub.ParseC2DTopic(m.Topic()); string(m.Payload()) != "hello" || props.Encode() == "" {
			t.Errorf("device got %s %q", m.Topic(), m.Payload())
		} else if v, _ := props.Get("color"); v != "blue" {
			t.Errorf("color = %q in %s", v, m.Topic())
		}
		waitState(t, h, "rest-m1", iothub.C2DCompleted)
		if st, _, body := c.do("GET", "/devices/dev1/messages/devicebound/rest-m1"+av, ""); st != 200 || !strings.Contains(body, `"state":"completed"`) {
			t.Errorf("state = %d %s", st, body)
		}
		if st, _, body := c.do("GET", "/devices/dev1/messages/devicebound"+av, ""); st != 200 || !strings.Contains(body, "rest-m1") {
			t.Errorf("list = %d %s", st, body)
		}
		if st, _, body := c.do("GET", "/hubkit/feedback"+av, ""); st != 200 || !strings.Contains(body, "rest-m1") {
			t.Errorf("feedback = %d %s", st, body)
		}
	})

	t.Run("telemetry-ndjson", func(t *testing.T) {
		d.publish(t, iothub.TelemetryTopic(dev1, iothub.Properties{{Key: "k", Value: "v"}}), `{"t":1}`)
		testutil.Eventually(t, "telemetry captured", func() bool { return len(h.TelemetrySince(1).All()) > 0 })
		st, hd, body := c.do("GET", "/hubkit/telemetry"+av+"&device=dev1", "")
		if st != 200 || hd.Get("Content-Type") != "application/x-ndjson" {
			t.Fatalf("telemetry = %d %s", st, body)
		}
		var e struct {
			DeviceID   string            `json:"deviceId"`
			Properties map[string]string `json:"properties"`
			Payload    map[string]any    `json:"payload"`
		}
		if err := jsonUnmarshal(strings.SplitN(body, "\n", 2)[0], &e); err != nil || e.DeviceID != "dev1" || e.Properties["k"] != "v" || e.Payload["t"] != float64(1) {
			t.Errorf("line %q: %+v %v", body, e, err)
		}
	})

	t.Run("follow-ends-on-close", func(t *testing.T) {
		req, _ := http.NewRequest("GET", c.base+"/hubkit/telemetry"+av+"&follow=true&device=dev2", nil)
		req.Header.Set("Authorization", c.auth)
		resp, err := c.httpc.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		done := make(chan error, 1)
		go func() {
			_, err := bufio.NewReader(resp.Body).ReadString('\n')
			done <- err
		}()
		h.Close()
		select {
		case err := <-done:
			if err == nil {
				t.Error("read a line, want the end of the stream")
			}
		case <-time.After(5 * time.Second):
			t.Fatal("Close left the telemetry stream open")
		}
	})
}

func jsonUnmarshal(s string, v any) error { return json.Unmarshal([]byte(s), v) }

func TestServiceAPITokenGrace(t *testing.T) {
	for _, tt := range []struct {
		name  string
		grace time.Duration
		want  int
	}{
		{"default-grace-accepts-a-minute-old-token", 0, http.StatusOK},
		{"no-grace-refuses-it", -1, http.StatusUnauthorized},
	} {
		t.Run(tt.name, func(t *testing.T) {
			h := fakehubtest.Start(t, fakehub.Options{TokenExpiryGrace: tt.grace})
			p, _ := h.Registry().Policy("iothubowner")
			key, _ := sas.DecodeKey(p.PrimaryKey)
			req := httptest.NewRequest("GET", "/devices"+av, nil)
			req.Header.Set("Authorization", sas.Sign("localhost", "iothubowner", key, time.Now().Add(-time.Minute)).String())
			rec := httptest.NewRecorder()
			h.ServiceHandler().ServeHTTP(rec, req)
			if rec.Code != tt.want {
				t.Errorf("GET /devices with a token expired a minute ago: %d, want %d (%s)", rec.Code, tt.want, rec.Body)
			}
		})
	}
}
