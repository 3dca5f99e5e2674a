// Package grade is hubkit's device grader: it grades a device (or module) under test — any
// firmware, in any language, in any process — against what Azure IoT Hub expects of a
// device, while the device is connected to a hub that the grader drives (fakehub).
//
// pkg/conformance grades a hub with a known-good client; grade does the reverse. The hub
// drives the conditions (it moves its clock, drops and refuses connections, throttles,
// exhausts the daily quota, restarts, sends C2D messages, calls methods, changes desired
// properties) and the grader judges the device by the packets it sends in response, which
// the hub reports through its packet observation seam (fakehub.Server.ObservePackets).
//
// Each Case has a stable ID ("device/token/renews-before-expiry"), a requirement, the items
// of docs/iothub-behavior.md it rests on (§15 describes every case and its sources), and is
// required or recommended. Run gives each selected case a verdict — pass, fail, or not
// exercised (with the reason: a case the device was not put through is never a pass) — and
// the evidence that decided it (packets and times). WriteText, WriteJUnit and encoding/json
// render the report.
//
// The package drives a hub through the Hub interface only; fakehub implements it
// (Server.Grade, POST /hubkit/grade, fakehub grade).
package grade
