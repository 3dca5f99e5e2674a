package main

import (
	"context"
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
		ttl, waitTimeout                                         time.Duration
		asJSON, wait                                             bool
	)
	cmd := &cobra.Command{
		Use:   "send DEVICE PAYLOAD",
		Short: "Send a cloud-to-device message (PAYLOAD - reads stdin; --wait for its outcome)",
		Long: `Send a cloud-to-device message to DEVICE through the hub's queue. The device
receives it on devices/DEVICE/messages/devicebound/{properties} once it
subscribes. Prints the message ID (--json: the message state).

--wait then waits until the message is final and prints its outcome with the
time: "completed" (the device's PUBACK), "rejected" (the device was connected
without a C2D subscription), "expired" (its time to live passed first) or
"purged", how many times it was delivered, and the feedback record when --ack
asked for one; --json prints the final state instead. A device on MQTT cannot
abandon or reject a message: a connection that ends before the PUBACK puts it
back in the queue, and it is delivered again. --wait-timeout D gives up after
D. Exit code 1 unless the message was completed.` + serviceLong,
		Example: `  fakehub send dev1 '{"led":"on"}' --property severity=high --content-type application/json
  echo hello | fakehub send dev1 - --message-id m-42 --ack full --ttl 10m
  fakehub send dev1 reboot --wait --wait-timeout 1m     # prints the ID, then e.g. "completed 2030-01-01T00:00:00Z (delivered 1 time)"`,
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
			parsedAck, err := iothub.ParseC2DAck(ack)
			if err != nil {
				return cli.Usagef("--ack %q: want one of none, positive, negative, full", ack)
			}
			if waitTimeout < 0 || waitTimeout > 0 && !wait {
				return cli.Usagef("--wait-timeout %v: want a positive duration, with --wait", waitTimeout)
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
			out := cmd.OutOrStdout()
			switch {
			case !wait && asJSON:
				return printJSON(out, st)
			case !asJSON:
				if _, err := fmt.Fprintln(out, st.MessageID); err != nil || !wait {
					return err
				}
			}
			return waitC2D(cmd.Context(), c, out, st, parsedAck, waitTimeout, asJSON)
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
	fs.BoolVarP(&wait, "wait", "w", false, "wait for the outcome: completed, rejected, expired or purged")
	fs.DurationVar(&waitTimeout, "wait-timeout", 0, "with --wait: give up after this long (default: until the outcome)")
	return cmd
}

// waitC2D waits for the outcome of the message sent (st), prints it (and its feedback record
// when ack asks for one), and returns an error with hints unless it was completed.
func waitC2D(ctx context.Context, c *serviceclient.Client, out io.Writer, st iothub.C2DStatus, ack iothub.C2DAck, timeout time.Duration, asJSON bool) error {
	if timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, timeout)
		defer cancel()
	}
	fin, err := c.WaitC2D(ctx, st.DeviceID, st.MessageID)
	if err != nil {
		if ctx.Err() == nil {
			return explain(err, c, "waiting for message "+st.MessageID)
		}
		if fin.State == "" {
			fin = st
		}
		hint := "the device is offline or not subscribed to " + iothub.C2DFilter(fin.Identity()) + " (the message waits in its queue until it expires)"
		if fin.State == iothub.C2DDelivered {
			hint = "the device received it but has not acknowledged it (PUBACK)"
		}
		return cli.NewError(cli.ExitError, fmt.Errorf("stopped waiting: message %s is still %s", fin.MessageID, fin.State), hint)
	}
	if asJSON {
		if err := printJSON(out, fin); err != nil {
			return err
		}
	} else {
		fmt.Fprintln(out, c2dOutcome(fin))
		if ack != iothub.AckNone {
			if fbs, err := c.Feedback(ctx); err == nil {
				for _, fb := range slices.Backward(fbs) {
					if fb.OriginalMessageID == fin.MessageID && fb.DeviceID == fin.DeviceID {
						fmt.Fprintf(out, "feedback: %s %s\n", fb.StatusCode, fb.EnqueuedTime.UTC().Format(time.RFC3339))
						break
					}
				}
			}
		}
	}
	var hint string
	switch fin.State {
	case iothub.C2DCompleted:
		return nil
	case iothub.C2DRejected:
		hint = "subscribe to " + iothub.C2DFilter(fin.Identity()) + " before the cloud sends (a message sent while the device is offline waits in its queue)"
	case iothub.C2DExpired:
		hint = "the device did not take it within its time to live (--ttl, default 1h)"
	case iothub.C2DPurged:
		hint = "its queue was purged (DELETE /devices/{id}/commands, fakehub reset c2d) or the device was deleted"
	}
	return cli.NewError(cli.ExitError, fmt.Errorf("message %s was %s", fin.MessageID, fin.State), hint)
}

// c2dOutcome is the human form of a final state: "STATE TIME (delivered N times)[: detail]".
func c2dOutcome(st iothub.C2DStatus) string {
	s := string(st.State) + " " + st.FinishedTime.UTC().Format(time.RFC3339)
	switch st.DeliveryCount {
	case 0:
		s += " (never delivered)"
	case 1:
		s += " (delivered 1 time)"
	default:
		s += fmt.Sprintf(" (delivered %d times)", st.DeliveryCount)
	}
	if st.Detail != "" && st.State != iothub.C2DCompleted {
		s += ": " + st.Detail
	}
	return s
}

// streamFlags are the flags the stream verbs (events, rejections) share.
type streamFlags struct {
	q     serviceclient.EventQuery
	since string
}

func (f *streamFlags) register(cmd *cobra.Command, what, device string) {
	fs := cmd.Flags()
	fs.StringVarP(&f.q.DeviceID, "device", "d", "", device)
	fs.BoolVarP(&f.q.Follow, "follow", "f", false, "wait for new "+what)
	fs.IntVarP(&f.q.Count, "count", "n", 0, "stop after N "+what+" (0: no limit)")
	fs.StringVar(&f.since, "since", "", "start at this `TIME` (RFC 3339, or a duration ago such as 10m)")
}

// query checks the flags and returns the query they make.
func (f *streamFlags) query(now time.Time) (serviceclient.EventQuery, error) {
	q := f.q
	if q.Count < 0 {
		return q, cli.Usagef("--count must not be negative, got %d", q.Count)
	}
	if f.since != "" {
		t, err := parseSince(f.since, now)
		if err != nil {
			return q, err
		}
		q.Since = t
	}
	return q, nil
}

func newEventsCmd(env *serviceEnv) *cobra.Command {
	var (
		sf     serviceFlags
		stf    streamFlags
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
			q, err := stf.query(env.now())
			if err != nil {
				return err
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
	stf.register(cmd, "messages", "only this device's messages")
	cmd.Flags().BoolVar(&asJSON, "json", false, "one JSON object per line")
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
		stf    streamFlags
		asJSON bool
	)
	cmd := &cobra.Command{
		Use:   "rejections",
		Short: "List refused and closed device connections and why (--follow to wait for more)",
		Long: `List the connections the hub refused or closed, oldest first: time, client
ID, the pkg/sas reason code and detail, then the hints (the same verdicts as
"sastool verify"). --json prints the list as one JSON array.

The rule of "fakehub events" holds here too: without --follow, rejections
lists what the hub holds; --follow prints the records made from now on, until
interrupted or --count is reached (--json: one JSON object per line);
--since TIME starts at TIME instead (an RFC 3339 time, or a duration such as
10m for "10 minutes ago"). --device ID keeps the records of one device (and
its modules), registered or not: an unknown device ID is what many refusals
are about. Records made before the hub read a CONNECT (a TLS failure, plain
HTTP) name no device.` + serviceLong,
		Example: `  fakehub rejections
  fakehub rejections --device dev1 --since 10m
  fakehub rejections --follow --device dev1           # wait for dev1's next refusal or close
  fakehub rejections --json | jq -r '.[].reason'`,
		Args: argsExactly(),
		RunE: func(cmd *cobra.Command, _ []string) error {
			q, err := stf.query(env.now())
			if err != nil {
				return err
			}
			c, err := sf.client(env)
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			list := []iothub.Rejection{} // --json without --follow: one array, as the service API's listing
			err = c.WatchRejections(cmd.Context(), q, func(r iothub.Rejection) error {
				switch {
				case asJSON && !q.Follow:
					list = append(list, r)
					return nil
				case asJSON:
					return printJSON(out, r)
				}
				_, err := fmt.Fprint(out, rejectionLines(r))
				return err
			})
			if err != nil && !(q.Follow && cmd.Context().Err() != nil) { // an interrupted --follow is a normal end
				return explain(err, c, "reading rejections")
			}
			if asJSON && !q.Follow {
				return printJSON(out, list)
			}
			return nil
		},
	}
	sf.register(cmd)
	stf.register(cmd, "records", "only this device's records (and its modules')")
	cmd.Flags().BoolVar(&asJSON, "json", false, "a JSON array (with --follow: one JSON object per line)")
	return cmd
}

// rejectionLines is the human form: "TIME WHO REASON: DETAIL", then one "  hint: ..." line
// per hint.
func rejectionLines(r iothub.Rejection) string {
	who := orString(r.ClientID, r.RemoteAddr)
	s := fmt.Sprintf("%s %s %s: %s\n", r.Time.UTC().Format(time.RFC3339), who, r.Reason, r.Detail)
	for _, h := range r.Hints {
		s += "  hint: " + h + "\n"
	}
	return s
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
