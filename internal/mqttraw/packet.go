package mqttraw

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
)

// PacketType is the MQTT control packet type (the high nibble of the first
// byte).
type PacketType byte

// MQTT 3.1.1 control packet types (spec §2.2.1); 0 and 15 are reserved.
const (
	TypeConnect     PacketType = 1
	TypeConnack     PacketType = 2
	TypePublish     PacketType = 3
	TypePuback      PacketType = 4
	TypePubrec      PacketType = 5
	TypePubrel      PacketType = 6
	TypePubcomp     PacketType = 7
	TypeSubscribe   PacketType = 8
	TypeSuback      PacketType = 9
	TypeUnsubscribe PacketType = 10
	TypeUnsuback    PacketType = 11
	TypePingreq     PacketType = 12
	TypePingresp    PacketType = 13
	TypeDisconnect  PacketType = 14
)

var typeNames = [16]string{"RESERVED0", "CONNECT", "CONNACK", "PUBLISH", "PUBACK", "PUBREC", "PUBREL", "PUBCOMP",
	"SUBSCRIBE", "SUBACK", "UNSUBSCRIBE", "UNSUBACK", "PINGREQ", "PINGRESP", "DISCONNECT", "RESERVED15"}

func (t PacketType) String() string {
	if int(t) < len(typeNames) {
		return typeNames[t]
	}
	return fmt.Sprintf("PacketType(%d)", byte(t))
}

// CONNACK return codes (spec §3.2.2.3).
const (
	ConnackAccepted                    byte = 0
	ConnackUnacceptableProtocolVersion byte = 1
	ConnackIdentifierRejected          byte = 2
	ConnackServerUnavailable           byte = 3
	ConnackBadUserNameOrPassword       byte = 4
	ConnackNotAuthorized               byte = 5
)

// SubackFailure is the SUBACK return code for a refused filter.
const SubackFailure byte = 0x80

// MaxRemainingLength is the largest remaining length MQTT can encode.
const MaxRemainingLength = 268_435_455

// ErrMalformed is wrapped by decoding errors: the bytes are not a valid
// MQTT 3.1.1 packet of the type they claim to be.
var ErrMalformed = errors.New("mqttraw: malformed packet")

// String returns a pointer to s, for the optional ConnectPacket fields.
func String(s string) *string { return &s }

// ConnectPacket is a CONNECT. Every field may hold values the spec
// forbids; the zero ProtocolName and ProtocolLevel mean "MQTT" and 4.
type ConnectPacket struct {
	ProtocolName  string // "" means "MQTT"; use WriteRaw to send an empty name
	ProtocolLevel byte   // 0 means 4 (MQTT 3.1.1); use WriteRaw to send 0
	ClientID      string
	UserName      *string // nil: user name flag clear
	Password      *string // nil: password flag clear (may be set without a user name)
	CleanSession  bool
	KeepAlive     uint16 // seconds
	Will          *Will  // nil: no will
	ReservedFlag  bool   // sets the reserved bit 0 of the connect flags (the server must close)
}

// Will is the will message of a CONNECT.
type Will struct {
	Topic   string
	Payload []byte
	QoS     byte // 0..3 (3 is invalid, on purpose)
	Retain  bool
}

// PublishPacket is a PUBLISH, sent or received.
type PublishPacket struct {
	Topic    string
	Payload  []byte
	QoS      byte // 0..3 when sending (3 is invalid, on purpose); 0..2 when received
	Retain   bool
	Dup      bool
	PacketID uint16 // written only when QoS > 0
}

// Subscription is one filter of a SUBSCRIBE.
type Subscription struct {
	Filter string
	QoS    byte // any value; only 0..2 are valid
}

// Connack is a decoded CONNACK.
type Connack struct {
	SessionPresent bool
	ReturnCode     byte // see the Connack* constants
}

// Suback is a decoded SUBACK.
type Suback struct {
	PacketID uint16
	Codes    []byte // granted QoS per filter, or SubackFailure
}

// Ack is a decoded PUBACK, PUBREC, PUBREL, PUBCOMP or UNSUBACK.
type Ack struct {
	PacketID uint16
}

// Packet is a packet read from the server. Type and Flags are always set;
// the field matching Type is filled in; Raw holds the whole packet as
// received (fixed header included). Other packet types (CONNECT, SUBSCRIBE,
// PINGREQ...) are only identified, not decoded.
type Packet struct {
	Type     PacketType
	Flags    byte // low nibble of the first byte
	Connack  Connack
	Publish  PublishPacket
	Suback   Suback
	Puback   Ack // PUBACK, PUBREC, PUBREL and PUBCOMP
	Unsuback Ack
	Raw      []byte
}

// String describes the packet in one line, for test failure messages.
func (p Packet) String() string {
	switch p.Type {
	case TypeConnack:
		return fmt.Sprintf("CONNACK(sessionPresent=%t, returnCode=%d)", p.Connack.SessionPresent, p.Connack.ReturnCode)
	case TypePublish:
		q := p.Publish
		return fmt.Sprintf("PUBLISH(topic=%q, qos=%d, id=%d, retain=%t, dup=%t, %d payload bytes)",
			q.Topic, q.QoS, q.PacketID, q.Retain, q.Dup, len(q.Payload))
	case TypeSuback:
		return fmt.Sprintf("SUBACK(id=%d, codes=%v)", p.Suback.PacketID, p.Suback.Codes)
	case TypePuback, TypePubrec, TypePubrel, TypePubcomp:
		return fmt.Sprintf("%v(id=%d)", p.Type, p.Puback.PacketID)
	case TypeUnsuback:
		return fmt.Sprintf("UNSUBACK(id=%d)", p.Unsuback.PacketID)
	}
	return fmt.Sprintf("%v(flags=%#x, % x)", p.Type, p.Flags, p.Raw)
}

// ---- encoding ----

// Frame returns a whole packet: the first byte (type and flags, flags
// taken as given, valid or not), the remaining length and body.
func Frame(t PacketType, flags byte, body []byte) ([]byte, error) {
	out := []byte{byte(t)<<4 | flags&0x0f}
	out, err := AppendRemainingLength(out, len(body))
	if err != nil {
		return nil, err
	}
	return append(out, body...), nil
}

// AppendRemainingLength appends n in MQTT's variable-length encoding
// (spec §2.2.3): 7 bits per byte, least significant first, high bit set on
// all but the last byte; 1 to 4 bytes.
func AppendRemainingLength(b []byte, n int) ([]byte, error) {
	if n < 0 || n > MaxRemainingLength {
		return b, fmt.Errorf("mqttraw: remaining length %d out of range 0..%d", n, MaxRemainingLength)
	}
	for {
		digit := byte(n % 128)
		n /= 128
		if n > 0 {
			digit |= 0x80
		}
		b = append(b, digit)
		if n == 0 {
			return b, nil
		}
	}
}

// appendString appends an MQTT length-prefixed string or binary field. It
// does not check UTF-8: invalid strings are a legitimate test input.
func appendString(b []byte, s []byte) ([]byte, error) {
	if len(s) > 0xffff {
		return b, fmt.Errorf("mqttraw: field of %d bytes is longer than 65535", len(s))
	}
	b = binary.BigEndian.AppendUint16(b, uint16(len(s)))
	return append(b, s...), nil
}

// stringWriter appends length-prefixed fields and remembers the first error.
type stringWriter struct {
	b   []byte
	err error
}

func (w *stringWriter) str(s []byte) {
	if w.err == nil {
		w.b, w.err = appendString(w.b, s)
	}
}

// Encode returns the CONNECT packet.
func (p ConnectPacket) Encode() ([]byte, error) {
	name, level := p.ProtocolName, p.ProtocolLevel
	if name == "" {
		name = "MQTT"
	}
	if level == 0 {
		level = 4
	}
	var flags byte
	if p.ReservedFlag {
		flags |= 0x01
	}
	if p.CleanSession {
		flags |= 0x02
	}
	if p.Will != nil {
		flags |= 0x04 | (p.Will.QoS&3)<<3
		if p.Will.Retain {
			flags |= 0x20
		}
	}
	if p.Password != nil {
		flags |= 0x40
	}
	if p.UserName != nil {
		flags |= 0x80
	}
	w := &stringWriter{}
	w.str([]byte(name))
	w.b = append(w.b, level, flags)
	w.b = binary.BigEndian.AppendUint16(w.b, p.KeepAlive)
	w.str([]byte(p.ClientID))
	if p.Will != nil {
		w.str([]byte(p.Will.Topic))
		w.str(p.Will.Payload)
	}
	if p.UserName != nil {
		w.str([]byte(*p.UserName))
	}
	if p.Password != nil {
		w.str([]byte(*p.Password))
	}
	if w.err != nil {
		return nil, w.err
	}
	return Frame(TypeConnect, 0, w.b)
}

// Encode returns the PUBLISH packet. QoS is written as given (masked to two
// bits), so QoS 3 produces the invalid flags 0b11x.
func (p PublishPacket) Encode() ([]byte, error) {
	flags := (p.QoS & 3) << 1
	if p.Dup {
		flags |= 0x08
	}
	if p.Retain {
		flags |= 0x01
	}
	w := &stringWriter{}
	w.str([]byte(p.Topic))
	if p.QoS&3 > 0 {
		w.b = binary.BigEndian.AppendUint16(w.b, p.PacketID)
	}
	if w.err != nil {
		return nil, w.err
	}
	return Frame(TypePublish, flags, append(w.b, p.Payload...))
}

// EncodeSubscribe returns a SUBSCRIBE (flags 0b0010) for the filters; none
// at all is a protocol violation, and allowed.
func EncodeSubscribe(id uint16, filters ...Subscription) ([]byte, error) {
	w := &stringWriter{b: binary.BigEndian.AppendUint16(nil, id)}
	for _, f := range filters {
		w.str([]byte(f.Filter))
		w.b = append(w.b, f.QoS)
	}
	if w.err != nil {
		return nil, w.err
	}
	return Frame(TypeSubscribe, 0x02, w.b)
}

// EncodeUnsubscribe returns an UNSUBSCRIBE (flags 0b0010) for the filters.
func EncodeUnsubscribe(id uint16, filters ...string) ([]byte, error) {
	w := &stringWriter{b: binary.BigEndian.AppendUint16(nil, id)}
	for _, f := range filters {
		w.str([]byte(f))
	}
	if w.err != nil {
		return nil, w.err
	}
	return Frame(TypeUnsubscribe, 0x02, w.b)
}

// EncodeAck returns a PUBACK, PUBREC, PUBREL (flags 0b0010), PUBCOMP or
// UNSUBACK carrying id.
func EncodeAck(t PacketType, id uint16) []byte {
	var flags byte
	if t == TypePubrel {
		flags = 0x02
	}
	return []byte{byte(t)<<4 | flags, 2, byte(id >> 8), byte(id)}
}

// ---- decoding ----

// ReadPacket reads one packet from r. It returns io.EOF if r ends before
// the first byte, io.ErrUnexpectedEOF if it ends inside a packet, and an
// error wrapping ErrMalformed if the packet is not valid MQTT 3.1.1 for
// the server-to-client types it decodes (CONNACK, PUBLISH, PUBACK, PUBREC,
// PUBREL, PUBCOMP, SUBACK, UNSUBACK). Memory grows with the bytes actually
// read, not with the length the packet claims.
func ReadPacket(r io.Reader) (Packet, error) {
	br, ok := r.(byteReader)
	if !ok {
		br = &oneByteReader{r: r} // no read-ahead: bytes after the packet stay in r
	}
	raw, n, err := readHeader(br, nil)
	if err != nil {
		return Packet{}, err
	}
	buf := bytes.NewBuffer(raw)
	if _, err := io.CopyN(buf, br, int64(n)); err != nil {
		return Packet{}, unexpected(err)
	}
	raw = buf.Bytes()
	return decode(raw, raw[len(raw)-n:])
}

// readHeader appends the fixed header (first byte and remaining length) to
// raw and returns it with the remaining length. It returns io.EOF if br
// ends before the first byte.
func readHeader(br io.ByteReader, raw []byte) ([]byte, int, error) {
	first, err := br.ReadByte()
	if err != nil {
		return raw, 0, err // io.EOF at a packet boundary
	}
	raw = append(raw, first)
	for {
		b, err := br.ReadByte()
		if err != nil {
			return raw, 0, unexpected(err)
		}
		raw = append(raw, b)
		if n, done, err := remainingLength(raw[1:]); err != nil || done {
			return raw, n, err
		}
	}
}

// remainingLength decodes the remaining length from b, the bytes after the
// first: done is false while b's last byte has its continuation bit set.
func remainingLength(b []byte) (n int, done bool, err error) {
	mult := 1
	for i, c := range b {
		if i == 4 {
			break
		}
		n += int(c&0x7f) * mult
		mult *= 128
		if c&0x80 == 0 {
			return n, true, nil
		}
	}
	if len(b) < 4 {
		return 0, false, nil
	}
	return 0, false, fmt.Errorf("%w: remaining length longer than 4 bytes (% x)", ErrMalformed, b)
}

// Reader reads packets from a buffered stream into one buffer it reuses, so
// that reading a packet allocates nothing but a received PUBLISH's topic. It
// is for clients that read many packets (a load generator); ReadPacket, which
// copies, suits tests better. A read that times out (a deadline on the
// connection) keeps what it has read of a packet: the next Read goes on
// from there.
type Reader struct {
	br      *bufio.Reader
	buf     []byte // the packet read so far
	total   int    // its whole length once the fixed header is complete; 0 before
	maxSize int
}

// keepBuffer is the largest buffer a Reader keeps between packets.
const keepBuffer = 4096

// ErrTooLarge is wrapped by Reader.Read for a packet over its size bound.
var ErrTooLarge = errors.New("mqttraw: packet too large")

// NewReader reads from br packets of at most maxSize bytes (fixed header
// included; at least 16).
func NewReader(br *bufio.Reader, maxSize int) *Reader {
	return &Reader{br: br, maxSize: max(maxSize, 16)}
}

// Read returns the next packet, with the errors of ReadPacket plus one
// wrapping ErrTooLarge; after an error other than a time-out the stream is
// unusable. The Packet's Raw, Publish.Payload and Suback.Codes share the
// Reader's buffer: they are valid until the next Read.
func (r *Reader) Read() (Packet, error) {
	if r.total == 0 && len(r.buf) == 0 && cap(r.buf) > keepBuffer {
		r.buf = nil // a rare large packet does not pin its buffer
	}
	for r.total == 0 {
		b, err := r.br.ReadByte()
		if err != nil {
			if len(r.buf) > 0 {
				err = unexpected(err)
			}
			return Packet{}, err // io.EOF at a packet boundary
		}
		r.buf = append(r.buf, b)
		if len(r.buf) == 1 {
			continue
		}
		n, done, err := remainingLength(r.buf[1:])
		if err != nil {
			return Packet{}, err
		}
		if !done {
			continue
		}
		total := len(r.buf) + n
		if total > r.maxSize {
			return Packet{}, fmt.Errorf("%w: %d bytes, the bound is %d", ErrTooLarge, total, r.maxSize)
		}
		if cap(r.buf) < total {
			r.buf = append(make([]byte, 0, max(total, 64)), r.buf...)
		}
		r.total = total
	}
	for len(r.buf) < r.total {
		n, err := r.br.Read(r.buf[len(r.buf):r.total])
		r.buf = r.buf[:len(r.buf)+n]
		if err != nil && len(r.buf) < r.total {
			return Packet{}, unexpected(err)
		}
	}
	raw, bodyAt := r.buf, r.total-remainingLengthBody(r.buf)
	r.buf, r.total = r.buf[:0], 0
	return decode(raw, raw[bodyAt:])
}

// remainingLengthBody is the body length of the complete packet raw.
func remainingLengthBody(raw []byte) int {
	n, _, _ := remainingLength(raw[1:])
	return n
}

type byteReader interface {
	io.Reader
	io.ByteReader
}

// oneByteReader adds ReadByte to a plain io.Reader without buffering.
type oneByteReader struct {
	r io.Reader
	b [1]byte
}

func (o *oneByteReader) Read(p []byte) (int, error) { return o.r.Read(p) }

func (o *oneByteReader) ReadByte() (byte, error) {
	_, err := io.ReadFull(o.r, o.b[:])
	return o.b[0], err
}

func unexpected(err error) error {
	if err == io.EOF {
		return io.ErrUnexpectedEOF
	}
	return err
}

// decode fills in a Packet from raw, the whole packet, and body, the bytes
// after the remaining length.
func decode(raw, body []byte) (Packet, error) {
	p := Packet{Type: PacketType(raw[0] >> 4), Flags: raw[0] & 0x0f, Raw: raw}
	malformed := func(format string, args ...any) (Packet, error) {
		return p, fmt.Errorf("%w: %v: "+format, append([]any{ErrMalformed, p.Type}, args...)...)
	}
	switch p.Type {
	case TypeConnack:
		if len(body) != 2 {
			return malformed("remaining length %d, want 2", len(body))
		}
		if body[0]&^1 != 0 {
			return malformed("reserved acknowledge flags %#x", body[0])
		}
		p.Connack = Connack{SessionPresent: body[0]&1 == 1, ReturnCode: body[1]}
	case TypePublish:
		q := PublishPacket{QoS: p.Flags >> 1 & 3, Dup: p.Flags&0x08 != 0, Retain: p.Flags&0x01 != 0}
		if q.QoS == 3 {
			return malformed("QoS 3")
		}
		topic, rest, ok := cutString(body)
		if !ok {
			return malformed("truncated topic name")
		}
		q.Topic = string(topic)
		if q.QoS > 0 {
			if len(rest) < 2 {
				return malformed("missing packet identifier")
			}
			q.PacketID, rest = binary.BigEndian.Uint16(rest), rest[2:]
		}
		q.Payload = rest
		p.Publish = q
	case TypePuback, TypePubrec, TypePubrel, TypePubcomp, TypeUnsuback:
		if len(body) != 2 {
			return malformed("remaining length %d, want 2", len(body))
		}
		ack := Ack{PacketID: binary.BigEndian.Uint16(body)}
		if p.Type == TypeUnsuback {
			p.Unsuback = ack
		} else {
			p.Puback = ack
		}
	case TypeSuback:
		if len(body) < 3 {
			return malformed("remaining length %d, want at least 3", len(body))
		}
		p.Suback = Suback{PacketID: binary.BigEndian.Uint16(body), Codes: body[2:]}
	}
	return p, nil
}

// cutString splits a length-prefixed field off b.
func cutString(b []byte) (s, rest []byte, ok bool) {
	if len(b) < 2 {
		return nil, nil, false
	}
	n := int(binary.BigEndian.Uint16(b))
	if len(b) < 2+n {
		return nil, nil, false
	}
	return b[2 : 2+n], b[2+n:], true
}
