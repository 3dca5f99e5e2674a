// Package soak runs fakehub and many pkg/device clients together for a while
// (make soak; SOAK=30m for longer): telemetry, C2D, twins and direct methods
// in both directions, reconnect storms, short-lived tokens that the devices
// renew, and at the end an account of every message: sent = received +
// reported lost with a reason, with nothing lost at QoS 1, plus the peak
// memory and the goroutines and file descriptors back at their baseline.
//
// Its only test, TestSoak, skips unless -soak DURATION is given:
//
//	go test -run TestSoak -v ./internal/soak -soak 5m
package soak
