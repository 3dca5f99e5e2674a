package mqttraw_test

import (
	"context"
	"fmt"
	"time"

	"github.com/hubkit/hubkit/internal/certs"
	"github.com/hubkit/hubkit/internal/mqttraw"
)

// A negative test: a device publishes at QoS 2, which IoT Hub answers by
// closing the connection.
func ExampleConnectAndWait() {
	ca, err := certs.LoadCA("testdata/certs")
	if err != nil {
		fmt.Println(err)
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	ack, c, err := mqttraw.ConnectAndWait(ctx, "localhost:8883", ca.ClientTLS("localhost"), mqttraw.ConnectPacket{
		ClientID: "dev1",
		UserName: mqttraw.String("localhost/dev1/?api-version=2021-04-12"),
		Password: mqttraw.String("SharedAccessSignature sr=..."),
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer c.Close()
	if ack.ReturnCode != mqttraw.ConnackAccepted {
		fmt.Println("refused:", ack.ReturnCode)
		return
	}
	if err := c.Publish(mqttraw.PublishPacket{Topic: "devices/dev1/messages/events/", QoS: 2, PacketID: 1}); err != nil {
		fmt.Println(err)
		return
	}
	if err := c.ExpectClosed(2 * time.Second); err != nil {
		fmt.Println("hub did not close the connection:", err)
	}
}
