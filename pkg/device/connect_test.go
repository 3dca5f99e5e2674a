package device

import (
	"context"
	"errors"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/mochi-mqtt/server/v2/packets"

	"github.com/hubkit/hubkit/internal/testutil"
	"github.com/hubkit/hubkit/pkg/sas"
)

func connect(t *testing.T, cfg Config, setup ...func(*Client)) *Client {
	t.Helper()
	c, err := New(cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(func() { _ = c.Close(context.Background()) })
	for _, f := range setup {
		f(c)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := c.Connect(ctx); err != nil {
		t.Fatalf("Connect: %v", err)
	}
	return c
}

func TestConnectParameters(t *testing.T) {
	fixed := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	tests := []struct {
		name         string
		edit         func(*Config)
		wantClientID string
		wantUser     string
		wantResource string
	}{
		{
			name:         "device",
			wantClientID: "dev1",
			wantUser:     "hub.example.test/dev1/?api-version=2021-04-12&DeviceClientType=hubkit%2F" + Version,
			wantResource: "hub.example.test/devices/dev1",
		},
		{
			name:         "module",
			edit:         func(c *Config) { c.ModuleID = "mod1" },
			wantClientID: "dev1/mod1",
			wantUser:     "hub.example.test/dev1/mod1/?api-version=2021-04-12&DeviceClientType=hubkit%2F" + Version,
			wantResource: "hub.example.test/devices/dev1/modules/mod1",
		},
		{
			name:         "model-id",
			edit:         func(c *Config) { c.ModelID = "dtmi:com:example:Thermostat;1" },
			wantClientID: "dev1",
			wantUser: "hub.example.test/dev1/?api-version=2021-04-12&DeviceClientType=hubkit%2F" + Version +
				"&model-id=dtmi%3Acom%3Aexample%3AThermostat%3B1",
			wantResource: "hub.example.test/devices/dev1",
		},
		{
			name:         "gateway-keeps-host-name",
			edit:         func(c *Config) { c.GatewayHostName = "gateway.example.test" },
			wantClientID: "dev1",
			wantUser:     "hub.example.test/dev1/?api-version=2021-04-12&DeviceClientType=hubkit%2F" + Version,
			wantResource: "hub.example.test/devices/dev1",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := newPeer(t)
			p.resource = tt.wantResource
			p.now = func() time.Time { return fixed }
			cfg := p.config()
			cfg.Now = func() time.Time { return fixed }
			var presented []string
			cfg.OnToken = func(tok string) { presented = append(presented, tok) }
			if tt.edit != nil {
				tt.edit(&cfg)
			}
			connect(t, cfg)
			recs := p.connectRecords()
			if len(recs) != 1 {
				t.Fatalf("got %d CONNECTs, want 1", len(recs))
			}
			r := recs[0]
			if r.ClientID != tt.wantClientID {
				t.Errorf("client ID = %q, want %q", r.ClientID, tt.wantClientID)
			}
			if r.UserName != tt.wantUser {
				t.Errorf("user name = %q, want %q", r.UserName, tt.wantUser)
			}
			if r.VerifyErr != nil {
				t.Errorf("token does not verify for %s: %v", tt.wantResource, r.VerifyErr)
			}
			if len(presented) != 1 || presented[0] != r.Password {
				t.Errorf("OnToken saw %d tokens, want the one password the hub read", len(presented))
			}
			tok, err := sas.Parse(r.Password)
			if err != nil {
				t.Fatalf("password is not a SAS token: %v", err)
			}
			if want := fixed.Add(DefaultTokenTTL).Unix(); tok.Expiry != want {
				t.Errorf("se = %d, want now+1h = %d", tok.Expiry, want)
			}
			if r.Clean || r.Keepalive != 60 || r.Level != 4 {
				t.Errorf("clean=%v keepalive=%d level=%d, want false 60 4", r.Clean, r.Keepalive, r.Level)
			}
		})
	}
}

func TestConnectRefused(t *testing.T) {
	p := newPeer(t)
	p.refuse = packets.ErrBadUsernameOrPassword // a 3.1.1 client receives 5
	c, err := New(p.config())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close(context.Background())
	err = c.Connect(context.Background())
	if !errors.Is(err, ErrNotAuthorized) {
		t.Fatalf("Connect = %v, want ErrNotAuthorized", err)
	}
	var ce *ConnectError
	if !errors.As(err, &ce) || ce.Code != 5 {
		t.Fatalf("Connect = %#v, want *ConnectError{Code: 5}", err)
	}
	if err := c.SendEvent(context.Background(), Event{Payload: []byte("x")}); !errors.Is(err, ErrNotConnected) {
		t.Errorf("SendEvent after a refused Connect = %v, want ErrNotConnected", err)
	}
	if n := len(p.connectRecords()); n != 1 {
		t.Errorf("got %d CONNECTs, want 1 (no MQTT 3.1 fallback, no retry)", n)
	}
}

func TestFreshTokenOnReconnect(t *testing.T) {
	p := newPeer(t)
	p.now = func() time.Time { return time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC) }
	cfg := p.config()
	clock := testutil.NewClock(time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC))
	clock.SetStep(10 * time.Minute) // every token is minted 10 minutes after the last
	cfg.Now = clock.Now
	var mu sync.Mutex
	var changes []string
	cfg.OnConnectionChange = func(up bool, err error) {
		mu.Lock()
		defer mu.Unlock()
		changes = append(changes, strconv.FormatBool(up))
	}
	connect(t, cfg)
	p.kick()
	testutil.Eventually(t, "a second CONNECT", func() bool { return len(p.connectRecords()) >= 2 })
	recs := p.connectRecords()
	first, _ := sas.Parse(recs[0].Password)
	second, _ := sas.Parse(recs[1].Password)
	if second.Expiry <= first.Expiry || second.Signature == first.Signature {
		t.Errorf("reconnect presented se=%d sig=%s, first was se=%d: want a fresh token", second.Expiry, second.Signature, first.Expiry)
	}
	if recs[1].VerifyErr != nil {
		t.Errorf("second token does not verify: %v", recs[1].VerifyErr)
	}
	testutil.Eventually(t, "connected, lost, connected", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(changes) >= 3
	})
	mu.Lock()
	got := changes[:3]
	mu.Unlock()
	if want := []string{"true", "false", "true"}; !slices.Equal(got, want) {
		t.Errorf("OnConnectionChange = %v, want %v", got, want)
	}
}

func TestRenewalReconnectsGracefully(t *testing.T) {
	p := newPeer(t)
	cfg := p.config()
	cfg.RenewAfter = 150 * time.Millisecond
	clock := testutil.NewClock(time.Now())
	clock.SetStep(time.Minute)
	cfg.Now = clock.Now
	cfg.Will = &Event{Payload: []byte("gone"), Properties: nil}
	c := connect(t, cfg)
	testutil.Eventually(t, "a renewal CONNECT", func() bool { return len(p.connectRecords()) >= 2 })
	testutil.Eventually(t, "connected again", c.IsConnected)
	recs := p.connectRecords()
	if recs[0].Password == recs[1].Password {
		t.Error("renewal presented the same token")
	}
	if recs[1].WillTopic != "devices/dev1/messages/events/" {
		t.Errorf("will topic = %q, want the telemetry topic", recs[1].WillTopic)
	}
	if err := c.SendEvent(context.Background(), Event{Payload: []byte("after renewal")}); err != nil {
		t.Fatalf("SendEvent after renewal: %v", err)
	}
	p.mu.Lock()
	wills := len(p.wills)
	p.mu.Unlock()
	if wills != 0 {
		t.Errorf("the broker published %d wills: the renewal did not DISCONNECT gracefully", wills)
	}
}

func TestConfigErrors(t *testing.T) {
	tests := []struct {
		name string
		cfg  Config
	}{
		{"no-host", Config{DeviceID: "d", SharedAccessKey: testKey}},
		{"no-device", Config{HostName: "h", SharedAccessKey: testKey}},
		{"bad-device-id", Config{HostName: "h", DeviceID: "a#b", SharedAccessKey: testKey}},
		{"no-credential", Config{HostName: "h", DeviceID: "d"}},
		{"two-credentials", Config{HostName: "h", DeviceID: "d", SharedAccessKey: testKey, SharedAccessSignature: "SharedAccessSignature sr=h&sig=x&se=1"}},
		{"bad-key", Config{HostName: "h", DeviceID: "d", SharedAccessKey: "not base64!"}},
		{"bad-token", Config{HostName: "h", DeviceID: "d", SharedAccessSignature: "Bearer x"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := New(tt.cfg); !errors.Is(err, ErrInvalidConfig) {
				t.Errorf("New(%+v) = %v, want ErrInvalidConfig", tt.cfg, err)
			}
		})
	}
}

func TestConfigFromConnectionString(t *testing.T) {
	tests := []struct {
		name, cs         string
		wantDial, wantSN string
		wantErr          bool
	}{
		{name: "device", cs: "HostName=h.example;DeviceId=d;SharedAccessKey=" + testKey, wantDial: "h.example:8883", wantSN: "h.example"},
		{name: "module", cs: "HostName=h.example;DeviceId=d;ModuleId=m;SharedAccessKey=" + testKey, wantDial: "h.example:8883", wantSN: "h.example"},
		{name: "gateway", cs: "HostName=h.example;DeviceId=d;SharedAccessKey=" + testKey + ";GatewayHostName=edge.local", wantDial: "edge.local:8883", wantSN: "edge.local"},
		{name: "host-with-port", cs: "HostName=localhost:8884;DeviceId=d;SharedAccessKey=" + testKey, wantDial: "localhost:8884", wantSN: "localhost"},
		{name: "policy-refused", cs: "HostName=h.example;SharedAccessKeyName=iothubowner;SharedAccessKey=" + testKey, wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg, err := ConfigFromConnectionString(tt.cs)
			if tt.wantErr {
				if err == nil {
					t.Fatalf("ConfigFromConnectionString(%q) = nil error, want one", tt.cs)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			s, err := cfg.settings()
			if err != nil {
				t.Fatal(err)
			}
			if s.dialAddr != tt.wantDial || s.tlsName != tt.wantSN {
				t.Errorf("dial %q server name %q, want %q %q", s.dialAddr, s.tlsName, tt.wantDial, tt.wantSN)
			}
		})
	}
}
