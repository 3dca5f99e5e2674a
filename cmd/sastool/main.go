// Command sastool makes, inspects and checks Azure IoT Hub shared access signature (SAS) tokens
// and connection strings, offline. It is a thin client over pkg/sas and pkg/iothub: the verdicts
// printed by "sastool verify" are the ones fakehub uses to refuse a connection.
//
// Run "sastool --help" for the verbs and exit codes.
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
