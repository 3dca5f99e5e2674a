package c2d

import (
	"testing"

	"github.com/hubkit/hubkit/pkg/iothub"
)

// BenchmarkEnqueueDispatchComplete measures one message's whole life: enqueue, dispatch with a
// packet ID, render the topic, complete on PUBACK.
func BenchmarkEnqueueDispatchComplete(b *testing.B) {
	q, err := New(Options{NewID: func() string { return "m" }, HistoryLimit: 100})
	if err != nil {
		b.Fatal(err)
	}
	id := iothub.Identity{DeviceID: "dev1"}
	payload := make([]byte, 256)
	props := iothub.Properties{{Key: "k", Value: "v"}}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := q.Enqueue(id, iothub.C2DMessage{Payload: payload, Properties: props}); err != nil {
			b.Fatal(err)
		}
		for _, d := range q.Dispatch(id, "s", 0) {
			_ = DeliveryTopic(id, d.Message)
			q.Complete(id, d.PacketID)
		}
	}
}
