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
	id, _ := q.Enqueue(dev, iothub.C2DMessage{Payload: []byte("hello"), Ack: iothub.AckPositive})

	// The device is connected (session "conn-1") and subscribed: publish at QoS 1.
	for _, d := range q.Dispatch(dev, "conn-1", 0) {
		fmt.Println(d.PacketID, c2d.DeliveryTopic(dev, d.Message))
	}
	// The connection drops before the PUBACK: the message goes back to the head of the queue.
	q.RequeueSession(dev, "conn-1")

	// The device reconnects (session "conn-2") and gets it again.
	for _, d := range q.Dispatch(dev, "conn-2", 0) {
		fmt.Println(d.PacketID, d.Message.MessageID, "delivery", d.Message.DeliveryCount)
	}
	// Its PUBACK for packet 2 completes the message.
	q.Complete(dev, 2)

	r, _ := q.State(id)
	fmt.Println(r.State, q.Feedback()[0].StatusCode)
	// Output:
	// 1 devices/dev1/messages/devicebound/%24.mid=msg-1&%24.to=%2Fdevices%2Fdev1%2Fmessages%2FdeviceBound&iothub-ack=positive
	// 2 msg-1 delivery 2
	// completed Success
}
