package fakehub

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/hubkit/hubkit/internal/mqttraw"
)

// scrape returns the /metrics page as the service listener serves it to a
// client at remote.
func scrape(t *testing.T, s *Server, remote string) (int, string) {
	t.Helper()
	req := httptest.NewRequest("GET", "/metrics", nil)
	req.RemoteAddr = remote
	rec := httptest.NewRecorder()
	s.httpHandler().ServeHTTP(rec, req)
	body, _ := io.ReadAll(rec.Result().Body)
	return rec.Code, string(body)
}

func TestMetricsOnlyForLoopbackUnlessPublic(t *testing.T) {
	s := startPlain(t, Options{})
	for _, tt := range []struct {
		remote string
		want   int
	}{
		{"127.0.0.1:5000", http.StatusOK},
		{"[::1]:5000", http.StatusOK},
		{"192.0.2.7:5000", http.StatusForbidden},
		{"[2001:db8::1]:5000", http.StatusForbidden},
	} {
		if code, body := scrape(t, s, tt.remote); code != tt.want {
			t.Errorf("GET /metrics from %s = %d, want %d: %.200s", tt.remote, code, tt.want, body)
		}
	}
	pub := startPlain(t, Options{MetricsPublic: true})
	if code, _ := scrape(t, pub, "192.0.2.7:5000"); code != http.StatusOK {
		t.Errorf("GET /metrics from 192.0.2.7 with MetricsPublic = %d, want 200", code)
	}
}

func TestMetricsCountTelemetryAndThrottling(t *testing.T) {
	s := startPlain(t, Options{})
	if _, err := s.AddDevice("dev1", testKey); err != nil {
		t.Fatal(err)
	}
	c := connectPlain(t, s, "dev1")
	st := s.Telemetry()
	if err := c.Publish(mqttraw.PublishPacket{Topic: "devices/dev1/messages/events/", Payload: []byte("12345"), QoS: 1, PacketID: 1}); err != nil {
		t.Fatal(err)
	}
	if _, err := st.Next(t.Context()); err != nil {
		t.Fatal(err)
	}
	s.metrics.throttle("d2c-send") // what limits.go calls for a refused or delayed operation
	_, body := scrape(t, s, "127.0.0.1:1")
	for _, want := range []string{
		`hubkit_messages_total{kind="telemetry",result="accepted"} 1`,
		`hubkit_telemetry_bytes_total 5`,
		`hubkit_throttled_total{limit="d2c-send"} 1`,
		`hubkit_connects_total 1`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("/metrics lacks %q", want)
		}
	}
}
