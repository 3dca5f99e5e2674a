package device

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/url"
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
	// policy key with SharedAccessKeyName (a device-scoped policy token, skn=<name>), a
	// static SharedAccessSignature, which is presented as is and never renewed, or an X.509
	// Certificate.
	SharedAccessKey       string
	SharedAccessKeyName   string
	SharedAccessSignature string
	// Certificate is the client certificate (with its chain, leaf first) and private key of
	// an X.509 identity (selfSigned or certificateAuthority): presented in the TLS
	// handshake, with an empty MQTT password and nothing to renew. LoadCertificate reads one
	// from PEM files.
	Certificate *tls.Certificate
	// X509 is set by a connection string with x509=true: Certificate is then required.
	X509 bool

	// Endpoint is the address to dial, host:port, when it differs from the host name
	// (e.g. "127.0.0.1:8883" for a local fake hub). The TLS server name stays the host name.
	// Without a port, 8883 is used (443 for TransportWebSocket).
	Endpoint string
	RootCAs  *x509.CertPool // trusted roots; nil means the system roots

	// Transport is how the client reaches the hub: TransportMQTT (the default, MQTT over
	// TLS) or TransportWebSocket (MQTT over WebSockets: wss://{host}:443/$iothub/websocket,
	// for networks that only let HTTPS out).
	Transport Transport
	// Proxy, for TransportWebSocket, returns the HTTP proxy to tunnel through (HTTP
	// CONNECT), as http.Transport.Proxy does; nil means no proxy. Pass
	// http.ProxyFromEnvironment to honour HTTPS_PROXY and NO_PROXY.
	Proxy func(*http.Request) (*url.URL, error)

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

// Transport is how the client reaches the hub.
type Transport string

// Transports.
const (
	TransportMQTT      Transport = "mqtt"    // MQTT 3.1.1 over TLS, port 8883
	TransportWebSocket Transport = "mqtt-ws" // MQTT 3.1.1 over WebSockets over TLS, port 443
)

// ParseTransport reads "mqtt" or "mqtt-ws" (also "ws", "websocket", "websockets"), in any
// case; "" is TransportMQTT.
func ParseTransport(s string) (Transport, error) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "", "mqtt", "tcp", "tls":
		return TransportMQTT, nil
	case "mqtt-ws", "ws", "wss", "websocket", "websockets", "mqttws":
		return TransportWebSocket, nil
	}
	return "", fmt.Errorf("transport %q: want mqtt (MQTT over TLS, 8883) or mqtt-ws (MQTT over WebSockets, 443)", s)
}

// LoadCertificate reads an X.509 device certificate (PEM, leaf first, then any
// intermediates) and its private key (PEM: PKCS #8, SEC 1 or PKCS #1) for
// Config.Certificate. Errors name the files.
func LoadCertificate(certFile, keyFile string) (tls.Certificate, error) {
	c, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		return tls.Certificate{}, configError("reading the device certificate %s and key %s: %v", certFile, keyFile, err)
	}
	return c, nil
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

// WithTransport selects MQTT over TLS or over WebSockets.
func WithTransport(t Transport) Option { return func(c *Config) { c.Transport = t } }

// WithX509 authenticates with a client certificate (see Config.Certificate).
func WithX509(cert tls.Certificate) Option { return func(c *Config) { c.Certificate = &cert } }

// WithProxy tunnels MQTT over WebSockets through an HTTP proxy (see Config.Proxy).
func WithProxy(proxy func(*http.Request) (*url.URL, error)) Option {
	return func(c *Config) { c.Proxy = proxy }
}

// WithConfig applies f to the Config, for settings without a dedicated option.
func WithConfig(f func(*Config)) Option { return f }

// FromConnectionString returns a client for a device or module connection string
// ("HostName=...;DeviceId=...;SharedAccessKey=..." or with ModuleId, SharedAccessKeyName,
// SharedAccessSignature, GatewayHostName; "...;x509=true" with WithX509). The client is not
// connected yet.
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
		X509:                  c.X509,
	}, nil
}

// settings is a validated Config with defaults applied and derived values.
type settings struct {
	Config
	id          iothub.Identity
	key         []byte     // decoded signing key; nil with a static token
	static      *sas.Token // static token, if any
	x509        bool       // authenticates with Certificate: no password
	certSubject string     // its common name, for logs
	resource    string     // plain resource the tokens are signed over
	broker      string     // paho broker URL
	userName    string
	dialAddr    string // host:port dialled
	tlsName     string // TLS server name
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
	case s.Certificate != nil && (s.SharedAccessKey != "" || s.SharedAccessSignature != ""):
		return nil, configError("both a certificate and a SAS credential (SharedAccessKey or SharedAccessSignature) are set; an X.509 identity sends no token")
	case s.Certificate != nil:
		leaf, err := certificateLeaf(s.Certificate)
		if err != nil {
			return nil, err
		}
		s.x509, s.certSubject = true, leaf.Subject.CommonName
	case s.X509:
		return nil, configError("the connection string says x509=true but no certificate is set (Config.Certificate, device.WithX509)")
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
		return nil, configError("no credential: set SharedAccessKey, SharedAccessSignature or Certificate (X.509)")
	}
	if s.TokenTTL <= 0 {
		s.TokenTTL = DefaultTokenTTL
	}
	if s.RenewAfter == 0 {
		s.RenewAfter = time.Duration(float64(s.TokenTTL) * DefaultRenewFraction)
	}
	if s.static != nil || s.x509 {
		s.RenewAfter = -1 // a static token cannot be renewed; a certificate needs no renewal
	}
	t, err := ParseTransport(string(s.Transport))
	if err != nil {
		return nil, configError("%v", err)
	}
	s.Transport = t
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
	port := iothub.DefaultPort
	if s.Transport == TransportWebSocket {
		port = iothub.WebSocketPort
	}
	if _, _, err := net.SplitHostPort(s.dialAddr); err != nil {
		s.dialAddr = net.JoinHostPort(strings.Trim(s.dialAddr, "[]"), strconv.Itoa(port))
	}
	s.broker = "tls://" + s.dialAddr
	if s.Transport == TransportWebSocket {
		s.broker = "wss://" + s.dialAddr + iothub.WebSocketPath
	}
	if s.Will != nil {
		if _, err := s.Will.topic(s.id); err != nil {
			return nil, configError("Will: %v", err)
		}
	}
	return s, nil
}

// proxy is the WebSocket dialer's proxy: Config.Proxy, or none (paho's default would read
// the environment; a library does not).
func (s *settings) proxy() func(*http.Request) (*url.URL, error) {
	if s.Proxy != nil {
		return s.Proxy
	}
	return func(*http.Request) (*url.URL, error) { return nil, nil }
}

// password mints the password for one connection attempt: a fresh token signed now, or the
// static token.
func (s *settings) password() (string, time.Time) {
	if s.x509 {
		return "", time.Time{}
	}
	if s.static != nil {
		return s.static.String(), s.static.ExpiresAt()
	}
	tok := sas.Sign(sas.EncodeResource(s.resource), s.SharedAccessKeyName, s.key, s.Now().Add(s.TokenTTL))
	return tok.String(), tok.ExpiresAt()
}

// certificateLeaf checks that c holds a certificate and its private key and parses the
// leaf (Config.Certificate, ProvisionConfig.Certificate).
func certificateLeaf(c *tls.Certificate) (*x509.Certificate, error) {
	if len(c.Certificate) == 0 || c.PrivateKey == nil {
		return nil, configError("Certificate has no certificate or no private key")
	}
	leaf, err := x509.ParseCertificate(c.Certificate[0])
	if err != nil {
		return nil, configError("Certificate: %v", err)
	}
	return leaf, nil
}
