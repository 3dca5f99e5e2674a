package main

// fakehub limits: read and change a running hub's throttles and daily quota (GET and PUT
// /hubkit/limits), with the same NAME=VALUE specs as serve's --limit.

import (
	"fmt"
	"io"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/hubkit/hubkit/internal/cli"
	"github.com/hubkit/hubkit/pkg/iothub"
)

func newLimitsCmd(env *serviceEnv) *cobra.Command {
	var sf serviceFlags
	cmd := &cobra.Command{
		Use:   "limits",
		Short: "Show or change a running fakehub's throttles and daily quota",
		Long: `Read or change the throttles and the daily message quota of a running fakehub
(GET and PUT /hubkit/limits). A change applies at once to new operations: a
throttle that changed starts with a full burst, the others carry on, and the
day's quota count is kept (it is counted even without a quota, so "show" tells
what the traffic so far would cost on a real hub).` + serviceLong,
		Example: `  fakehub limits show
  fakehub limits set d2c=2/burst=2/backlog=2 daily=100
  fakehub limits set --tier S1 --units 2       # IoT Hub's S1 numbers, replacing all
  fakehub limits set d2c=off
  fakehub limits clear`,
		Args: func(cmd *cobra.Command, args []string) error {
			if len(args) == 0 {
				return cli.Usagef("%s needs a verb: show, set or clear", cmd.CommandPath())
			}
			return cli.Usagef("%s: unknown verb %q (want show, set or clear)", cmd.CommandPath(), args[0])
		},
		RunE: func(*cobra.Command, []string) error { return nil }, // Args always fails first
	}
	sf.register(cmd)
	cmd.AddCommand(newLimitsShowCmd(env, &sf), newLimitsSetCmd(env, &sf), newLimitsClearCmd(env, &sf))
	return cmd
}

func newLimitsShowCmd(env *serviceEnv, sf *serviceFlags) *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "show",
		Short: "Print the limits in force and the quota used today",
		Example: `  fakehub limits show
  fakehub limits show --json | jq .quotaUsed`,
		Args: argsExactly(),
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := sf.client(env)
			if err != nil {
				return err
			}
			st, err := c.Limits(cmd.Context())
			if err != nil {
				return explain(err, c, "reading the hub's limits")
			}
			return printLimits(cmd.OutOrStdout(), st, asJSON)
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, `print {"limits","quotaDay","quotaUsed"}`)
	return cmd
}

func newLimitsSetCmd(env *serviceEnv, sf *serviceFlags) *cobra.Command {
	var (
		tier   string
		units  int
		fresh  bool
		asJSON bool
	)
	cmd := &cobra.Command{
		Use:   "set [NAME=VALUE]...",
		Short: "Change some limits (the others stay), or apply a tier's",
		Long: `Change the named limits and keep the others. NAME is connections, d2c, c2d,
twin-reads, twin-updates, methods (4 KB chunks per second) or registry, with
VALUE operations per second and, optionally, /burst=N and /backlog=N (N < 0:
no backlog); daily takes messages per day, meter the quota's chunk size in
bytes; VALUE 0 or off removes a limit. --tier starts from IoT Hub's limits of
a tier (replacing all), --none from no limits. Prints the limits in force.`,
		Example: `  fakehub limits set d2c=2                       # 2/s, burst and backlog 60 s of it
  fakehub limits set d2c=2/burst=2/backlog=2 daily=100
  fakehub limits set --tier F1                   # 8,000 messages/day in 512-byte chunks, ...
  fakehub limits set --none twin-updates=1/burst=1/backlog=-1`,
		RunE: func(cmd *cobra.Command, args []string) error {
			if tier != "" && fresh {
				return cli.Usagef("use either --tier or --none")
			}
			if len(args) == 0 && tier == "" && !fresh {
				return cli.Usagef("%s needs NAME=VALUE arguments, --tier or --none", cmd.CommandPath())
			}
			var base iothub.Limits
			if _, err := buildLimits(base, tier, units, args, ""); err != nil { // usage errors before any request
				return err
			}
			c, err := sf.client(env)
			if err != nil {
				return err
			}
			if tier == "" && !fresh {
				st, err := c.Limits(cmd.Context())
				if err != nil {
					return explain(err, c, "reading the hub's limits")
				}
				base = st.Limits
			}
			l, err := buildLimits(base, tier, units, args, "")
			if err != nil {
				return err
			}
			st, err := c.SetLimits(cmd.Context(), l)
			if err != nil {
				return explain(err, c, "setting the hub's limits")
			}
			return printLimits(cmd.OutOrStdout(), st, asJSON)
		},
	}
	cmd.Flags().StringVar(&tier, "tier", "", "start from IoT Hub's limits of `TIER`: F1, B1, B2, B3, S1, S2 or S3")
	cmd.Flags().IntVar(&units, "units", 1, "number of `N` units of the tier")
	cmd.Flags().BoolVar(&fresh, "none", false, "start from no limits instead of the hub's current ones")
	cmd.Flags().BoolVar(&asJSON, "json", false, `print {"limits","quotaDay","quotaUsed"}`)
	return cmd
}

func newLimitsClearCmd(env *serviceEnv, sf *serviceFlags) *cobra.Command {
	return &cobra.Command{
		Use:     "clear",
		Short:   "Remove every throttle and the quota",
		Example: `  fakehub limits clear`,
		Args:    argsExactly(),
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := sf.client(env)
			if err != nil {
				return err
			}
			st, err := c.SetLimits(cmd.Context(), iothub.Limits{})
			if err != nil {
				return explain(err, c, "clearing the hub's limits")
			}
			return printLimits(cmd.OutOrStdout(), st, false)
		},
	}
}

// printLimits writes st as JSON, or one line per limit:
//
//	d2c           2/s  burst 2  backlog 2
//	daily         100 messages (4096-byte chunks); 3 used on 2030-01-01 (UTC)
func printLimits(w io.Writer, st iothub.LimitsStatus, asJSON bool) error {
	if asJSON {
		return printJSON(w, st)
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	for _, nt := range st.Limits.Throttles() {
		t := *nt.Throttle
		if !t.On() {
			fmt.Fprintf(tw, "%s\toff\n", nt.Name)
			continue
		}
		fmt.Fprintf(tw, "%s\t%.4g/s\tburst %g\tbacklog %g\n", nt.Name, t.PerSecond, t.BurstSize(), t.BacklogSize())
	}
	daily := "no quota"
	if st.Limits.DailyMessages > 0 {
		daily = fmt.Sprintf("%d messages", st.Limits.DailyMessages)
	}
	fmt.Fprintf(tw, "daily\t%s (%d-byte chunks); %d used on %s (UTC)\n", daily, st.Limits.MeterSize, st.QuotaUsed, st.QuotaDay)
	return tw.Flush()
}
