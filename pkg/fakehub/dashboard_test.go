package fakehub_test

import (
	"crypto/tls"
	"html"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/hubkit/hubkit/pkg/fakehub"
	"github.com/hubkit/hubkit/pkg/fakehub/fakehubtest"
)

// browser is an HTTP client with a cookie jar, like a browser without
// JavaScript.
type browser struct {
	t    *testing.T
	base string
	c    *http.Client
}

func newBrowser(t *testing.T, h *fakehubtest.Hub) *browser {
	t.Helper()
	jar, _ := cookiejar.New(nil)
	tr := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: h.CAPool, ServerName: "localhost", MinVersion: tls.VersionTLS12}}
	t.Cleanup(tr.CloseIdleConnections)
	return &browser{t: t, base: "https://" + h.ServiceAddr(), c: &http.Client{Transport: tr, Jar: jar, Timeout: 10 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}}
}

func (b *browser) do(req *http.Request) (*http.Response, string) {
	b.t.Helper()
	resp, err := b.c.Do(req)
	if err != nil {
		b.t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp, string(body)
}

func (b *browser) get(path string) (*http.Response, string) {
	b.t.Helper()
	req, _ := http.NewRequest("GET", b.base+path, nil)
	return b.do(req)
}

func (b *browser) post(path string, form url.Values, header ...string) (*http.Response, string) {
	b.t.Helper()
	req, _ := http.NewRequest("POST", b.base+path, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	return b.do(req)
}

// login follows a one-time login URL.
func (b *browser) login(loginURL string) {
	b.t.Helper()
	u, err := url.Parse(loginURL)
	if err != nil {
		b.t.Fatal(err)
	}
	resp, body := b.get(u.RequestURI())
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/" {
		b.t.Fatalf("GET %s = %d (Location %q), want 303 to /: %s", u.Path, resp.StatusCode, resp.Header.Get("Location"), body)
	}
}

// csrf returns the CSRF token a page's forms carry.
func csrf(t *testing.T, page string) string {
	t.Helper()
	_, rest, ok := strings.Cut(page, `name="csrf" value="`)
	if !ok {
		t.Fatalf("no CSRF token in the page")
	}
	tok, _, _ := strings.Cut(rest, `"`)
	return tok
}

func startDashboardHub(t *testing.T) *fakehubtest.Hub {
	t.Helper()
	return startHub(t, fakehub.Options{ServiceAddr: "127.0.0.1:0"})
}

func TestDashboardNeedsLogin(t *testing.T) {
	h := startDashboardHub(t)
	b := newBrowser(t, h)
	for _, path := range []string{"/", "/ui/devices", "/ui/devices/dev1", "/ui/telemetry", "/ui/rejections"} {
		resp, _ := b.get(path)
		if resp.StatusCode != http.StatusSeeOther || !strings.HasPrefix(resp.Header.Get("Location"), "/ui/login?next=") {
			t.Errorf("GET %s without login = %d (Location %q), want 303 to the login page", path, resp.StatusCode, resp.Header.Get("Location"))
		}
	}
	if resp, _ := b.get("/ui/events/home"); resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("GET /ui/events/home without login = %d, want 401", resp.StatusCode)
	}
	// The REST API keeps its own answers: JSON 401 without a token.
	if resp, body := b.get("/devices?api-version=2021-04-12"); resp.StatusCode != http.StatusUnauthorized || !strings.Contains(body, "Message") {
		t.Errorf("GET /devices = %d %s, want the service API's 401", resp.StatusCode, body)
	}
}

func TestDashboardLoginLinkWorksOnce(t *testing.T) {
	h := startDashboardHub(t)
	link := h.DashboardLoginURL()
	if !strings.HasPrefix(link, h.ServiceURL()+"/ui/login?token=") {
		t.Fatalf("DashboardLoginURL() = %q, want %s/ui/login?token=...", link, h.ServiceURL())
	}
	b := newBrowser(t, h)
	u, _ := url.Parse(link)
	resp, _ := b.get(u.RequestURI())
	var session *http.Cookie
	for _, c := range resp.Cookies() {
		if c.Name == "__Host-hubkit" {
			session = c
		}
	}
	if session == nil || !session.Secure || !session.HttpOnly || session.SameSite != http.SameSiteStrictMode || session.Path != "/" {
		t.Fatalf("login cookie = %+v, want __Host-hubkit, Secure, HttpOnly, SameSite=Strict, Path=/", session)
	}
	if resp, body := b.get("/"); resp.StatusCode != http.StatusOK || !strings.Contains(body, "Latest refusals") {
		t.Fatalf("GET / after login = %d, want the overview: %s", resp.StatusCode, body)
	}
	other := newBrowser(t, h)
	resp, body := other.get(u.RequestURI())
	if resp.StatusCode != http.StatusUnauthorized || !strings.Contains(body, "used already") {
		t.Errorf("second use of the login link = %d, want 401 saying it was used: %s", resp.StatusCode, body)
	}
	for _, k := range []string{"Content-Security-Policy", "X-Content-Type-Options", "Referrer-Policy"} {
		if resp.Header.Get(k) == "" {
			t.Errorf("no %s header on the login page", k)
		}
	}
}

func TestDashboardLoginWithConnectionString(t *testing.T) {
	h := startDashboardHub(t)
	b := newBrowser(t, h)
	cs := h.ServiceConnectionString()
	wrong := strings.Replace(cs, "SharedAccessKey=", "SharedAccessKey=AAAA", 1)
	tests := []struct {
		name, cs, want string
	}{
		{"wrong-key", wrong, "neither the primary nor the secondary key"},
		{"device-string", "HostName=localhost;DeviceId=dev1;SharedAccessKey=AQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQE=", "it is a device's"},
		{"other-hub", strings.Replace(cs, "HostName=localhost", "HostName=other.azure-devices.net", 1), `this hub is "localhost"`},
		{"no-such-policy", strings.Replace(cs, "iothubowner", "owner", 1), `no shared access policy named "owner"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp, body := b.post("/ui/login", url.Values{"connection_string": {tt.cs}})
			if resp.StatusCode != http.StatusUnauthorized || !strings.Contains(html.UnescapeString(body), tt.want) {
				t.Errorf("login = %d, want 401 saying %q: %s", resp.StatusCode, tt.want, body)
			}
			if key := tt.cs[strings.LastIndex(tt.cs, "=")-20:]; strings.Contains(body, key) {
				t.Errorf("the refusal page repeats the key")
			}
		})
	}
	resp, _ := b.post("/ui/login", url.Values{"connection_string": {cs}, "next": {"/ui/devices"}})
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/ui/devices" {
		t.Fatalf("login = %d (Location %q), want 303 to /ui/devices", resp.StatusCode, resp.Header.Get("Location"))
	}
	if resp, body := b.get("/ui/devices"); resp.StatusCode != http.StatusOK || !strings.Contains(body, "dev10") {
		t.Errorf("GET /ui/devices = %d, want the list with dev10: %s", resp.StatusCode, body)
	}
	// An open redirect is not possible through next.
	resp, _ = b.post("/ui/login", url.Values{"connection_string": {cs}, "next": {"//evil.example/"}})
	if loc := resp.Header.Get("Location"); loc != "/" {
		t.Errorf("login with next=//evil.example/ redirects to %q, want /", loc)
	}
}

func TestDashboardFormsNeedCSRF(t *testing.T) {
	h := startDashboardHub(t)
	b := newBrowser(t, h)
	b.login(h.DashboardLoginURL())
	_, page := b.get("/ui/devices/dev1")
	tok := csrf(t, page)
	form := url.Values{"payload": {"hi"}, "ack": {"none"}}
	if resp, _ := b.post("/ui/devices/dev1/c2d", form); resp.StatusCode != http.StatusForbidden {
		t.Errorf("POST without CSRF token = %d, want 403", resp.StatusCode)
	}
	form.Set("csrf", tok)
	if resp, _ := b.post("/ui/devices/dev1/c2d", form, "Sec-Fetch-Site", "cross-site"); resp.StatusCode != http.StatusForbidden {
		t.Errorf("cross-site POST = %d, want 403", resp.StatusCode)
	}
	resp, _ := b.post("/ui/devices/dev1/c2d", form)
	if resp.StatusCode != http.StatusSeeOther || !strings.Contains(resp.Header.Get("Location"), "flash=") {
		t.Fatalf("POST with the token = %d (Location %q), want 303 back with a message", resp.StatusCode, resp.Header.Get("Location"))
	}
	if n := len(h.C2DMessages(dev1)); n != 1 {
		t.Errorf("C2DMessages(dev1) has %d messages, want 1", n)
	}
}

func TestDashboardKeysOnlyOnRequest(t *testing.T) {
	h := startDashboardHub(t)
	b := newBrowser(t, h)
	b.login(h.DashboardLoginURL())
	d, _ := h.Registry().Get(dev1)
	key := d.Authentication.SymmetricKey.PrimaryKey
	_, page := b.get("/ui/devices/dev1")
	if strings.Contains(page, key) {
		t.Fatal("the device page shows the primary key before the user asked")
	}
	resp, page := b.post("/ui/devices/dev1/keys", url.Values{"csrf": {csrf(t, page)}})
	if resp.StatusCode != http.StatusOK || !strings.Contains(page, key) || !strings.Contains(page, "DeviceId=dev1") {
		t.Errorf("reveal = %d, want the page with the key and the connection string", resp.StatusCode)
	}
}

func TestMetricsOnLoopback(t *testing.T) {
	h := startDashboardHub(t)
	b := newBrowser(t, h)
	ack, _ := rawConnect(t, h, goodConnect(dev1, keyWrong))
	if ack.ReturnCode != 5 {
		t.Fatalf("CONNACK %d, want 5", ack.ReturnCode)
	}
	rawSession(t, h, goodConnect(dev2, keyDev2A))
	resp, body := b.get("/metrics")
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /metrics from loopback = %d, want 200", resp.StatusCode)
	}
	for _, want := range []string{
		`hubkit_connects_total 1`,
		`hubkit_rejections_total{reason="signature-mismatch"} 1`,
		`hubkit_connected_devices 1`,
		`hubkit_registered_devices 3`,
		`hubkit_c2d_queue_depth 0`,
		`hubkit_messages_total{kind="c2d",result="enqueued"} 0`,
		"hubkit_telemetry_bytes_total 0",
		"go_goroutines",
	} {
		if !strings.Contains(body, want) {
			t.Errorf("/metrics lacks %q", want)
		}
	}
}
