// Package modeldevice is a scripted IoT Hub device on internal/mqttraw for the grader's
// tests: by default it behaves as IoT Hub expects (renews its token, backs off with
// jitter, subscribes before its twin GET, unique $rids, acknowledges C2D, answers
// methods, sends telemetry at QoS 1, reads its twin again after each reconnect), and each
// field of Faults switches one of those behaviours off, so that a test can check that the
// grader fails exactly the cases that behaviour breaks. Its times are scaled for tests.
package modeldevice

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"math/rand/v2"
	"strconv"
	"sync"
	"time"

	"github.com/hubkit/hubkit/internal/mqttraw"
	"github.com/hubkit/hubkit/pkg/iothub"
	"github.com/hubkit/hubkit/pkg/sas"
)

// Faults are the deliberate misbehaviours; the zero value is a well-behaved device.
type Faults struct {
	NeverRenews        bool // mints one token at start and presents it on every connection
	TightLoop          bool // reconnects at once after every refusal or loss
	NoJitter           bool // backs off exactly 1, 2, 4 ... × the base
	ConstantBackoff    bool // waits the base after every refusal (no growth)
	GetBeforeSubscribe bool // sends its twin GET before subscribing to $iothub/twin/res/#
	ReuseRID           bool // every twin request carries $rid 1
	NoC2DAck           bool // never PUBACKs a C2D message
	QoS2               bool // publishes its first telemetry message at QoS 2
	NoMethodAnswer     bool // receives methods but never answers
	NoResubscribe      bool // subscribes only on its first connection
	KeepAliveZero      bool // CONNECT keep-alive 0
	NoResync           bool // does not GET its twin after a reconnect
	GiveUp             bool // stops for good after a connection is closed under a pending message
	ThrottleIgnorant   bool // after a close under a pending message, reconnects and resends at its usual pace
	AcceptAnyCert      bool // does not verify the hub's certificate (InsecureSkipVerify): a wrong host name passes
	OldRootOnly        bool // trusts Config.OldRoots only: locked out when the hub's chain moves to a new root
}

// Config describes the device.
type Config struct {
	Addr string // the hub's MQTT address
	// TLS is the device's TLS configuration: its RootCAs are the roots it trusts (for the
	// TLS drill cases, the drill trust file's: the hub's CA, the old and the new root), and
	// crypto/tls checks that the certificate names ServerName.
	TLS *tls.Config
	// OldRoots are the roots it trusted before a root migration (the hub's CA): with
	// Faults.OldRootOnly, the only ones.
	OldRoots *x509.CertPool
	HostName string
	Identity iothub.Identity
	Key      []byte
	// Now is the device's clock (tokens, renewal); for a device that follows the hub's
	// clock, the hub's Clock().Now.
	Now       func() time.Time
	TokenTTL  time.Duration // default 1 h
	RenewAt   float64       // reconnect with a new token at this fraction of its lifetime (default 0.85)
	Backoff   time.Duration // the first reconnect wait after a refusal (default 200 ms)
	MaxWait   time.Duration // the longest before jitter (default 8 × Backoff)
	Telemetry time.Duration // interval between telemetry messages (default 200 ms; negative: none)
	KeepAlive uint16        // seconds (default 60)
	Faults    Faults
}

// Device is a running model device.
type Device struct {
	cfg    Config
	cancel context.CancelFunc
	done   chan struct{}

	mu      sync.Mutex
	token   string // NeverRenews: the one token
	qos2    bool   // Faults.QoS2: the QoS 2 message was sent
	rid     int
	pid     uint16
	conns   int
	methods int
}

// Start runs the device until Stop.
func Start(cfg Config) *Device {
	if cfg.TokenTTL <= 0 {
		cfg.TokenTTL = time.Hour
	}
	if cfg.RenewAt <= 0 {
		cfg.RenewAt = 0.85
	}
	if cfg.Backoff <= 0 {
		cfg.Backoff = 200 * time.Millisecond
	}
	if cfg.MaxWait <= 0 {
		cfg.MaxWait = 8 * cfg.Backoff
	}
	if cfg.Telemetry == 0 {
		cfg.Telemetry = 200 * time.Millisecond
	}
	if cfg.KeepAlive == 0 {
		cfg.KeepAlive = 60
	}
	if cfg.Faults.KeepAliveZero {
		cfg.KeepAlive = 0
	}
	if cfg.TLS != nil {
		cfg.TLS = cfg.TLS.Clone()
		if cfg.Faults.AcceptAnyCert {
			cfg.TLS.InsecureSkipVerify = true
		}
		if cfg.Faults.OldRootOnly {
			cfg.TLS.RootCAs = cfg.OldRoots
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	d := &Device{cfg: cfg, cancel: cancel, done: make(chan struct{})}
	go d.loop(ctx)
	return d
}

// Stop ends the device and waits for it.
func (d *Device) Stop() {
	d.cancel()
	<-d.done
}

// Connections returns how many connections were accepted.
func (d *Device) Connections() int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.conns
}

func (d *Device) password() string {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.cfg.Faults.NeverRenews && d.token != "" {
		return d.token
	}
	res := sas.EncodeResource(sas.DeviceResource(d.cfg.HostName, d.cfg.Identity.DeviceID))
	if d.cfg.Identity.IsModule() {
		res = sas.EncodeResource(sas.ModuleResource(d.cfg.HostName, d.cfg.Identity.DeviceID, d.cfg.Identity.ModuleID))
	}
	d.token = sas.Sign(res, "", d.cfg.Key, d.cfg.Now().Add(d.cfg.TokenTTL)).String()
	return d.token
}

func (d *Device) nextRID() string {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.cfg.Faults.ReuseRID {
		return "1"
	}
	d.rid++
	return strconv.Itoa(d.rid)
}

func (d *Device) nextPID() uint16 {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.pid++
	if d.pid == 0 {
		d.pid = 1
	}
	return d.pid
}

// wait is the back-off before attempt n (1 = the first retry).
func (d *Device) wait(n int) time.Duration {
	f := d.cfg.Faults
	switch {
	case f.TightLoop:
		return 0
	case f.ConstantBackoff:
		return d.cfg.Backoff
	}
	w := min(d.cfg.Backoff<<min(n-1, 20), d.cfg.MaxWait)
	if !f.NoJitter {
		// Between w and 2w: wide enough to tell apart from scheduling noise, narrow
		// enough that each doubling still shows.
		w = time.Duration(float64(w) * (1 + rand.Float64()))
	}
	return w
}

func sleep(ctx context.Context, d time.Duration) bool {
	if d <= 0 {
		return ctx.Err() == nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}

func (d *Device) loop(ctx context.Context) {
	defer close(d.done)
	attempt, first := 0, true
	for ctx.Err() == nil {
		why, healthy, pending := d.session(ctx, first)
		if ctx.Err() != nil {
			return
		}
		switch why {
		case endRefused:
			attempt++
		case endRenewal:
			attempt = 0
			continue // at once, with a fresh token
		default: // lost
			first = false
			if pending && d.cfg.Faults.GiveUp {
				<-ctx.Done()
				return
			}
			if pending && d.cfg.Faults.ThrottleIgnorant {
				if !sleep(ctx, d.cfg.Telemetry) {
					return
				}
				continue
			}
			// A connection lost while idle, or one on which the hub had accepted a
			// message, starts the back-off afresh; one that ended under its only
			// messages (a throttle, the quota) continues it.
			if healthy || !pending {
				attempt = 0
			}
			attempt++
		}
		if !sleep(ctx, d.wait(attempt)) {
			return
		}
	}
}

type end int

const (
	endRefused end = iota // CONNACK other than 0, or no CONNACK
	endLost               // the connection closed
	endRenewal            // the device left to renew its token
)

// session runs one connection: it returns how it ended, whether the hub acknowledged a
// telemetry message on it, and whether one was waiting for its PUBACK when it was lost.
func (d *Device) session(ctx context.Context, first bool) (why end, healthy, pending bool) {
	cfg := d.cfg
	user := cfg.HostName + "/" + cfg.Identity.ClientID() + "/?api-version=" + iothub.DefaultAPIVersion
	minted := cfg.Now()
	dctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	ack, c, err := mqttraw.ConnectAndWait(dctx, cfg.Addr, cfg.TLS, mqttraw.ConnectPacket{
		ClientID: cfg.Identity.ClientID(), UserName: mqttraw.String(user), Password: mqttraw.String(d.password()), KeepAlive: cfg.KeepAlive,
	})
	cancel()
	if err != nil {
		return endRefused, false, false
	}
	defer c.Close()
	if ack.ReturnCode != mqttraw.ConnackAccepted {
		return endRefused, false, false
	}
	d.mu.Lock()
	d.conns++
	d.mu.Unlock()

	subscribe := first || !cfg.Faults.NoResubscribe
	getTwin := first || !cfg.Faults.NoResync
	if cfg.Faults.GetBeforeSubscribe && getTwin {
		_ = c.Publish(mqttraw.PublishPacket{Topic: iothub.TwinGetTopic(d.nextRID())})
		getTwin = false
	}
	if subscribe && !ack.SessionPresent {
		_ = c.Subscribe(d.nextPID(),
			mqttraw.Subscription{Filter: iothub.C2DFilter(cfg.Identity), QoS: 1},
			mqttraw.Subscription{Filter: iothub.TwinResponseFilter},
			mqttraw.Subscription{Filter: iothub.TwinDesiredFilter},
			mqttraw.Subscription{Filter: iothub.MethodsFilter})
	} else if getTwin {
		d.twin(c)
		getTwin = false
	}

	unacked := map[uint16]bool{}
	nextTelemetry := time.Now() // at once: a message refused on the last connection is sent again
	nextPing := time.Now().Add(time.Duration(max(cfg.KeepAlive, 1)) * time.Second)
	for ctx.Err() == nil {
		if cfg.Now().Sub(minted) >= time.Duration(float64(cfg.TokenTTL)*cfg.RenewAt) && !cfg.Faults.NeverRenews {
			_ = c.Disconnect()
			return endRenewal, healthy, false
		}
		if cfg.Telemetry > 0 && !time.Now().Before(nextTelemetry) {
			nextTelemetry = time.Now().Add(cfg.Telemetry)
			p := mqttraw.PublishPacket{Topic: iothub.TelemetryTopic(cfg.Identity, nil), Payload: []byte(`{"t":1}`), QoS: 1, PacketID: d.nextPID()}
			d.mu.Lock()
			if cfg.Faults.QoS2 && !d.qos2 {
				p.QoS, d.qos2 = 2, true
			}
			d.mu.Unlock()
			unacked[p.PacketID] = true
			_ = c.Publish(p)
		}
		if cfg.KeepAlive > 0 && !time.Now().Before(nextPing) {
			nextPing = time.Now().Add(time.Duration(cfg.KeepAlive) * time.Second)
			_ = c.Pingreq()
		}
		pk, err := c.ReadPacket(20 * time.Millisecond)
		if err != nil {
			if isTimeout(err) {
				continue
			}
			return endLost, healthy, len(unacked) > 0
		}
		switch pk.Type {
		case mqttraw.TypeSuback:
			if getTwin {
				d.twin(c)
				getTwin = false
			}
		case mqttraw.TypePuback:
			if unacked[pk.Puback.PacketID] {
				delete(unacked, pk.Puback.PacketID)
				healthy = true
			}
		case mqttraw.TypePublish:
			d.incoming(c, pk.Publish)
		}
	}
	_ = c.Disconnect()
	return endLost, healthy, false
}

// twin GETs the twin and reports a property.
func (d *Device) twin(c *mqttraw.Conn) {
	_ = c.Publish(mqttraw.PublishPacket{Topic: iothub.TwinGetTopic(d.nextRID())})
	_ = c.Publish(mqttraw.PublishPacket{Topic: iothub.TwinPatchReportedTopic(d.nextRID()), Payload: []byte(`{"model":"modeldevice"}`)})
}

func (d *Device) incoming(c *mqttraw.Conn, p mqttraw.PublishPacket) {
	if _, _, err := iothub.ParseC2DTopic(p.Topic); err == nil {
		if p.QoS > 0 && !d.cfg.Faults.NoC2DAck {
			_ = c.Puback(p.PacketID)
		}
		return
	}
	if _, rid, err := iothub.ParseMethodRequestTopic(p.Topic); err == nil {
		d.mu.Lock()
		d.methods++
		d.mu.Unlock()
		if !d.cfg.Faults.NoMethodAnswer {
			_ = c.Publish(mqttraw.PublishPacket{Topic: iothub.MethodResponseTopic(200, rid), Payload: []byte(`{"ok":true}`)})
		}
	}
}

func isTimeout(err error) bool { return errors.Is(err, mqttraw.ErrTimeout) }
