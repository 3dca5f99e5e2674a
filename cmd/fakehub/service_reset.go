package main

import (
	"github.com/spf13/cobra"

	"github.com/hubkit/hubkit/internal/cli"
	"github.com/hubkit/hubkit/pkg/fakehub"
)

func newResetCmd(env *serviceEnv) *cobra.Command {
	var sf serviceFlags
	cmd := &cobra.Command{
		Use:   "reset [telemetry|rejections|c2d|twins]...",
		Short: "Clear captured telemetry, rejections, C2D messages and twins between tests",
		Long: `Clear the hub's run-time state between tests (POST /hubkit/reset): the parts
named, or all of them: captured telemetry, the rejection log, C2D messages
(queued, in flight, their states and the feedback) and twins (back to new
ones, versions 1). Devices, keys, policies and open connections stay.` + serviceLong,
		Example: `  fakehub reset                      # everything
  fakehub reset telemetry rejections`,
		RunE: func(cmd *cobra.Command, args []string) error {
			for _, a := range args {
				if _, err := fakehub.ParseResetParts(a); err != nil {
					return cli.Usage(err)
				}
			}
			c, err := sf.client(env)
			if err != nil {
				return err
			}
			if err := c.Reset(cmd.Context(), args...); err != nil {
				return explain(err, c, "resetting the hub")
			}
			return nil
		},
	}
	sf.register(cmd)
	return cmd
}
