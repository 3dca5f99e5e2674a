package fakehub

import (
	"bytes"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/url"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hubkit/hubkit/internal/mqttraw"
	"github.com/hubkit/hubkit/pkg/iothub"
	"github.com/hubkit/hubkit/pkg/sas"
)

// fuzzConn is a connection whose client sends in and then closes: Read
// never blocks, Write keeps what the hub sent.
type fuzzConn struct {
	in     *bytes.Reader
	remote fuzzAddr
	mu     sync.Mutex
	out    bytes.Buffer
	eof    atomic.Bool // the hub read to the end of the input
	closed atomic.Bool
}

type fuzzAddr string

func (a fuzzAddr) Network() string { return "fuzz" }
func (a fuzzAddr) String() string  { return string(a) }

func (c *fuzzConn) Read(b []byte) (int, error) {
	if c.closed.Load() {
		return 0, net.ErrClosed
	}
	n, err := c.in.Read(b)
	if errors.Is(err, io.EOF) {
		c.eof.Store(true)
	}
	return n, err
}

func (c *fuzzConn) Write(b []byte) (int, error) {
	if c.closed.Load() {
		return 0, net.ErrClosed
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.out.Write(b)
}

func (c *fuzzConn) output() []byte {
	c.mu.Lock()
	defer c.mu.Unlock()
	return bytes.Clone(c.out.Bytes())
}

func (c *fuzzConn) Close() error                     { c.closed.Store(true); return nil }
func (c *fuzzConn) LocalAddr() net.Addr              { return fuzzAddr("hub") }
func (c *fuzzConn) RemoteAddr() net.Addr             { return c.remote }
func (c *fuzzConn) SetDeadline(time.Time) error      { return nil }
func (c *fuzzConn) SetReadDeadline(time.Time) error  { return nil }
func (c *fuzzConn) SetWriteDeadline(time.Time) error { return nil }

// rejectionsTotal counts the rejections recorded so far, dropped ones too.
func rejectionsTotal(s *Server) int {
	s.rejections.mu.Lock()
	defer s.rejections.mu.Unlock()
	return s.rejections.dropped + len(s.rejections.list)
}

// fuzzSeeds are whole client streams: a valid session, and each kind of
// broken packet.
func fuzzSeeds(tok string) [][]byte {
	enc := func(b []byte, err error) []byte {
		if err != nil {
			panic(err)
		}
		return b
	}
	conn := enc(mqttraw.ConnectPacket{ClientID: "dev1", UserName: mqttraw.String("localhost/dev1/?api-version=2021-04-12"),
		Password: mqttraw.String(tok), CleanSession: true, KeepAlive: 60}.Encode())
	persistent := enc(mqttraw.ConnectPacket{ClientID: "dev1", UserName: mqttraw.String("localhost/dev1/?api-version=2021-04-12"),
		Password: mqttraw.String(tok), KeepAlive: 60, Will: &mqttraw.Will{Topic: "devices/dev1/messages/events/", Payload: []byte("bye"), QoS: 1}}.Encode())
	sub := enc(mqttraw.EncodeSubscribe(1, mqttraw.Subscription{Filter: "devices/dev1/messages/devicebound/#", QoS: 1},
		mqttraw.Subscription{Filter: "$iothub/twin/res/#"}, mqttraw.Subscription{Filter: "$iothub/methods/POST/#"}, mqttraw.Subscription{Filter: "$iothub/twin/PATCH/properties/desired/#"}))
	pub := enc(mqttraw.PublishPacket{Topic: "devices/dev1/messages/events/%24.ct=application%2Fjson&a=b", Payload: []byte(`{"t":1}`), QoS: 1, PacketID: 7}.Encode())
	get := enc(mqttraw.PublishPacket{Topic: "$iothub/twin/GET/?$rid=1"}.Encode())
	patch := enc(mqttraw.PublishPacket{Topic: "$iothub/twin/PATCH/properties/reported/?$rid=2", Payload: []byte(`{"fw":"1.0"}`)}.Encode())
	unsub := enc(mqttraw.EncodeUnsubscribe(2, "$iothub/twin/res/#"))
	ping := []byte{0xc0, 0}
	disc := []byte{0xe0, 0}
	cat := func(bs ...[]byte) []byte { return bytes.Join(bs, nil) }
	return [][]byte{
		cat(conn, sub, pub, get, patch, unsub, ping, disc),
		cat(persistent, sub, pub, ping),
		cat(conn, enc(mqttraw.PublishPacket{Topic: "devices/dev2/messages/events/", QoS: 1, PacketID: 1}.Encode())),
		cat(conn, []byte{0x36, 3, 0, 1, 't'}),
		cat(conn, []byte{0x82, 2, 0, 1}),
		cat(conn, []byte{0x30, 0x80, 0x80, 0x80, 0x80, 1}),
		conn[:len(conn)-3],
		cat(conn, conn),
		pub,
		{0x10, 0xff, 0xff, 0xff, 0x7f},
	}
}

// FuzzRawPackets feeds arbitrary client byte streams to the hub's packet
// handling in process (the wire checker, mochi's decoder and every fakehub
// hook, with a registered device whose valid token the seeds carry) and
// checks what a hostile client must never achieve: a panic (recovered or
// not), an answer a 3.1.1 client cannot read (an MQTT 5 code such as CONNACK
// 0x82, a DISCONNECT), a close the hub made without a rejection record, or a
// secret in the log (at Debug).
func FuzzRawPackets(f *testing.F) {
	fz := newRawFuzzer(f)
	for _, seed := range fuzzSeeds(fz.tok.String()) {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, in []byte) { fz.run(t, in) })
}

// rawFuzzer is the hub FuzzRawPackets (and BenchmarkRawPackets) drive.
type rawFuzzer struct {
	s       *Server
	logs    *lockedBuffer
	tok     sas.Token
	secrets []string
	n       atomic.Int64
}

func newRawFuzzer(f testing.TB) *rawFuzzer {
	now := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	logs := &lockedBuffer{}
	s, err := NewServer(Options{InsecureAddr: "127.0.0.1:0", Now: func() time.Time { return now },
		Logger: slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))})
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { s.Close() })
	if _, err := s.AddDevice("dev1", testKey); err != nil {
		f.Fatal(err)
	}
	tok := sas.Sign(sas.EncodeResource("localhost/devices/dev1"), "", testKey, now.Add(time.Hour))
	secrets := []string{tok.Signature, url.QueryEscape(tok.Signature), strings.Trim(fmt.Sprint([]byte(tok.Signature)), "[]"),
		base64.StdEncoding.EncodeToString([]byte(tok.Signature)), strings.Trim(fmt.Sprint([]byte(url.QueryEscape(tok.Signature))), "[]")}
	return &rawFuzzer{s: s, logs: logs, tok: tok, secrets: secrets}
}

func (fz *rawFuzzer) run(t testing.TB, in []byte) {
	s, logs, secrets, n := fz.s, fz.logs, fz.secrets, &fz.n
	logs.Reset()
	before := rejectionsTotal(s)
	fc := &fuzzConn{in: bytes.NewReader(in), remote: fuzzAddr(fmt.Sprintf("fuzz-%d", n.Add(1)))}
	g := &guardConn{Conn: fc, raw: fc, l: s.plainLn, remote: fc.remote.String(), writeTimeout: time.Second}
	g.check.MaxPacket = s.plainLn.maxPacket
	s.plainLn.mu.Lock()
	s.plainLn.conns[g] = struct{}{}
	s.plainLn.byRemote[g.remote] = g
	s.plainLn.mu.Unlock()
	ended := make(chan error, 1)
	go func() { ended <- s.mochi.EstablishConnection("mqtt", g) }()
	var err error
	select {
	case err = <-ended:
	case <-time.After(5 * time.Second):
		buf := make([]byte, 1<<20)
		t.Fatalf("the hub still handles the input after 5 s: % x\n%s", in, buf[:runtime.Stack(buf, true)])
	}
	s.connectionEnded(g, err)
	_ = g.Close()

	out := fc.output()
	for r, first := bytes.NewReader(out), true; r.Len() > 0; first = false {
		p, err := mqttraw.ReadPacket(r)
		if err != nil {
			t.Fatalf("the hub sent bytes a 3.1.1 client cannot read: %v\noutput % x", err, out)
		}
		switch p.Type {
		case mqttraw.TypeConnack:
			if !first || p.Connack.ReturnCode > 5 {
				t.Fatalf("CONNACK %d (first packet: %v): not MQTT 3.1.1\noutput % x", p.Connack.ReturnCode, first, out)
			}
		case mqttraw.TypePublish, mqttraw.TypePuback, mqttraw.TypeUnsuback, mqttraw.TypePingresp:
		case mqttraw.TypeSuback:
			for _, c := range p.Suback.Codes {
				if c > 1 && c != 0x80 {
					t.Fatalf("SUBACK code %#x\noutput % x", c, out)
				}
			}
		default:
			t.Fatalf("the hub sent a %v to a 3.1.1 client\noutput % x", p.Type, out)
		}
	}
	recorded := rejectionsTotal(s) > before || g.recorded.Load()
	if !fc.eof.Load() && !recorded && !bytes.Contains(in, []byte{0xe0, 0x00}) {
		t.Fatalf("the hub closed the connection without a rejection record (error %v)", err)
	}
	text := logs.String()
	if strings.Contains(text, "panic recovered") {
		t.Fatalf("a hook panicked:\n%s", text)
	}
	for _, sec := range secrets {
		if strings.Contains(text, sec) {
			t.Fatalf("the log holds the token's signature (%q):\n%s", sec, text)
		}
	}
	_ = iothub.Identity{}
}

// BenchmarkRawPackets runs the seeds of FuzzRawPackets: its cost per input.
func BenchmarkRawPackets(b *testing.B) {
	fz := newRawFuzzer(b)
	seeds := fuzzSeeds(fz.tok.String())
	for i := 0; b.Loop(); i++ {
		fz.run(b, seeds[i%len(seeds)])
	}
}
