package conformance

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/hubkit/hubkit/internal/mqttraw"
	"github.com/hubkit/hubkit/pkg/device"
	"github.com/hubkit/hubkit/pkg/iothub"
	"github.com/hubkit/hubkit/pkg/sas"
)

// Timings shared by the cases. They are generous for a loaded CI machine and
// a remote hub; they bound waits, they never synchronise.
const (
	closeWithin   = 5 * time.Second        // a hub that must close a connection does so within this
	answerWithin  = 10 * time.Second       // a hub answers a packet (CONNACK, PUBACK, SUBACK) within this
	quietFor      = 750 * time.Millisecond // "nothing arrives": how long we listen
	tokenLifetime = time.Hour
)

func identityOf(d DeviceIdentity) iothub.Identity {
	return iothub.Identity{DeviceID: d.DeviceID, ModuleID: d.ModuleID}
}

// userName is the documented user name: {host}/{id}/?api-version=2021-04-12.
func (e *env) userName(id iothub.Identity) string {
	return iothub.UserName{Host: e.ep.HostName, Identity: id, APIVersion: iothub.DefaultAPIVersion, Form: iothub.FormQuery}.String()
}

// resource is the plain resource an identity's own token is signed over.
func (e *env) resource(id iothub.Identity) string {
	if id.ModuleID != "" {
		return sas.ModuleResource(e.ep.HostName, id.DeviceID, id.ModuleID)
	}
	return sas.DeviceResource(e.ep.HostName, id.DeviceID)
}

func (e *env) key(b64 string) []byte {
	e.t.Helper()
	k, err := sas.DecodeKey(b64)
	if err != nil {
		e.Fatalf("target gave an invalid key: %v", err)
	}
	return k
}

// sign signs the WIRE resource sr (already encoded) as sent.
func (e *env) sign(sr, keyName, keyB64 string, expiry time.Time) string {
	e.t.Helper()
	return sas.Sign(sr, keyName, e.key(keyB64), expiry).String()
}

// token is a valid token for d, signed with its primary key.
func (e *env) token(d DeviceIdentity) string {
	e.t.Helper()
	return e.sign(sas.EncodeResource(e.resource(identityOf(d))), "", d.PrimaryKey, e.now().Add(tokenLifetime))
}

// connectPacket is a valid CONNECT for d with password pw.
func (e *env) connectPacket(d DeviceIdentity, pw string) mqttraw.ConnectPacket {
	id := identityOf(d)
	return mqttraw.ConnectPacket{
		ClientID:     id.ClientID(),
		UserName:     mqttraw.String(e.userName(id)),
		Password:     mqttraw.String(pw),
		CleanSession: true,
		KeepAlive:    60,
	}
}

func (e *env) rawTLS() *tls.Config {
	if e.ep.TLS == nil {
		return &tls.Config{ServerName: hostOnly(e.ep.HostName), MinVersion: tls.VersionTLS12}
	}
	c := e.ep.TLS.Clone()
	if c.ServerName == "" {
		c.ServerName = hostOnly(e.ep.HostName)
	}
	return c
}

func hostOnly(h string) string {
	if i := strings.LastIndexByte(h, ':'); i > 0 && !strings.Contains(h[i:], "]") {
		return h[:i]
	}
	return h
}

// dial sends p on a new raw connection and returns the CONNACK. The
// connection (nil if the hub closed without a CONNACK) is closed when the
// case ends. err reports a hub that sent no CONNACK.
func (e *env) dial(p mqttraw.ConnectPacket) (mqttraw.Connack, *mqttraw.Conn, error) {
	e.t.Helper()
	return e.dialCert(p, nil)
}

// dialCert is dial presenting cert (nil: none) as the TLS client certificate.
func (e *env) dialCert(p mqttraw.ConnectPacket, cert *tls.Certificate) (mqttraw.Connack, *mqttraw.Conn, error) {
	e.t.Helper()
	cfg := e.rawTLS()
	if cert != nil {
		cfg.Certificates = []tls.Certificate{*cert}
	}
	ctx, cancel := e.waitCtx(answerWithin)
	defer cancel()
	c, err := rawDialTLS(ctx, e.ep, cfg)
	if err != nil {
		return mqttraw.Connack{}, nil, err
	}
	e.onClose(func() { _ = c.Close() })
	ack, err := c.ConnectAndWait(ctx, p)
	if err != nil {
		return mqttraw.Connack{}, nil, err
	}
	return ack, c, nil
}

// rawDial opens a raw connection (TLS done, nothing sent) over the endpoint's transport.
func (e *env) rawDial(ctx context.Context) (*mqttraw.Conn, error) {
	return rawDialTLS(ctx, e.ep, e.rawTLS())
}

func rawDialTLS(ctx context.Context, ep Endpoint, cfg *tls.Config) (*mqttraw.Conn, error) {
	if ep.Transport == device.TransportWebSocket {
		nc, err := device.DialWebSocket(ctx, ep.Addr, cfg, nil)
		if err != nil {
			return nil, err
		}
		return mqttraw.NewConn(nc), nil
	}
	return mqttraw.Dial(ctx, ep.Addr, cfg)
}

// connect opens a raw connection for d with a valid token and fails the case
// unless the hub accepts it.
func (e *env) connect(d DeviceIdentity, clean bool) (*mqttraw.Conn, mqttraw.Connack) {
	e.t.Helper()
	p := e.connectPacket(d, e.token(d))
	p.CleanSession = clean
	ack, c, err := e.dial(p)
	if err != nil {
		e.Fatalf("CONNECT as %s: %v, want CONNACK 0", identityOf(d), err)
	}
	if ack.ReturnCode != 0 {
		e.Fatalf("CONNECT as %s: CONNACK = %d, want 0%s", identityOf(d), ack.ReturnCode, e.reasonSuffix(p.ClientID))
	}
	return c, ack
}

// reasonSuffix is " (hub's reason: ...)" when the target records refusals.
func (e *env) reasonSuffix(clientID string) string {
	rr, ok := e.target.(RejectionReader)
	if !ok {
		return ""
	}
	ctx, cancel := e.waitCtx(500 * time.Millisecond)
	defer cancel()
	r, err := rr.Rejection(ctx, clientID)
	if err != nil {
		return ""
	}
	return fmt.Sprintf(" (hub's reason: %s: %s)", r.Reason, r.Detail)
}

// expectRefused sends p and checks that the hub answers CONNACK want (any of
// them) and then closes the connection; with a RejectionReader it also checks
// that the recorded reason is one of reasons (none given: not checked).
func (e *env) expectRefused(p mqttraw.ConnectPacket, want []byte, reasons ...string) {
	e.t.Helper()
	e.expectRefusedWith(p, nil, want, reasons...)
}

// expectRefusedWith is expectRefused presenting cert (nil: none) in the TLS handshake.
func (e *env) expectRefusedWith(p mqttraw.ConnectPacket, cert *tls.Certificate, want []byte, reasons ...string) {
	e.t.Helper()
	ack, c, err := e.dialCert(p, cert)
	if err != nil {
		e.Errorf("CONNECT: %v, want CONNACK %s", err, codes(want))
		return
	}
	if !slices.Contains(want, ack.ReturnCode) {
		e.Errorf("CONNACK = %d, want %s", ack.ReturnCode, codes(want))
		return
	}
	if err := c.ExpectClosed(closeWithin); err != nil {
		e.Errorf("after CONNACK %d the connection stayed open, want it closed: %v", ack.ReturnCode, err)
	}
	if len(reasons) == 0 {
		return
	}
	rr, ok := e.target.(RejectionReader)
	if !ok {
		return
	}
	ctx, cancel := e.waitCtx(answerWithin)
	defer cancel()
	r, err := rr.Rejection(ctx, p.ClientID)
	if err != nil {
		e.Errorf("refusal of client ID %q: no reason recorded (%v), want %s", p.ClientID, err, strings.Join(reasons, " or "))
		return
	}
	if !slices.Contains(reasons, string(r.Reason)) {
		e.Errorf("refusal reason = %q (%s), want %s: CONNACK %d was sent for another cause", r.Reason, r.Detail, strings.Join(reasons, " or "), ack.ReturnCode)
	}
}

func codes(want []byte) string {
	s := make([]string, len(want))
	for i, w := range want {
		s[i] = fmt.Sprint(w)
	}
	return strings.Join(s, " or ")
}

// expectClosedSilently checks that the hub closes c (within closeWithin)
// without answering first: any packet but PINGRESP fails the check at once.
func (e *env) expectClosedSilently(c *mqttraw.Conn, what string) {
	e.t.Helper()
	deadline := time.Now().Add(closeWithin)
	for {
		p, err := c.ReadPacket(time.Until(deadline))
		switch {
		case err == nil && p.Type == mqttraw.TypePingresp:
			continue
		case err == nil:
			e.Errorf("after %s the hub answered %s, want the connection closed without an answer", what, p)
		case errors.Is(err, mqttraw.ErrTimeout):
			e.Errorf("after %s the connection is still open after %v, want it closed", what, closeWithin)
		}
		// Otherwise closed (or broken: also a close as far as a device can tell).
		return
	}
}

// readPacket waits for the next packet of type want (skipping PINGRESP) and
// fails the case otherwise.
func (e *env) readPacket(c *mqttraw.Conn, want mqttraw.PacketType, what string) mqttraw.Packet {
	e.t.Helper()
	deadline := time.Now().Add(answerWithin)
	for {
		p, err := c.ReadPacket(time.Until(deadline))
		if err != nil {
			e.Fatalf("%s: waiting for %v: %v", what, want, err)
		}
		if p.Type == mqttraw.TypePingresp && want != mqttraw.TypePingresp {
			continue
		}
		if p.Type != want {
			e.Fatalf("%s: got %s, want %v", what, p, want)
		}
		return p
	}
}

// publish1 publishes at QoS 1 and waits for the PUBACK.
func (e *env) publish1(c *mqttraw.Conn, topic string, payload []byte, id uint16) {
	e.t.Helper()
	if err := c.Publish(mqttraw.PublishPacket{Topic: topic, Payload: payload, QoS: 1, PacketID: id}); err != nil {
		e.Fatalf("PUBLISH %q: %v", topic, err)
	}
	p := e.readPacket(c, mqttraw.TypePuback, fmt.Sprintf("PUBLISH %q at QoS 1", topic))
	if p.Puback.PacketID != id {
		e.Errorf("PUBACK packet ID = %d, want %d", p.Puback.PacketID, id)
	}
}

// subscribe subscribes and checks the granted QoS.
func (e *env) subscribe(c *mqttraw.Conn, filter string, qos, wantGranted byte) {
	e.t.Helper()
	if err := c.Subscribe(7, mqttraw.Subscription{Filter: filter, QoS: qos}); err != nil {
		e.Fatalf("SUBSCRIBE %q: %v", filter, err)
	}
	p := e.readPacket(c, mqttraw.TypeSuback, fmt.Sprintf("SUBSCRIBE %q QoS %d", filter, qos))
	if len(p.Suback.Codes) != 1 || p.Suback.Codes[0] != wantGranted {
		e.Fatalf("SUBACK for %q QoS %d = %v, want [%d]", filter, qos, p.Suback.Codes, wantGranted)
	}
}

// expectQuiet checks that no PUBLISH arrives on c for quietFor.
func (e *env) expectQuiet(c *mqttraw.Conn, what string) {
	e.t.Helper()
	deadline := time.Now().Add(quietFor)
	for {
		p, err := c.ReadPacket(time.Until(deadline))
		if errors.Is(err, mqttraw.ErrTimeout) {
			return
		}
		if err != nil {
			e.Errorf("%s: connection failed while waiting: %v", what, err)
			return
		}
		if p.Type == mqttraw.TypePublish {
			e.Errorf("%s: got %s, want nothing", what, p)
			return
		}
	}
}

// newClient returns a reference client (pkg/device) for d, not connected,
// closed when the case ends.
func (e *env) newClient(d DeviceIdentity, adjust func(*device.Config)) *device.Client {
	e.t.Helper()
	return e.newClientAt(e.ep, d, adjust)
}

// newClientAt is newClient for another endpoint of the target (a TLS drill's).
func (e *env) newClientAt(ep Endpoint, d DeviceIdentity, adjust func(*device.Config)) *device.Client {
	e.t.Helper()
	cfg := device.Config{
		HostName:             ep.HostName,
		Endpoint:             ep.Addr,
		DeviceID:             d.DeviceID,
		ModuleID:             d.ModuleID,
		SharedAccessKey:      d.PrimaryKey,
		ConnectTimeout:       answerWithin,
		MaxReconnectInterval: time.Second,
		RenewAfter:           -1,
		Now:                  e.now,
		Transport:            ep.Transport,
	}
	if ep.TLS != nil {
		cfg.RootCAs = ep.TLS.RootCAs
	}
	if adjust != nil {
		adjust(&cfg)
	}
	cl, err := device.New(cfg)
	if err != nil {
		e.Fatalf("device.New: %v", err)
	}
	e.onClose(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = cl.Close(ctx)
	})
	return cl
}

// connectClient connects cl and fails the case if the hub refuses.
func (e *env) connectClient(cl *device.Client, what string) {
	e.t.Helper()
	if err := cl.Connect(e.ctx); err != nil {
		var ce *device.ConnectError
		if errors.As(err, &ce) {
			e.Fatalf("%s: CONNACK = %d, want 0%s", what, ce.Code, e.reasonSuffix(cl.Identity().ClientID()))
		}
		e.Fatalf("%s: Connect: %v, want CONNACK 0", what, err)
	}
}

// randomKey is a fresh base64 key nobody registered.
func randomKey() string {
	b := make([]byte, 32)
	_, _ = rand.Read(b)
	return base64.StdEncoding.EncodeToString(b)
}

// randomID is a fresh ID with prefix, for identities and message IDs.
func randomID(prefix string) string {
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	return prefix + hex.EncodeToString(b)
}
