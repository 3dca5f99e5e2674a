// Package loadgen drives a fleet of simulated IoT Hub devices against a hub
// (fakehub, the real IoT Hub, or any MQTT 3.1.1 broker that lets them in):
// a connection ramp bounded in rate and concurrency, then a steady phase of
// telemetry (idle, one message per interval, or as fast as a window of
// unacknowledged messages allows), optional C2D echo, direct-method answers
// and twin patches, then a drain. It measures connects per second, CONNACK,
// PUBACK and twin latencies (log-linear histograms, 1.6 % precision), message
// rates and errors by kind. devicesim load is its command line.
//
// It is lean on purpose, so that one process holds tens of thousands of TLS
// devices: a device is one goroutine (its connection is set up by one of
// Concurrency workers, whose larger stacks the devices never get), a
// 512-byte read buffer, a telemetry PUBLISH encoded once (each send only
// rewrites its packet ID) and a read deadline as its only timer. Packets
// are encoded and decoded with internal/mqttraw; client IDs, user names and
// topics come from pkg/iothub, tokens from the caller (pkg/sas in devicesim).
package loadgen
