package methods_test

import (
	"context"
	"fmt"

	"github.com/hubkit/hubkit/pkg/fakehub/internal/methods"
	"github.com/hubkit/hubkit/pkg/iothub"
)

func Example() {
	var reg *methods.Registry
	reg, _ = methods.New(methods.Options{
		// The wiring publishes the request to the device; here the "device" answers at once,
		// the way the hub's MQTT hook calls Respond when $iothub/methods/res/... arrives.
		Send: func(_ context.Context, req methods.Request) error {
			fmt.Printf("publish $iothub/methods/POST/%s/?$rid=%s %s\n", req.Name, req.RID, req.Payload)
			reg.Respond(req.Identity, req.RID, 200, []byte(`{"rebooted":true}`))
			return nil
		},
	})
	defer reg.Close()

	res, err := reg.Invoke(context.Background(), iothub.Identity{DeviceID: "dev1"}, "reboot", []byte(`{"delay":0}`), 0)
	fmt.Println(res.Status, string(res.Payload), err)
	// Output:
	// publish $iothub/methods/POST/reboot/?$rid=1 {"delay":0}
	// 200 {"rebooted":true} <nil>
}
