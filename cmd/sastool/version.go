package main

import (
	"fmt"
	"runtime"
	"runtime/debug"

	"github.com/spf13/cobra"
)

func newVersionCmd(st *streams) *cobra.Command {
	return &cobra.Command{
		Use:     "version",
		Short:   "Print the sastool version",
		Long:    "Print the module version sastool was built from (\"devel\" for a source build) and the Go version.",
		Example: "  sastool version",
		Args:    noArgs,
		RunE: func(*cobra.Command, []string) error {
			_, err := fmt.Fprintf(st.out, "sastool %s (%s)\n", version(), runtime.Version())
			return err
		},
	}
}

// version is the main module's version from the build info: a tag for "go install
// .../sastool@v1.2.3", "devel" for builds from a checkout.
func version() string {
	if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
		return bi.Main.Version
	}
	return "devel"
}
