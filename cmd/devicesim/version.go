package main

import (
	"fmt"
	"runtime"

	"github.com/spf13/cobra"

	"github.com/hubkit/hubkit/internal/cli"
)

func newVersionCmd(st *streams) *cobra.Command {
	return &cobra.Command{
		Use:     "version",
		Short:   "Print the devicesim version",
		Long:    "Print the module version devicesim was built from (\"devel\" for a source build) and the Go version.",
		Example: "  devicesim version",
		Args:    noArgs,
		RunE: func(*cobra.Command, []string) error {
			_, err := fmt.Fprintf(st.out, "devicesim %s (%s)\n", cli.Version(), runtime.Version())
			return err
		},
	}
}
