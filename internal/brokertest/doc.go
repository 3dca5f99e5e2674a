// Package brokertest starts a bare mochi-mqtt broker for tests: on a loopback port, quiet,
// allowing everything unless told otherwise, and stopped at cleanup the way
// reference/mochi-and-paho.md §7 asks.
//
// It exists because that stop is easy to get subtly wrong. Closing a mochi server while
// clients are still attached races with their goroutines (a -race report) and can hit a
// deadlock window in mochi (#488); the safe order is to stop every client, wait until
// Info.ClientsConnected is 0, pause briefly, and only then Close. Several packages' tests
// need such a broker (the raw MQTT codec, the conformance suite's deviant targets, the
// device client's scripted peer, the fakehub benchmark), and each used to carry its own copy,
// one of them without the wait. This package is the one copy.
//
// It depends on the standard library and mochi only, so any test may import it. It is not
// fakehub: it plays no IoT Hub rules, and its callers that need some (a scripted peer, say)
// bring them as hooks.
package brokertest
