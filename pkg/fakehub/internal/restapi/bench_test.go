package restapi_test

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/hubkit/hubkit/pkg/fakehub/serviceclient/servicetest"
)

// BenchmarkGetDevice measures one authorized GET /devices/{id} round trip
// over loopback HTTP (token parse + HMAC verify + JSON), the token minted
// once as curl would reuse it.
func BenchmarkGetDevice(b *testing.B) {
	s := servicetest.NewServer(servicetest.Options{HostName: testHost, Now: func() time.Time { return testNow }, PlainHTTP: true})
	defer s.Close()
	put, _ := http.NewRequest("PUT", s.URL()+"/devices/dev1?api-version=2021-04-12", strings.NewReader("{}"))
	put.Header.Set("Authorization", ownerToken())
	if resp, err := http.DefaultClient.Do(put); err != nil || resp.StatusCode != 200 {
		b.Fatalf("PUT: %v %v", resp, err)
	}
	req, _ := http.NewRequest("GET", s.URL()+"/devices/dev1?api-version=2021-04-12", nil)
	req.Header.Set("Authorization", ownerToken())
	b.ResetTimer()
	for b.Loop() {
		resp, err := http.DefaultClient.Do(req)
		if err != nil || resp.StatusCode != 200 {
			b.Fatalf("GET: %v %v", resp, err)
		}
		resp.Body.Close()
	}
}
