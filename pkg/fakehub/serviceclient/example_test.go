package serviceclient_test

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/hubkit/hubkit/pkg/fakehub/serviceclient"
	"github.com/hubkit/hubkit/pkg/fakehub/serviceclient/servicetest"
)

func Example() {
	s := servicetest.NewServer(servicetest.Options{}) // an in-memory hub; a real fakehub works the same
	defer s.Close()
	ctx := context.Background()

	c, err := serviceclient.New(s.ConnectionString("iothubowner"), // HostName=localhost;SharedAccessKeyName=iothubowner;...
		serviceclient.WithURL(s.URL()), serviceclient.WithHTTPClient(s.HTTPClient()))
	if err != nil {
		fmt.Println(err)
		return
	}
	if _, err := c.CreateDevice(ctx, serviceclient.Device{DeviceID: "thermostat"}); err != nil {
		fmt.Println(err)
		return
	}

	// The device is not connected: IoT Hub answers 404 DeviceNotOnline.
	_, err = c.InvokeMethod(ctx, "thermostat", serviceclient.MethodCall{Name: "reboot", ResponseTimeout: 10 * time.Second})
	fmt.Println(serviceclient.ErrorCode(err))

	s.SetOnline("thermostat", true)
	s.HandleMethod("reboot", 200, json.RawMessage(`{"rebooting":true}`))
	res, err := c.InvokeMethod(ctx, "thermostat", serviceclient.MethodCall{Name: "reboot", ResponseTimeout: 10 * time.Second})
	fmt.Println(res.Status, string(res.Payload), err)

	st, err := c.SendC2D(ctx, "thermostat", serviceclient.Message{MessageID: "m1", Body: []byte("hello"), Properties: map[string]string{"kind": "greeting"}})
	fmt.Println(st.MessageID, st.State, err)
	// Output:
	// DeviceNotOnline
	// 200 {"rebooting":true} <nil>
	// m1 queued <nil>
}
