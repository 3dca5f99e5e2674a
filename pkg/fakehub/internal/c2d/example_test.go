package c2d_test

import (
	"fmt"
	"time"

	"github.com/hubkit/hubkit/pkg/fakehub/internal/c2d"
	"github.com/hubkit/hubkit/pkg/iothub"
)

func Example() {
	now := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	q, _ := c2d.New(c2d.Options{Now: func() time.Time { return now }, NewID: func() string { return "msg-1" }})
	dev := iothub.Identity{DeviceID: "dev1"}

	// The service sends a message.
	id, _ := q.Enqueue(dev, c2d.Message{Payload: []byte("hello"), Ack: c2d.AckPositive})

	// The device is connected and subscribed: the wiring publishes at QoS 1 with packet ID 1.
	for _, m := range q.Take(dev, 0) {
		fmt.Println(c2d.DeliveryTopic(dev, m))
		q.MarkDelivered(dev, m.ID, 1)
	}
	// The PUBACK arrives.
	q.Complete(dev, 1)

	r, _ := q.State(id)
	fmt.Println(r.State, q.Feedback()[0].Status)
	// Output:
	// devices/dev1/messages/devicebound/%24.mid=msg-1&%24.to=%2Fdevices%2Fdev1%2Fmessages%2FdeviceBound&iothub-ack=positive
	// completed Success
}
