package device

import (
	"context"
	"log/slog"
	"testing"
)

// BenchmarkSendEvent measures one QoS 1 telemetry round trip (PUBLISH to PUBACK) over TLS on
// loopback against the scripted peer.
func BenchmarkSendEvent(b *testing.B) {
	p := newPeer(b)
	cfg := p.config()
	cfg.Logger = slog.New(slog.DiscardHandler)
	c, err := New(cfg)
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close(context.Background())
	ctx := context.Background()
	if err := c.Connect(ctx); err != nil {
		b.Fatal(err)
	}
	e := Event{Payload: []byte(`{"temperature":21.5}`), ContentType: "application/json"}
	b.ReportAllocs()
	for b.Loop() {
		if err := c.SendEvent(ctx, e); err != nil {
			b.Fatal(err)
		}
	}
}
