//go:build hubkit_service_stub

package main

// A stand-in main so the service verbs build and test before cmd/fakehub's
// root command exists: go test -tags hubkit_service_stub ./cmd/fakehub/
// Delete this file once main.go is in.

import (
	"os"
	"time"

	"github.com/spf13/cobra"
)

func main() {
	root := &cobra.Command{Use: "fakehub", SilenceUsage: true, SilenceErrors: true}
	root.AddCommand(serviceCommands(os.Getenv, time.Now)...)
	if err := root.Execute(); err != nil {
		os.Stderr.WriteString("fakehub: error: " + err.Error() + "\n")
		os.Exit(1)
	}
}
