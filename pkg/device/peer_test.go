package device

import (
	"bytes"
	"crypto/x509"
	"encoding/json"
	"errors"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	mqtt "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/packets"

	"github.com/hubkit/hubkit/internal/brokertest"
	"github.com/hubkit/hubkit/internal/certs"
	"github.com/hubkit/hubkit/internal/testutil"
	"github.com/hubkit/hubkit/pkg/iothub"
	"github.com/hubkit/hubkit/pkg/sas"
)

// The scripted peer: a mochi broker on 127.0.0.1:0 (internal/brokertest: allowing everything,
// TLS with a throwaway CA) with one hook that plays the IoT Hub side the way docs/iothub-behavior.md §4
// describes it: twin GET/PATCH answers, desired notifications, method requests and C2D written
// straight to the device's connection.

const (
	testHost = "hub.example.test"
	testKey  = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=" // bytes 0x00..0x1f
)

type connectRecord struct {
	ClientID  string
	UserName  string
	Password  string
	Clean     bool
	Keepalive uint16
	Level     byte
	WillTopic string
	VerifyErr error // the token checked with pkg/sas against the expected resource
}

type peer struct {
	t    testing.TB
	srv  *mqtt.Server
	addr string
	pool *x509.CertPool
	now  func() time.Time

	mu         sync.Mutex
	cl         *mqtt.Client // current device connection
	sessions   int          // connections that reached OnSessionEstablished
	connects   []connectRecord
	published  []packets.Packet // device publishes, in order (telemetry, twin requests, method responses)
	pubacks    []uint16         // PUBACKs read from the device
	subscribes [][]string       // SUBSCRIBE filters, per packet
	order      []string         // "subscribe", "puback:<id>", "publish:<topic>" as read
	wills      []string         // wills the broker published (topics)
	refuse     packets.Code     // non-zero: answer CONNECT with this code
	dropNext   string           // a topic prefix: the next PUBLISH matching it closes the connection, unanswered
	resource   string           // expected token audience (plain)

	// twin
	desired, reported       map[string]any
	desiredVer, reportedVer int64
	twinBatch               int                // >1: hold twin requests until this many, answer in reverse
	heldTwin                []func()           // held answers
	beforeGetAnswer         func(*mqtt.Client) // runs before a GET is answered
	onSession               func(*mqtt.Client) // runs right after CONNACK, before the read loop
}

func newPeer(t testing.TB) *peer {
	t.Helper()
	now := time.Now()
	ca, err := certs.NewCA("device test CA", time.Hour, now, nil)
	if err != nil {
		t.Fatal(err)
	}
	tlsCfg, err := ca.ServerTLS([]string{testHost, "gateway.example.test"}, time.Hour, now)
	if err != nil {
		t.Fatal(err)
	}
	p := &peer{
		t: t, pool: ca.Pool(), now: time.Now,
		resource: sas.DeviceResource(testHost, "dev1"),
		desired:  map[string]any{}, reported: map[string]any{},
		desiredVer: 1, reportedVer: 1,
	}
	caps := mqtt.NewDefaultServerCapabilities()
	caps.MaximumQos = 1
	b := brokertest.Start(t, brokertest.Options{TLS: tlsCfg, Capabilities: caps, Hooks: []mqtt.Hook{&peerHook{p: p}}})
	p.srv, p.addr = b.Server, b.Addr
	return p
}

// config returns a client Config for dev1 at this peer.
func (p *peer) config() Config {
	return Config{
		HostName:        testHost,
		DeviceID:        "dev1",
		SharedAccessKey: testKey,
		Endpoint:        p.addr,
		RootCAs:         p.pool,
		Logger:          testLogger(p.t),
	}
}

// current returns the device's connection, once the latest accepted CONNECT has a session.
func (p *peer) current() *mqtt.Client {
	p.t.Helper()
	var cl *mqtt.Client
	testutil.Eventually(p.t, "the device session", func() bool {
		p.mu.Lock()
		defer p.mu.Unlock()
		cl = p.cl
		return p.sessions > 0 && p.sessions == len(p.connects)
	})
	return cl
}

// write sends a PUBLISH to the current device connection; QoS 1 gets a packet ID, returned.
func (p *peer) write(topic string, qos byte, payload []byte) uint16 {
	p.t.Helper()
	cl := p.current()
	return writeTo(p.t, cl, topic, qos, payload)
}

func writeTo(t testing.TB, cl *mqtt.Client, topic string, qos byte, payload []byte) uint16 {
	pk := packets.Packet{
		FixedHeader: packets.FixedHeader{Type: packets.Publish, Qos: qos},
		TopicName:   topic, Payload: payload, Created: time.Now().Unix(),
	}
	if qos > 0 {
		id, err := cl.NextPacketID()
		if err != nil {
			t.Error(err)
		}
		pk.PacketID = uint16(id)
	}
	if err := cl.WritePacket(pk); err != nil {
		t.Errorf("peer: writing %q: %v", topic, err)
	}
	return pk.PacketID
}

// kick drops the current device connection, as the hub does on expiry or takeover.
func (p *peer) kick() {
	p.current().Stop(errors.New("kicked by the test"))
}

func (p *peer) connectRecords() []connectRecord {
	p.mu.Lock()
	defer p.mu.Unlock()
	return slices.Clone(p.connects)
}

func (p *peer) publishes() []packets.Packet {
	p.mu.Lock()
	defer p.mu.Unlock()
	return slices.Clone(p.published)
}

func (p *peer) readOrder() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return slices.Clone(p.order)
}

func (p *peer) hasPuback(id uint16) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return slices.Contains(p.pubacks, id)
}

func (p *peer) setDesired(version int64, doc map[string]any) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.desiredVer, p.desired = version, doc
}

// twinDoc is the GET answer: {"desired":{...,"$version":n},"reported":{...,"$version":m}}.
func (p *peer) twinDoc() []byte {
	d := map[string]any{"$version": p.desiredVer}
	for k, v := range p.desired {
		d[k] = v
	}
	r := map[string]any{"$version": p.reportedVer}
	for k, v := range p.reported {
		r[k] = v
	}
	b, _ := json.Marshal(map[string]any{"desired": d, "reported": r})
	return b
}

type peerHook struct {
	mqtt.HookBase
	p *peer
}

func (h *peerHook) ID() string { return "device-test-peer" }

func (h *peerHook) Provides(b byte) bool {
	return bytes.Contains([]byte{mqtt.OnConnect, mqtt.OnSessionEstablished, mqtt.OnPacketRead, mqtt.OnPublish,
		mqtt.OnWillSent}, []byte{b})
}

func (h *peerHook) OnConnect(cl *mqtt.Client, pk packets.Packet) error {
	p := h.p
	c := pk.Connect
	rec := connectRecord{
		ClientID: c.ClientIdentifier, UserName: string(c.Username), Password: string(c.Password),
		Clean: c.Clean, Keepalive: c.Keepalive, Level: pk.ProtocolVersion, WillTopic: c.WillTopic,
	}
	key, _ := sas.DecodeKey(testKey)
	tok, err := sas.Parse(rec.Password)
	if err == nil {
		p.mu.Lock()
		aud := p.resource
		p.mu.Unlock()
		err = tok.Verify(key, p.now(), sas.WithAudience(aud))
	}
	rec.VerifyErr = err
	p.mu.Lock()
	p.connects = append(p.connects, rec)
	refuse := p.refuse
	p.mu.Unlock()
	if refuse.Code != 0 {
		_ = h.p.srv.SendConnack(cl, refuse, false, nil)
		return refuse
	}
	return nil
}

func (h *peerHook) OnSessionEstablished(cl *mqtt.Client, _ packets.Packet) {
	h.p.mu.Lock()
	h.p.cl = cl
	h.p.sessions++
	f := h.p.onSession
	h.p.mu.Unlock()
	if f != nil {
		f(cl)
	}
}

func (h *peerHook) OnWillSent(_ *mqtt.Client, pk packets.Packet) {
	h.p.mu.Lock()
	h.p.wills = append(h.p.wills, pk.TopicName)
	h.p.mu.Unlock()
}

func (h *peerHook) OnPacketRead(cl *mqtt.Client, pk packets.Packet) (packets.Packet, error) {
	p := h.p
	p.mu.Lock()
	defer p.mu.Unlock()
	switch pk.FixedHeader.Type {
	case packets.Puback:
		p.pubacks = append(p.pubacks, pk.PacketID)
		p.order = append(p.order, "puback")
	case packets.Subscribe:
		var fs []string
		for _, f := range pk.Filters {
			fs = append(fs, f.Filter)
		}
		p.subscribes = append(p.subscribes, fs)
		p.order = append(p.order, "subscribe")
	case packets.Publish:
		p.order = append(p.order, "publish")
		if p.dropNext != "" && strings.HasPrefix(pk.TopicName, p.dropNext) {
			p.dropNext = ""
			p.published = append(p.published, pk)
			return pk, packets.ErrRejectPacket // mochi closes the connection, no PUBACK
		}
	}
	return pk, nil
}

func (h *peerHook) OnPublish(cl *mqtt.Client, pk packets.Packet) (packets.Packet, error) {
	p := h.p
	p.mu.Lock()
	p.published = append(p.published, pk)
	p.mu.Unlock()
	if rid, err := iothub.ParseTwinGetTopic(pk.TopicName); err == nil {
		p.mu.Lock()
		before := p.beforeGetAnswer
		p.mu.Unlock()
		if before != nil {
			before(cl)
		}
		p.mu.Lock()
		doc := p.twinDoc()
		p.mu.Unlock()
		p.answerTwin(cl, iothub.TwinResponseTopic(200, rid, 0), doc)
		return pk, packets.CodeSuccessIgnore
	}
	if rid, err := iothub.ParseTwinPatchReportedTopic(pk.TopicName); err == nil {
		var patch map[string]any
		if err := json.Unmarshal(pk.Payload, &patch); err != nil || patch["bad"] != nil {
			p.answerTwin(cl, iothub.TwinResponseTopic(400, rid, 0), []byte(`{"errorCode":400004,"message":"invalid patch"}`))
			return pk, packets.CodeSuccessIgnore
		}
		p.mu.Lock()
		for k, v := range patch {
			p.reported[k] = v
		}
		p.reportedVer++
		v := p.reportedVer
		p.mu.Unlock()
		p.answerTwin(cl, iothub.TwinResponseTopic(204, rid, v), nil)
		return pk, packets.CodeSuccessIgnore
	}
	return pk, nil
}

// answerTwin writes a twin response now, or holds it when batching.
func (p *peer) answerTwin(cl *mqtt.Client, topic string, body []byte) {
	send := func() { writeTo(p.t, cl, topic, 0, body) }
	p.mu.Lock()
	if p.twinBatch <= 1 {
		p.mu.Unlock()
		send()
		return
	}
	p.heldTwin = append(p.heldTwin, send)
	var flush []func()
	if len(p.heldTwin) == p.twinBatch {
		flush, p.heldTwin = p.heldTwin, nil
	}
	p.mu.Unlock()
	for i := len(flush) - 1; i >= 0; i-- { // reverse order: the client must match by $rid
		flush[i]()
	}
}

// testLogger routes the client's log to t.Log.
func testLogger(t testing.TB) *slog.Logger {
	return slog.New(slog.NewTextHandler(tWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

type tWriter struct{ t testing.TB }

func (w tWriter) Write(b []byte) (int, error) {
	w.t.Helper()
	w.t.Log(string(bytes.TrimRight(b, "\n")))
	return len(b), nil
}
