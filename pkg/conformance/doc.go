// Package conformance is an end-to-end suite that checks a hub behaves like
// Azure IoT Hub on its MQTT device endpoint: SAS authentication and its
// refusals, user names, keep-alive, telemetry and its property bags, topic
// rules, cloud-to-device messages, twins and direct methods; X.509 identities
// (X509Provisioner) and the device client's side of TLS drills (TLSDrills).
// Every device case runs over MQTT over TLS or over WebSockets
// (Endpoint.Transport). It runs the same cases against hubkit's fakehub (in
// CI, over both transports) and against a real IoT hub.
//
// Use it the way testing/fstest and x/net/nettest are used: implement Target
// (an endpoint and a supply of fresh devices) and call Run from a test:
//
//	func TestMyHub(t *testing.T) {
//		conformance.Run(t, myTarget)
//	}
//
// Each case is a subtest named by a stable ID ("connect/sas/expired"), so
//
//	go test ./pkg/conformance -run 'TestConformance/connect/sas/expired'
//
// runs one case, and go test -json gives a machine-readable report
// (see cmd/junit for a JUnit XML converter that needs no network).
//
// Optional capabilities (CloudToDevice, TelemetryReader, MethodInvoker,
// TwinEditor, ModuleProvisioner, NamedDevices, DeviceDisabler, TokenExpiryEnforcer,
// PolicyProvider, RejectionReader, X509Provisioner, TLSDrills, Clock, Limited, Provisioning,
// X509Provisioning) are found by type
// assertion. A case needing one the target lacks is skipped with the
// reason, never passed. Every case gets a fresh device and a deadline; at the
// deadline the case fails and its connections are closed, so a hung hub
// cannot hang the suite.
//
// # Running this package's tests
//
// TestConformance runs every case against an in-process fakehub (CI does
// this); add -hublog -v to see the hub's log. TestConformanceRealHub runs
// them against a real IoT hub named by the environment, and skips without:
//
//	HUBKIT_CONFORMANCE_SERVICE='HostName=myhub.azure-devices.net;SharedAccessKeyName=iothubowner;SharedAccessKey=...' \
//		go test ./pkg/conformance -run TestConformanceRealHub -v
//
// With a service connection string (RegistryWrite + ServiceConnect) each
// case gets a fresh device, created and deleted through the hub's REST API,
// and the twin and method cases run. Without one,
// HUBKIT_CONFORMANCE_DEVICES lists device connection strings separated by
// newlines or '|', used one per case. HUBKIT_CONFORMANCE_CONFIG may instead
// name a JSON file:
//
//	{
//	  "service":    "HostName=...;SharedAccessKeyName=iothubowner;SharedAccessKey=...",
//	  "serviceUrl": "https://myhub.azure-devices.net",   // default https://{HostName}
//	  "devices":    ["HostName=...;DeviceId=...;SharedAccessKey=..."],
//	  "addr":       "myhub.azure-devices.net:8883",      // default {HostName}:8883
//	  "caFile":     "ca.pem",                            // default: the system roots
//	  "hubkitService": false,                            // true for a fakehub process: C2D, telemetry, refusals over HTTPS
//	  "policies": {"deviceConnect": {"name": "device", "key": "..."},
//	               "noDeviceConnect": {"name": "registryRead", "key": "..."}}
//	}
//
// The same file points the suite at a fakehub started from the command line
// (addr 127.0.0.1:8883, caFile its --ca folder's ca.pem, serviceUrl its
// --http address, hubkitService true).
//
// JUnit XML without network access:
//
//	go test -json ./pkg/conformance > test.json
//	go run ./internal/junit/cmd/junit < test.json > report.xml
//
// (gotestsum --junitfile report.xml --raw-command -- go test -json ./pkg/conformance
// does the same if gotestsum is installed.)
//
// Like nettest, the suite aims for no false positives (a pass means the hub
// showed the behaviour) and may have false negatives on a slow network.
// Cases cite the section of the behaviour reference (docs/iothub-behavior.md) and the
// Microsoft documentation they check, with a certainty: C (documented),
// O (observed) or I (inferred); see Cases. Happy paths use the reference
// client (pkg/device); what real clients refuse to send goes through a raw
// MQTT client.
package conformance
