package main

// The service verbs (send, events, invoke, twin, devices, rejections) play
// the cloud side against a running fakehub's service API, with
// pkg/fakehub/serviceclient. They are registered on the root command with
// serviceCommands.

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/hubkit/hubkit/internal/certs"
	"github.com/hubkit/hubkit/internal/cli"
	"github.com/hubkit/hubkit/pkg/iothub"
	"github.com/hubkit/hubkit/pkg/serviceclient"
)

// envServiceConnectionString is the environment variable the service verbs
// read when -c is not given.
const envServiceConnectionString = "HUBKIT_SERVICE_CONNECTION_STRING"

// serviceEnv is what the service verbs take from the process.
type serviceEnv struct {
	getenv func(string) string // os.Getenv in main
	now    func() time.Time    // time.Now in main
}

// serviceCommands returns the service verbs for the root command:
//
//	root.AddCommand(serviceCommands(os.Getenv, time.Now)...)
//
// Their errors carry exit codes and hints for cli.Report (see package cli).
func serviceCommands(getenv func(string) string, now func() time.Time) []*cobra.Command {
	env := &serviceEnv{getenv: getenv, now: now}
	return []*cobra.Command{
		newSendCmd(env), newEventsCmd(env), newInvokeCmd(env), newTwinCmd(env),
		newDevicesCmd(env), newRejectionsCmd(env), newClockCmd(env), newDPSCmd(env), newResetCmd(env),
		newCertificateCmd(env), newFaultCmd(env), newLimitsCmd(env), newHealthCmd(), newGradeCmd(env),
	}
}

// serviceLong is appended to each service verb's help.
const serviceLong = `

The hub is named by a service connection string (-c, or the
` + envServiceConnectionString + ` environment variable), e.g. fakehub's
iothubowner policy: "HostName=localhost;SharedAccessKeyName=iothubowner;
SharedAccessKey=...". Requests go to https://{HostName}:8443 unless --hub-url
says otherwise; --ca trusts fakehub's CA (the --ca folder of "fakehub serve",
or a PEM file). Each request carries a fresh 5-minute SAS token.

Exit codes: 0 success, 1 error (the hub refused or failed the request, or is
unreachable), 2 usage (bad flags or arguments).`

// serviceFlags are the flags every service verb takes.
type serviceFlags struct {
	connectionString string
	hubURL           string
	ca               string
}

func (f *serviceFlags) register(cmd *cobra.Command) {
	cmd.Flags().SortFlags = false
	fs := cmd.PersistentFlags()
	fs.SortFlags = false
	fs.StringVarP(&f.connectionString, "connection-string", "c", "", "service connection string (default $"+envServiceConnectionString+")")
	fs.StringVar(&f.hubURL, "hub-url", "", "service API URL (default https://{HostName}:8443)")
	fs.StringVar(&f.ca, "ca", "", cli.CAFlagUsage)
}

// client builds the service client from the flags and environment.
func (f *serviceFlags) client(env *serviceEnv) (*serviceclient.Client, error) {
	cs := f.connectionString
	if cs == "" {
		cs = env.getenv(envServiceConnectionString)
	}
	if cs == "" {
		return nil, cli.Usage(errors.New("no service connection string"),
			"pass -c 'HostName=localhost;SharedAccessKeyName=iothubowner;SharedAccessKey=...' or set "+envServiceConnectionString)
	}
	opts := []serviceclient.Option{serviceclient.WithNow(env.now)}
	if f.hubURL != "" {
		opts = append(opts, serviceclient.WithURL(f.hubURL))
	}
	if f.ca != "" {
		pool, err := certs.LoadPool(f.ca)
		if err != nil {
			return nil, cli.NewError(cli.ExitError, fmt.Errorf("--ca: %w", err))
		}
		opts = append(opts, serviceclient.WithRootCAs(pool))
	}
	c, err := serviceclient.New(cs, opts...)
	if err != nil {
		return nil, cli.Usage(err)
	}
	return c, nil
}

// explain turns a client error into a cli.Error with hints; what names the
// operation ("invoking reboot on dev1").
func explain(err error, c *serviceclient.Client, what string) error {
	var se *iothub.Error
	var ne net.Error
	switch {
	case errors.As(err, &se):
		switch se.Status() {
		case 401:
			return cli.NewError(cli.ExitError,
				fmt.Errorf("%s: the hub refused the token (%v): %s", what, se.Code, orString(se.Reason, "unauthorized")), se.Hints...)
		case 404:
			if se.Code == iothub.CodeDeviceNotOnline {
				return cli.NewError(cli.ExitError, fmt.Errorf("%s: %w", what, err),
					"the device must be connected and subscribed to $iothub/methods/POST/# (or pass --connect-timeout to wait for it)")
			}
			if se.Code == iothub.CodeDeviceNotFound {
				return cli.NewError(cli.ExitError, fmt.Errorf("%s: %w", what, err),
					"fakehub devices list shows the registered devices (IDs are case-sensitive)")
			}
		case 504:
			return cli.NewError(cli.ExitError, fmt.Errorf("%s: %w", what, err),
				"the device received the request but did not publish $iothub/methods/res/{status}/?$rid={rid} in time")
		}
	case errors.Is(err, context.Canceled):
		return err
	case strings.Contains(err.Error(), "certificate"):
		return cli.NewError(cli.ExitError, fmt.Errorf("%s: %w", what, err),
			"pass --ca with fakehub's CA folder (the --ca of fakehub serve) or its ca.pem")
	case errors.As(err, &ne) || strings.Contains(err.Error(), "connection refused"):
		return cli.NewError(cli.ExitError, fmt.Errorf("%s: %w", what, err),
			"is fakehub running with its service API at "+c.URL()+"? (fakehub serve --http ADDR; or pass --hub-url)")
	}
	return cli.NewError(cli.ExitError, fmt.Errorf("%s: %w", what, err))
}

func orString(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

// argsExactly checks the number of positional arguments, naming them.
func argsExactly(names ...string) cobra.PositionalArgs {
	return argsBetween(len(names), names...)
}

// argsBetween accepts min to len(names) arguments.
func argsBetween(minimum int, names ...string) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		if len(args) < minimum || len(args) > len(names) {
			return cli.Usagef("%s takes %s, got %d argument(s)", cmd.CommandPath(), strings.Join(names, " "), len(args))
		}
		return nil
	}
}

// readArg returns arg, or stdin when arg is "-".
func readArg(cmd *cobra.Command, arg string) ([]byte, error) {
	if arg != "-" {
		return []byte(arg), nil
	}
	b, err := io.ReadAll(cmd.InOrStdin())
	if err != nil {
		return nil, fmt.Errorf("reading stdin: %w", err)
	}
	return b, nil
}
