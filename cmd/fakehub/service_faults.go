package main

// fakehub fault: service-side faults on a running hub (POST /hubkit/faults), one verb per
// action of iothub.FaultRequest.

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/hubkit/hubkit/internal/cli"
	"github.com/hubkit/hubkit/pkg/fakehub"
	"github.com/hubkit/hubkit/pkg/iothub"
)

// faultVerb is one `fakehub fault` verb.
type faultVerb struct {
	use, action, short, long, example string
	aliases                           []string
	id                                int  // 0: no ID, 1: an optional ID (none: every identity), 2: ID required
	drop                              bool // --reason, --error-code, --abort
	duration                          bool // --for D (or --off)
	off                               bool // --off
	keep                              bool // --keep-state
}

var faultVerbs = []faultVerb{
	{use: "drop ID", action: iothub.FaultDrop, id: 2, drop: true,
		short: "Close a device's connection (clean, or a TCP reset with --abort)",
		long: `Close the connection of device ID (or --module M of it) as the hub does in
maintenance: recorded as fault-drop with 400029
ConnectionForcefullyClosedOnFaultInjection, or the --error-code given (400027
mimics a takeover by a newer connection). MQTT 3.1.1 cannot tell the device
why: it sees the connection end.`,
		example: `  fakehub fault drop dev1
  fakehub fault drop dev1 --abort --reason "cable pulled"
  fakehub fault drop dev1 --error-code 400027`},
	{use: "drop-all", action: iothub.FaultDropAll, drop: true,
		short:   "Close every connection",
		example: `  fakehub fault drop-all --abort`},
	{use: "refuse [ID]", action: iothub.FaultRefuseConnections, aliases: []string{"refuse-connections"}, id: 1, duration: true, off: true,
		short: "Refuse CONNECTs (CONNACK 3) for a while",
		long: `Refuse the CONNECTs of device ID (without ID: of every device) for --for D
with CONNACK 3 server unavailable, recorded as fault-refuse-connect with
400030 ConnectionRejectedOnFaultInjection. Connected devices stay.`,
		example: `  fakehub fault refuse dev1 --for 30s
  fakehub fault refuse --for 2m       # every device
  fakehub fault refuse dev1 --off`},
	{use: "delay-pubacks [ID]", action: iothub.FaultDelayPubacks, id: 1, duration: true, off: true,
		short:   "Hold each telemetry PUBACK for a while",
		example: `  fakehub fault delay-pubacks dev1 --for 5s`},
	{use: "drop-pubacks [ID]", action: iothub.FaultDropPubacks, id: 1, off: true,
		short: "Capture telemetry but never send its PUBACK (until --off)",
		long: `Capture each telemetry message of device ID (without ID: of every device)
and never acknowledge it: resending is the device's job (MQTT 3.1.1 resends
unacknowledged QoS 1 messages on a new connection). --off ends it.`,
		example: `  fakehub fault drop-pubacks dev1
  fakehub fault drop-pubacks dev1 --off`},
	{use: "silence-twin [ID]", action: iothub.FaultSilenceTwin, id: 1, off: true,
		short:   "Leave twin requests unanswered (until --off)",
		example: `  fakehub fault silence-twin dev1`},
	{use: "restart", action: iothub.FaultRestart, keep: true,
		short: "Restart the hub in place: every connection closed, sessions forgotten",
		long: `Restart the hub in place: every connection is closed (recorded as
hub-restart), stored MQTT sessions are forgotten, and C2D queues and twins are
emptied unless --keep-state. Devices and keys stay.`,
		example: `  fakehub fault restart
  fakehub fault restart --keep-state`},
	{use: "clear", action: iothub.FaultClear,
		short:   "End every fault in force",
		example: `  fakehub fault clear`},
}

func newFaultCmd(env *serviceEnv) *cobra.Command {
	var sf serviceFlags
	var names []string
	for _, v := range faultVerbs {
		names = append(names, strings.Fields(v.use)[0])
	}
	verbs := strings.Join(names, ", ")
	cmd := &cobra.Command{
		Use:   "fault",
		Short: "Inject a service-side fault into a running fakehub (drop, refuse, PUBACKs, twin, restart)",
		Long: `Inject a fault from the service side (POST /hubkit/faults): drop one
connection or all, refuse connections for a while, delay or withhold telemetry
PUBACKs, leave twin requests unanswered, restart the hub in place, or clear
every fault. Each is recorded in "fakehub rejections" with its reason and
IoT Hub error code (faults that refuse nothing as warnings).` + serviceLong,
		Example: `  fakehub fault drop dev1 --abort
  fakehub fault refuse dev1 --for 30s
  fakehub fault drop-pubacks dev1
  fakehub fault restart --keep-state
  fakehub fault clear`,
		Args: func(cmd *cobra.Command, args []string) error {
			if len(args) == 0 {
				return cli.Usagef("%s needs a verb: %s", cmd.CommandPath(), verbs)
			}
			return cli.Usagef("%s: unknown verb %q (want %s)", cmd.CommandPath(), args[0], verbs)
		},
		RunE: func(*cobra.Command, []string) error { return nil }, // Args always fails first
	}
	sf.register(cmd)
	for _, v := range faultVerbs {
		cmd.AddCommand(newFaultVerbCmd(env, &sf, v))
	}
	return cmd
}

func newFaultVerbCmd(env *serviceEnv, sf *serviceFlags, v faultVerb) *cobra.Command {
	var (
		module, reason string
		code           int
		abort, off     bool
		keep, asJSON   bool
		dur            string
	)
	long := v.long
	if long == "" {
		long = v.short + "."
	}
	cmd := &cobra.Command{
		Use:     v.use,
		Aliases: v.aliases,
		Short:   v.short,
		Long:    long,
		Example: v.example,
		Args: func(cmd *cobra.Command, args []string) error {
			switch {
			case v.id == 2 && len(args) != 1:
				return cli.Usagef("%s takes ID, got %d argument(s)", cmd.CommandPath(), len(args))
			case v.id == 1 && len(args) > 1:
				return cli.Usagef("%s takes at most one ID, got %d arguments", cmd.CommandPath(), len(args))
			case v.id == 0 && len(args) > 0:
				return cli.Usagef("%s takes no arguments, got %d", cmd.CommandPath(), len(args))
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			f := iothub.FaultRequest{Action: v.action, ModuleID: module, Reason: reason, ErrorCode: iothub.ErrorCode(code), Abort: abort, Off: off, KeepState: keep}
			if len(args) == 1 {
				f.DeviceID = args[0]
			}
			if module != "" && f.DeviceID == "" {
				return cli.Usagef("--module needs the device ID")
			}
			if v.duration {
				switch {
				case off && dur != "":
					return cli.Usagef("use either --for or --off")
				case !off && dur == "":
					return cli.Usagef("%s needs --for DURATION (e.g. 30s) or --off", cmd.CommandPath())
				case dur != "":
					d, err := fakehub.ParseDuration(dur)
					if err != nil || d <= 0 {
						return cli.Usagef("--for %q: want a positive duration such as 30s or 5m", dur)
					}
					f.Duration = d.String()
				}
			}
			c, err := sf.client(env)
			if err != nil {
				return err
			}
			res, err := c.Fault(cmd.Context(), f)
			if err != nil {
				return explain(err, c, v.action+" fault")
			}
			if asJSON {
				return printJSON(cmd.OutOrStdout(), res)
			}
			_, err = fmt.Fprintln(cmd.OutOrStdout(), describeFault(f, res))
			return err
		},
	}
	fs := cmd.Flags()
	if v.id > 0 {
		fs.StringVar(&module, "module", "", "the module `M` of device ID")
	}
	if v.drop {
		fs.StringVar(&reason, "reason", "", "the `TEXT` recorded with the drop")
		fs.IntVar(&code, "error-code", 0, "the IoT Hub error `CODE` recorded (default 400029; e.g. 400027)")
		fs.BoolVar(&abort, "abort", false, "reset the TCP connection (RST) instead of closing it cleanly")
	}
	if v.duration {
		fs.StringVar(&dur, "for", "", "how long: a `DURATION` such as 30s or 5m (or seconds)")
	}
	if v.off {
		fs.BoolVar(&off, "off", false, "end this fault")
	}
	if v.keep {
		fs.BoolVar(&keep, "keep-state", false, "keep C2D queues and twins")
	}
	fs.BoolVar(&asJSON, "json", false, `print {"closed":N}`)
	return cmd
}

// describeFault is the one line a fault verb prints.
func describeFault(f iothub.FaultRequest, res iothub.FaultResult) string {
	who := "every device"
	if f.DeviceID != "" {
		who = iothub.Identity{DeviceID: f.DeviceID, ModuleID: f.ModuleID}.String()
	}
	switch f.Action {
	case iothub.FaultDrop, iothub.FaultDropAll, iothub.FaultRestart:
		return "closed " + strconv.Itoa(res.Closed) + " connection(s)"
	case iothub.FaultClear:
		return "every fault cleared"
	}
	if f.Off {
		return f.Action + " ended for " + who
	}
	if f.Duration != "" {
		d, _ := time.ParseDuration(f.Duration)
		return fmt.Sprintf("%s for %s, %s", f.Action, who, shortDuration(d))
	}
	return f.Action + " for " + who + " until --off"
}
