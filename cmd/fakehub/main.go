// Command fakehub runs a fake Azure IoT Hub device endpoint (MQTT 3.1.1 over
// TLS) for offline tests, and plays the cloud side against it with the
// service verbs. It is a thin CLI over pkg/fakehub.
//
// Run "fakehub --help" for flags, examples and exit codes.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdin, os.Stdout, os.Stderr, os.Getenv)
	stop()
	os.Exit(code)
}
