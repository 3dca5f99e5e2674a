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
		if c.ID == "connect/sas/expired" || c.ID == "connect/sas/recased-after-signing" {
			fmt.Printf("%s [%s] %s\n  %s\n", c.ID, c.Certainty, strings.SplitN(c.Section, ";", 2)[0], c.Requirement)
		}
	}
	// Output:
	// connect/sas/recased-after-signing [I] docs/iothub-behavior.md §2.2, §10.2
	//   A token whose sr was re-cased (%2F -> %2f) after signing is refused with CONNACK 5: the hub does not normalise sr before checking the HMAC.
	// connect/sas/expired [C/I] docs/iothub-behavior.md §2.5, §3, §10.3
	//   A token whose se is an hour in the past (beyond any clock-skew allowance) is refused with CONNACK 5.
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
