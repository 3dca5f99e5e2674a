package main

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"unicode/utf8"

	"github.com/spf13/cobra"

	"github.com/hubkit/hubkit/pkg/device"
)

const listenExample = `  # print cloud-to-device messages until Ctrl-C
  devicesim listen

  # wait for exactly one message, at most 30 s, as JSON
  devicesim listen --count 1 --timeout 30s --json`

func newListenCmd(st *streams) *cobra.Command {
	var (
		conn   connFlags
		lf     listenFlags
		asJSON bool
	)
	cmd := &cobra.Command{
		Use:   "listen",
		Short: "Receive cloud-to-device messages and print them",
		Long: `Subscribe to cloud-to-device messages (QoS 1) and print each one: its topic, its
properties (decoded) and its payload. With --json, one object per message: a payload with
content type application/json (or +json) is a JSON value, other text a string, anything
else base64 in payloadBase64. A message is acknowledged, which completes it on the
hub, once it is printed. With --count, messages after the last one stay on the hub.

With a persistent session (the default), messages queued while the device was offline
arrive right after connecting.`,
		Example: listenExample,
		Args:    noArgs,
		PreRunE: func(*cobra.Command, []string) error { return lf.check() },
		RunE: func(cmd *cobra.Command, args []string) error {
			return lf.listen(cmd.Context(), st, &conn, "cloud-to-device messages", func(c *device.Client, q *quota) {
				c.OnC2D(func(hctx context.Context, m device.C2DMessage) {
					// Complete before take counts it: the last message's count lets the
					// program Close, which would otherwise leave it unacknowledged.
					if !q.take(func() { printC2D(st, m, asJSON); complete(hctx, st, m) }) {
						<-hctx.Done() // past --count: leave it on the hub
					}
				})
			})
		},
	}
	fs := cmd.Flags()
	fs.SortFlags = false
	lf.register(fs, "messages")
	fs.BoolVar(&asJSON, "json", false, "print one JSON object per message")
	conn.register(fs)
	return cmd
}

// complete acknowledges m at once; a failure (the connection dropped) means the hub
// delivers it again.
func complete(ctx context.Context, st *streams, m device.C2DMessage) {
	if err := m.Complete(ctx); err != nil {
		fmt.Fprintf(st.err, "devicesim: warning: %v (the hub delivers it again)\n", err)
	}
}

func printC2D(st *streams, m device.C2DMessage, asJSON bool) {
	if asJSON {
		obj := map[string]any{"topic": m.Topic}
		props := map[string]string{}
		for _, p := range m.Properties {
			if _, dup := props[p.Key]; !dup {
				props[p.Key] = p.Value
			}
		}
		obj["properties"] = props
		putPayload(obj, m.Payload, m.ContentType)
		b, _ := json.Marshal(obj)
		fmt.Fprintf(st.out, "%s\n", b)
		return
	}
	var props []string
	for _, p := range m.Properties {
		if p.Null {
			props = append(props, p.Key)
		} else {
			props = append(props, p.Key+"="+p.Value)
		}
	}
	fmt.Fprintf(st.out, "topic: %s\nproperties: %s\npayload: %s\n\n", m.Topic, strings.Join(props, " "), printable(m.Payload))
}

// putPayload stores a payload by its content type ($.ct): JSON (application/json or
// +json, when it parses) as a JSON value in "payload", other UTF-8 text as a string in
// "payload", anything else as base64 in "payloadBase64".
func putPayload(obj map[string]any, b []byte, contentType string) {
	mediaType, _, _ := strings.Cut(strings.ToLower(contentType), ";")
	mediaType = strings.TrimSpace(mediaType)
	isJSON := mediaType == "application/json" || strings.HasSuffix(mediaType, "+json")
	switch {
	case isJSON && json.Valid(b):
		obj["payload"] = json.RawMessage(b)
	case utf8.Valid(b):
		obj["payload"] = string(b)
	default:
		obj["payloadBase64"] = b
	}
}

// printable returns text payloads as they are and others as a Go-quoted string.
func printable(b []byte) string {
	if utf8.Valid(b) {
		return string(b)
	}
	return fmt.Sprintf("%q", b)
}
