// Command devicesim is a simulated Azure IoT Hub device on hubkit's reference client
// (pkg/device): it sends telemetry, listens for cloud-to-device messages, reads and reports
// twin properties, watches desired properties and answers direct methods, against a real hub
// or a local fakehub.
//
// Run "devicesim --help" for the verbs, examples and exit codes.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdin, os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}
