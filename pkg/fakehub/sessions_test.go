package fakehub_test

import (
	"flag"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/hubkit/hubkit/internal/mqttraw"
	"github.com/hubkit/hubkit/pkg/fakehub"
)

// stressRounds is how many rounds the connection-lifecycle stress tests
// run: a few by default, more with -stress=N (or -count).
var stressRounds = flag.Int("stress", 20, "rounds per connection-lifecycle stress test")

// TestHubCloseDuringGracefulDisconnect: a device disabled or removed while
// its client sends DISCONNECT. The hub's close and mochi's own end-of-
// connection clean-up (which clears the will) run on different goroutines;
// under -race this caught the hub writing the client's will flag.
func TestHubCloseDuringGracefulDisconnect(t *testing.T) {
	for _, tc := range []struct {
		name          string
		close, reopen func(r *fakehub.Registry) error
	}{
		{"disable",
			func(r *fakehub.Registry) error { return r.SetStatus("dev1", fakehub.StatusDisabled) },
			func(r *fakehub.Registry) error { return r.SetStatus("dev1", fakehub.StatusEnabled) }},
		{"remove",
			func(r *fakehub.Registry) error { return r.RemoveDevice("dev1") },
			func(r *fakehub.Registry) error {
				_, err := r.AddDevice(fakehub.Device{ID: "dev1", Keys: b64keys(keyDev1A, keyDev1B)})
				return err
			}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for _, quirk := range []bool{false, true} {
				h := startHub(t, fakehub.Options{Quirks: fakehub.Quirks{WillOnHubClose: quirk}})
				st := h.Telemetry()
				for i := range *stressRounds {
					p := goodConnect(dev1, keyDev1A)
					p.Will = &mqttraw.Will{Topic: "devices/dev1/messages/events/", Payload: []byte(fmt.Sprint("will-", i))}
					c := rawSession(t, h, p)
					var wg sync.WaitGroup
					wg.Go(func() { _ = c.Disconnect() })
					wg.Go(func() { mustDo(t, func() error { return tc.close(h.Registry()) }) })
					wg.Wait()
					_ = c.ExpectClosed(5 * time.Second)
					eventually(t, "dev1 gone", func() bool { return !h.Connected(dev1) })
					mustDo(t, func() error { return tc.reopen(h.Registry()) })
				}
				// Without the quirk no will is captured: the device either
				// disconnected gracefully or was closed by the hub. With it,
				// a will is captured at most once.
				seen := map[string]bool{}
				for _, m := range st.All() {
					if !quirk || seen[string(m.Payload)] {
						t.Errorf("WillOnHubClose %t: will %q captured (again)", quirk, m.Payload)
					}
					seen[string(m.Payload)] = true
				}
			}
		})
	}
}
