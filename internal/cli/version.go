package cli

import (
	"fmt"
	"io"
	"runtime"

	"github.com/spf13/cobra"
)

// NewVersionCmd returns the "version" verb of tool: it prints "TOOL VERSION (GOVERSION)" on out,
// the module version from Version and the Go version. args checks the (absent) arguments the
// tool's way.
func NewVersionCmd(tool string, out io.Writer, args cobra.PositionalArgs) *cobra.Command {
	return &cobra.Command{
		Use:     "version",
		Short:   "Print the " + tool + " version",
		Long:    "Print the module version " + tool + " was built from (\"devel\" for a source build) and the Go version.",
		Example: "  " + tool + " version",
		Args:    args,
		RunE: func(*cobra.Command, []string) error {
			_, err := fmt.Fprintf(out, "%s %s (%s)\n", tool, Version(), runtime.Version())
			return err
		},
	}
}
