package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/hubkit/hubkit/internal/cli"
	"github.com/hubkit/hubkit/pkg/iothub"
	"github.com/hubkit/hubkit/pkg/serviceclient"
)

func newInvokeCmd(env *serviceEnv) *cobra.Command {
	var (
		sf             serviceFlags
		module         string
		timeout        time.Duration
		connectTimeout time.Duration
	)
	cmd := &cobra.Command{
		Use:   "invoke DEVICE METHOD [PAYLOAD]",
		Short: "Call a direct method and print the device's answer",
		Long: `Call direct method METHOD on DEVICE (or --module) with a JSON PAYLOAD ("-"
reads stdin; none sends null) and print the answer as IoT Hub returns it:
{"status":<the device's status>,"payload":<its JSON>}. A device that is not
connected (404 DeviceNotOnline) or does not answer within --timeout
(504 GatewayTimeout) is an error (exit 1).` + serviceLong,
		Example: `  fakehub invoke dev1 reboot '{"delay":5}'
  fakehub invoke dev1 getConfig --timeout 10s --connect-timeout 30s`,
		Args: argsBetween(2, "DEVICE", "METHOD", "[PAYLOAD]"),
		RunE: func(cmd *cobra.Command, args []string) error {
			var payload json.RawMessage
			if len(args) == 3 {
				p, err := readArg(cmd, args[2])
				if err != nil {
					return err
				}
				if !json.Valid(p) {
					return cli.Usage(fmt.Errorf("PAYLOAD %q is not JSON", p), `a direct method payload is JSON: quote text as '"text"'`)
				}
				payload = p
			}
			if timeout%time.Second != 0 || timeout < 5*time.Second || timeout > 300*time.Second {
				return cli.Usagef("--timeout must be whole seconds from 5s to 5m0s (IoT Hub's limits), got %v", timeout)
			}
			if connectTimeout%time.Second != 0 || connectTimeout < 0 || connectTimeout > 300*time.Second {
				return cli.Usagef("--connect-timeout must be whole seconds from 0s to 5m0s, got %v", connectTimeout)
			}
			call := iothub.NewMethodRequest(args[1], payload, timeout, connectTimeout)
			c, err := sf.client(env)
			if err != nil {
				return err
			}
			var res iothub.MethodResult
			target := args[0]
			if module == "" {
				res, err = c.InvokeMethod(cmd.Context(), args[0], call)
			} else {
				target += "/" + module
				res, err = c.InvokeModuleMethod(cmd.Context(), args[0], module, call)
			}
			if err != nil {
				return explainInvoke(err, c, call.MethodName, target, timeout)
			}
			return printJSON(cmd.OutOrStdout(), res)
		},
	}
	sf.register(cmd)
	fs := cmd.Flags()
	fs.StringVarP(&module, "module", "m", "", "call the method on this module of DEVICE")
	fs.DurationVar(&timeout, "timeout", 30*time.Second, "how long the hub waits for the answer (responseTimeoutInSeconds, 5s..5m)")
	fs.DurationVar(&connectTimeout, "connect-timeout", 0, "how long the hub waits for the device to connect (connectTimeoutInSeconds; 0: it must be online)")
	return cmd
}

// explainInvoke words the two errors every method caller meets.
func explainInvoke(err error, c *serviceclient.Client, method, target string, timeout time.Duration) error {
	e := explain(err, c, "invoking "+method+" on "+target)
	var msg error
	switch {
	case errors.Is(err, iothub.ErrDeviceNotOnline):
		msg = fmt.Errorf("invoking %s on %s: the device is not online (%v)", method, target, iothub.CodeDeviceNotOnline)
	case errors.Is(err, iothub.ErrGatewayTimeout):
		msg = fmt.Errorf("invoking %s on %s: no answer within %v (%v)", method, target, timeout, iothub.CodeGatewayTimeout)
	}
	ce, ok := e.(*cli.Error)
	if !ok || msg == nil {
		return e
	}
	return cli.NewError(ce.ExitCode(), msg, ce.Hints()...)
}

func newTwinCmd(env *serviceEnv) *cobra.Command {
	var (
		sf            serviceFlags
		module        string
		desired, tags string
		replace       bool
		ifMatch       string
	)
	cmd := &cobra.Command{
		Use:   "twin DEVICE",
		Short: "Show a twin, or change its desired properties and tags",
		Long: `Print DEVICE's twin (or --module's) as IoT Hub's REST API renders it. With --desired or --tags, first
apply them as a JSON merge patch (null deletes a key; --replace replaces the
sections instead), which bumps the desired $version and notifies the device
if it subscribed to $iothub/twin/PATCH/properties/desired/#.` + serviceLong,
		Example: `  fakehub twin dev1
  fakehub twin dev1 --desired '{"interval":5,"old":null}' --tags '{"site":"lab"}'`,
		Args: argsExactly("DEVICE"),
		RunE: func(cmd *cobra.Command, args []string) error {
			var p iothub.TwinUpdate
			for _, f := range []struct {
				name, v string
				dst     *json.RawMessage
			}{{"--desired", desired, &p.Desired}, {"--tags", tags, &p.Tags}} {
				if f.v == "" {
					continue
				}
				if !json.Valid([]byte(f.v)) || f.v[0] != '{' {
					return cli.Usagef("%s %q: want a JSON object such as '{\"interval\":5}'", f.name, f.v)
				}
				*f.dst = json.RawMessage(f.v)
			}
			if (replace || ifMatch != "") && p.Desired == nil && p.Tags == nil {
				return cli.Usagef("--replace and --if-match need --desired or --tags")
			}
			p.Replace, p.IfMatch = replace, ifMatch
			c, err := sf.client(env)
			if err != nil {
				return err
			}
			ctx := cmd.Context()
			var tw iothub.Twin
			switch {
			case p.Desired == nil && p.Tags == nil && module == "":
				tw, err = c.Twin(ctx, args[0])
			case p.Desired == nil && p.Tags == nil:
				tw, err = c.ModuleTwin(ctx, args[0], module)
			case module == "":
				tw, err = c.UpdateTwin(ctx, args[0], p)
			default:
				tw, err = c.UpdateModuleTwin(ctx, args[0], module, p)
			}
			if err != nil {
				return explain(err, c, "twin of "+args[0])
			}
			return printJSON(cmd.OutOrStdout(), tw)
		},
	}
	sf.register(cmd)
	fs := cmd.Flags()
	fs.StringVarP(&module, "module", "m", "", "the twin of this module of DEVICE")
	fs.StringVar(&desired, "desired", "", "desired properties to merge (JSON object)")
	fs.StringVar(&tags, "tags", "", "tags to merge (JSON object)")
	fs.BoolVar(&replace, "replace", false, "replace the desired properties and tags instead of merging")
	fs.StringVar(&ifMatch, "if-match", "", "only change the twin if its etag is still this")
	return cmd
}
