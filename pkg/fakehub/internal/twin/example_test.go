package twin_test

import (
	"fmt"

	"github.com/hubkit/hubkit/pkg/fakehub/internal/twin"
	"github.com/hubkit/hubkit/pkg/iothub"
)

func Example() {
	store := twin.New(twin.Options{
		// The wiring publishes this on $iothub/twin/PATCH/properties/desired/?$version=v
		// when the device is connected and subscribed.
		OnDesiredChange: func(id iothub.Identity, v int64, body []byte) {
			fmt.Printf("notify %s $version=%d %s\n", id, v, body)
		},
	})
	dev := iothub.Identity{DeviceID: "dev1"}

	// $iothub/twin/GET/?$rid=1 -> $iothub/twin/res/200/?$rid=1
	fmt.Printf("GET %s\n", store.Get(dev))

	// $iothub/twin/PATCH/properties/reported/?$rid=2 -> $iothub/twin/res/204/?$rid=2&$version=2
	v, err := store.PatchReported(dev, []byte(`{"battery":87}`))
	fmt.Println("PATCH reported:", v, err)

	// An invalid patch -> $iothub/twin/res/400/?$rid=3
	_, err = store.PatchReported(dev, []byte(`{"bad.name":1}`))
	fmt.Println(err)

	// The service sets a desired property.
	store.PatchDesired(dev, []byte(`{"interval":30}`), "")
	fmt.Printf("GET %s\n", store.Get(dev))
	// Output:
	// GET {"desired":{"$version":1},"reported":{"$version":1}}
	// PATCH reported: 2 <nil>
	// 400004 ArgumentInvalid: reported properties: property name "bad.name" contains '.' (names cannot contain '.', '$' or spaces)
	// notify dev1 $version=2 {"interval":30,"$version":2}
	// GET {"desired":{"interval":30,"$version":2},"reported":{"battery":87,"$version":2}}
}
