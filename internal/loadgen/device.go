package loadgen

import (
	"bufio"
	"context"
	"crypto/tls"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/hubkit/hubkit/internal/mqttraw"
	"github.com/hubkit/hubkit/pkg/iothub"
)

// Error kinds, the keys of Report.Errors.
const (
	ErrCredential     = "credential"      // Config.Credential failed
	ErrDial           = "dial"            // TCP connect failed (refused, unreachable, time-out)
	ErrTLS            = "tls"             // TLS handshake failed
	ErrConnectTimeout = "connect-timeout" // no CONNACK (or SUBACK) within ConnectTimeout
	ErrConnectClosed  = "connect-closed"  // the server closed the connection before the CONNACK
	ErrSubscribe      = "suback-refused"  // a SUBSCRIBE filter was refused (0x80)
	ErrLost           = "connection-lost" // the server closed an established connection
	ErrWriteTimeout   = "write-timeout"   // the server took no data for 30 s
	ErrIO             = "io"              // another read or write error
	ErrProtocol       = "protocol"        // an unexpected or malformed packet
	ErrUnacked        = "puback-missing"  // a QoS 1 message still unacknowledged at the end of the drain
	ErrTwinStatus     = "twin-status"     // a reported PATCH answered with a status other than 204
	ErrTwinUnanswered = "twin-unanswered" // a reported PATCH unanswered at the end of the drain
)

// connackError is the kind for a refusing CONNACK: "connack-5".
func connackError(code byte) string { return "connack-" + strconv.Itoa(int(code)) }

// readBufferSize is the bufio size per connection: a PUBACK or a small
// PUBLISH fits; larger packets are read through it.
const readBufferSize = 512

// maxPacket bounds what a device accepts from the server (a C2D message is at
// most 64 KB; twin documents are larger).
const maxPacket = 1 << 20

// device is one simulated device: its connection and, once connected, the
// goroutine running loop.
type device struct {
	r     *runner
	index int
	id    iothub.Identity
	conn  net.Conn
	rd    *mqttraw.Reader

	pub   []byte // the telemetry PUBLISH, its packet ID at pidAt
	pidAt int

	nextID    uint16
	inflight  []pending // QoS 1 messages waiting for their PUBACK
	lastWrite time.Time
	writeDL   time.Time // the write deadline in force
	readDL    time.Time // the read deadline in force

	twinRID     int
	twinSent    time.Time
	twinPending bool
}

type pending struct {
	id   uint16
	sent time.Time
}

// writeTimeout bounds each write; it is renewed at most every
// writeTimeout/4 so that a fast sender does not reset a timer per packet.
const writeTimeout = 30 * time.Second

// connect dials, handshakes, sends CONNECT and waits for the CONNACK (and
// the SUBACK when the device subscribes). It returns the error kind with
// the error.
func (r *runner) connect(ctx context.Context, i int) (*device, string, error) {
	cfg := &r.cfg
	cred, err := cfg.Credential(i)
	if err != nil {
		return nil, ErrCredential, err
	}
	start := time.Now()
	ctx, cancel := context.WithDeadline(ctx, start.Add(cfg.ConnectTimeout))
	defer cancel()
	dial := cfg.Dial
	if dial == nil {
		dial = func(ctx context.Context, addr string) (net.Conn, error) {
			return (&net.Dialer{}).DialContext(ctx, "tcp", addr)
		}
	}
	raw, err := dial(ctx, cfg.Addr)
	if err != nil {
		return nil, ErrDial, err
	}
	conn := raw
	if cfg.TLS != nil {
		tc := tls.Client(raw, cfg.TLS)
		if err := tc.HandshakeContext(ctx); err != nil {
			_ = raw.Close()
			return nil, ErrTLS, err
		}
		r.tlsOnce.Do(func() { r.tlsState = describeTLS(tc.ConnectionState()) })
		conn = tc
	}
	d := &device{r: r, index: i, id: cred.Identity, conn: conn, rd: mqttraw.NewReader(bufio.NewReaderSize(conn, readBufferSize), maxPacket)}
	kind, err := d.handshake(cred, start)
	if err != nil {
		_ = conn.Close()
		return nil, kind, err
	}
	return d, "", nil
}

func (d *device) handshake(cred Credential, start time.Time) (string, error) {
	cfg := &d.r.cfg
	user := iothub.UserName{Host: cfg.HostName, Identity: d.id, APIVersion: iothub.DefaultAPIVersion, DeviceClientType: clientType}.String()
	cp := mqttraw.ConnectPacket{ClientID: d.id.ClientID(), UserName: &user, CleanSession: true, KeepAlive: uint16(cfg.KeepAlive / time.Second)}
	if cred.Password != "" {
		cp.Password = &cred.Password
	}
	pkt, err := cp.Encode()
	if err != nil {
		return ErrProtocol, err
	}
	_ = d.conn.SetDeadline(start.Add(cfg.ConnectTimeout))
	if err := d.write(pkt); err != nil {
		return ioKind(err, ErrConnectClosed), err
	}
	p, err := d.rd.Read()
	switch {
	case err != nil:
		return ioKind(err, ErrConnectClosed), err
	case p.Type != mqttraw.TypeConnack:
		return ErrProtocol, fmt.Errorf("got %v instead of CONNACK", p)
	case p.Connack.ReturnCode != mqttraw.ConnackAccepted:
		return connackError(p.Connack.ReturnCode), fmt.Errorf("CONNACK %d", p.Connack.ReturnCode)
	}
	d.r.connectLat.record(time.Since(start))
	if filters := d.filters(); len(filters) > 0 {
		sub, err := mqttraw.EncodeSubscribe(1, filters...)
		if err != nil {
			return ErrProtocol, err
		}
		if err := d.write(sub); err != nil {
			return ioKind(err, ErrConnectClosed), err
		}
		p, err := d.rd.Read()
		switch {
		case err != nil:
			return ioKind(err, ErrConnectClosed), err
		case p.Type != mqttraw.TypeSuback:
			return ErrProtocol, fmt.Errorf("got %v instead of SUBACK", p)
		}
		for _, c := range p.Suback.Codes {
			if c == mqttraw.SubackFailure {
				return ErrSubscribe, fmt.Errorf("SUBACK %v", p.Suback.Codes)
			}
		}
	}
	_ = d.conn.SetDeadline(time.Time{})
	d.writeDL, d.readDL = time.Time{}, time.Time{}
	d.buildTelemetry()
	return "", nil
}

// filters are the SUBSCRIBE filters the configuration asks for.
func (d *device) filters() []mqttraw.Subscription {
	cfg := &d.r.cfg
	var f []mqttraw.Subscription
	if cfg.C2D {
		f = append(f, mqttraw.Subscription{Filter: iothub.C2DFilter(d.id), QoS: 1})
	}
	if cfg.Methods {
		f = append(f, mqttraw.Subscription{Filter: "$iothub/methods/POST/#"})
	}
	if cfg.TwinInterval > 0 {
		f = append(f, mqttraw.Subscription{Filter: "$iothub/twin/res/#"})
	}
	return f
}

// telemetryProps are the system properties of every load message, as an SDK
// sends them for JSON.
var telemetryProps = iothub.Properties{{Key: iothub.PropContentType, Value: "application/json"}, {Key: iothub.PropContentEncoding, Value: "utf-8"}}

// buildTelemetry encodes the device's telemetry PUBLISH once; each send only
// rewrites its packet ID.
func (d *device) buildTelemetry() {
	cfg := &d.r.cfg
	pk := mqttraw.PublishPacket{Topic: iothub.TelemetryTopic(d.id, telemetryProps), QoS: cfg.QoS, Payload: d.r.payload}
	b, err := pk.Encode()
	if err != nil {
		panic(err) // a topic of a valid identity and a bounded payload always encode
	}
	d.pub = b
	if cfg.QoS > 0 {
		// first byte, remaining length, topic length, topic, then the ID
		hdr := len(b) - (2 + len(pk.Topic) + 2 + len(pk.Payload))
		d.pidAt = hdr + 2 + len(pk.Topic)
	}
}

// packetID returns the next packet ID (1..65535, skipping 1, which the
// SUBSCRIBE used, only on the first round).
func (d *device) packetID() uint16 {
	d.nextID++
	if d.nextID == 0 {
		d.nextID = 1
	}
	if d.nextID == 1 {
		d.nextID = 2
	}
	return d.nextID
}

func (d *device) write(b []byte) error {
	now := time.Now()
	if d.writeDL.IsZero() || d.writeDL.Sub(now) < writeTimeout*3/4 {
		d.writeDL = now.Add(writeTimeout)
		_ = d.conn.SetWriteDeadline(d.writeDL)
	}
	d.lastWrite = now
	_, err := d.conn.Write(b)
	return err
}

// sendTelemetry sends one message; QoS 1 ones wait in inflight.
func (d *device) sendTelemetry(now time.Time) error {
	r := d.r
	if r.cfg.QoS > 0 {
		id := d.packetID()
		binary.BigEndian.PutUint16(d.pub[d.pidAt:], id)
		d.inflight = append(d.inflight, pending{id: id, sent: now})
	}
	if err := d.write(d.pub); err != nil {
		return err
	}
	r.sent.Add(1)
	if r.cfg.QoS == 0 {
		r.acked.Add(1) // QoS 0: sent is delivered, as far as the device can tell
	}
	return nil
}

// loop runs the connected device until the run stops: telemetry, twin
// patches, answers to the hub, keep-alive.
func (d *device) loop() {
	r := d.r
	cfg := &r.cfg
	defer r.wg.Done()
	defer r.live.Add(-1)
	defer d.conn.Close()
	keepAlive := cfg.KeepAlive
	var sendAt, twinAt time.Time
	sending := false
	for {
		started, stopping := r.started.Load(), r.stopping.Load()
		now := time.Now()
		if started && !stopping && !sending {
			sending = true
			sendAt = r.startedAt.Add(spread(d.index, cfg.Interval))
			twinAt = r.startedAt.Add(spread(d.index, cfg.TwinInterval))
		}
		if stopping {
			sending = false
			if (len(d.inflight) == 0 && !d.twinPending) || !now.Before(r.drainEnd) {
				d.finish()
				return
			}
		}
		if sending {
			if err := d.due(now, &sendAt, &twinAt); err != nil {
				r.fail(ioKind(err, ErrLost))
				return
			}
		}
		if now.Sub(d.lastWrite) >= keepAlive {
			if err := d.write(pingreq); err != nil {
				r.fail(ioKind(err, ErrLost))
				return
			}
		}
		dl := d.lastWrite.Add(keepAlive)
		if sending {
			if cfg.Telemetry == TelemetryInterval && d.canSend() {
				dl = earliest(dl, sendAt)
			}
			if cfg.Telemetry == TelemetryFlood && cfg.QoS == 0 {
				dl = now // poll: the loop sends again at once
			}
			if cfg.TwinInterval > 0 && !d.twinPending {
				dl = earliest(dl, twinAt)
			}
		}
		if stopping {
			dl = earliest(dl, r.drainEnd)
		}
		if !dl.Equal(d.readDL) {
			d.readDL = dl
			_ = d.conn.SetReadDeadline(dl)
		}
		if r.started.Load() != started || r.stopping.Load() != stopping {
			continue // a wake-up may have come before the deadline above replaced it
		}
		p, err := d.rd.Read()
		if isTimeout(err) {
			d.readDL = time.Time{} // whatever wake set, the next round sets its own
			continue
		}
		if err != nil {
			r.fail(ioKind(err, ErrLost))
			return
		}
		if err := d.handle(p); err != nil {
			r.fail(ErrProtocol)
			return
		}
	}
}

var pingreq = []byte{byte(mqttraw.TypePingreq) << 4, 0}

// due sends what is due at now: telemetry and a twin patch.
func (d *device) due(now time.Time, sendAt, twinAt *time.Time) error {
	cfg := &d.r.cfg
	switch cfg.Telemetry {
	case TelemetryFlood:
		if cfg.QoS == 0 {
			for range 16 {
				if err := d.sendTelemetry(now); err != nil {
					return err
				}
			}
			break
		}
		for d.canSend() {
			if err := d.sendTelemetry(now); err != nil {
				return err
			}
		}
	case TelemetryInterval:
		for d.canSend() && !now.Before(*sendAt) {
			if err := d.sendTelemetry(now); err != nil {
				return err
			}
			*sendAt = sendAt.Add(cfg.Interval)
		}
	}
	if cfg.TwinInterval > 0 && !d.twinPending && !now.Before(*twinAt) {
		d.twinRID++
		patch := `{"load":{"seq":` + strconv.Itoa(d.twinRID) + `}}`
		b, err := mqttraw.PublishPacket{Topic: iothub.TwinPatchReportedTopic(strconv.Itoa(d.twinRID)), Payload: []byte(patch)}.Encode()
		if err != nil {
			return err
		}
		if err := d.write(b); err != nil {
			return err
		}
		d.twinPending, d.twinSent = true, now
		*twinAt = now.Add(cfg.TwinInterval)
	}
	return nil
}

func (d *device) canSend() bool { return d.r.cfg.QoS == 0 || len(d.inflight) < d.r.cfg.Window }

// handle processes one packet from the hub.
func (d *device) handle(p mqttraw.Packet) error {
	r := d.r
	switch p.Type {
	case mqttraw.TypePuback:
		for i, f := range d.inflight {
			if f.id == p.Puback.PacketID {
				r.pubackLat.record(time.Since(f.sent))
				r.acked.Add(1)
				d.inflight = append(d.inflight[:i], d.inflight[i+1:]...)
				return nil
			}
		}
		return nil // a late PUBACK of an echo: nothing to time
	case mqttraw.TypePingresp, mqttraw.TypeSuback, mqttraw.TypeUnsuback:
		return nil
	case mqttraw.TypePublish:
		return d.handlePublish(p.Publish)
	}
	return fmt.Errorf("unexpected %v", p.Type)
}

func (d *device) handlePublish(pk mqttraw.PublishPacket) error {
	r := d.r
	if pk.QoS == 1 {
		if err := d.write(mqttraw.EncodeAck(mqttraw.TypePuback, pk.PacketID)); err != nil {
			return err
		}
	}
	topic := pk.Topic
	switch {
	case strings.HasPrefix(topic, "$iothub/twin/res/"):
		status, rid, _, err := iothub.ParseTwinResponseTopic(topic)
		if err != nil || !d.twinPending || rid != strconv.Itoa(d.twinRID) {
			return nil // an answer to something else (or too late)
		}
		d.twinPending = false
		if status != 204 {
			r.fail(ErrTwinStatus)
			return nil
		}
		r.twinLat.record(time.Since(d.twinSent))
	case strings.HasPrefix(topic, "$iothub/methods/POST/"):
		_, rid, err := iothub.ParseMethodRequestTopic(topic)
		if err != nil {
			return nil
		}
		r.methods.Add(1)
		b, err := mqttraw.PublishPacket{Topic: iothub.MethodResponseTopic(200, rid), Payload: pk.Payload}.Encode()
		if err != nil {
			return err
		}
		return d.write(b)
	case strings.HasPrefix(topic, "$iothub/"):
		return nil // desired-property patches and the like
	default:
		_, props, err := iothub.ParseC2DTopic(topic)
		if err != nil {
			return nil
		}
		r.c2d.Add(1)
		if !r.cfg.C2D {
			return nil
		}
		echo := iothub.Properties{}
		if mid, ok := props.Get(iothub.PropMessageID); ok {
			echo = append(echo, iothub.Property{Key: iothub.PropCorrelationID, Value: mid})
		}
		e := mqttraw.PublishPacket{Topic: iothub.TelemetryTopic(d.id, echo), QoS: r.cfg.QoS, Payload: pk.Payload}
		if e.QoS > 0 {
			e.PacketID = d.packetID()
		}
		b, err := e.Encode()
		if err != nil {
			return err
		}
		return d.write(b)
	}
	return nil
}

// finish counts what never got an answer, says goodbye and closes.
func (d *device) finish() {
	r := d.r
	for range d.inflight {
		r.fail(ErrUnacked)
	}
	if d.twinPending {
		r.fail(ErrTwinUnanswered)
	}
	_ = d.write([]byte{byte(mqttraw.TypeDisconnect) << 4, 0})
}

// spread offsets device i's first send within one period, so that the
// devices' sends do not come in bursts.
func spread(i int, period time.Duration) time.Duration {
	if period <= 0 {
		return 0
	}
	// A multiplicative hash spreads consecutive indexes over the period.
	h := uint64(i) * 0x9E3779B97F4A7C15
	return time.Duration(h % uint64(period))
}

func earliest(a, b time.Time) time.Time {
	if b.Before(a) {
		return b
	}
	return a
}

func isTimeout(err error) bool { return errors.Is(err, os.ErrDeadlineExceeded) }

// ioKind classifies a read or write error: the server went away
// (closedKind), a time-out (ErrConnectTimeout while connecting, else
// ErrWriteTimeout: reads in the steady phase time out on purpose), or
// anything else.
func ioKind(err error, closedKind string) string {
	switch {
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, syscall.ECONNRESET),
		errors.Is(err, syscall.EPIPE), errors.Is(err, net.ErrClosed):
		return closedKind
	case isTimeout(err), errors.Is(err, context.DeadlineExceeded):
		if closedKind == ErrLost {
			return ErrWriteTimeout
		}
		return ErrConnectTimeout
	case errors.Is(err, mqttraw.ErrMalformed), errors.Is(err, mqttraw.ErrTooLarge):
		return ErrProtocol
	}
	return ErrIO
}

func describeTLS(cs tls.ConnectionState) string {
	s := tls.VersionName(cs.Version)
	if cs.CurveID != 0 {
		s += ", " + cs.CurveID.String()
	}
	return s
}
