package main

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/hubkit/hubkit/internal/cli"
	"github.com/hubkit/hubkit/pkg/iothub"
	"github.com/hubkit/hubkit/pkg/serviceclient"
)

func newSendCmd(env *serviceEnv) *cobra.Command {
	var (
		sf                                                       serviceFlags
		props                                                    []string
		msgID, corrID, userID, contentType, contentEncoding, ack string
		ttl                                                      time.Duration
		asJSON                                                   bool
	)
	cmd := &cobra.Command{
		Use:   "send DEVICE PAYLOAD",
		Short: "Send a cloud-to-device message (PAYLOAD - reads stdin)",
		Long: `Send a cloud-to-device message to DEVICE through the hub's queue. The device
receives it on devices/DEVICE/messages/devicebound/{properties} once it
subscribes. Prints the message ID (--json: the message state).` + serviceLong,
		Example: `  fakehub send dev1 '{"led":"on"}' --property severity=high --content-type application/json
  echo hello | fakehub send dev1 - --message-id m-42 --ack full --ttl 10m`,
		Args: argsExactly("DEVICE", "PAYLOAD"),
		RunE: func(cmd *cobra.Command, args []string) error {
			body, err := readArg(cmd, args[1])
			if err != nil {
				return err
			}
			m := iothub.C2DMessage{MessageID: msgID, CorrelationID: corrID, UserID: userID, ContentType: contentType,
				ContentEncoding: contentEncoding, Ack: iothub.C2DAck(ack), Payload: body}
			for _, p := range props {
				k, v, ok := strings.Cut(p, "=")
				if !ok || k == "" {
					return cli.Usagef("--property %q: want NAME=VALUE", p)
				}
				m.Properties = m.Properties.Set(k, v)
			}
			if ttl != 0 && (ttl < iothub.MinC2DTTL || ttl > iothub.MaxC2DTTL) {
				return cli.Usagef("--ttl %v: a C2D message lives %s to %s on IoT Hub (default 1h)", ttl, shortDuration(iothub.MinC2DTTL), shortDuration(iothub.MaxC2DTTL))
			}
			if _, err := iothub.ParseC2DAck(ack); err != nil {
				return cli.Usagef("--ack %q: want one of none, positive, negative, full", ack)
			}
			if ttl > 0 {
				m.ExpiryTime = env.now().Add(ttl)
			}
			c, err := sf.client(env)
			if err != nil {
				return err
			}
			st, err := c.SendC2D(cmd.Context(), args[0], m)
			if err != nil {
				return explain(err, c, "sending to "+args[0])
			}
			if asJSON {
				return printJSON(cmd.OutOrStdout(), st)
			}
			_, err = fmt.Fprintln(cmd.OutOrStdout(), st.MessageID)
			return err
		},
	}
	sf.register(cmd)
	fs := cmd.Flags()
	fs.StringArrayVarP(&props, "property", "p", nil, "application property NAME=VALUE (repeatable)")
	fs.StringVar(&msgID, "message-id", "", "message ID (default: a generated UUID)")
	fs.StringVar(&corrID, "correlation-id", "", "correlation ID")
	fs.StringVar(&userID, "user-id", "", "user ID")
	fs.StringVar(&contentType, "content-type", "", "content type ($.ct), e.g. application/json")
	fs.StringVar(&contentEncoding, "content-encoding", "", "content encoding ($.ce), e.g. utf-8")
	fs.StringVar(&ack, "ack", "", "feedback requested: none, positive, negative or full")
	fs.DurationVar(&ttl, "ttl", 0, "time to live (default: the hub's, 1h)")
	fs.BoolVar(&asJSON, "json", false, "print the message state as JSON")
	return cmd
}

func newEventsCmd(env *serviceEnv) *cobra.Command {
	var (
		sf     serviceFlags
		q      serviceclient.EventQuery
		since  string
		asJSON bool
	)
	cmd := &cobra.Command{
		Use:   "events",
		Short: "Print the telemetry devices sent (--follow to wait for more)",
		Long: `Print the device-to-cloud messages the hub captured, oldest first, one per
line: time, device, payload (JSON as is, text quoted, binary as base64:...)
and application properties. --json prints each message as one JSON object
(deviceId, enqueuedTime, topic, systemProperties, properties, payload,
bodyBase64).

One rule for every telemetry stream (this verb, GET /hubkit/telemetry and the
Go Server.Telemetry): without --follow, events lists what the hub holds;
--follow prints the messages that arrive from now on, until interrupted or
--count is reached; --since TIME starts at TIME instead (an RFC 3339 time, or
a duration such as 10m for "10 minutes ago"): with --follow, the messages
since then and then the new ones. A --device the hub does not know (and that
sent nothing) is an error.` + serviceLong,
		Example: `  fakehub events --device dev1
  fakehub events --follow --count 1 --json     # wait for the next message
  fakehub events --follow --since 5m           # the last 5 minutes, then new ones`,
		Args: argsExactly(),
		RunE: func(cmd *cobra.Command, _ []string) error {
			if q.Count < 0 {
				return cli.Usagef("--count must not be negative, got %d", q.Count)
			}
			if since != "" {
				t, err := parseSince(since, env.now())
				if err != nil {
					return err
				}
				q.Since = t
			}
			c, err := sf.client(env)
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			n := 0
			err = c.Events(cmd.Context(), q, func(e iothub.Event) error {
				n++
				if asJSON {
					return printJSON(out, e) // the service API's own line shape
				}
				_, err := fmt.Fprintln(out, eventLine(e))
				return err
			})
			if err != nil && !(q.Follow && cmd.Context().Err() != nil) { // an interrupted --follow is a normal end
				return explain(err, c, "reading telemetry")
			}
			return nil
		},
	}
	sf.register(cmd)
	fs := cmd.Flags()
	fs.StringVarP(&q.DeviceID, "device", "d", "", "only this device's messages")
	fs.BoolVarP(&q.Follow, "follow", "f", false, "wait for new messages")
	fs.IntVarP(&q.Count, "count", "n", 0, "stop after N messages (0: no limit)")
	fs.StringVar(&since, "since", "", "start at this `TIME` (RFC 3339, or a duration ago such as 10m)")
	fs.BoolVar(&asJSON, "json", false, "one JSON object per line")
	return cmd
}

// parseSince reads --since: an RFC 3339 time, or a positive duration before now.
func parseSince(v string, now time.Time) (time.Time, error) {
	if t, err := time.Parse(time.RFC3339Nano, v); err == nil {
		return t, nil
	}
	if d, err := time.ParseDuration(v); err == nil && d > 0 {
		return now.Add(-d), nil
	}
	return time.Time{}, cli.Usagef("--since %q: want an RFC 3339 time such as 2030-01-01T00:00:00Z or a duration ago such as 10m", v)
}

// eventLine is the human form: "TIME DEVICE[/MODULE] PAYLOAD [k=v ...]".
func eventLine(e iothub.Event) string {
	payload := string(e.PayloadJSON()) // JSON as is, text quoted
	if payload == "" {
		payload = "base64:" + base64.StdEncoding.EncodeToString(e.Payload)
	}
	line := e.EnqueuedTime.UTC().Format(time.RFC3339Nano) + " " + e.Identity().String() + " " + payload
	for _, k := range slices.Sorted(maps.Keys(e.Properties)) {
		line += " " + k + "=" + e.Properties[k]
	}
	return line
}

func newRejectionsCmd(env *serviceEnv) *cobra.Command {
	var (
		sf     serviceFlags
		asJSON bool
	)
	cmd := &cobra.Command{
		Use:   "rejections",
		Short: "List refused device connections and why",
		Long: `List the connections the hub refused, oldest first: time, client ID, the
pkg/sas reason code and detail, then the hints (the same verdicts as
"sastool verify"). --json prints the list as one JSON array.` + serviceLong,
		Example: `  fakehub rejections
  fakehub rejections --json | jq -r '.[].reason'`,
		Args: argsExactly(),
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := sf.client(env)
			if err != nil {
				return err
			}
			rs, err := c.Rejections(cmd.Context())
			if err != nil {
				return explain(err, c, "listing rejections")
			}
			out := cmd.OutOrStdout()
			if asJSON {
				if rs == nil {
					rs = []iothub.Rejection{}
				}
				return printJSON(out, rs)
			}
			for _, r := range rs {
				who := orString(r.ClientID, r.RemoteAddr)
				fmt.Fprintf(out, "%s %s %s: %s\n", r.Time.UTC().Format(time.RFC3339), who, r.Reason, r.Detail)
				for _, h := range r.Hints {
					fmt.Fprintf(out, "  hint: %s\n", h)
				}
			}
			return nil
		},
	}
	sf.register(cmd)
	cmd.Flags().BoolVar(&asJSON, "json", false, "print a JSON array")
	return cmd
}

// printJSON writes v as one line of JSON.
func printJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return errors.New("writing the result: " + err.Error())
	}
	return nil
}

// shortDuration writes whole minutes and hours without their zero tails: 1m, 48h.
// (30s stays 30s: only a "0s" after minutes is a zero tail).
func shortDuration(d time.Duration) string {
	s := d.String()
	if strings.HasSuffix(s, "m0s") {
		s = strings.TrimSuffix(s, "0s")
	}
	if strings.HasSuffix(s, "h0m") {
		s = strings.TrimSuffix(s, "0m")
	}
	return s
}
