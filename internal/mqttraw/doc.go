// Package mqttraw is a tiny raw MQTT 3.1.1 client for negative tests: it
// sends packets that real clients refuse to send (a wrong protocol name or
// level, reserved flags, QoS 3, wildcards in a topic name, a password
// without a user name...) and reports exactly what the server answered,
// including "nothing, it closed the connection".
//
// The encoder and decoder are written here from the MQTT 3.1.1
// specification (OASIS, 2014), with the standard library only, so that
// tests using them do not share code with the broker under test.
//
//	ack, c, err := mqttraw.ConnectAndWait(ctx, addr, ca.ClientTLS("localhost"), mqttraw.ConnectPacket{
//		ClientID: "dev1", UserName: mqttraw.String("hub/dev1/?api-version=2021-04-12"), Password: mqttraw.String(sas),
//	})
//	// check ack.ReturnCode, then:
//	_ = c.Publish(mqttraw.PublishPacket{Topic: "devices/dev2/messages/events/", QoS: 1, PacketID: 1})
//	if err := c.ExpectClosed(2 * time.Second); err != nil { t.Error(err) }
//
// A Conn reads in the background, so ReadPacket and ExpectClosed never
// lose half a packet to a time-out. One goroutine should read at a time;
// writes may come from any goroutine. Always Close a Conn.
package mqttraw
