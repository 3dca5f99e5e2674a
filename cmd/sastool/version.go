package main

import (
	"github.com/spf13/cobra"

	"github.com/hubkit/hubkit/internal/cli"
)

func newVersionCmd(st *streams) *cobra.Command { return cli.NewVersionCmd("sastool", st.out, noArgs) }
