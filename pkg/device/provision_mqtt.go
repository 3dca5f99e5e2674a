package device

import (
	"context"
	"fmt"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"

	"github.com/hubkit/hubkit/pkg/iothub"
)

// mqttProvisioning registers over MQTT (docs/iothub-behavior.md §7.2, §7.5): client ID =
// registration ID, user name {idScope}/registrations/{id}/api-version=...&ClientVersion=...,
// a clean session, one subscription to $dps/registrations/res/#, and answers matched to
// requests by $rid.
type mqttProvisioning struct {
	s   *provisionSettings
	pc  paho.Client
	rid atomic.Uint64

	mu      sync.Mutex
	pending map[string]chan mqttAnswer
}

type mqttAnswer struct {
	status, retryAfter int
	body               []byte
}

func (m *mqttProvisioning) connect(ctx context.Context) error {
	if m.pc != nil {
		return nil
	}
	s := m.s
	m.pending = map[string]chan mqttAnswer{}
	user := iothub.DPSUserName{IDScope: s.IDScope, RegistrationID: s.RegistrationID, APIVersion: s.APIVersion, ClientVersion: s.ClientVersion}.String()
	o := paho.NewClientOptions().
		AddBroker("tls://" + s.dialAddr).
		SetClientID(s.RegistrationID).
		SetProtocolVersion(4).
		SetTLSConfig(s.tlsConfig()).
		SetUsername(user).
		SetCredentialsProvider(func() (string, string) { return user, m.s.password() }).
		SetCleanSession(true). // DPS keeps no session
		SetKeepAlive(DefaultKeepAlive).
		SetConnectTimeout(s.ConnectTimeout).
		SetAutoReconnect(false).
		SetConnectRetry(false).
		SetOrderMatters(false).
		SetDefaultPublishHandler(m.onMessage)
	pc := paho.NewClient(o)
	tok := pc.Connect()
	select {
	case <-tok.Done():
	case <-ctx.Done():
		tok.WaitTimeout(s.ConnectTimeout + time.Second)
		pc.Disconnect(0)
		return fmt.Errorf("device: connecting to DPS at %s: %w", s.dialAddr, ctx.Err())
	}
	if err := tok.Error(); err != nil {
		if ct, ok := tok.(*paho.ConnectToken); ok {
			if rc := ct.ReturnCode(); rc >= 1 && rc <= 5 {
				return &ConnectError{Addr: s.dialAddr, Code: rc}
			}
		}
		return fmt.Errorf("device: connecting to DPS at %s: %w", s.dialAddr, networkCause(err))
	}
	sub := pc.Subscribe(iothub.DPSResponseFilter, 1, nil)
	if err := waitToken(ctx, sub); err != nil {
		pc.Disconnect(0)
		return fmt.Errorf("device: subscribing to %s: %w", iothub.DPSResponseFilter, err)
	}
	m.pc = pc
	return nil
}

func (m *mqttProvisioning) onMessage(_ paho.Client, msg paho.Message) {
	status, rid, retry, err := iothub.ParseDPSResponseTopic(msg.Topic())
	if err != nil {
		m.s.Logger.Warn("unexpected DPS message", "topic", msg.Topic(), "err", err)
		return
	}
	m.mu.Lock()
	ch := m.pending[rid]
	delete(m.pending, rid)
	m.mu.Unlock()
	if ch == nil {
		m.s.Logger.Debug("DPS answer for no pending request", "topic", msg.Topic())
		return
	}
	ch <- mqttAnswer{status: status, retryAfter: retry, body: append([]byte(nil), msg.Payload()...)}
}

// request publishes to topic(rid) and waits for the answer with that $rid.
func (m *mqttProvisioning) request(ctx context.Context, topic func(rid string) string, body []byte, operationID string) (provisionAnswer, error) {
	if err := m.connect(ctx); err != nil {
		return provisionAnswer{}, err
	}
	rid := strconv.FormatUint(m.rid.Add(1), 10)
	ch := make(chan mqttAnswer, 1)
	m.mu.Lock()
	m.pending[rid] = ch
	m.mu.Unlock()
	defer func() {
		m.mu.Lock()
		delete(m.pending, rid)
		m.mu.Unlock()
	}()
	t := topic(rid)
	m.s.Logger.Debug("DPS request", "topic", t)
	if err := waitToken(ctx, m.pc.Publish(t, 1, false, body)); err != nil {
		return provisionAnswer{}, fmt.Errorf("device: publishing %s: %w", t, err)
	}
	select {
	case a := <-ch:
		ans, err := decodeAnswer(a.status, a.body, time.Duration(a.retryAfter)*time.Second)
		ans.operationID = operationID
		return ans, err
	case <-ctx.Done():
		return provisionAnswer{}, fmt.Errorf("device: waiting for DPS's answer on %s: %w", t, ctx.Err())
	}
}

func (m *mqttProvisioning) register(ctx context.Context) (provisionAnswer, error) {
	return m.request(ctx, iothub.DPSRegisterTopic, m.s.request(), "")
}

func (m *mqttProvisioning) poll(ctx context.Context, operationID string) (provisionAnswer, error) {
	return m.request(ctx, func(rid string) string { return iothub.DPSPollTopic(rid, operationID) }, nil, operationID)
}

func (m *mqttProvisioning) close() {
	if m.pc != nil {
		m.pc.Disconnect(quiesce)
	}
}

func waitToken(ctx context.Context, t paho.Token) error {
	select {
	case <-t.Done():
		return t.Error()
	case <-ctx.Done():
		return ctx.Err()
	}
}
