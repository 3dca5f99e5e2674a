// Package gointerop holds interop tests with Go IoT Hub clients that nobody here wrote,
// run against an in-process fakehub: github.com/amenzhinsky/iothub (iotdevice over MQTT,
// iotservice over HTTPS). It has no code of its own; the clients are test-only
// dependencies (layering_test.go keeps them out of every non-test package), fetched like
// any module, so the tests never skip.
package gointerop
