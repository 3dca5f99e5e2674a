package main

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/hubkit/hubkit/internal/cli"
	"github.com/hubkit/hubkit/pkg/device"
)

func newMethodsCmd(st *streams) *cobra.Command {
	var (
		conn     connFlags
		status   int
		response string
		lf       listenFlags
		asJSON   bool
	)
	cmd := &cobra.Command{
		Use:   "methods",
		Short: "Answer every direct method with a fixed status and response, printing each call",
		Long: `Subscribe to direct methods ($iothub/methods/POST/#) and answer every call with
--status and --response (a JSON value; empty: no body). Each call is printed on stdout:
"METHOD PAYLOAD", or with --json {"method":...,"payload":...}.`,
		Example: `  devicesim methods
  devicesim methods --status 200 --response '{"rebooting":true}'
  devicesim methods --status 500 --response '{"message":"simulated failure"}' --count 1`,
		Args: noArgs,
		PreRunE: func(*cobra.Command, []string) error {
			if err := lf.check(); err != nil {
				return err
			}
			if response != "" && !json.Valid([]byte(response)) {
				return cli.Usagef("--response must be JSON, got %q", response)
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			var body any
			if response != "" {
				body = json.RawMessage(response)
			}
			return lf.listen(cmd.Context(), st, &conn, "direct-method calls", func(c *device.Client, q *quota) {
				c.OnAnyMethod(func(_ context.Context, name string, payload []byte) (int, any, error) {
					ok := q.take(func() {
						if asJSON {
							obj := map[string]any{"method": name}
							putPayload(obj, payload, "application/json") // a method payload is JSON
							b, _ := json.Marshal(obj)
							fmt.Fprintf(st.out, "%s\n", b)
						} else {
							fmt.Fprintf(st.out, "%s %s\n", name, printable(payload))
						}
					})
					if !ok {
						return 503, map[string]string{"message": "devicesim is stopping"}, nil
					}
					return status, body, nil
				})
			})
		},
	}
	fs := cmd.Flags()
	fs.SortFlags = false
	fs.IntVar(&status, "status", 200, "status to answer every call with")
	fs.StringVar(&response, "response", "", "JSON response body (empty: none)")
	lf.register(fs, "calls")
	fs.BoolVar(&asJSON, "json", false, "print one JSON object per call")
	conn.register(fs)
	return cmd
}
