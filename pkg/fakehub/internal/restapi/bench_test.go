package restapi_test

import (
	"io"
	"net/http"
	"testing"
)

// BenchmarkGetDevice measures one authorized GET /devices/{id} round trip to a real hub
// over loopback HTTPS on a kept-alive connection (token parse + HMAC verify + registry read
// + JSON), the token minted once as curl would reuse it.
func BenchmarkGetDevice(b *testing.B) {
	f := newFixture(b)
	f.addDevice("dev1")
	req, _ := http.NewRequest("GET", f.hub.ServiceURL()+"/devices/dev1"+av, nil)
	req.Header.Set("Authorization", f.ownerToken())
	for b.Loop() {
		resp, err := f.httpc.Do(req)
		if err != nil || resp.StatusCode != 200 {
			b.Fatalf("GET: %v %v", resp, err)
		}
		_, _ = io.Copy(io.Discard, resp.Body) // drained: the connection is reused
		resp.Body.Close()
	}
}
