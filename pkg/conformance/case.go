package conformance

import (
	"slices"
	"strings"
	"time"
)

// Certainty of the requirement a case checks, as tagged in the reference
// (docs/iothub-behavior.md): documented, observed, or inferred.
const (
	Certain  = "C" // stated in Microsoft documentation or identical in every SDK
	Observed = "O" // seen in SDK source, captured traffic or maintainers' statements
	Inferred = "I" // derived from code re-implementing the hub's MQTT head
)

// Capability names used in Case.Needs: the optional Target interfaces, and
// "feature:<name>" for device-side behaviours a Limited target may lack.
const (
	NeedCloudToDevice     = "CloudToDevice"
	NeedTelemetryReader   = "TelemetryReader"
	NeedMethodInvoker     = "MethodInvoker"
	NeedTwinEditor        = "TwinEditor"
	NeedModuleProvisioner = "ModuleProvisioner"
	NeedDeviceDisabler    = "DeviceDisabler"
	NeedPolicyProvider    = "PolicyProvider"
	NeedTokenExpiry       = "TokenExpiryEnforcer"
	NeedX509              = "X509Provisioner"
	NeedTLSDrills         = "TLSDrills"
	NeedTwin              = "feature:" + FeatureTwin
	NeedC2D               = "feature:" + FeatureC2D
	NeedMethods           = "feature:" + FeatureMethods
	NeedKeepAlive         = "feature:" + FeatureKeepAlive
)

// DefaultTimeout bounds a case that sets no Timeout of its own.
const DefaultTimeout = 20 * time.Second

// Case is one behaviour of IoT Hub the suite checks.
type Case struct {
	// ID is stable and names the subtest: "connect/sas/expired".
	ID string
	// Requirement is the behaviour, as a sentence a reviewer can check
	// against the cited section.
	Requirement string
	// Section cites where the requirement comes from, e.g.
	// "docs/iothub-behavior.md §2.5; learn.microsoft.com/azure/iot-hub/authenticate-authorize-sas".
	Section string
	// Certainty is Certain, Observed or Inferred (weakest involved);
	// "C/I" style pairs are allowed.
	Certainty string
	// Needs lists the capabilities the case needs (Need* constants).
	Needs []string
	// Timeout bounds the case (0: DefaultTimeout).
	Timeout time.Duration

	run func(*env)
}

// Cases returns the suite's cases, in run order. The slice is a copy.
func Cases() []Case {
	var all []Case
	for _, group := range [][]Case{connectCases, x509Cases, keepAliveCases, d2cCases, topicCases, c2dCases, twinCases, methodCases, tlsCases, dpsCases, dpsX509Cases} {
		all = append(all, group...)
	}
	return slices.Clone(all)
}

func (c Case) timeout() time.Duration {
	if c.Timeout > 0 {
		return c.Timeout
	}
	return DefaultTimeout
}

// missing returns why target cannot run c, or "".
func (c Case) missing(target Target) string {
	var lacks []string
	for _, n := range c.Needs {
		if feature, ok := strings.CutPrefix(n, "feature:"); ok {
			if l, ok := target.(Limited); ok {
				if why := l.Lacks(feature); why != "" {
					lacks = append(lacks, why)
				}
			}
			continue
		}
		var ok bool
		switch n {
		case NeedCloudToDevice:
			_, ok = target.(CloudToDevice)
		case NeedTelemetryReader:
			_, ok = target.(TelemetryReader)
		case NeedMethodInvoker:
			_, ok = target.(MethodInvoker)
		case NeedTwinEditor:
			_, ok = target.(TwinEditor)
		case NeedModuleProvisioner:
			_, ok = target.(ModuleProvisioner)
		case NeedDeviceDisabler:
			_, ok = target.(DeviceDisabler)
		case NeedPolicyProvider:
			_, ok = target.(PolicyProvider)
		case NeedTokenExpiry:
			_, ok = target.(TokenExpiryEnforcer)
		case NeedX509:
			_, ok = target.(X509Provisioner)
		case NeedTLSDrills:
			_, ok = target.(TLSDrills)
		case NeedProvisioning:
			_, ok = target.(Provisioning)
		case NeedX509Provisioning:
			_, ok = target.(X509Provisioning)
		}
		if !ok {
			lacks = append(lacks, "target does not implement conformance."+n)
		}
	}
	return strings.Join(lacks, "; ")
}
