package main

// fakehub dps enrollments|groups|registrations: the DPS service API of a running fakehub
// (fakehub --dps), with serviceclient.DPSClient.

import (
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/hubkit/hubkit/internal/certs"
	"github.com/hubkit/hubkit/internal/cli"
	"github.com/hubkit/hubkit/pkg/iothub"
	"github.com/hubkit/hubkit/pkg/iothub/dps"
	"github.com/hubkit/hubkit/pkg/serviceclient"
)

// envDPSConnectionString is the environment variable the dps verbs read when -c is not
// given.
const envDPSConnectionString = "HUBKIT_DPS_CONNECTION_STRING"

const dpsLong = `

The DPS is named by its service connection string (-c, or the
` + envDPSConnectionString + ` environment variable), e.g. fakehub's
provisioningserviceowner policy from the banner of "fakehub --dps":
"HostName=localhost;SharedAccessKeyName=provisioningserviceowner;SharedAccessKey=...".
Requests go to https://{HostName}:8444 unless --dps-url says otherwise; --ca trusts
fakehub's CA. The same commands work against a real DPS (--dps-url
https://{name}.azure-devices-provisioning.net).

Exit codes: 0 success, 1 error (the DPS refused or failed the request, or is
unreachable), 2 usage (bad flags or arguments).`

type dpsServiceFlags struct {
	connectionString string
	url              string
	ca               string
}

func (f *dpsServiceFlags) register(cmd *cobra.Command) {
	fs := cmd.PersistentFlags()
	fs.SortFlags = false
	fs.StringVarP(&f.connectionString, "connection-string", "c", "", "DPS service connection string (default $"+envDPSConnectionString+")")
	fs.StringVar(&f.url, "dps-url", "", "DPS service API URL (default https://{HostName}:8444)")
	fs.StringVar(&f.ca, "ca", "", "CA to trust: a folder holding ca.pem (fakehub serve --ca) or a PEM file")
}

func (f *dpsServiceFlags) client(env *serviceEnv) (*serviceclient.DPSClient, error) {
	cs := f.connectionString
	if cs == "" {
		cs = env.getenv(envDPSConnectionString)
	}
	if cs == "" {
		return nil, cli.Usage(errors.New("no DPS service connection string"),
			"pass -c 'HostName=localhost;SharedAccessKeyName=provisioningserviceowner;SharedAccessKey=...' (fakehub --dps prints it) or set "+envDPSConnectionString)
	}
	opts := []serviceclient.Option{serviceclient.WithNow(env.now)}
	if f.url != "" {
		opts = append(opts, serviceclient.WithURL(f.url))
	}
	if f.ca != "" {
		pool, err := certs.LoadPool(f.ca)
		if err != nil {
			return nil, cli.NewError(cli.ExitError, fmt.Errorf("reading the CA: %w", err))
		}
		opts = append(opts, serviceclient.WithRootCAs(pool))
	}
	c, err := serviceclient.NewDPS(cs, opts...)
	if err != nil {
		return nil, cli.Usage(err)
	}
	return c, nil
}

// run wraps a verb that needs the DPS client.
func (f *dpsServiceFlags) run(env *serviceEnv, verb func(cmd *cobra.Command, c *serviceclient.DPSClient, args []string) error) func(*cobra.Command, []string) error {
	return func(cmd *cobra.Command, args []string) error {
		c, err := f.client(env)
		if err != nil {
			return err
		}
		return verb(cmd, c, args)
	}
}

// explainDPS turns a DPS client error into a cli.Error with hints.
func explainDPS(err error, c *serviceclient.DPSClient, what string) error {
	var de *dps.Error
	var ne net.Error
	switch {
	case errors.As(err, &de):
		if de.Status() == 401 {
			return cli.NewError(cli.ExitError, fmt.Errorf("%s: the DPS refused the token (%v): %s", what, de.Code, orString(de.Reason, "unauthorized")), de.Hints...)
		}
		return cli.NewError(cli.ExitError, fmt.Errorf("%s: %v", what, de.Error()), de.Hints...)
	case strings.Contains(err.Error(), "certificate"):
		return cli.NewError(cli.ExitError, fmt.Errorf("%s: %w", what, err), "pass --ca with fakehub's CA folder or its ca.pem")
	case errors.As(err, &ne) || strings.Contains(err.Error(), "connection refused"):
		return cli.NewError(cli.ExitError, fmt.Errorf("%s: %w", what, err),
			"is fakehub running with --dps, its HTTPS API at "+c.URL()+"? (fakehub --dps ADDR --dps-http ADDR; or pass --dps-url)")
	}
	return cli.NewError(cli.ExitError, fmt.Errorf("%s: %w", what, err))
}

func newDPSCmd(env *serviceEnv) *cobra.Command {
	var sf dpsServiceFlags
	cmd := &cobra.Command{
		Use:   "dps",
		Short: "Manage the DPS's enrollments, enrollment groups and registration records",
		Long:  `Manage a Device Provisioning Service through its service API.` + dpsLong,
		Example: `  export ` + envDPSConnectionString + `='HostName=localhost;SharedAccessKeyName=provisioningserviceowner;SharedAccessKey=...'
  fakehub dps groups add fleet --ca testdata/certs                  # a symmetric-key group, key generated
  fakehub dps enrollments add thermostat-7 --ca testdata/certs
  fakehub dps registrations show thermostat-7 --ca testdata/certs`,
		Args: func(cmd *cobra.Command, args []string) error {
			if len(args) == 0 {
				return cli.Usagef("%s needs a noun: enrollments, groups or registrations", cmd.CommandPath())
			}
			return cli.Usagef("%s: unknown noun %q (want enrollments, groups or registrations)", cmd.CommandPath(), args[0])
		},
		RunE: func(*cobra.Command, []string) error { return nil },
	}
	sf.register(cmd)
	cmd.AddCommand(newDPSEnrollmentsCmd(env, &sf), newDPSGroupsCmd(env, &sf), newDPSRegistrationsCmd(env, &sf))
	return cmd
}

func nounCmd(use, short, verbs string) *cobra.Command {
	return &cobra.Command{
		Use:   use,
		Short: short,
		Long:  short + "." + dpsLong,
		Args: func(cmd *cobra.Command, args []string) error {
			if len(args) == 0 {
				return cli.Usagef("%s needs a verb: %s", cmd.CommandPath(), verbs)
			}
			return cli.Usagef("%s: unknown verb %q (want %s)", cmd.CommandPath(), args[0], verbs)
		},
		RunE: func(*cobra.Command, []string) error { return nil },
	}
}

// enrollmentFlags are what "enrollments add" and "groups add" share.
type enrollmentFlags struct {
	key, secondaryKey, initialTwin, allocation string
	cert, secondaryCert                        string
	hubs                                       []string
	disabled, noUpdateHub, resetData           bool
}

func (f *enrollmentFlags) register(cmd *cobra.Command) {
	fs := cmd.Flags()
	fs.StringVar(&f.key, "key", "", "primary symmetric `KEY` (base64; default generated)")
	fs.StringVar(&f.secondaryKey, "secondary-key", "", "secondary symmetric `KEY` (default generated)")
	fs.StringVar(&f.cert, "cert", "", "X.509 attestation instead of keys: PEM `FILE` of the device's certificate (enrollments) or of the root or intermediate CA that signed the devices (groups)")
	fs.StringVar(&f.secondaryCert, "secondary-cert", "", "with --cert: the secondary certificate's PEM `FILE`")
	fs.BoolVar(&f.disabled, "disabled", false, "create it with provisioningStatus disabled")
	fs.StringVar(&f.initialTwin, "initial-twin", "", `initial twin `+"`JSON`"+`, e.g. '{"tags":{"site":"lab"},"properties":{"desired":{"interval":10}}}'`)
	fs.StringVar(&f.allocation, "allocation-policy", "", "`POLICY`: hashed, geoLatency, static or custom")
	fs.StringArrayVar(&f.hubs, "iot-hub", nil, "IoT hub `NAME` devices may be assigned to (repeatable; default every linked hub)")
	fs.BoolVar(&f.noUpdateHub, "no-update-hub-assignment", false, "reprovisionPolicy.updateHubAssignment false")
	fs.BoolVar(&f.resetData, "reset-device-data", false, "reprovisionPolicy.migrateDeviceData false (re-provisioning resets the twin)")
}

// common builds what enrollments and groups share; group says where --cert goes
// (signingCertificates, else clientCertificates).
func (f *enrollmentFlags) common(group bool) (dps.Attestation, dps.ProvisioningStatus, *dps.InitialTwin, *dps.ReprovisionPolicy, error) {
	att, err := f.attestation(group)
	st := dps.ProvisioningEnabled
	if err != nil {
		return att, st, nil, nil, err
	}
	if f.disabled {
		st = dps.ProvisioningDisabled
	}
	var twin *dps.InitialTwin
	if f.initialTwin != "" {
		twin = &dps.InitialTwin{}
		if err := json.Unmarshal([]byte(f.initialTwin), twin); err != nil {
			return att, st, nil, nil, cli.Usagef(`--initial-twin: %v (want {"tags":{...},"properties":{"desired":{...}}})`, err)
		}
	}
	var rp *dps.ReprovisionPolicy
	if f.noUpdateHub || f.resetData {
		rp = &dps.ReprovisionPolicy{UpdateHubAssignment: !f.noUpdateHub, MigrateDeviceData: !f.resetData}
	}
	return att, st, twin, rp, nil
}

func newDPSEnrollmentsCmd(env *serviceEnv, sf *dpsServiceFlags) *cobra.Command {
	cmd := nounCmd("enrollments", "List, show, add and remove individual enrollments", "list, show, add or remove")
	var asJSON bool
	list := &cobra.Command{Use: "list", Short: "List the individual enrollments", Args: argsExactly(),
		RunE: sf.run(env, func(cmd *cobra.Command, c *serviceclient.DPSClient, _ []string) error {
			ens, err := c.Enrollments(cmd.Context())
			if err != nil {
				return explainDPS(err, c, "listing enrollments")
			}
			if asJSON {
				return printJSON(cmd.OutOrStdout(), orEmpty(ens))
			}
			tw := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "REGISTRATION ID\tDEVICE ID\tATTESTATION\tSTATUS\tREGISTRATION")
			for _, en := range ens {
				reg := "-"
				if en.RegistrationState != nil {
					reg = string(en.RegistrationState.Status) + " " + en.RegistrationState.AssignedHub
				}
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", en.RegistrationID, orString(en.DeviceID, en.RegistrationID), en.Attestation.Type, en.ProvisioningStatus, reg)
			}
			return tw.Flush()
		})}
	list.Flags().BoolVar(&asJSON, "json", false, "print the service API's JSON array (keys included)")
	show := &cobra.Command{Use: "show ID", Short: "Print an individual enrollment (JSON, keys included)", Args: argsExactly("ID"),
		RunE: sf.run(env, func(cmd *cobra.Command, c *serviceclient.DPSClient, args []string) error {
			en, err := c.Enrollment(cmd.Context(), args[0])
			if err != nil {
				return explainDPS(err, c, "reading enrollment "+args[0])
			}
			return printJSON(cmd.OutOrStdout(), en)
		})}
	var ef enrollmentFlags
	var deviceID string
	add := &cobra.Command{Use: "add ID", Short: "Create an individual enrollment (symmetric keys, or X.509 with --cert) and print it (JSON)", Args: argsExactly("ID"),
		Example: `  fakehub dps enrollments add thermostat-7 --device-id thermo-7 --initial-twin '{"properties":{"desired":{"interval":10}}}'`,
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := iothub.ValidateRegistrationID(args[0]); err != nil {
				return cli.Usagef("%v", err)
			}
			att, st, twin, rp, err := ef.common(false)
			if err != nil {
				return err
			}
			c, err := sf.client(env)
			if err != nil {
				return err
			}
			en, err := c.PutEnrollment(cmd.Context(), dps.Enrollment{RegistrationID: args[0], DeviceID: deviceID, Attestation: att, ProvisioningStatus: st,
				InitialTwin: twin, ReprovisionPolicy: rp, AllocationPolicy: dps.AllocationPolicy(ef.allocation), IoTHubs: ef.hubs}, "")
			if err != nil {
				return explainDPS(err, c, "adding enrollment "+args[0])
			}
			return printJSON(cmd.OutOrStdout(), en)
		}}
	ef.register(add)
	add.Flags().StringVar(&deviceID, "device-id", "", "the hub device `ID` (default the registration ID)")
	remove := &cobra.Command{Use: "remove ID", Short: "Delete an individual enrollment (its device stays in the hub)", Args: argsExactly("ID"),
		RunE: sf.run(env, func(cmd *cobra.Command, c *serviceclient.DPSClient, args []string) error {
			if err := c.DeleteEnrollment(cmd.Context(), args[0], ""); err != nil {
				return explainDPS(err, c, "removing enrollment "+args[0])
			}
			return nil
		})}
	cmd.AddCommand(list, show, add, remove)
	return cmd
}

func newDPSGroupsCmd(env *serviceEnv, sf *dpsServiceFlags) *cobra.Command {
	cmd := nounCmd("groups", "List, show, add and remove enrollment groups", "list, show, add or remove")
	var asJSON bool
	list := &cobra.Command{Use: "list", Short: "List the enrollment groups", Args: argsExactly(),
		RunE: sf.run(env, func(cmd *cobra.Command, c *serviceclient.DPSClient, _ []string) error {
			gs, err := c.Groups(cmd.Context())
			if err != nil {
				return explainDPS(err, c, "listing enrollment groups")
			}
			if asJSON {
				return printJSON(cmd.OutOrStdout(), orEmpty(gs))
			}
			tw := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "GROUP ID\tATTESTATION\tSTATUS\tALLOCATION")
			for _, g := range gs {
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", g.EnrollmentGroupID, g.Attestation.Type, g.ProvisioningStatus, orString(string(g.AllocationPolicy), "hashed"))
			}
			return tw.Flush()
		})}
	list.Flags().BoolVar(&asJSON, "json", false, "print the service API's JSON array (keys included)")
	show := &cobra.Command{Use: "show ID", Short: "Print an enrollment group (JSON, keys included)", Args: argsExactly("ID"),
		RunE: sf.run(env, func(cmd *cobra.Command, c *serviceclient.DPSClient, args []string) error {
			g, err := c.Group(cmd.Context(), args[0])
			if err != nil {
				return explainDPS(err, c, "reading enrollment group "+args[0])
			}
			return printJSON(cmd.OutOrStdout(), g)
		})}
	var ef enrollmentFlags
	add := &cobra.Command{Use: "add ID", Short: "Create an enrollment group (symmetric keys, or X.509 with --cert CA_FILE) and print it (JSON)", Args: argsExactly("ID"),
		Example: `  fakehub dps groups add fleet --key "$GROUP_KEY"
  sastool derive --group-key "$GROUP_KEY" --registration-id sensor-1     # the device's key`,
		RunE: func(cmd *cobra.Command, args []string) error {
			att, st, twin, rp, err := ef.common(true)
			if err != nil {
				return err
			}
			c, err := sf.client(env)
			if err != nil {
				return err
			}
			g, err := c.PutGroup(cmd.Context(), dps.EnrollmentGroup{EnrollmentGroupID: args[0], Attestation: att, ProvisioningStatus: st,
				InitialTwin: twin, ReprovisionPolicy: rp, AllocationPolicy: dps.AllocationPolicy(ef.allocation), IoTHubs: ef.hubs}, "")
			if err != nil {
				return explainDPS(err, c, "adding enrollment group "+args[0])
			}
			return printJSON(cmd.OutOrStdout(), g)
		}}
	ef.register(add)
	remove := &cobra.Command{Use: "remove ID", Short: "Delete an enrollment group and its registration records", Args: argsExactly("ID"),
		RunE: sf.run(env, func(cmd *cobra.Command, c *serviceclient.DPSClient, args []string) error {
			if err := c.DeleteGroup(cmd.Context(), args[0], ""); err != nil {
				return explainDPS(err, c, "removing enrollment group "+args[0])
			}
			return nil
		})}
	cmd.AddCommand(list, show, add, remove)
	return cmd
}

func newDPSRegistrationsCmd(env *serviceEnv, sf *dpsServiceFlags) *cobra.Command {
	cmd := nounCmd("registrations", "List, show and remove device registration records", "list, show or remove")
	var group string
	var asJSON bool
	list := &cobra.Command{Use: "list --group ID", Short: "List the registration records of an enrollment group", Args: argsExactly(),
		RunE: func(cmd *cobra.Command, _ []string) error {
			if group == "" {
				return cli.Usagef("%s needs --group ID (individual registrations: registrations show ID)", cmd.CommandPath())
			}
			c, err := sf.client(env)
			if err != nil {
				return err
			}
			rs, err := c.GroupRegistrations(cmd.Context(), group)
			if err != nil {
				return explainDPS(err, c, "listing the registrations of "+group)
			}
			if asJSON {
				return printJSON(cmd.OutOrStdout(), orEmpty(rs))
			}
			tw := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "REGISTRATION ID\tSTATUS\tHUB\tDEVICE ID\tSUBSTATUS")
			for _, r := range rs {
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", r.RegistrationID, r.Status, orString(r.AssignedHub, "-"), orString(r.DeviceID, "-"), orString(string(r.Substatus), "-"))
			}
			return tw.Flush()
		}}
	list.Flags().StringVar(&group, "group", "", "enrollment group `ID`")
	list.Flags().BoolVar(&asJSON, "json", false, "print the service API's JSON array")
	show := &cobra.Command{Use: "show ID", Short: "Print a registration record (JSON)", Args: argsExactly("ID"),
		RunE: sf.run(env, func(cmd *cobra.Command, c *serviceclient.DPSClient, args []string) error {
			r, err := c.Registration(cmd.Context(), args[0])
			if err != nil {
				return explainDPS(err, c, "reading the registration of "+args[0])
			}
			return printJSON(cmd.OutOrStdout(), r)
		})}
	remove := &cobra.Command{Use: "remove ID", Short: "Delete a registration record (the next registration is an initial assignment)", Args: argsExactly("ID"),
		RunE: sf.run(env, func(cmd *cobra.Command, c *serviceclient.DPSClient, args []string) error {
			if err := c.DeleteRegistration(cmd.Context(), args[0], ""); err != nil {
				return explainDPS(err, c, "removing the registration of "+args[0])
			}
			return nil
		})}
	cmd.AddCommand(list, show, remove)
	return cmd
}

func orEmpty[T any](s []T) []T {
	if s == nil {
		return []T{}
	}
	return s
}

// attestation is the symmetric-key attestation of --key/--secondary-key, or the X.509 one
// of --cert/--secondary-cert (docs/iothub-behavior.md §7.15, §7.16).
func (f *enrollmentFlags) attestation(group bool) (dps.Attestation, error) {
	if f.cert == "" {
		if f.secondaryCert != "" {
			return dps.Attestation{}, cli.Usagef("--secondary-cert needs --cert")
		}
		return dps.SymmetricKeyAttestation(f.key, f.secondaryKey), nil
	}
	if f.key != "" || f.secondaryKey != "" {
		return dps.Attestation{}, cli.Usagef("--cert (X.509) and --key/--secondary-key (symmetric keys): give one attestation")
	}
	set := &dps.X509Certificates{}
	for _, c := range []struct {
		file string
		dst  **dps.X509CertificateWithInfo
	}{{f.cert, &set.Primary}, {f.secondaryCert, &set.Secondary}} {
		if c.file == "" {
			continue
		}
		b, err := os.ReadFile(c.file)
		if err != nil {
			return dps.Attestation{}, fmt.Errorf("reading the certificate: %w", err)
		}
		*c.dst = &dps.X509CertificateWithInfo{Certificate: string(b)}
	}
	x := &dps.X509Attestation{ClientCertificates: set}
	if group {
		x = &dps.X509Attestation{SigningCertificates: set}
	}
	return dps.Attestation{Type: dps.AttestationX509, X509: x}, nil
}
