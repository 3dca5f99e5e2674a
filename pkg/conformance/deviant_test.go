package conformance_test

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"github.com/hubkit/hubkit/pkg/iothub"
	"log/slog"
	"os"
	"os/exec"
	"regexp"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hubkit/hubkit/internal/brokertest"
	"github.com/hubkit/hubkit/internal/certs"
	"github.com/hubkit/hubkit/pkg/conformance"
	"github.com/hubkit/hubkit/pkg/fakehub"
)

// The suite must have no false positives: a hub that deviates must fail the
// case that checks the behaviour. Each deviant hub below breaks known rules;
// TestSuiteCatchesDeviations runs the cases that check them (in a child
// process, so their failures are data, not failures of this test) and
// requires each to FAIL with a "<case ID>: ..." message.
var deviants = []struct {
	name     string
	target   func(t *testing.T) conformance.Target
	mustFail []string
}{
	{
		name:     "fakehub-suback-0x80",
		target:   quirkyFakehub(func(o *fakehub.Options) { o.Quirks.SubackOnForbiddenSubscribe = true }),
		mustFail: []string{"topic/subscribe-unsupported-closes"},
	},
	{
		name:     "fakehub-ignores-forbidden-publish",
		target:   quirkyFakehub(func(o *fakehub.Options) { o.Quirks.IgnoreForbiddenPublish = true }),
		mustFail: []string{"topic/publish-other-device-closes"},
	},
	{
		name:     "fakehub-keepalive-cap-1s",
		target:   quirkyFakehub(func(o *fakehub.Options) { o.Quirks.KeepAliveCap = time.Second }),
		mustFail: []string{"keepalive/close-after-1.5x"},
	},
	{
		name:     "fakehub-day-of-skew",
		target:   quirkyFakehub(func(o *fakehub.Options) { o.TokenExpiryGrace = 24 * time.Hour }),
		mustFail: []string{"connect/sas/expired"},
	},
	{
		name:     "fakehub-exact-device-key-scope",
		target:   quirkyFakehub(func(o *fakehub.Options) { o.Quirks.ExactDeviceKeyScope = true }),
		mustFail: []string{"connect/ok/device-key-hub-scoped"},
	},
	{
		name:     "fakehub-keeps-c2d-without-subscription",
		target:   quirkyFakehub(func(o *fakehub.Options) { o.Quirks.KeepC2DWithoutSubscription = true }),
		mustFail: []string{"c2d/no-subscription-rejected"},
	},
	{
		// C2D messages are accepted and lost: the cases that expect a
		// delivery must not pass on silence.
		name: "fakehub-c2d-lost",
		target: func(t *testing.T) conformance.Target {
			return lostC2D{quirkyFakehub(func(*fakehub.Options) {})(t).(*fakeTarget)}
		},
		mustFail: []string{"c2d/receive", "c2d/receive-plus-filter", "c2d/session-present-and-early-delivery"},
	},
	{
		// Expired connections live on (an hour of grace) while the target
		// claims the in-process default.
		name: "fakehub-keeps-expired-connections",
		target: func(t *testing.T) conformance.Target {
			f := quirkyFakehub(func(o *fakehub.Options) { o.TokenExpiryGrace = time.Hour })(t).(*fakeTarget)
			f.grace = fakeExpiryGrace
			return f
		},
		mustFail: []string{"connect/sas/expiry-disconnects"},
	},
	{
		// A plain MQTT broker that lets everyone in: every IoT Hub rule the
		// suite checks without service-side capabilities must fail.
		name:   "mochi-allow-all",
		target: mochiTarget,
		mustFail: []string{
			"connect/sas/recased-after-signing", "connect/sas/wrong-key", "connect/sas/expired",
			"connect/sas/other-device-token", "connect/sas/prefix-device-token", "connect/client-id-mismatch",
			"connect/unknown-device", "connect/no-password", "d2c/qos2-closes", "d2c/oversize-closes",
			"topic/publish-other-device-closes", "topic/subscribe-unsupported-closes", "subscribe/qos2-granted-1",
		},
	},
}

const deviantEnv = "HUBKIT_CONFORMANCE_DEVIANT"

// TestDeviantHub is the child process of TestSuiteCatchesDeviations.
func TestDeviantHub(t *testing.T) {
	name := os.Getenv(deviantEnv)
	if name == "" {
		t.Skip("runs only as the child process of TestSuiteCatchesDeviations")
	}
	i := slices.IndexFunc(deviants, func(d struct {
		name     string
		target   func(t *testing.T) conformance.Target
		mustFail []string
	}) bool {
		return d.name == name
	})
	if i < 0 {
		t.Fatalf("unknown deviant hub %q", name)
	}
	d := deviants[i]
	target := d.target(t)
	for _, c := range conformance.Cases() {
		if slices.Contains(d.mustFail, c.ID) {
			t.Run(c.ID, func(t *testing.T) {
				t.Parallel()
				c.Run(t, target)
			})
		}
	}
}

func TestSuiteCatchesDeviations(t *testing.T) {
	t.Parallel()
	if os.Getenv(deviantEnv) != "" {
		t.Skip("child process")
	}
	if testing.Short() {
		t.Skip("-short: starts child test processes")
	}
	for _, d := range deviants {
		t.Run(d.name, func(t *testing.T) {
			t.Parallel()
			cmd := exec.Command(os.Args[0], "-test.run=^TestDeviantHub$", "-test.v", "-test.count=1", "-test.parallel=16", "-test.timeout=60s")
			cmd.Env = append(os.Environ(), deviantEnv+"="+d.name, "GORACE=atexit_sleep_ms=0")
			out, err := cmd.CombinedOutput()
			var ee *exec.ExitError
			if !errors.As(err, &ee) {
				t.Fatalf("child run against %s: %v, want a failing exit status\n%s", d.name, err, out)
			}
			for _, id := range d.mustFail {
				failed := regexp.MustCompile(`(?m)^\s*--- FAIL: TestDeviantHub/` + regexp.QuoteMeta(id) + ` `)
				evidence := regexp.MustCompile(`(?m)^\s+\S+\.go:\d+: ` + regexp.QuoteMeta(id) + `: `)
				switch {
				case !failed.Match(out):
					t.Errorf("%s: case %s did not fail against a hub that breaks its rule (false positive)", d.name, id)
				case !evidence.Match(out):
					t.Errorf("%s: case %s failed without a %q message", d.name, id, id+": ...")
				}
			}
			if t.Failed() {
				t.Logf("child output:\n%s", out)
			}
		})
	}
}

func quirkyFakehub(adjust func(*fakehub.Options)) func(t *testing.T) conformance.Target {
	return func(t *testing.T) conformance.Target {
		opts := fakehub.Options{HostName: fakeHostName, Logger: slog.New(slog.DiscardHandler)}
		adjust(&opts)
		return startFakeTarget(t, opts)
	}
}

// lostC2D accepts C2D messages and drops them.
type lostC2D struct{ *fakeTarget }

func (lostC2D) SendC2D(context.Context, string, iothub.C2DMessage) error { return nil }

type plainBroker struct {
	ep conformance.Endpoint
	n  atomic.Int64
}

func (b *plainBroker) Endpoint() conformance.Endpoint { return b.ep }

func (b *plainBroker) NewDevice(testing.TB) conformance.DeviceIdentity {
	key := make([]byte, 32)
	_, _ = rand.Read(key)
	return conformance.DeviceIdentity{DeviceID: fmt.Sprintf("plain-dev-%03d", b.n.Add(1)), PrimaryKey: base64.StdEncoding.EncodeToString(key)}
}

// mochiTarget is a stock mochi-mqtt broker that allows everything.
func mochiTarget(t *testing.T) conformance.Target {
	now := time.Now()
	ca, err := certs.NewCA("deviant CA", time.Hour, now, nil)
	if err != nil {
		t.Fatal(err)
	}
	serverTLS, err := ca.ServerTLS([]string{fakeHostName, "127.0.0.1"}, time.Hour, now)
	if err != nil {
		t.Fatal(err)
	}
	b := brokertest.Start(t, brokertest.Options{TLS: serverTLS})
	return &plainBroker{ep: conformance.Endpoint{Addr: b.Addr, HostName: fakeHostName, TLS: ca.ClientTLS(fakeHostName)}}
}
