// Command devicesim is a simulated Azure IoT Hub device on hubkit's reference client
// (pkg/device): it sends telemetry, listens for cloud-to-device messages, reads and reports
// twin properties, watches desired properties and answers direct methods, against a real hub
// or a local fakehub.
//
// Run "devicesim --help" for the verbs, examples and exit codes.
package main

import "github.com/hubkit/hubkit/internal/cli"

func main() { cli.Main(run) }
