package wire

import (
	"bytes"
	"encoding/binary"
	"testing"
)

// frame builds a packet from its first byte and body (the remaining length
// written in the fewest bytes).
func frame(first byte, body []byte) []byte {
	b := []byte{first}
	n := len(body)
	for {
		d := byte(n % 128)
		n /= 128
		if n > 0 {
			d |= 0x80
		}
		b = append(b, d)
		if n == 0 {
			break
		}
	}
	return append(b, body...)
}

func str(s string) []byte {
	return append(binary.BigEndian.AppendUint16(nil, uint16(len(s))), s...)
}

// connect builds a CONNECT body: "MQTT" level 4, flags, keep-alive 60, then the fields.
func connect(flags byte, fields ...string) []byte {
	b := append(str("MQTT"), 4, flags, 0, 60)
	for _, f := range fields {
		b = append(b, str(f)...)
	}
	return b
}

var goodConnect = frame(0x10, connect(0xc2, "dev1", "user", "pass"))

func cat(bs ...[]byte) []byte { return bytes.Join(bs, nil) }

func TestChecker(t *testing.T) {
	sub := func(id uint16, rest ...byte) []byte { return append(binary.BigEndian.AppendUint16(nil, id), rest...) }
	tests := []struct {
		name string
		in   []byte
		rule string // "" = no violation
		kind Kind
	}{
		{"connect-then-session", cat(goodConnect, frame(0xc0, nil), frame(0x32, append(str("t"), 0, 1)), frame(0x82, append(sub(1), append(str("a/#"), 1)...)), frame(0xa2, append(sub(2), str("a/#")...)), frame(0x40, sub(1)), frame(0xe0, nil)), "", 0},
		{"mqtt5-connect-left-to-the-hub", frame(0x10, append(str("MQTT"), 5, 2, 0, 60, 0, 0, 4, 'd', 'e', 'v', '1')), "", 0},
		{"publish-first", frame(0x30, str("t")), "MQTT-3.1.0-1", NotConnectFirst},
		{"pingreq-first", frame(0xc0, nil), "MQTT-3.1.0-1", NotConnectFirst},
		{"second-connect", cat(goodConnect, goodConnect), "MQTT-3.1.0-2", SecondConnect},
		{"five-byte-remaining-length", cat(goodConnect, []byte{0x30, 0x80, 0x80, 0x80, 0x80, 0x01}), "§2.2.3, MQTT-4.8.0-1", Malformed},
		{"five-byte-remaining-length-connect", []byte{0x10, 0xff, 0xff, 0xff, 0xff, 0x01}, "§2.2.3, MQTT-4.8.0-1", MalformedConnect},
		{"reserved-flag", frame(0x10, connect(0xc3, "dev1", "u", "p")), "MQTT-3.1.2-3", MalformedConnect},
		{"will-qos-without-will", frame(0x10, connect(0xca, "dev1", "u", "p")), "MQTT-3.1.2-13", MalformedConnect},
		{"will-retain-without-will", frame(0x10, connect(0xe2, "dev1", "u", "p")), "MQTT-3.1.2-15", MalformedConnect},
		{"will-qos-3", frame(0x10, connect(0xde, "dev1", "t", "m", "u", "p")), "MQTT-3.1.2-14", MalformedConnect},
		{"empty-will-topic", frame(0x10, connect(0xc6, "dev1", "", "m", "u", "p")), "MQTT-4.7.3-1", MalformedConnect},
		{"password-without-user-name", frame(0x10, connect(0x42, "dev1", "p")), "MQTT-3.1.2-22", MalformedConnect},
		{"client-id-nul", frame(0x10, connect(0x02, "de\x00v1")), "MQTT-1.5.3-2", MalformedConnect},
		{"client-id-invalid-utf8", frame(0x10, connect(0x02, "de\xffv1")), "MQTT-1.5.3-1", MalformedConnect},
		{"user-name-surrogate", frame(0x10, connect(0x82, "dev1", "\xed\xa0\x80")), "MQTT-1.5.3-1", MalformedConnect},
		{"truncated-connect", frame(0x10, connect(0xc2, "dev1", "user")), "MQTT-3.1.3-1", MalformedConnect},
		{"trailing-bytes-after-password", frame(0x10, append(connect(0xc2, "dev1", "user", "pass"), 'x', 'y')), "MQTT-3.1.3-1", MalformedConnect},
		{"connect-too-short", frame(0x10, str("MQTT")), "§3.1.2, MQTT-4.8.0-1", MalformedConnect},
		{"reserved-type-0", cat(goodConnect, frame(0x00, nil)), "§2.2.1, MQTT-4.8.0-1", Malformed},
		{"reserved-type-15", cat(goodConnect, frame(0xf0, nil)), "§2.2.1, MQTT-4.8.0-1", Malformed},
		{"connack-from-client", cat(goodConnect, frame(0x20, []byte{0, 0})), "§2.2.1, MQTT-4.8.0-1", Malformed},
		{"publish-qos-3", cat(goodConnect, frame(0x36, append(str("t"), 0, 1))), "MQTT-3.3.1-4", Malformed},
		{"publish-qos0-dup", cat(goodConnect, frame(0x38, str("t"))), "MQTT-3.3.1-2", Malformed},
		{"publish-topic-nul", cat(goodConnect, frame(0x30, str("a\x00b"))), "MQTT-1.5.3-2", Malformed},
		{"publish-topic-invalid-utf8", cat(goodConnect, frame(0x30, str("a\xc3"))), "MQTT-1.5.3-1", Malformed},
		{"publish-packet-id-0", cat(goodConnect, frame(0x32, append(str("t"), 0, 0))), "MQTT-2.3.1-1", Malformed},
		{"publish-truncated-topic", cat(goodConnect, frame(0x30, []byte{0, 9, 'a'})), "§3.3.2, MQTT-4.8.0-1", Malformed},
		{"subscribe-flags", cat(goodConnect, frame(0x80, append(sub(1), append(str("a"), 1)...))), "MQTT-3.8.1-1", Malformed},
		{"subscribe-no-filter", cat(goodConnect, frame(0x82, sub(1))), "MQTT-3.8.3-3", Malformed},
		{"subscribe-qos-3", cat(goodConnect, frame(0x82, append(sub(1), append(str("a"), 3)...))), "MQTT-3.8.3-4", Malformed},
		{"subscribe-reserved-bits", cat(goodConnect, frame(0x82, append(sub(1), append(str("a"), 0x41)...))), "MQTT-3.8.3-4", Malformed},
		{"subscribe-packet-id-0", cat(goodConnect, frame(0x82, append(sub(0), append(str("a"), 1)...))), "MQTT-2.3.1-1", Malformed},
		{"subscribe-empty-filter", cat(goodConnect, frame(0x82, append(sub(1), append(str(""), 1)...))), "MQTT-4.7.3-1", Malformed},
		{"subscribe-filter-nul", cat(goodConnect, frame(0x82, append(sub(1), append(str("a\x00"), 1)...))), "MQTT-1.5.3-2", Malformed},
		{"subscribe-filter-cut", cat(goodConnect, frame(0x82, append(sub(1), 0, 5, 'a'))), "§3.8.3, MQTT-4.8.0-1", Malformed},
		{"unsubscribe-flags", cat(goodConnect, frame(0xa0, append(sub(1), str("a")...))), "MQTT-3.10.1-1", Malformed},
		{"unsubscribe-no-filter", cat(goodConnect, frame(0xa2, sub(1))), "MQTT-3.10.3-2", Malformed},
		{"unsubscribe-filter-invalid-utf8", cat(goodConnect, frame(0xa2, append(sub(1), str("\xff")...))), "MQTT-1.5.3-1", Malformed},
		{"pubrel-flags", cat(goodConnect, frame(0x60, sub(1))), "MQTT-3.6.1-1", Malformed},
		{"puback-flags", cat(goodConnect, frame(0x41, sub(1))), "MQTT-2.2.2-2", Malformed},
		{"puback-long", cat(goodConnect, frame(0x40, sub(1, 0))), "§3.4.2, MQTT-4.8.0-1", Malformed},
		{"pingreq-flags", cat(goodConnect, frame(0xc1, nil)), "MQTT-2.2.2-2", Malformed},
		{"pingreq-body", cat(goodConnect, frame(0xc0, []byte{0})), "§3.12, §3.14, MQTT-4.8.0-1", Malformed},
		{"disconnect-flags", cat(goodConnect, frame(0xe1, nil)), "MQTT-3.14.1-1", Malformed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var c Checker
			n, v := c.Feed(tt.in)
			switch {
			case tt.rule == "" && v != nil:
				t.Fatalf("Feed = %d, %v; want no violation", n, v)
			case tt.rule == "" && n != len(tt.in):
				t.Fatalf("Feed released %d of %d bytes", n, len(tt.in))
			case tt.rule == "":
				return
			case v == nil:
				t.Fatalf("Feed = %d, nil; want a violation of %s", n, tt.rule)
			case v.Rule != tt.rule || v.Kind != tt.kind:
				t.Fatalf("Feed = %v (kind %d); want %s (kind %d)", v, v.Kind, tt.rule, tt.kind)
			case n >= len(tt.in):
				t.Fatalf("Feed released all %d bytes of a bad packet", n)
			}
			// Byte by byte: the same verdict, and never the bad packet's last byte.
			var c2 Checker
			released := 0
			var v2 *Violation
			for i := range tt.in {
				k, vv := c2.Feed(tt.in[i : i+1])
				released += k
				if vv != nil {
					v2 = vv
					break
				}
			}
			if v2 == nil || v2.Rule != v.Rule || released != n {
				t.Errorf("byte by byte: %v after %d bytes, want %v after %d", v2, released, v, n)
			}
			if k, again := c.Feed([]byte{0x30}); k != 0 || again != v {
				t.Errorf("after a violation Feed = %d, %v; want 0 and the same violation", k, again)
			}
		})
	}
}

func TestCheckerMaxPacket(t *testing.T) {
	c := Checker{MaxPacket: 1000}
	n, v := c.Feed(cat(goodConnect, []byte{0x30, 0xe8, 0x07})) // PUBLISH of 1000 + 3 bytes
	if v == nil || v.Kind != TooLarge || n != len(goodConnect)+2 {
		t.Fatalf("Feed = %d, %v; want TooLarge at the length's last byte", n, v)
	}
}

// FuzzCheck: any input, fed whole or in two parts, gets the same verdict
// after the same number of released bytes, and Feed never panics.
func FuzzCheck(f *testing.F) {
	f.Add(goodConnect, 3)
	f.Add(cat(goodConnect, frame(0x82, []byte{0, 1, 0, 1, 'a', 1})), 20)
	f.Add([]byte{0x10, 0xff, 0xff, 0xff, 0xff, 0x01}, 2)
	f.Fuzz(func(t *testing.T, in []byte, split int) {
		var a Checker
		n1, v1 := a.Feed(in)
		if n1 > len(in) || (v1 == nil && n1 != len(in)) {
			t.Fatalf("Feed released %d of %d bytes (violation %v)", n1, len(in), v1)
		}
		if split < 0 {
			split = -split
		}
		split %= len(in) + 1
		var b Checker
		n2, v2 := b.Feed(in[:split])
		if v2 == nil {
			k, vv := b.Feed(in[split:])
			n2, v2 = n2+k, vv
		}
		if (v1 == nil) != (v2 == nil) || n1 != n2 || (v1 != nil && v1.Rule != v2.Rule) {
			t.Fatalf("whole: %d %v; split at %d: %d %v", n1, v1, split, n2, v2)
		}
		// Keeping only a PUBLISH's topic and packet identifier changes no verdict.
		all := Checker{keepAll: true}
		n3, v3 := all.Feed(in)
		if (v1 == nil) != (v3 == nil) || n1 != n3 || (v1 != nil && v1.Rule != v3.Rule) {
			t.Fatalf("kept what it checks: %d %v; kept every byte: %d %v", n1, v1, n3, v3)
		}
	})
}

// TestCheckerKeepsNoPayload: a PUBLISH's payload is passed on, not kept (a connection
// does not hold on to the largest message it sent), while its topic is still checked.
func TestCheckerKeepsNoPayload(t *testing.T) {
	var c Checker
	payload := bytes.Repeat([]byte{0xff}, 64<<10) // not UTF-8: a payload is not checked
	body := cat(str("devices/dev1/messages/events/"), []byte{0, 7}, payload)
	in := cat(goodConnect, frame(0x32, body))
	for len(in) > 0 { // as a TLS connection delivers it, in records of up to 16 KiB
		k := min(len(in), 16<<10)
		if n, v := c.Feed(in[:k]); v != nil || n != k {
			t.Fatalf("Feed = %d, %v; want %d, nil", n, v, k)
		}
		in = in[k:]
	}
	if cap(c.body) > 1024 {
		t.Errorf("the checker kept %d bytes for a 64 KiB PUBLISH; want its topic and packet identifier only", cap(c.body))
	}
	bad := frame(0x32, cat(str("devices/dev1/\x00"), []byte{0, 8}, payload))
	if n, v := c.Feed(bad); v == nil || v.Rule != "MQTT-1.5.3-2" || n != len(bad)-1 {
		t.Errorf("a topic with U+0000 before a 64 KiB payload: Feed = %d, %v; want MQTT-1.5.3-2 at the packet's last byte", n, v)
	}
}

// BenchmarkCheckerPublish: the checker's cost per QoS 1 telemetry PUBLISH of 256 B, as a
// TLS record delivers it (one Feed per packet):
//
//	go test -run '^$' -bench CheckerPublish -benchmem ./pkg/fakehub/internal/wire/
func BenchmarkCheckerPublish(b *testing.B) {
	p := frame(0x32, cat(str("devices/dev1/messages/events/%24.ct=application%2Fjson&k=v"), []byte{0, 7}, bytes.Repeat([]byte("x"), 256)))
	var c Checker
	if _, v := c.Feed(goodConnect); v != nil {
		b.Fatal(v)
	}
	b.SetBytes(int64(len(p)))
	b.ReportAllocs()
	for b.Loop() {
		if _, v := c.Feed(p); v != nil {
			b.Fatal(v)
		}
	}
}
