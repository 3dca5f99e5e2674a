package conformance_test

import (
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/hubkit/hubkit/pkg/conformance"
)

var idPattern = regexp.MustCompile(`^[a-z0-9]+(?:-[a-z0-9.]+)*(?:/[a-z0-9]+(?:[-.][a-z0-9.]+)*)+$`)

func TestCases(t *testing.T) {
	known := []string{
		conformance.NeedCloudToDevice, conformance.NeedTelemetryReader, conformance.NeedMethodInvoker,
		conformance.NeedTwinEditor, conformance.NeedModuleProvisioner, conformance.NeedDeviceDisabler,
		conformance.NeedPolicyProvider, conformance.NeedTwin, conformance.NeedC2D, conformance.NeedMethods,
		conformance.NeedKeepAlive, conformance.NeedTokenExpiry, conformance.NeedProvisioning, conformance.NeedX509, conformance.NeedTLSDrills,
		conformance.NeedX509Provisioning,
	}
	seen := map[string]bool{}
	cases := conformance.Cases()
	if len(cases) < 45 {
		t.Errorf("len(Cases()) = %d, want at least 45", len(cases))
	}
	for _, c := range cases {
		if seen[c.ID] {
			t.Errorf("case ID %q is used twice", c.ID)
		}
		seen[c.ID] = true
		if !idPattern.MatchString(c.ID) {
			t.Errorf("case ID %q is not lower-case kebab segments separated by '/'", c.ID)
		}
		if strings.TrimSpace(c.Requirement) == "" || !strings.HasSuffix(c.Requirement, ".") {
			t.Errorf("case %s: Requirement %q, want a sentence", c.ID, c.Requirement)
		}
		for _, part := range strings.Split(c.Certainty, "/") {
			if !slices.Contains([]string{"C", "O", "I"}, part) {
				t.Errorf("case %s: Certainty %q, want C, O, I or pairs like C/I", c.ID, c.Certainty)
			}
		}
		for _, n := range c.Needs {
			if !slices.Contains(known, n) {
				t.Errorf("case %s: unknown capability %q in Needs", c.ID, n)
			}
		}
	}
	// The IDs the suite promises (stable: tools and CI filters use them).
	for _, id := range []string{
		"connect/ok/query-username", "connect/ok/legacy-username", "connect/ok/secondary-key", "connect/ok/module",
		"connect/ok/policy-token-device-scoped", "connect/ok/policy-token-hub-scoped", "connect/ok/device-key-hub-scoped",
		"connect/sas/raw-sr-lowercase-escapes", "connect/sas/recased-after-signing", "connect/sas/wrong-key",
		"connect/sas/expired", "connect/sas/other-device-token", "connect/sas/prefix-device-token",
		"connect/client-id-mismatch", "connect/policy-without-deviceconnect", "connect/unknown-device",
		"connect/disabled-device", "connect/no-password", "connect/protocol-level-3", "connect/takeover",
		"connect/device-and-module-coexist", "keepalive/close-after-1.5x", "d2c/telemetry/puback",
		"d2c/property-bag/system", "d2c/property-bag/application", "d2c/qos2-closes", "d2c/retain-mqtt-retain",
		"d2c/will-as-telemetry", "d2c/oversize-closes", "topic/publish-other-device-closes",
		"topic/subscribe-unsupported-closes", "topic/wildcard-in-topic-name-closes", "subscribe/qos2-granted-1",
		"c2d/receive", "c2d/receive-plus-filter", "c2d/complete-on-puback", "c2d/redelivery-after-disconnect",
		"c2d/session-present-and-early-delivery", "c2d/clean-session-drops-subscription", "c2d/queue-limit-50",
		"c2d/no-subscription-rejected", "twin/get/initial", "twin/patch/version", "twin/patch/invalid-400",
		"twin/desired/notification", "method/invoke/roundtrip", "method/device-offline-404", "method/timeout-504",
		"connect/x509/self-signed", "connect/x509/ca-signed", "connect/x509/no-certificate", "connect/x509/unknown-thumbprint",
		"connect/x509/expired", "connect/x509/cn-mismatch", "connect/x509/untrusted-chain",
		"tls/chain/azure-g2", "tls/refuse/expired", "tls/refuse/wrong-san", "tls/refuse/untrusted-root",
		"tls/root-change/trusts-both", "tls/root-change/old-root-only",
		"dps/x509/individual", "dps/x509/group", "dps/x509/refused/untrusted-chain", "dps/x509/refused/cn-mismatch",
	} {
		if !seen[id] {
			t.Errorf("case %q is missing", id)
		}
	}
}
