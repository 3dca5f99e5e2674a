package conformance_test

import (
	"fmt"
	"strings"
	"sync"
	"testing"

	"github.com/hubkit/hubkit/pkg/conformance"
)

// Cases lists what the suite checks, with the certainty of each requirement
// and where it comes from.
func ExampleCases() {
	for _, c := range conformance.Cases() {
		if strings.HasPrefix(c.ID, "connect/sas/") {
			fmt.Printf("%-38s [%s] %s\n", c.ID, c.Certainty, strings.SplitN(c.Section, ";", 2)[0])
		}
	}
	// Output:
	// connect/sas/raw-sr-lowercase-escapes   [I] iothub-mqtt.md §2.2, §2.3, §10.2
	// connect/sas/recased-after-signing      [I] iothub-mqtt.md §2.2, §10.2
	// connect/sas/wrong-key                  [C] iothub-mqtt.md §3, §10.3
	// connect/sas/expired                    [C/I] iothub-mqtt.md §2.5, §3, §10.3
	// connect/sas/other-device-token         [C] iothub-mqtt.md §2.4, §10.3
	// connect/sas/prefix-device-token        [C] iothub-mqtt.md §2.4 (prefix by segment)
}

// A Target needs an endpoint and fresh devices; optional capabilities are
// further methods. This one names a hub and hands out devices from a list
// (cases run in parallel, so NewDevice must be safe for concurrent use).
type listTarget struct {
	ep      conformance.Endpoint
	mu      sync.Mutex
	devices []conformance.DeviceIdentity
}

func (l *listTarget) Endpoint() conformance.Endpoint { return l.ep }

func (l *listTarget) NewDevice(t testing.TB) conformance.DeviceIdentity {
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.devices) == 0 {
		t.Skip("no device left for this case")
	}
	d := l.devices[0]
	l.devices = l.devices[1:]
	return d
}

// Run runs every case as a subtest of the calling test:
//
//	func TestMyHub(t *testing.T) { conformance.Run(t, myTarget) }
func ExampleRun() {
	var _ conformance.Target = &listTarget{
		ep: conformance.Endpoint{Addr: "myhub.azure-devices.net:8883", HostName: "myhub.azure-devices.net"},
	}
	// In a test: conformance.Run(t, target)
}
