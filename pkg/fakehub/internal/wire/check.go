// Package wire checks the byte stream a client sends to an MQTT 3.1.1
// server against the rules the specification says a server MUST close the
// connection on, before the broker (mochi) decodes it. mochi accepts some
// malformed packets (a 5-byte remaining length, will QoS 3, will flags
// without the will flag, bytes after the CONNECT password), answers others
// with MQTT 5 reason codes a 3.1.1 client cannot read, and closes on the rest
// without saying why; fakehub runs every inbound byte through a Checker so
// that each such packet closes the connection with a Violation naming its
// rule.
//
// Rules are cited by their normative statement in MQTT Version 3.1.1 (OASIS
// Standard, 29 October 2014), e.g. "MQTT-3.1.2-14". Where the specification
// has no numbered statement for a malformed field, the citation is the
// section and MQTT-4.8.0-1 (a protocol violation closes the connection).
//
// The package is standard library only and knows nothing of IoT Hub: topic,
// identity and size rules of the hub are checked elsewhere.
package wire

import (
	"encoding/binary"
	"fmt"
	"unicode/utf8"
)

// Packet types (MQTT 3.1.1 §2.2.1).
const (
	typeConnect     = 1
	typeConnack     = 2
	typePublish     = 3
	typePuback      = 4
	typePubrec      = 5
	typePubrel      = 6
	typePubcomp     = 7
	typeSubscribe   = 8
	typeSuback      = 9
	typeUnsubscribe = 10
	typeUnsuback    = 11
	typePingreq     = 12
	typePingresp    = 13
	typeDisconnect  = 14
)

var typeNames = [16]string{"reserved type 0", "CONNECT", "CONNACK", "PUBLISH", "PUBACK", "PUBREC", "PUBREL", "PUBCOMP",
	"SUBSCRIBE", "SUBACK", "UNSUBSCRIBE", "UNSUBACK", "PINGREQ", "PINGRESP", "DISCONNECT", "reserved type 15"}

// Kind classifies a violation for the caller's rejection record.
type Kind int

const (
	// Malformed: a packet MQTT 3.1.1 says to close on (after CONNECT).
	Malformed Kind = iota
	// MalformedConnect: a CONNECT MQTT 3.1.1 says to close on.
	MalformedConnect
	// NotConnectFirst: the first packet is not a CONNECT (MQTT-3.1.0-1).
	NotConnectFirst
	// SecondConnect: a second CONNECT on the connection (MQTT-3.1.0-2).
	SecondConnect
	// TooLarge: a packet larger than Checker.MaxPacket.
	TooLarge
)

// Violation is a packet the server must close the connection on.
type Violation struct {
	Kind   Kind
	Rule   string // "MQTT-3.1.2-14", or "§2.2.3, MQTT-4.8.0-1"
	Packet string // "CONNECT", "PUBLISH", ...
	Detail string // what was wrong, and what was expected
}

func (v *Violation) Error() string {
	return fmt.Sprintf("%s: %s (%s)", v.Packet, v.Detail, v.Rule)
}

// Checker checks one connection's inbound stream. The zero value checks a
// connection from its first byte with no size limit beyond MQTT's own.
type Checker struct {
	// MaxPacket bounds a whole packet (fixed header included); 0: no bound
	// beyond the 268,435,455 bytes a remaining length can express.
	MaxPacket int

	connected bool   // a CONNECT passed
	clientID  string // the CONNECT's client ID, once read
	hdr       []byte // fixed header bytes of the packet being read (type byte + length bytes)
	remaining int    // its remaining length, once known (-1: still reading the length)
	body      []byte // what is kept of its body so far (store)
	got       int    // how many bytes of its body were read
	keepAll   bool   // keep every body byte (the tests: the verdicts must not change)
	fail      *Violation
}

// Feed takes the next bytes read from the connection. It returns how many of
// them the broker may be given now, and the violation found, if any: every
// byte of a packet but its last can be passed on as it arrives, but the
// last byte only once the whole packet is checked, so the broker never
// completes a packet that breaks a rule. After a violation Feed returns (0,
// the same violation).
func (c *Checker) Feed(b []byte) (int, *Violation) {
	if c.fail != nil {
		return 0, c.fail
	}
	for i := 0; i < len(b); {
		if len(c.hdr) > 0 && c.remaining > 0 { // in a body: take as much of it as b holds
			n := min(c.remaining-c.got, len(b)-i)
			c.store(b[i : i+n])
			c.got += n
			i += n
			if c.got == c.remaining {
				if v := c.complete(); v != nil {
					c.fail = v
					return i - 1, v
				}
			}
			continue
		}
		if v := c.next(b[i]); v != nil {
			c.fail = v
			return i, v
		}
		i++
	}
	return len(b), nil
}

// store keeps what the checks of the packet's body read: all of it, but for a
// PUBLISH only its topic name and packet identifier (a payload is neither
// checked nor kept).
func (c *Checker) store(chunk []byte) {
	for len(chunk) > 0 {
		k := c.keep() - len(c.body)
		if k <= 0 {
			return
		}
		m := min(k, len(chunk))
		c.body = append(c.body, chunk[:m]...)
		chunk = chunk[m:]
	}
}

// keep is how many bytes of the body store keeps, as far as the bytes kept so
// far tell.
func (c *Checker) keep() int {
	if c.keepAll || c.hdr[0]>>4 != typePublish {
		return c.remaining
	}
	if len(c.body) < 2 {
		return min(2, c.remaining)
	}
	need := 2 + int(binary.BigEndian.Uint16(c.body))
	if c.hdr[0]&0x06 != 0 {
		need += 2
	}
	return min(need, c.remaining)
}

// InPacket reports whether the stream stopped inside a packet.
func (c *Checker) InPacket() bool { return len(c.hdr) > 0 }

// ClientID returns the client ID of the CONNECT being checked, once its
// field was read ("" before).
func (c *Checker) ClientID() string { return c.clientID }

// Err returns the violation found, or nil.
func (c *Checker) Err() *Violation { return c.fail }

// Connected reports whether a CONNECT has passed the checks.
func (c *Checker) Connected() bool { return c.connected }

// next takes a byte of a fixed header: the type byte, or one of the remaining
// length (Feed takes the body).
func (c *Checker) next(x byte) *Violation {
	if len(c.hdr) == 0 {
		c.hdr = append(c.hdr[:0], x)
		c.remaining = -1
		c.body = c.body[:0]
		c.got = 0
		return c.checkType(x)
	}
	c.hdr = append(c.hdr, x)
	n := len(c.hdr) - 1
	if n > 4 {
		return c.violation(Malformed, "§2.2.3, MQTT-4.8.0-1", "a remaining length of more than four bytes; MQTT 3.1.1 allows at most four")
	}
	if x&0x80 != 0 {
		return nil
	}
	rl := 0
	for i := n; i >= 1; i-- {
		rl = rl<<7 | int(c.hdr[i]&0x7f)
	}
	c.remaining = rl
	if c.MaxPacket > 0 && 1+n+rl > c.MaxPacket {
		return c.violation(TooLarge, "IoT Hub limit", fmt.Sprintf("a packet of %d bytes; the hub reads at most %d", 1+n+rl, c.MaxPacket))
	}
	if rl == 0 {
		return c.complete()
	}
	return nil
}

func (c *Checker) violation(k Kind, rule, detail string) *Violation {
	t := c.hdr[0] >> 4
	if k == Malformed && t == typeConnect {
		k = MalformedConnect
	}
	return &Violation{Kind: k, Rule: rule, Packet: typeNames[t], Detail: detail}
}

// checkType checks the first byte of a packet: its type, the order, and the
// fixed-header flags.
func (c *Checker) checkType(x byte) *Violation {
	t, flags := x>>4, x&0x0f
	switch {
	case !c.connected && t != typeConnect:
		return c.violation(NotConnectFirst, "MQTT-3.1.0-1", "the first packet a client sends must be CONNECT")
	case c.connected && t == typeConnect:
		return c.violation(SecondConnect, "MQTT-3.1.0-2", "a second CONNECT on the connection")
	case t == 0 || t == 15:
		return c.violation(Malformed, "§2.2.1, MQTT-4.8.0-1", fmt.Sprintf("packet type %d is reserved", t))
	case t == typeConnack || t == typeSuback || t == typeUnsuback || t == typePingresp:
		return c.violation(Malformed, "§2.2.1, MQTT-4.8.0-1", "a packet only a server may send")
	}
	switch t {
	case typePublish:
		if flags&0x06 == 0x06 {
			return c.violation(Malformed, "MQTT-3.3.1-4", "PUBLISH with both QoS bits set (QoS 3)")
		}
		if flags&0x06 == 0 && flags&0x08 != 0 {
			return c.violation(Malformed, "MQTT-3.3.1-2", "PUBLISH at QoS 0 with the DUP flag set")
		}
	case typeSubscribe:
		if flags != 0x02 {
			return c.violation(Malformed, "MQTT-3.8.1-1", fmt.Sprintf("SUBSCRIBE with fixed-header flags %04b; they must be 0010", flags))
		}
	case typeUnsubscribe:
		if flags != 0x02 {
			return c.violation(Malformed, "MQTT-3.10.1-1", fmt.Sprintf("UNSUBSCRIBE with fixed-header flags %04b; they must be 0010", flags))
		}
	case typePubrel:
		if flags != 0x02 {
			return c.violation(Malformed, "MQTT-3.6.1-1", fmt.Sprintf("PUBREL with fixed-header flags %04b; they must be 0010", flags))
		}
	case typeDisconnect:
		if flags != 0 {
			return c.violation(Malformed, "MQTT-3.14.1-1", fmt.Sprintf("DISCONNECT with fixed-header flags %04b; they must be 0000", flags))
		}
	default:
		if flags != 0 {
			return c.violation(Malformed, "MQTT-2.2.2-2", fmt.Sprintf("%s with fixed-header flags %04b; they must be 0000 (MQTT-2.2.2-1)", typeNames[t], flags))
		}
	}
	return nil
}

// complete checks a whole packet and readies the checker for the next one.
func (c *Checker) complete() *Violation {
	t, flags := c.hdr[0]>>4, c.hdr[0]&0x0f
	var v *Violation
	switch t {
	case typeConnect:
		v = c.checkConnect()
		if v == nil {
			c.connected = true
		}
	case typePublish:
		v = c.checkPublish(flags)
	case typeSubscribe:
		v = c.checkSubscribe()
	case typeUnsubscribe:
		v = c.checkUnsubscribe()
	case typePuback, typePubrec, typePubrel, typePubcomp:
		if len(c.body) != 2 {
			v = c.violation(Malformed, "§3.4.2, MQTT-4.8.0-1", fmt.Sprintf("%s with a remaining length of %d; it carries exactly a 2-byte packet identifier", typeNames[t], len(c.body)))
		}
	case typePingreq, typeDisconnect:
		if len(c.body) != 0 {
			v = c.violation(Malformed, "§3.12, §3.14, MQTT-4.8.0-1", fmt.Sprintf("%s with %d bytes after its fixed header; it has none", typeNames[t], len(c.body)))
		}
	}
	c.hdr = c.hdr[:0]
	return v
}

// reader walks a packet body.
type reader struct {
	b   []byte
	off int
}

func (r *reader) left() int { return len(r.b) - r.off }

func (r *reader) u16() (int, bool) {
	if r.left() < 2 {
		return 0, false
	}
	n := int(binary.BigEndian.Uint16(r.b[r.off:]))
	r.off += 2
	return n, true
}

// field reads a length-prefixed field.
func (r *reader) field() ([]byte, bool) {
	n, ok := r.u16()
	if !ok || r.left() < n {
		return nil, false
	}
	f := r.b[r.off : r.off+n]
	r.off += n
	return f, true
}

// badString checks a UTF-8 encoded string (MQTT 3.1.1 §1.5.3) and returns
// the rule it breaks and how, or "".
func badString(s []byte) (rule, problem string) {
	if !utf8.Valid(s) {
		return "MQTT-1.5.3-1", "is not well-formed UTF-8"
	}
	for _, r := range string(s) {
		if r == 0 {
			return "MQTT-1.5.3-2", "contains U+0000"
		}
		if 0xD800 <= r && r <= 0xDFFF {
			return "MQTT-1.5.3-1", "encodes a UTF-16 surrogate"
		}
	}
	return "", ""
}

func (c *Checker) checkConnect() *Violation {
	r := &reader{b: c.body}
	name, ok := r.field()
	if !ok || r.left() < 4 {
		return c.violation(MalformedConnect, "§3.1.2, MQTT-4.8.0-1", "a CONNECT too short for its variable header")
	}
	level := r.b[r.off]
	if string(name) != "MQTT" || level != 4 {
		return nil // another protocol: the hub answers it (CONNACK 1, or a close) with its own reason
	}
	flags := r.b[r.off+1]
	r.off += 4 // level, flags, keep-alive
	will, willQoS, willRetain := flags&0x04 != 0, flags>>3&3, flags&0x20 != 0
	user, pass := flags&0x80 != 0, flags&0x40 != 0
	switch {
	case flags&0x01 != 0:
		return c.violation(MalformedConnect, "MQTT-3.1.2-3", "the reserved connect flag is set")
	case !will && willQoS != 0:
		return c.violation(MalformedConnect, "MQTT-3.1.2-13", fmt.Sprintf("will QoS %d without the will flag", willQoS))
	case !will && willRetain:
		return c.violation(MalformedConnect, "MQTT-3.1.2-15", "will retain without the will flag")
	case will && willQoS == 3:
		return c.violation(MalformedConnect, "MQTT-3.1.2-14", "will QoS 3")
	case pass && !user:
		return c.violation(MalformedConnect, "MQTT-3.1.2-22", "the password flag without the user name flag")
	}
	fields := []struct {
		name    string
		present bool
		text    bool
	}{{"client ID", true, true}, {"will topic", will, true}, {"will message", will, false}, {"user name", user, true}, {"password", pass, false}}
	for _, f := range fields {
		if !f.present {
			continue
		}
		v, ok := r.field()
		if !ok {
			return c.violation(MalformedConnect, "MQTT-3.1.3-1", "the "+f.name+" is cut short: the remaining length ends inside it, or before it")
		}
		if f.text {
			if rule, problem := badString(v); rule != "" {
				return c.violation(MalformedConnect, rule, "the "+f.name+" "+problem)
			}
		}
		switch f.name {
		case "client ID":
			c.clientID = string(v)
		case "will topic":
			if len(v) == 0 {
				return c.violation(MalformedConnect, "MQTT-4.7.3-1", "an empty will topic; a topic name has at least one character")
			}
		}
	}
	if r.left() > 0 {
		return c.violation(MalformedConnect, "MQTT-3.1.3-1", fmt.Sprintf("%d bytes after the last field its flags announce; the remaining length must end there", r.left()))
	}
	return nil
}

func (c *Checker) checkPublish(flags byte) *Violation {
	r := &reader{b: c.body}
	topic, ok := r.field()
	if !ok {
		return c.violation(Malformed, "§3.3.2, MQTT-4.8.0-1", "a PUBLISH too short for its topic name")
	}
	if rule, problem := badString(topic); rule != "" {
		return c.violation(Malformed, rule, "the topic name "+problem)
	}
	if flags&0x06 != 0 {
		id, ok := r.u16()
		if !ok {
			return c.violation(Malformed, "§3.3.2, MQTT-4.8.0-1", "a QoS 1 PUBLISH without its packet identifier")
		}
		if id == 0 {
			return c.violation(Malformed, "MQTT-2.3.1-1", "a QoS 1 PUBLISH with packet identifier 0")
		}
	}
	return nil
}

func (c *Checker) checkSubscribe() *Violation {
	r := &reader{b: c.body}
	id, ok := r.u16()
	switch {
	case !ok:
		return c.violation(Malformed, "§3.8.2, MQTT-4.8.0-1", "a SUBSCRIBE without its packet identifier")
	case id == 0:
		return c.violation(Malformed, "MQTT-2.3.1-1", "a SUBSCRIBE with packet identifier 0")
	case r.left() == 0:
		return c.violation(Malformed, "MQTT-3.8.3-3", "a SUBSCRIBE without any topic filter")
	}
	for r.left() > 0 {
		f, ok := r.field()
		if !ok || r.left() < 1 {
			return c.violation(Malformed, "§3.8.3, MQTT-4.8.0-1", "a topic filter (or its requested QoS) is cut short")
		}
		if v := c.checkFilter(f); v != nil {
			return v
		}
		q := r.b[r.off]
		r.off++
		if q&0xfc != 0 || q == 3 {
			return c.violation(Malformed, "MQTT-3.8.3-4", fmt.Sprintf("requested QoS byte 0x%02x for %q; it must be 0, 1 or 2", q, clipped(f)))
		}
	}
	return nil
}

func (c *Checker) checkUnsubscribe() *Violation {
	r := &reader{b: c.body}
	id, ok := r.u16()
	switch {
	case !ok:
		return c.violation(Malformed, "§3.10.2, MQTT-4.8.0-1", "an UNSUBSCRIBE without its packet identifier")
	case id == 0:
		return c.violation(Malformed, "MQTT-2.3.1-1", "an UNSUBSCRIBE with packet identifier 0")
	case r.left() == 0:
		return c.violation(Malformed, "MQTT-3.10.3-2", "an UNSUBSCRIBE without any topic filter")
	}
	for r.left() > 0 {
		f, ok := r.field()
		if !ok {
			return c.violation(Malformed, "§3.10.3, MQTT-4.8.0-1", "a topic filter is cut short")
		}
		if v := c.checkFilter(f); v != nil {
			return v
		}
	}
	return nil
}

func (c *Checker) checkFilter(f []byte) *Violation {
	if len(f) == 0 {
		return c.violation(Malformed, "MQTT-4.7.3-1", "an empty topic filter")
	}
	if rule, problem := badString(f); rule != "" {
		return c.violation(Malformed, rule, "a topic filter "+problem)
	}
	return nil
}

// clipped shortens client text for a detail line.
func clipped(b []byte) string {
	if len(b) > 64 {
		return string(b[:64]) + "…"
	}
	return string(b)
}
