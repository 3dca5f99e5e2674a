package device

import (
	"crypto/x509"
	"log/slog"
	"net"
	"strconv"
	"strings"
	"time"

	"github.com/hubkit/hubkit/pkg/iothub"
	"github.com/hubkit/hubkit/pkg/sas"
)

// Version is the hubkit version this package reports in the user name's DeviceClientType
// ("hubkit/<Version>").
const Version = "0.1.0"

// Defaults, chosen like the Azure SDKs (docs/iothub-behavior.md §1.18, §2.5).
const (
	DefaultTokenTTL             = time.Hour        // .NET, Java, C and Node mint 1 h tokens
	DefaultRenewFraction        = 0.85             // renew (reconnect) at 85 % of the TTL, like .NET and Java
	DefaultKeepAlive            = 60 * time.Second // the Python SDK's value; the hub allows up to 1177 s
	DefaultConnectTimeout       = 30 * time.Second
	DefaultMaxReconnectInterval = 30 * time.Second // paho's default is 10 min
	DefaultUnknownMethodStatus  = 404              // the C and Python samples' answer; .NET answers 501
)

// Config describes one device or module identity and how to reach its hub. Fields mirror
// connection-string keys where they exist. Zero values mean the documented defaults.
type Config struct {
	HostName        string // the hub host name, e.g. "myhub.azure-devices.net"; used in the user name and the token's sr
	GatewayHostName string // dial this host (IoT Edge gateway) instead of HostName; user name and sr keep HostName
	DeviceID        string
	ModuleID        string // empty for a device identity

	// Exactly one credential: a device or module key (base64, as in connection strings), a
	// policy key with SharedAccessKeyName (a device-scoped policy token, skn=<name>), or a
	// static SharedAccessSignature, which is presented as is and never renewed.
	SharedAccessKey       string
	SharedAccessKeyName   string
	SharedAccessSignature string

	// Endpoint is the address to dial, host:port, when it differs from the host name
	// (e.g. "127.0.0.1:8883" for a local fake hub). The TLS server name stays the host name.
	// Without a port, 8883 is used.
	Endpoint string
	RootCAs  *x509.CertPool // trusted roots; nil means the system roots

	TokenTTL   time.Duration // lifetime of each minted token; default 1 h
	RenewAfter time.Duration // reconnect with a fresh token this long after connecting; default 85 % of TokenTTL; negative: never

	CleanSession         bool          // default false: a persistent session, like the SDKs (C2D queued while offline)
	KeepAlive            time.Duration // default 60 s
	ConnectTimeout       time.Duration // per connection attempt; default 30 s
	MaxReconnectInterval time.Duration // cap of the reconnect back-off; default 30 s

	APIVersion string // default iothub.DefaultAPIVersion (2021-04-12)
	ClientType string // DeviceClientType in the user name; default "hubkit/<Version>"
	ModelID    string // IoT Plug and Play model ID (model-id in the user name), optional

	// Will, if set, is published by the hub as telemetry (stamped iothub-MessageType=Will) when
	// the connection ends without a DISCONNECT.
	Will *Event

	// UnknownMethodStatus is the status answered to a direct method with no handler;
	// default 404 (set 501 to answer like the .NET SDK).
	UnknownMethodStatus int

	// OnConnectionChange is called (from one goroutine, in order) on every connect (true, nil),
	// every loss (false, cause; ErrTokenRenewal for a planned renewal) and on Close (false, nil).
	OnConnectionChange func(connected bool, err error)

	// OnToken, if set, is called with each SAS token the client presents, before the CONNECT
	// goes out. The token is a secret (it lets anyone connect as the device until it
	// expires): this is for debugging tools that write it where the user asked, e.g.
	// devicesim --token-file, so that sastool verify can explain a refusal.
	OnToken func(token string)

	Now    func() time.Time // clock for token expiry and renewal (RenewAfter runs on it); default time.Now
	Logger *slog.Logger     // nil discards
}

// Option adjusts a Config built by FromConnectionString.
type Option func(*Config)

// WithRootCAs trusts pool instead of the system roots.
func WithRootCAs(pool *x509.CertPool) Option { return func(c *Config) { c.RootCAs = pool } }

// WithEndpoint dials addr (host:port) instead of the host name.
func WithEndpoint(addr string) Option { return func(c *Config) { c.Endpoint = addr } }

// WithTokenTTL sets the lifetime of each minted SAS token.
func WithTokenTTL(d time.Duration) Option { return func(c *Config) { c.TokenTTL = d } }

// WithCleanSession sets the CONNECT clean-session flag (default false).
func WithCleanSession(clean bool) Option { return func(c *Config) { c.CleanSession = clean } }

// WithKeepAlive sets the MQTT keep-alive.
func WithKeepAlive(d time.Duration) Option { return func(c *Config) { c.KeepAlive = d } }

// WithModelID announces an IoT Plug and Play model ID in the user name.
func WithModelID(id string) Option { return func(c *Config) { c.ModelID = id } }

// WithWill sets the will message (published as telemetry if the connection drops).
func WithWill(e Event) Option { return func(c *Config) { c.Will = &e } }

// WithLogger sets the logger.
func WithLogger(l *slog.Logger) Option { return func(c *Config) { c.Logger = l } }

// WithNow sets the clock used for token expiry.
func WithNow(now func() time.Time) Option { return func(c *Config) { c.Now = now } }

// WithOnConnectionChange sets Config.OnConnectionChange.
func WithOnConnectionChange(f func(connected bool, err error)) Option {
	return func(c *Config) { c.OnConnectionChange = f }
}

// WithMaxReconnectInterval caps the reconnect back-off.
func WithMaxReconnectInterval(d time.Duration) Option {
	return func(c *Config) { c.MaxReconnectInterval = d }
}

// WithConfig applies f to the Config, for settings without a dedicated option.
func WithConfig(f func(*Config)) Option { return f }

// FromConnectionString returns a client for a device or module connection string
// ("HostName=...;DeviceId=...;SharedAccessKey=..." or with ModuleId, SharedAccessKeyName,
// SharedAccessSignature, GatewayHostName). The client is not connected yet.
func FromConnectionString(cs string, opts ...Option) (*Client, error) {
	cfg, err := ConfigFromConnectionString(cs)
	if err != nil {
		return nil, err
	}
	for _, o := range opts {
		o(&cfg)
	}
	return New(cfg)
}

// ConfigFromConnectionString parses a device or module connection string into a Config.
// Hub-level (policy without DeviceId) and Event Hubs connection strings are refused.
func ConfigFromConnectionString(cs string) (Config, error) {
	c, err := sas.ParseConnectionString(cs)
	if err != nil {
		return Config{}, err
	}
	switch c.Kind() {
	case sas.KindDevice, sas.KindModule:
	default:
		return Config{}, configError("a %s connection string has no DeviceId: a device or module connection string is needed", c.Kind())
	}
	return Config{
		HostName:              c.HostName,
		GatewayHostName:       c.GatewayHostName,
		DeviceID:              c.DeviceID,
		ModuleID:              c.ModuleID,
		SharedAccessKey:       c.SharedAccessKey,
		SharedAccessKeyName:   c.SharedAccessKeyName,
		SharedAccessSignature: c.SharedAccessSignature,
	}, nil
}

// settings is a validated Config with defaults applied and derived values.
type settings struct {
	Config
	id       iothub.Identity
	key      []byte     // decoded signing key; nil with a static token
	static   *sas.Token // static token, if any
	resource string     // plain resource the tokens are signed over
	userName string
	dialAddr string // host:port dialled
	tlsName  string // TLS server name
}

func (cfg Config) settings() (*settings, error) {
	s := &settings{Config: cfg}
	if s.HostName == "" {
		return nil, configError("HostName is empty")
	}
	s.id = iothub.Identity{DeviceID: s.DeviceID, ModuleID: s.ModuleID}
	if err := s.id.Validate(); err != nil {
		return nil, configError("%v", err)
	}
	if s.ModuleID != "" {
		s.resource = sas.ModuleResource(s.HostName, s.DeviceID, s.ModuleID)
	} else {
		s.resource = sas.DeviceResource(s.HostName, s.DeviceID)
	}
	switch {
	case s.SharedAccessSignature != "" && s.SharedAccessKey != "":
		return nil, configError("both SharedAccessKey and SharedAccessSignature are set; give one")
	case s.SharedAccessSignature != "":
		tok, err := sas.Parse(s.SharedAccessSignature)
		if err != nil {
			return nil, configError("SharedAccessSignature: %v", err)
		}
		s.static = &tok
	case s.SharedAccessKey != "":
		key, err := sas.DecodeKey(s.SharedAccessKey)
		if err != nil {
			return nil, configError("SharedAccessKey: %v", err)
		}
		s.key = key
	default:
		return nil, configError("no credential: set SharedAccessKey or SharedAccessSignature")
	}
	if s.TokenTTL <= 0 {
		s.TokenTTL = DefaultTokenTTL
	}
	if s.RenewAfter == 0 {
		s.RenewAfter = time.Duration(float64(s.TokenTTL) * DefaultRenewFraction)
	}
	if s.static != nil {
		s.RenewAfter = -1 // a static token cannot be renewed
	}
	if s.KeepAlive <= 0 {
		s.KeepAlive = DefaultKeepAlive
	}
	if s.ConnectTimeout <= 0 {
		s.ConnectTimeout = DefaultConnectTimeout
	}
	if s.MaxReconnectInterval <= 0 {
		s.MaxReconnectInterval = DefaultMaxReconnectInterval
	}
	if s.APIVersion == "" {
		s.APIVersion = iothub.DefaultAPIVersion
	}
	if s.ClientType == "" {
		s.ClientType = "hubkit/" + Version
	}
	if s.UnknownMethodStatus == 0 {
		s.UnknownMethodStatus = DefaultUnknownMethodStatus
	}
	if s.Now == nil {
		s.Now = time.Now
	}
	if s.Logger == nil {
		s.Logger = slog.New(slog.DiscardHandler)
	}
	s.userName = iothub.UserName{
		Host:             s.HostName,
		Identity:         s.id,
		APIVersion:       s.APIVersion,
		DeviceClientType: s.ClientType,
		ModelID:          s.ModelID,
		Form:             iothub.FormQuery,
	}.String()

	host := s.HostName
	if s.GatewayHostName != "" {
		host = s.GatewayHostName
	}
	s.tlsName = host
	if h, _, err := net.SplitHostPort(host); err == nil {
		s.tlsName = h // a host name written with a port: the port is for dialling only
	}
	s.dialAddr = s.Endpoint
	if s.dialAddr == "" {
		s.dialAddr = host
	}
	if _, _, err := net.SplitHostPort(s.dialAddr); err != nil {
		s.dialAddr = net.JoinHostPort(strings.Trim(s.dialAddr, "[]"), strconv.Itoa(iothub.DefaultPort))
	}
	if s.Will != nil {
		if _, err := s.Will.topic(s.id); err != nil {
			return nil, configError("Will: %v", err)
		}
	}
	return s, nil
}

// password mints the password for one connection attempt: a fresh token signed now, or the
// static token.
func (s *settings) password() (string, time.Time) {
	if s.static != nil {
		return s.static.String(), s.static.ExpiresAt()
	}
	tok := sas.Sign(sas.EncodeResource(s.resource), s.SharedAccessKeyName, s.key, s.Now().Add(s.TokenTTL))
	return tok.String(), tok.ExpiresAt()
}
