package main

import (
	"fmt"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/hubkit/hubkit/internal/cli"
	"github.com/hubkit/hubkit/pkg/iothub"
)

func newDevicesCmd(env *serviceEnv) *cobra.Command {
	var sf serviceFlags
	cmd := &cobra.Command{
		Use:   "devices",
		Short: "List, add, remove, enable and disable device identities",
		Long:  `Manage the hub's identity registry through the service API.` + serviceLong,
		Example: `  fakehub devices add dev1                 # prints dev1's connection string
  fakehub devices list
  fakehub devices disable dev1 && fakehub devices enable dev1
  fakehub devices remove dev1`,
		Args: func(cmd *cobra.Command, args []string) error {
			if len(args) == 0 {
				return cli.Usagef("%s needs a verb: list, show, add, remove, disable, enable or rotate", cmd.CommandPath())
			}
			return cli.Usagef("%s: unknown verb %q (want list, show, add, remove, disable, enable or rotate)", cmd.CommandPath(), args[0])
		},
		RunE: func(*cobra.Command, []string) error { return nil }, // Args always fails first
	}
	sf.register(cmd)
	cmd.AddCommand(newDevicesListCmd(env, &sf), newDevicesShowCmd(env, &sf), newDevicesAddCmd(env, &sf), newDevicesRemoveCmd(env, &sf),
		newDevicesStatusCmd(env, &sf, "disable", iothub.StatusDisabled, "Disable a device: it can no longer connect"),
		newDevicesStatusCmd(env, &sf, "enable", iothub.StatusEnabled, "Enable a disabled device"),
		newDevicesRotateCmd(env, &sf))
	return cmd
}

func newDevicesListCmd(env *serviceEnv, sf *serviceFlags) *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:     "list",
		Short:   "List the device identities",
		Example: `  fakehub devices list --json | jq -r '.[].deviceId'`,
		Args:    argsExactly(),
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := sf.client(env)
			if err != nil {
				return err
			}
			ds, err := c.Devices(cmd.Context())
			if err != nil {
				return explain(err, c, "listing devices")
			}
			if asJSON {
				if ds == nil {
					ds = []iothub.Device{}
				}
				return printJSON(cmd.OutOrStdout(), ds)
			}
			tw := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "DEVICE\tSTATUS\tCONNECTION\tC2D QUEUED\tLAST ACTIVITY")
			for _, d := range ds {
				last := "-"
				if !d.LastActivityTime.IsZero() {
					last = d.LastActivityTime.UTC().Format(time.RFC3339)
				}
				fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%s\n", d.DeviceID, d.Status, d.ConnectionState, d.CloudToDeviceMessageCount, last)
			}
			return tw.Flush()
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print IoT Hub's registry JSON array (keys included)")
	return cmd
}

func newDevicesShowCmd(env *serviceEnv, sf *serviceFlags) *cobra.Command {
	return &cobra.Command{
		Use:     "show ID",
		Short:   "Print one device identity as IoT Hub's registry JSON (keys included)",
		Example: `  fakehub devices show dev1`,
		Args:    argsExactly("ID"),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := sf.client(env)
			if err != nil {
				return err
			}
			d, err := c.Device(cmd.Context(), args[0])
			if err != nil {
				return explain(err, c, "reading device "+args[0])
			}
			return printJSON(cmd.OutOrStdout(), d)
		},
	}
}

func newDevicesAddCmd(env *serviceEnv, sf *serviceFlags) *cobra.Command {
	var key, keyFile, secondary string
	var x x509Flags
	cmd := &cobra.Command{
		Use:   "add ID",
		Short: "Create a device identity and print its connection string",
		Long: `Create device ID and print its device connection string
(HostName=...;DeviceId=ID;SharedAccessKey=...). Without --key or --key-file
the hub generates the keys. On a shared machine prefer --key-file ("-" reads
stdin): a --key argument is visible in the process list.

--x509 creates an X.509 identity instead (connection string
HostName=...;DeviceId=ID;x509=true): with --thumbprint (and
--secondary-thumbprint) or --cert FILE it is "selfSigned", authenticated by the
SHA-1 or SHA-256 thumbprint of its certificate (--cert computes the SHA-256);
without them it is "certificateAuthority", authenticated by a CA registered
with "fakehub certificate create" and the certificate's CN = ID.`,
		Example: `  fakehub devices add dev1
  fakehub devices add dev2 --key-file dev2.key
  fakehub devices add cam1 --x509 --cert cam1.pem          # selfSigned, thumbprint of cam1.pem
  fakehub devices add cam2 --x509 --thumbprint 97388663832D0393C9246CAB4FBA2C8677185A25
  fakehub devices add cam3 --x509                           # certificateAuthority (CN=cam3)`,
		Args: argsExactly("ID"),
		RunE: func(cmd *cobra.Command, args []string) error {
			if key != "" && keyFile != "" {
				return cli.Usagef("use either --key or --key-file, not both")
			}
			auth, err := x.authentication(key != "" || keyFile != "" || secondary != "")
			if err != nil {
				return err
			}
			if keyFile != "" {
				b, err := readKeyFile(cmd, keyFile)
				if err != nil {
					return err
				}
				key = b
			}
			if !x.on {
				auth = iothub.SASAuth(key, secondary)
			}
			c, err := sf.client(env)
			if err != nil {
				return err
			}
			d, err := c.CreateDevice(cmd.Context(), iothub.Device{DeviceID: args[0], Authentication: auth})
			if err != nil {
				return explain(err, c, "adding device "+args[0])
			}
			if x.on {
				_, err = fmt.Fprintf(cmd.OutOrStdout(), "HostName=%s;DeviceId=%s;x509=true\n", c.HostName(), d.DeviceID)
				return err
			}
			_, err = fmt.Fprintf(cmd.OutOrStdout(), "HostName=%s;DeviceId=%s;SharedAccessKey=%s\n", c.HostName(), d.DeviceID, d.Authentication.SymmetricKey.PrimaryKey)
			return err
		},
	}
	fs := cmd.Flags()
	fs.StringVar(&key, "key", "", "primary key (base64; default: generated)")
	fs.StringVar(&keyFile, "key-file", "", "read the primary key from this file (- = stdin)")
	fs.StringVar(&secondary, "secondary-key", "", "secondary key (base64; default: generated)")
	x.register(fs)
	return cmd
}

func readKeyFile(cmd *cobra.Command, path string) (string, error) {
	var b []byte
	var err error
	if path == "-" {
		b, err = readArg(cmd, "-")
	} else {
		b, err = os.ReadFile(path)
	}
	if err != nil {
		return "", fmt.Errorf("reading the key: %w", err)
	}
	return strings.TrimSpace(string(b)), nil
}

func newDevicesRemoveCmd(env *serviceEnv, sf *serviceFlags) *cobra.Command {
	return &cobra.Command{
		Use:     "remove ID",
		Short:   "Delete a device identity (and its modules)",
		Example: `  fakehub devices remove dev1`,
		Args:    argsExactly("ID"),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := sf.client(env)
			if err != nil {
				return err
			}
			if err := c.DeleteDevice(cmd.Context(), args[0]); err != nil {
				return explain(err, c, "removing device "+args[0])
			}
			return nil
		},
	}
}

func newDevicesStatusCmd(env *serviceEnv, sf *serviceFlags, verb string, status iothub.DeviceStatus, short string) *cobra.Command {
	var reason string
	cmd := &cobra.Command{
		Use:     verb + " ID",
		Short:   short,
		Example: `  fakehub devices ` + verb + ` dev1`,
		Args:    argsExactly("ID"),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := sf.client(env)
			if err != nil {
				return err
			}
			if _, err := c.SetDeviceStatus(cmd.Context(), args[0], status, reason); err != nil {
				return explain(err, c, verb+" device "+args[0])
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&reason, "reason", "", "status reason to record")
	return cmd
}
