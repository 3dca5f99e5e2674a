package grade

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/hubkit/hubkit/pkg/iothub"
)

// connackNames are the MQTT 3.1.1 CONNACK return codes.
var connackNames = []string{"accepted", "unacceptable protocol version", "identifier rejected", "server unavailable", "bad user name or password", "not authorized"}

func connackName(c byte) string {
	if int(c) < len(connackNames) {
		return connackNames[c]
	}
	return "unknown code"
}

// describe says what an observed packet was, for evidence.
func describe(o obs) string {
	who := "device"
	if !o.FromDevice {
		who = "hub"
	}
	if o.Service == "dps" {
		who += " (DPS)"
	}
	switch o.Type {
	case iothub.PacketAccept:
		return fmt.Sprintf("TCP connection %d accepted from %s", o.Conn, o.RemoteAddr)
	case iothub.PacketClose:
		s := fmt.Sprintf("connection %d closed", o.Conn)
		if o.Reason != "" {
			s += " by the hub: " + o.Reason
		}
		return s
	case iothub.PacketConnect:
		s := fmt.Sprintf("%s: CONNECT on connection %d, keep-alive %ds, clean session %t", who, o.Conn, o.KeepAlive, o.CleanSession)
		if !o.TokenExpiry.IsZero() {
			s += ", token expiry (se) " + o.TokenExpiry.UTC().Format(time.RFC3339)
		}
		return s
	case iothub.PacketConnack:
		s := fmt.Sprintf("%s: CONNACK %d (%s), session present %t", who, o.ReturnCode, connackName(o.ReturnCode), o.SessionPresent)
		if o.SessionPresent {
			var fs []string
			for _, f := range o.Inherited {
				fs = append(fs, f.Filter)
			}
			s += fmt.Sprintf(", %d subscription(s) inherited", len(fs))
			if len(fs) > 0 {
				s += ": " + strings.Join(fs, ", ")
			}
		}
		return s
	case iothub.PacketPublish:
		s := fmt.Sprintf("%s: PUBLISH QoS %d", who, o.QoS)
		if o.QoS > 0 {
			s += fmt.Sprintf(" id %d", o.PacketID)
		}
		if o.Dup {
			s += " (DUP)"
		}
		return s + " " + clip(o.Topic, 160)
	case iothub.PacketSubscribe:
		var fs []string
		for _, f := range o.Filters {
			fs = append(fs, fmt.Sprintf("%s (QoS %d)", f.Filter, f.QoS))
		}
		return fmt.Sprintf("%s: SUBSCRIBE id %d %s", who, o.PacketID, strings.Join(fs, ", "))
	case iothub.PacketSuback:
		return fmt.Sprintf("%s: SUBACK id %d granted %v", who, o.PacketID, o.ReturnCodes)
	case iothub.PacketPuback:
		return fmt.Sprintf("%s: PUBACK id %d", who, o.PacketID)
	}
	return fmt.Sprintf("%s: %s", who, o.Type)
}

func clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}

// dur prints a duration rounded for people.
func dur(d time.Duration) string {
	switch {
	case d < 0:
		return "-" + dur(-d)
	case d < time.Second:
		return d.Round(time.Millisecond).String()
	case d < time.Minute:
		return d.Round(10 * time.Millisecond).String()
	}
	return d.Round(time.Second).String()
}

func durs(ds []time.Duration) string {
	out := make([]string, len(ds))
	for i, d := range ds {
		out[i] = dur(d)
	}
	return strings.Join(out, ", ")
}

func median(ds []time.Duration) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	return s[len(s)/2]
}
