package main

// fakehub clock: read and move a running hub's clock (GET/POST /hubkit/clock), and
// fakehub devices rotate: new keys for a device through IoT Hub's device PUT.

import (
	"crypto/rand"
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/hubkit/hubkit/internal/cli"
	"github.com/hubkit/hubkit/pkg/fakehub"
	"github.com/hubkit/hubkit/pkg/iothub"
	"github.com/hubkit/hubkit/pkg/sas"
)

func newClockCmd(env *serviceEnv) *cobra.Command {
	var sf serviceFlags
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "clock now | advance DURATION | set TIME | reset",
		Short: "Read or move a running fakehub's clock (token expiry, C2D TTL, quota reset)",
		Long: `Read or move the clock of a running fakehub. The hub's clock drives token expiry
(a connected device whose token expired is dropped with 401003, then 404104), C2D
time-to-live, the daily quota's reset at 00:00 UTC and the throttles' refill; a
move takes effect at once. "advance" takes a duration (55m, 1h30m, -2h, 2d or
seconds), "set" an RFC 3339 time (the clock runs on from there), "reset" returns
to the real time. Each verb prints the hub's time and offset.` + serviceLong,
		Example: `  fakehub clock now
  fakehub clock advance 55m          # past 85 % of a 1 h token: SDKs renew
  fakehub clock advance 66m          # past expiry + 5 min grace: the hub drops the device
  fakehub clock set 2030-01-01T23:59:00Z
  fakehub clock reset`,
		Args: func(cmd *cobra.Command, args []string) error {
			if len(args) == 0 {
				return cli.Usagef("%s needs a verb: now, advance, set or reset", cmd.CommandPath())
			}
			want := map[string]int{"now": 1, "advance": 2, "set": 2, "reset": 1}
			n, ok := want[args[0]]
			if !ok {
				return cli.Usagef("%s: unknown verb %q (want now, advance, set or reset)", cmd.CommandPath(), args[0])
			}
			if len(args) != n {
				return cli.Usagef("%s %s takes %d argument(s), got %d", cmd.CommandPath(), args[0], n-1, len(args)-1)
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			var change iothub.ClockChange
			switch args[0] {
			case "advance":
				d, err := fakehub.ParseDuration(args[1])
				if err != nil {
					return cli.Usagef("advance %q: %v", args[1], err)
				}
				change.Advance = d.String()
			case "set":
				t, err := time.Parse(time.RFC3339, args[1])
				if err != nil {
					return cli.Usagef("set %q: want an RFC 3339 time such as 2030-01-01T00:00:00Z", args[1])
				}
				change.Set = &t
			case "reset":
				change.Reset = true
			}
			c, err := sf.client(env)
			if err != nil {
				return err
			}
			var r iothub.ClockReading
			if args[0] == "now" {
				r, err = c.Clock(cmd.Context())
			} else {
				r, err = c.MoveClock(cmd.Context(), change)
			}
			if err != nil {
				return explain(err, c, "the hub's clock")
			}
			if asJSON {
				return printJSON(cmd.OutOrStdout(), r)
			}
			_, err = fmt.Fprintf(cmd.OutOrStdout(), "%s (offset %s)\n", r.Now.UTC().Format(time.RFC3339), r.Offset)
			return err
		},
	}
	sf.register(cmd)
	cmd.Flags().BoolVar(&asJSON, "json", false, `print {"now","offset","offsetSeconds"}`)
	return cmd
}

func newDevicesRotateCmd(env *serviceEnv, sf *serviceFlags) *cobra.Command {
	var primary, secondary string
	var swap bool
	cmd := &cobra.Command{
		Use:   "rotate ID",
		Short: "Give a device new keys (IoT Hub's device PUT) and print its new connection string",
		Long: `Regenerate device ID's keys, or set or swap them, with IoT Hub's own device PUT
(If-Match on the etag read first). Without flags both keys are regenerated. A
connected device stays connected until its token expires on the azure profile;
with --profile edgehub (or Quirks.DropOnKeyChange) it is dropped at once when its
token no longer verifies.`,
		Example: `  fakehub devices rotate dev1                  # both keys regenerated
  fakehub devices rotate dev1 --swap           # primary <-> secondary
  fakehub devices rotate dev1 --primary-key "$NEW"`,
		Args: argsExactly("ID"),
		RunE: func(cmd *cobra.Command, args []string) error {
			if swap && (primary != "" || secondary != "") {
				return cli.Usagef("use either --swap or --primary-key/--secondary-key")
			}
			c, err := sf.client(env)
			if err != nil {
				return err
			}
			d, err := c.Device(cmd.Context(), args[0])
			if err != nil {
				return explain(err, c, "reading device "+args[0])
			}
			k := &d.Authentication.SymmetricKey
			switch {
			case swap:
				k.PrimaryKey, k.SecondaryKey = k.SecondaryKey, k.PrimaryKey
			case primary != "" || secondary != "":
				if primary != "" {
					k.PrimaryKey = primary
				}
				if secondary != "" {
					k.SecondaryKey = secondary
				}
			default: // regenerate both, as the portal's "Regenerate keys"
				for _, kp := range []*string{&k.PrimaryKey, &k.SecondaryKey} {
					if *kp, err = sas.NewKey(rand.Reader); err != nil {
						return err
					}
				}
			}
			d, err = c.UpdateDevice(cmd.Context(), d, d.ETag)
			if err != nil {
				return explain(err, c, "rotating the keys of "+args[0])
			}
			_, err = fmt.Fprintf(cmd.OutOrStdout(), "HostName=%s;DeviceId=%s;SharedAccessKey=%s\n", c.HostName(), d.DeviceID, d.Authentication.SymmetricKey.PrimaryKey)
			return err
		},
	}
	cmd.Flags().StringVar(&primary, "primary-key", "", "the new primary `KEY` (base64)")
	cmd.Flags().StringVar(&secondary, "secondary-key", "", "the new secondary `KEY` (base64)")
	cmd.Flags().BoolVar(&swap, "swap", false, "swap the primary and secondary keys")
	return cmd
}
