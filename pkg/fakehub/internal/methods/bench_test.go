package methods

import (
	"context"
	"testing"
)

// BenchmarkInvoke measures one invocation answered synchronously by the device.
func BenchmarkInvoke(b *testing.B) {
	var r *Registry
	r, _ = New(Options{Send: func(_ context.Context, req Request) error {
		r.Respond(req.Identity, req.RID, 200, []byte(`{"ok":true}`))
		return nil
	}})
	payload := []byte(`{"delay":1}`)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := r.Invoke(context.Background(), dev1, "reboot", payload, 0); err != nil {
			b.Fatal(err)
		}
	}
}
