package main

import (
	"fmt"
	"runtime"
	"runtime/debug"

	"github.com/spf13/cobra"

	"github.com/hubkit/hubkit/pkg/device"
)

func newVersionCmd(st *streams) *cobra.Command {
	return &cobra.Command{
		Use:     "version",
		Short:   "Print the version",
		Example: "  devicesim version",
		Args:    noArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			mod := "(devel)"
			if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" {
				mod = bi.Main.Version
			}
			fmt.Fprintf(st.out, "devicesim %s (hubkit/%s, %s)\n", device.Version, mod, runtime.Version())
			return nil
		},
	}
}
