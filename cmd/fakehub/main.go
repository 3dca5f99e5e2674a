// Command fakehub runs a fake Azure IoT Hub device endpoint (MQTT 3.1.1 over
// TLS) for offline tests, and plays the cloud side against it with the
// service verbs. It is a thin CLI over pkg/fakehub.
//
// Run "fakehub --help" for flags, examples and exit codes.
package main

import (
	"context"
	"io"
	"os"

	"github.com/hubkit/hubkit/internal/cli"
)

func main() {
	cli.Main(func(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
		return run(ctx, args, stdin, stdout, stderr, os.Getenv)
	})
}
