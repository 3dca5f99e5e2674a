package fakehub

import (
	"context"
	"fmt"
	"log/slog"

	"github.com/mochi-mqtt/server/v2/packets"

	"github.com/hubkit/hubkit/pkg/sas"
)

// redactHandler keeps secrets out of every log line the hub writes, at every
// level: the message and each string value (in groups too) go through
// sas.Redact, and values that are not text are rendered by safeValue. A
// client ID, user name or topic that carries a token is logged with its
// signature replaced, however it was percent-encoded.
type redactHandler struct{ h slog.Handler }

func newRedactHandler(h slog.Handler) slog.Handler {
	if _, ok := h.(redactHandler); ok {
		return h
	}
	return redactHandler{h}
}

func (r redactHandler) Enabled(ctx context.Context, l slog.Level) bool { return r.h.Enabled(ctx, l) }

func (r redactHandler) Handle(ctx context.Context, rec slog.Record) error {
	out := slog.NewRecord(rec.Time, rec.Level, sas.Redact(rec.Message), rec.PC)
	rec.Attrs(func(a slog.Attr) bool {
		out.AddAttrs(safeAttr(a))
		return true
	})
	return r.h.Handle(ctx, out)
}

func (r redactHandler) WithAttrs(as []slog.Attr) slog.Handler {
	safe := make([]slog.Attr, len(as))
	for i, a := range as {
		safe[i] = safeAttr(a)
	}
	return redactHandler{r.h.WithAttrs(safe)}
}

func (r redactHandler) WithGroup(n string) slog.Handler { return redactHandler{r.h.WithGroup(n)} }

func safeAttr(a slog.Attr) slog.Attr {
	return slog.Attr{Key: a.Key, Value: safeValue(a.Value)}
}

// safeValue renders v without secrets. Text is redacted; mochi's packets
// (which mochi logs whole at Debug, CONNECT password and payloads included)
// become a summary; byte slices become their length; any other value is
// formatted and redacted, except structs and maps, whose fields could hold
// raw credentials: those are named by type only.
func safeValue(v slog.Value) slog.Value {
	v = v.Resolve()
	switch v.Kind() {
	case slog.KindString:
		return slog.StringValue(sas.Redact(v.String()))
	case slog.KindGroup:
		as := v.Group()
		out := make([]slog.Attr, len(as))
		for i, a := range as {
			out[i] = safeAttr(a)
		}
		return slog.GroupValue(out...)
	case slog.KindAny:
	default:
		return v // numbers, bools, times, durations
	}
	switch x := v.Any().(type) {
	case packets.Packet:
		return packetSummary(&x)
	case *packets.Packet:
		if x == nil {
			return slog.StringValue("<nil packet>")
		}
		return packetSummary(x)
	case []byte:
		return slog.StringValue(fmt.Sprintf("<%d bytes>", len(x)))
	case []string:
		out := make([]string, len(x))
		for i, s := range x {
			out[i] = sas.Redact(s)
		}
		return slog.AnyValue(out)
	case error:
		return slog.StringValue(sas.Redact(x.Error()))
	case fmt.Stringer:
		return slog.StringValue(sas.Redact(x.String()))
	}
	switch fmt.Sprintf("%T", v.Any())[0] {
	case '*', 'm', '[':
		return slog.StringValue(fmt.Sprintf("<%T>", v.Any()))
	}
	s := fmt.Sprintf("%v", v.Any())
	if len(s) > 0 && s[0] == '{' { // a struct
		return slog.StringValue(fmt.Sprintf("<%T>", v.Any()))
	}
	return slog.StringValue(sas.Redact(s))
}

// packetSummary is what the hub logs of an MQTT packet: its kind and
// sizes, the packet ID, and for CONNECT the client ID and user name (never
// the password or the will), for PUBLISH the topic (never the payload).
func packetSummary(pk *packets.Packet) slog.Value {
	as := []slog.Attr{
		slog.String("type", packets.PacketNames[pk.FixedHeader.Type]),
		slog.Int("remaining", pk.FixedHeader.Remaining),
	}
	if pk.PacketID != 0 {
		as = append(as, slog.Int("packetId", int(pk.PacketID)))
	}
	switch pk.FixedHeader.Type {
	case packets.Connect:
		as = append(as, slog.String("clientId", sas.Redact(clip(pk.Connect.ClientIdentifier))),
			slog.String("userName", sas.Redact(clip(string(pk.Connect.Username)))),
			slog.Bool("password", pk.Connect.PasswordFlag), slog.Int("passwordBytes", len(pk.Connect.Password)))
	case packets.Publish:
		as = append(as, slog.String("topic", sas.Redact(clip(pk.TopicName))), slog.Int("qos", int(pk.FixedHeader.Qos)),
			slog.Int("payloadBytes", len(pk.Payload)))
	case packets.Subscribe, packets.Unsubscribe:
		as = append(as, slog.Int("filters", len(pk.Filters)))
	}
	return slog.GroupValue(as...)
}
