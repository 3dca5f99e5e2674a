package mqttraw

import (
	"bufio"
	"bytes"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"testing"
	"testing/iotest"

	"github.com/google/go-cmp/cmp"
)

func unhex(t testing.TB, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(strings.ReplaceAll(s, " ", ""))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestRemainingLength(t *testing.T) {
	for _, tc := range []struct {
		n    int
		want string
	}{
		{0, "00"},
		{1, "01"},
		{127, "7f"},
		{128, "80 01"},
		{16383, "ff 7f"},
		{16384, "80 80 01"},
		{2097151, "ff ff 7f"},
		{2097152, "80 80 80 01"},
		{MaxRemainingLength, "ff ff ff 7f"},
	} {
		t.Run(fmt.Sprint(tc.n), func(t *testing.T) {
			got, err := AppendRemainingLength(nil, tc.n)
			if err != nil || !bytes.Equal(got, unhex(t, tc.want)) {
				t.Fatalf("AppendRemainingLength(%d) = % x, %v; want %s", tc.n, got, err, tc.want)
			}
			if tc.n > 2097152 {
				return // not worth 256 MB; see TestReadPacketHugeClaim
			}
			// Decode a whole packet of that size.
			frame, err := Frame(TypePingresp, 0, make([]byte, tc.n))
			if err != nil {
				t.Fatal(err)
			}
			p, err := ReadPacket(bytes.NewReader(frame))
			if err != nil || p.Type != TypePingresp || len(p.Raw) != len(frame) {
				t.Errorf("ReadPacket(%d-byte body) = %v (%d raw bytes), %v", tc.n, p.Type, len(p.Raw), err)
			}
		})
	}
	for _, n := range []int{-1, MaxRemainingLength + 1} {
		if _, err := AppendRemainingLength(nil, n); err == nil {
			t.Errorf("AppendRemainingLength(%d) succeeded, want an error", n)
		}
	}
}

func TestReadPacketHugeClaim(t *testing.T) {
	// A header claiming 256 MB followed by 3 bytes: an error, not a 256 MB allocation.
	_, err := ReadPacket(bytes.NewReader(unhex(t, "30 ff ff ff 7f 00 01 61")))
	if !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Errorf("ReadPacket(truncated huge packet) = %v, want io.ErrUnexpectedEOF", err)
	}
	_, err = ReadPacket(bytes.NewReader(unhex(t, "30 ff ff ff ff 01")))
	if !errors.Is(err, ErrMalformed) {
		t.Errorf("ReadPacket(5-byte remaining length) = %v, want ErrMalformed", err)
	}
}

// Known answers worked out by hand from the MQTT 3.1.1 specification.
func TestEncodeKnownAnswers(t *testing.T) {
	mustEncode := func(b []byte, err error) []byte {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	for _, tc := range []struct {
		name string
		got  []byte
		want string
	}{
		{"connect-minimal",
			mustEncode(ConnectPacket{ClientID: "a", CleanSession: true, KeepAlive: 60}.Encode()),
			"10 0d 0004 4d515454 04 02 003c 0001 61"},
		{"connect-full", mustEncode(ConnectPacket{ClientID: "c", UserName: String("u"), Password: String("p"),
			KeepAlive: 0x0102, Will: &Will{Topic: "w", Payload: []byte("x"), QoS: 1, Retain: true}}.Encode()),
			"10 19 0004 4d515454 04 ec 0102 0001 63 0001 77 0001 78 0001 75 0001 70"},
		{"connect-odd", mustEncode(ConnectPacket{ProtocolName: "MQIsdp", ProtocolLevel: 3, Password: String(""),
			ReservedFlag: true, Will: &Will{QoS: 3}}.Encode()),
			"10 14 0006 4d5149736470 03 5d 0000 0000 0000 0000 0000"},
		{"publish-qos0", mustEncode(PublishPacket{Topic: "a/b", Payload: []byte("hi")}.Encode()),
			"30 07 0003 612f62 6869"},
		{"publish-qos1", mustEncode(PublishPacket{Topic: "a/b", Payload: []byte("hi"), QoS: 1, PacketID: 10}.Encode()),
			"32 09 0003 612f62 000a 6869"},
		{"publish-qos3-dup-retain", mustEncode(PublishPacket{Topic: "t", QoS: 3, Dup: true, Retain: true, PacketID: 1}.Encode()),
			"3f 05 0001 74 0001"},
		{"subscribe", mustEncode(EncodeSubscribe(1, Subscription{"a", 1}, Subscription{"b/#", 3})),
			"82 0c 0001 0001 61 01 0003 622f23 03"},
		{"unsubscribe", mustEncode(EncodeUnsubscribe(2, "a")), "a2 05 0002 0001 61"},
		{"puback", EncodeAck(TypePuback, 0x1234), "40 02 1234"},
		{"pubrel", EncodeAck(TypePubrel, 1), "62 02 0001"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if want := unhex(t, tc.want); !bytes.Equal(tc.got, want) {
				t.Errorf("got  % x\nwant % x", tc.got, want)
			}
		})
	}
	if _, err := (PublishPacket{Topic: strings.Repeat("x", 65536)}).Encode(); err == nil {
		t.Error("Encode of a 65536-byte topic succeeded, want an error")
	}
	if _, err := (ConnectPacket{ClientID: strings.Repeat("x", 65536)}).Encode(); err == nil {
		t.Error("Encode of a 65536-byte client ID succeeded, want an error")
	}
}

func TestPublishRoundTrip(t *testing.T) {
	for _, p := range []PublishPacket{
		{Topic: "a/b", Payload: []byte("hello")},
		{Topic: "", Payload: nil},
		{Topic: "devices/d/messages/events/%24.ct=x", Payload: []byte{0, 1, 2}, QoS: 1, PacketID: 65535, Retain: true},
		{Topic: "t", Payload: bytes.Repeat([]byte("z"), 200), QoS: 2, PacketID: 1, Dup: true},
		{Topic: "big", Payload: bytes.Repeat([]byte("z"), 16384), QoS: 1, PacketID: 2},
	} {
		t.Run(fmt.Sprintf("%s-qos%d-%d", p.Topic, p.QoS, len(p.Payload)), func(t *testing.T) {
			b, err := p.Encode()
			if err != nil {
				t.Fatal(err)
			}
			got, err := ReadPacket(bytes.NewReader(b))
			if err != nil {
				t.Fatalf("ReadPacket: %v", err)
			}
			if got.Type != TypePublish || !bytes.Equal(got.Raw, b) {
				t.Errorf("ReadPacket = %v, raw % x; want PUBLISH, raw % x", got.Type, got.Raw, b)
			}
			if diff := cmp.Diff(p, got.Publish, cmp.Comparer(func(a, b []byte) bool { return bytes.Equal(a, b) })); diff != "" {
				t.Errorf("round trip (-sent +decoded):\n%s", diff)
			}
		})
	}
}

func TestReadPacket(t *testing.T) {
	for _, tc := range []struct {
		name, in string
		want     Packet
	}{
		{"connack-refused", "20 02 01 05", Packet{Type: TypeConnack, Connack: Connack{SessionPresent: true, ReturnCode: 5}}},
		{"connack-accepted", "20 02 00 00", Packet{Type: TypeConnack}},
		{"suback", "90 05 0007 01 80 00", Packet{Type: TypeSuback, Suback: Suback{PacketID: 7, Codes: []byte{1, 0x80, 0}}}},
		{"puback", "40 02 0009", Packet{Type: TypePuback, Puback: Ack{PacketID: 9}}},
		{"pubrel", "62 02 0003", Packet{Type: TypePubrel, Flags: 2, Puback: Ack{PacketID: 3}}},
		{"unsuback", "b0 02 0004", Packet{Type: TypeUnsuback, Unsuback: Ack{PacketID: 4}}},
		{"pingresp", "d0 00", Packet{Type: TypePingresp}},
		{"disconnect", "e0 00", Packet{Type: TypeDisconnect}},
		{"reserved", "0f 01 aa", Packet{Type: 0, Flags: 0xf}},
		{"connect-not-decoded", "10 00", Packet{Type: TypeConnect}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			in := unhex(t, tc.in)
			got, err := ReadPacket(bytes.NewReader(in))
			if err != nil {
				t.Fatalf("ReadPacket(%s): %v", tc.in, err)
			}
			tc.want.Raw = in
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("ReadPacket(%s) (-want +got):\n%s", tc.in, diff)
			}
		})
	}
}

func TestReadPacketMalformed(t *testing.T) {
	for _, tc := range []struct{ name, in string }{
		{"connack-long", "20 03 00 00 00"},
		{"connack-reserved-flags", "20 02 02 00"},
		{"publish-qos3", "36 05 0001 74 0001"},
		{"publish-truncated-topic", "30 03 0005 61"},
		{"publish-no-packet-id", "32 04 0001 74 00"},
		{"suback-no-codes", "90 02 0001"},
		{"puback-short", "40 01 00"},
		{"unsuback-long", "b0 03 000100"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := ReadPacket(bytes.NewReader(unhex(t, tc.in))); !errors.Is(err, ErrMalformed) {
				t.Errorf("ReadPacket(%s) = %v, want ErrMalformed", tc.in, err)
			}
		})
	}
}

func TestReadPacketStream(t *testing.T) {
	// Two packets, read through a reader without ReadByte that returns one
	// byte per call: nothing of the second packet may be lost.
	stream := unhex(t, "20 02 00 00  30 04 0001 74 7a")
	r := iotest.OneByteReader(bytes.NewReader(stream))
	for _, want := range []PacketType{TypeConnack, TypePublish} {
		p, err := ReadPacket(r)
		if err != nil || p.Type != want {
			t.Fatalf("ReadPacket = %v, %v; want %v", p.Type, err, want)
		}
	}
	if _, err := ReadPacket(r); err != io.EOF {
		t.Errorf("ReadPacket at the end = %v, want io.EOF", err)
	}
	if _, err := ReadPacket(bytes.NewReader(unhex(t, "40 02 00"))); !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Errorf("ReadPacket(truncated) = %v, want io.ErrUnexpectedEOF", err)
	}
	if _, err := ReadPacket(bytes.NewReader(unhex(t, "40"))); !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Errorf("ReadPacket(first byte only) = %v, want io.ErrUnexpectedEOF", err)
	}
}

func TestPacketString(t *testing.T) {
	for _, tc := range []struct {
		in, want string
	}{
		{"20 02 01 05", "CONNACK(sessionPresent=true, returnCode=5)"},
		{"32 05 0001 74 0007", `PUBLISH(topic="t", qos=1, id=7, retain=false, dup=false, 0 payload bytes)`},
		{"90 03 0001 80", "SUBACK(id=1, codes=[128])"},
		{"70 02 0001", "PUBCOMP(id=1)"},
		{"e0 00", "DISCONNECT(flags=0x0, e0 00)"},
	} {
		p, err := ReadPacket(bytes.NewReader(unhex(t, tc.in)))
		if err != nil {
			t.Fatal(err)
		}
		if got := p.String(); got != tc.want {
			t.Errorf("String of %s = %q, want %q", tc.in, got, tc.want)
		}
	}
}

func FuzzReadPacket(f *testing.F) {
	for _, s := range []string{"20 02 01 05", "90 05 0007 01 80 00", "32 09 0003 612f62 000a 6869", "40 02 0009",
		"d0 00", "30 ff ff ff 7f", "3f 05 0001 74 0001", "10 0d 0004 4d515454 04 02 003c 0001 61"} {
		f.Add(unhex(f, s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		p, err := ReadPacket(bytes.NewReader(data))
		if err != nil {
			return
		}
		if !bytes.HasPrefix(data, p.Raw) {
			t.Fatalf("Raw % x is not a prefix of the input % x", p.Raw, data)
		}
		_ = p.String()
		if p.Type != TypePublish {
			return
		}
		// A decoded PUBLISH re-encodes to a packet that decodes the same.
		b, err := p.Publish.Encode()
		if err != nil {
			t.Fatalf("Encode(%+v): %v", p.Publish, err)
		}
		again, err := ReadPacket(bytes.NewReader(b))
		if err != nil {
			t.Fatalf("ReadPacket(Encode(%+v)): %v", p.Publish, err)
		}
		if diff := cmp.Diff(p.Publish, again.Publish, cmp.Comparer(func(a, b []byte) bool { return bytes.Equal(a, b) })); diff != "" {
			t.Fatalf("re-encoded PUBLISH differs (-first +second):\n%s", diff)
		}
	})
}

func ExamplePublishPacket_Encode() {
	b, _ := PublishPacket{Topic: "a/b", Payload: []byte("hi"), QoS: 1, PacketID: 10}.Encode()
	fmt.Printf("% x\n", b)
	// Output: 32 09 00 03 61 2f 62 00 0a 68 69
}

// Reader decodes the same packets as ReadPacket, back to back from one
// stream, reusing its buffer, and refuses a packet over its bound before
// reading its body.
func TestReader(t *testing.T) {
	pub, err := PublishPacket{Topic: "a/b", QoS: 1, PacketID: 7, Payload: bytes.Repeat([]byte("x"), 5000)}.Encode()
	if err != nil {
		t.Fatal(err)
	}
	stream := slices.Concat(unhex(t, "20 02 01 00"), EncodeAck(TypePuback, 258), pub, unhex(t, "90 03 00 05 01"), unhex(t, "d0 00"))
	r := NewReader(bufio.NewReaderSize(bytes.NewReader(stream), 16), 1<<20)
	var got []string
	for {
		p, err := r.Read()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("Read after %v: %v", got, err)
		}
		want, err := ReadPacket(bytes.NewReader(p.Raw))
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(want, p); diff != "" {
			t.Errorf("Reader.Read and ReadPacket differ (-ReadPacket +Read):\n%s", diff)
		}
		got = append(got, p.String())
	}
	want := []string{"CONNACK(sessionPresent=true, returnCode=0)", "PUBACK(id=258)",
		`PUBLISH(topic="a/b", qos=1, id=7, retain=false, dup=false, 5000 payload bytes)`, "SUBACK(id=5, codes=[1])", "PINGRESP(flags=0x0, d0 00)"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("packets (-want +got):\n%s", diff)
	}

	big := NewReader(bufio.NewReader(bytes.NewReader(pub)), 1000)
	if _, err := big.Read(); !errors.Is(err, ErrTooLarge) {
		t.Errorf("Read of a %d-byte packet with a 1000-byte bound = %v, want ErrTooLarge", len(pub), err)
	}
	trunc := NewReader(bufio.NewReader(bytes.NewReader(pub[:100])), 1<<20)
	if _, err := trunc.Read(); err != io.ErrUnexpectedEOF {
		t.Errorf("Read of a truncated packet = %v, want io.ErrUnexpectedEOF", err)
	}
}

// timeoutReader returns its chunks one per Read, with a time-out error
// between any two, the way a connection with a read deadline does.
type timeoutReader struct {
	chunks  [][]byte
	timeout bool
}

var errTestTimeout = errors.New("i/o timeout")

func (r *timeoutReader) Read(p []byte) (int, error) {
	if r.timeout {
		r.timeout = false
		return 0, errTestTimeout
	}
	if len(r.chunks) == 0 {
		return 0, io.EOF
	}
	n := copy(p, r.chunks[0])
	if r.chunks[0] = r.chunks[0][n:]; len(r.chunks[0]) == 0 {
		r.chunks = r.chunks[1:]
	}
	r.timeout = true
	return n, nil
}

// A Read that times out inside a packet (header or body) resumes where it
// stopped: no byte is lost or read twice.
func TestReaderResumesAfterTimeout(t *testing.T) {
	pub, err := PublishPacket{Topic: "t", QoS: 1, PacketID: 9, Payload: bytes.Repeat([]byte("y"), 300)}.Encode()
	if err != nil {
		t.Fatal(err)
	}
	stream := slices.Concat(pub, EncodeAck(TypePuback, 4))
	var chunks [][]byte
	for i := 0; i < len(stream); i += 7 {
		chunks = append(chunks, stream[i:min(i+7, len(stream))])
	}
	r := NewReader(bufio.NewReaderSize(&timeoutReader{chunks: chunks}, 16), 1<<20)
	var got []string
	for timeouts := 0; timeouts < 1000; {
		p, err := r.Read()
		if errors.Is(err, errTestTimeout) {
			timeouts++
			continue
		}
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("Read after %v: %v", got, err)
		}
		got = append(got, p.String())
	}
	want := []string{`PUBLISH(topic="t", qos=1, id=9, retain=false, dup=false, 300 payload bytes)`, "PUBACK(id=4)"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("packets (-want +got):\n%s", diff)
	}
}
