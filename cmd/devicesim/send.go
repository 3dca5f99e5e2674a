package main

import (
	"context"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/hubkit/hubkit/internal/cli"
	"github.com/hubkit/hubkit/pkg/device"
	"github.com/hubkit/hubkit/pkg/iothub"
)

const sendExample = `  # one message, acknowledged by the hub (QoS 1)
  devicesim send '{"temperature":21.5}'

  # application properties, content type and a message ID
  devicesim send --property alert=true --property zone=b2 \
    --content-type application/json --content-encoding utf-8 --message-id m-1 '{"t":1}'

  # 10 messages one second apart; {{seq}} in the payload becomes 1, 2, ...
  devicesim send --count 10 --interval 1s '{"seq":{{seq}}}'

  # the payload from stdin
  echo '{"t":2}' | devicesim send -`

type sendFlags struct {
	conn            connFlags
	props           []string
	messageID       string
	correlationID   string
	contentType     string
	contentEncoding string
	count           int
	interval        time.Duration
	timeout         time.Duration
}

func newSendCmd(st *streams) *cobra.Command {
	var f sendFlags
	cmd := &cobra.Command{
		Use:   "send [PAYLOAD]",
		Short: "Send telemetry (device-to-cloud messages) and wait for the hub's acknowledgement",
		Long: `Send telemetry at QoS 1: each message is sent once the previous one was
acknowledged (PUBACK). PAYLOAD defaults to {"seq":{{seq}}}; "{{seq}}" is replaced by the
message's sequence number (1, 2, ...); "-" reads the payload from stdin.
Prints "sent N/COUNT" per message on stdout.`,
		Example: sendExample,
		Args:    maxOneArg("PAYLOAD"),
		PreRunE: func(cmd *cobra.Command, args []string) error {
			if f.count < 1 {
				return cli.Usagef("--count must be at least 1, got %d", f.count)
			}
			if f.interval < 0 {
				return cli.Usagef("--interval must not be negative")
			}
			_, err := parseProperties(f.props)
			return err
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			payload := `{"seq":{{seq}}}`
			if len(args) == 1 {
				payload = args[0]
			}
			if payload == "-" {
				b, err := io.ReadAll(st.in)
				if err != nil {
					return fmt.Errorf("reading the payload from stdin: %w", err)
				}
				payload = strings.TrimSuffix(string(b), "\n")
			}
			props, _ := parseProperties(f.props)
			ctx := cmd.Context()
			c, err := f.conn.client(ctx, st, nil, false)
			if err != nil {
				return err
			}
			defer closeClient(c)
			for i := 1; i <= f.count; i++ {
				if i > 1 && f.interval > 0 {
					select {
					case <-ctx.Done():
						return fmt.Errorf("interrupted after %d of %d messages", i-1, f.count)
					case <-time.After(f.interval):
					}
				}
				body := strings.ReplaceAll(payload, "{{seq}}", strconv.Itoa(i))
				e := device.Event{
					Payload:         []byte(body),
					Properties:      props,
					MessageID:       strings.ReplaceAll(f.messageID, "{{seq}}", strconv.Itoa(i)),
					CorrelationID:   f.correlationID,
					ContentType:     f.contentType,
					ContentEncoding: f.contentEncoding,
				}
				sctx, cancel := context.WithTimeout(ctx, f.timeout)
				err := c.SendEvent(sctx, e)
				cancel()
				if err != nil {
					return fmt.Errorf("message %d: %w", i, err)
				}
				fmt.Fprintf(st.out, "sent %d/%d (%d bytes)\n", i, f.count, len(body))
			}
			return nil
		},
	}
	fs := cmd.Flags()
	fs.SortFlags = false
	fs.StringArrayVarP(&f.props, "property", "p", nil, "application property KEY=VALUE (repeatable, sent in order)")
	fs.StringVar(&f.messageID, "message-id", "", "message ID ($.mid); {{seq}} is replaced by the sequence number")
	fs.StringVar(&f.correlationID, "correlation-id", "", "correlation ID ($.cid)")
	fs.StringVar(&f.contentType, "content-type", "", "content type ($.ct), e.g. application/json")
	fs.StringVar(&f.contentEncoding, "content-encoding", "", "content encoding ($.ce), e.g. utf-8")
	fs.IntVarP(&f.count, "count", "n", 1, "number of messages")
	fs.DurationVar(&f.interval, "interval", 0, "pause between messages, e.g. 500ms or 1s")
	fs.DurationVar(&f.timeout, "timeout", answerTimeout, "give up on a message the hub has not acknowledged after this long")
	f.conn.register(fs)
	return cmd
}

// parseProperties turns KEY=VALUE flags into an ordered property bag.
func parseProperties(kvs []string) (iothub.Properties, error) {
	var props iothub.Properties
	for _, kv := range kvs {
		k, v, ok := strings.Cut(kv, "=")
		if !ok || k == "" {
			return nil, cli.Usagef("--property %q: want KEY=VALUE", kv)
		}
		props = append(props, iothub.Property{Key: k, Value: v})
	}
	return props, nil
}
