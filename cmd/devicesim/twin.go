package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"time"

	"github.com/spf13/cobra"

	"github.com/hubkit/hubkit/internal/cli"
	"github.com/hubkit/hubkit/pkg/device"
)

func newTwinCmd(st *streams) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "twin",
		Short: "Read the device twin, report properties, watch desired properties",
		Example: `  devicesim twin get
  devicesim twin report '{"firmware":"1.2.3","temperature":21.5}'
  devicesim twin watch --count 1`,
		Args: noArgs,
	}
	cmd.AddCommand(newTwinGetCmd(st), newTwinReportCmd(st), newTwinWatchCmd(st))
	return cmd
}

func newTwinGetCmd(st *streams) *cobra.Command {
	var (
		conn    connFlags
		timeout time.Duration
	)
	cmd := &cobra.Command{
		Use:   "get",
		Short: "Print the twin (desired and reported properties) as JSON",
		Long: `GET the twin over MQTT ($iothub/twin/GET) and print the answer, indented:
{"desired":{...,"$version":n},"reported":{...,"$version":m}}.`,
		Example: `  devicesim twin get
  devicesim twin get | jq .desired`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			c, err := conn.client(ctx, st, nil, false)
			if err != nil {
				return err
			}
			defer closeClient(c)
			ctx, cancel := context.WithTimeout(ctx, timeout)
			defer cancel()
			t, err := c.GetTwin(ctx)
			if err != nil {
				return err
			}
			return printJSON(st.out, map[string]json.RawMessage{"desired": t.Desired, "reported": t.Reported})
		},
	}
	cmd.Flags().DurationVar(&timeout, "timeout", answerTimeout, "give up if the hub has not answered after this long")
	conn.register(cmd.Flags())
	return cmd
}

func newTwinReportCmd(st *streams) *cobra.Command {
	var (
		conn    connFlags
		timeout time.Duration
	)
	cmd := &cobra.Command{
		Use:   "report JSON",
		Short: "Send a reported-properties patch and print the new reported version",
		Long: `Send JSON as a reported-properties JSON merge patch ($iothub/twin/PATCH/properties/reported)
and print {"version":N}, the reported version the hub answered. A property set to null is
deleted. "-" reads the patch from stdin. A hub refusal (status 400 for an invalid patch)
exits 1.`,
		Example: `  devicesim twin report '{"firmware":"1.2.3"}'
  devicesim twin report '{"obsolete":null}'
  cat patch.json | devicesim twin report -`,
		Args: oneArg("the patch, a JSON object"),
		RunE: func(cmd *cobra.Command, args []string) error {
			patch := []byte(args[0])
			if args[0] == "-" {
				b, err := io.ReadAll(st.in)
				if err != nil {
					return fmt.Errorf("reading the patch from stdin: %w", err)
				}
				patch = b
			}
			var obj map[string]any
			if err := json.Unmarshal(patch, &obj); err != nil {
				return cli.Usagef("the patch must be a JSON object: %v", err)
			}
			ctx := cmd.Context()
			c, err := conn.client(ctx, st, nil, false)
			if err != nil {
				return err
			}
			defer closeClient(c)
			ctx, cancel := context.WithTimeout(ctx, timeout)
			defer cancel()
			v, err := c.UpdateReported(ctx, json.RawMessage(patch))
			if err != nil {
				return err
			}
			fmt.Fprintf(st.out, "{\"version\":%d}\n", v)
			return nil
		},
	}
	cmd.Flags().DurationVar(&timeout, "timeout", answerTimeout, "give up if the hub has not answered after this long")
	conn.register(cmd.Flags())
	return cmd
}

func newTwinWatchCmd(st *streams) *cobra.Command {
	var (
		conn connFlags
		lf   listenFlags
	)
	cmd := &cobra.Command{
		Use:   "watch",
		Short: "Print desired-property changes as they arrive",
		Long: `Subscribe to desired-property notifications and print one JSON line per change:
{"version":N,"patch":{...}}. On every (re)connection the twin is read again and
notifications not newer than it are dropped; changes missed while offline arrive as one
line holding the full desired properties.`,
		Example: `  devicesim twin watch
  devicesim twin watch --count 1 --timeout 1m`,
		Args:    noArgs,
		PreRunE: func(*cobra.Command, []string) error { return lf.check() },
		RunE: func(cmd *cobra.Command, args []string) error {
			return lf.listen(cmd.Context(), st, &conn, "desired-property changes", func(c *device.Client, q *quota) {
				c.OnDesired(func(_ context.Context, patch json.RawMessage, version int64) {
					q.take(func() {
						b, _ := json.Marshal(map[string]any{"version": version, "patch": patch})
						fmt.Fprintf(st.out, "%s\n", b)
					})
				})
			})
		},
	}
	fs := cmd.Flags()
	fs.SortFlags = false
	lf.register(fs, "changes")
	conn.register(fs)
	return cmd
}

func printJSON(w io.Writer, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	var buf bytes.Buffer
	if err := json.Indent(&buf, b, "", "  "); err != nil {
		return err
	}
	buf.WriteByte('\n')
	_, err = w.Write(buf.Bytes())
	return err
}
