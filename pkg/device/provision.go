package device

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strconv"
	"strings"
	"time"

	"github.com/hubkit/hubkit/pkg/iothub"
	"github.com/hubkit/hubkit/pkg/iothub/dps"
	"github.com/hubkit/hubkit/pkg/sas"
)

// ProvisionTransport is how Provision talks to DPS.
type ProvisionTransport string

// Provisioning transports (docs/iothub-behavior.md §7.1): MQTT over TLS on 8883, or the
// HTTPS registration API on 443.
const (
	ProvisionMQTT  ProvisionTransport = "mqtt"
	ProvisionHTTPS ProvisionTransport = "https"
)

// DefaultPollInterval is how long Provision waits between polls when DPS gives no
// retry-after (the Node and C SDKs' default is 2 s).
const DefaultPollInterval = 2 * time.Second

// ProvisionConfig describes a device registering with the Device Provisioning Service.
type ProvisionConfig struct {
	// GlobalEndpoint is the DPS host name (TLS server name); default
	// global.azure-devices-provisioning.net.
	GlobalEndpoint string
	// Endpoint is the address to dial, host:port, when it differs from GlobalEndpoint (e.g.
	// fakehub's DPS on 127.0.0.1). Without a port, 8883 (MQTT) or 443 (HTTPS) is used.
	Endpoint string
	IDScope  string // e.g. "0ne00000A0A"
	// RegistrationID is the device's registration ID (also its MQTT client ID).
	RegistrationID string

	// Exactly one key (base64): the device's own SymmetricKey (an individual enrollment's key,
	// or a group member's key derived beforehand), or the enrollment group's GroupKey, from
	// which Provision derives the device key (sas.DeriveDeviceKey). Keep group keys off
	// devices in production (Microsoft's advice); GroupKey is for tests and factory tools.
	SymmetricKey string
	GroupKey     string
	// Certificate, instead of a key, attests an X.509 enrollment: the device certificate
	// (leaf first, then any intermediates) and its private key, sent in the TLS handshake;
	// the leaf's common name must be RegistrationID (docs/iothub-behavior.md §7.14).
	// LoadCertificate reads one. The assigned hub device authenticates with the same
	// certificate (Provisioned.Config).
	Certificate *tls.Certificate

	// Payload is the custom allocation payload sent with the registration (any JSON), nil
	// for none.
	Payload json.RawMessage

	Transport      ProvisionTransport // default ProvisionMQTT
	RootCAs        *x509.CertPool     // trusted roots; nil: the system roots
	TokenTTL       time.Duration      // lifetime of the registration token; default 1 h
	ConnectTimeout time.Duration      // default 30 s
	APIVersion     string             // default dps.APIVersion (2019-03-31)
	ClientVersion  string             // ClientVersion in the MQTT user name; default "hubkit/<Version>"

	Now    func() time.Time // clock for the token; default time.Now
	Logger *slog.Logger     // nil discards
}

// Provisioned is the outcome of a successful registration: where the device was assigned and
// what it connects with.
type Provisioned struct {
	AssignedHub    string
	DeviceID       string
	RegistrationID string
	Substatus      dps.Substatus
	// Payload is what the allocation policy returned to the device (custom allocation).
	Payload json.RawMessage
	// State is the whole registration state DPS answered with.
	State dps.RegistrationState
	// SymmetricKey is the key the device signs its hub tokens with (derived for a group);
	// "" for an X.509 device.
	SymmetricKey string
	// Certificate is the X.509 device's certificate (nil for a symmetric-key device).
	Certificate *tls.Certificate
}

// ConnectionString returns the device connection string for the assigned hub:
// HostName={AssignedHub};DeviceId={DeviceID};SharedAccessKey={key}, or ...;x509=true for an
// X.509 device.
func (p Provisioned) ConnectionString() string {
	if p.Certificate != nil {
		return sas.ConnectionString{HostName: p.AssignedHub, DeviceID: p.DeviceID, X509: true}.String()
	}
	return sas.ConnectionString{HostName: p.AssignedHub, DeviceID: p.DeviceID, SharedAccessKey: p.SymmetricKey}.String()
}

// Config returns a Config for the assigned hub (set Endpoint and RootCAs as needed): the key,
// or the X.509 certificate the device provisioned with.
func (p Provisioned) Config() Config {
	if p.Certificate != nil {
		return Config{HostName: p.AssignedHub, DeviceID: p.DeviceID, Certificate: p.Certificate}
	}
	return Config{HostName: p.AssignedHub, DeviceID: p.DeviceID, SharedAccessKey: p.SymmetricKey}
}

// ErrProvisioning is wrapped by *ProvisionError.
var ErrProvisioning = errors.New("device: provisioning did not assign the device")

// ProvisionError reports a registration that ended without an assignment: status failed
// (with DPS's error code and message in State) or disabled (the enrollment is disabled).
type ProvisionError struct {
	Status dps.Status
	State  dps.RegistrationState
}

func (e *ProvisionError) Error() string {
	msg := fmt.Sprintf("%v: registration %s ended with status %s", ErrProvisioning, e.State.RegistrationID, e.Status)
	if e.Status == dps.StatusDisabled {
		msg += " (the enrollment is disabled)"
	}
	if e.State.ErrorCode != 0 || e.State.ErrorMessage != "" {
		msg += fmt.Sprintf(": %d %s", e.State.ErrorCode, e.State.ErrorMessage)
	}
	return msg
}

func (e *ProvisionError) Unwrap() error { return ErrProvisioning }

// provisionSettings is a validated ProvisionConfig.
type provisionSettings struct {
	ProvisionConfig
	key      []byte
	tlsName  string
	dialAddr string
}

func (cfg ProvisionConfig) settings() (*provisionSettings, error) {
	s := &provisionSettings{ProvisionConfig: cfg}
	if s.GlobalEndpoint == "" {
		s.GlobalEndpoint = iothub.DPSGlobalHost
	}
	if err := dps.ValidateIDScope(s.IDScope); err != nil {
		return nil, configError("%v", err)
	}
	if err := iothub.ValidateRegistrationID(s.RegistrationID); err != nil {
		return nil, configError("%v", err)
	}
	switch {
	case s.Certificate != nil && (s.SymmetricKey != "" || s.GroupKey != ""):
		return nil, configError("both Certificate and a key are set; an X.509 device attests with its certificate only")
	case s.Certificate != nil:
		leaf, err := certificateLeaf(s.Certificate)
		if err != nil {
			return nil, err
		}
		if leaf.Subject.CommonName != s.RegistrationID {
			return nil, configError("the certificate's common name is %q but RegistrationID is %q: DPS takes an X.509 device's registration ID from its certificate's CN", leaf.Subject.CommonName, s.RegistrationID)
		}
	case s.SymmetricKey != "" && s.GroupKey != "":
		return nil, configError("both SymmetricKey and GroupKey are set; give the device key or the group key")
	case s.SymmetricKey != "":
		k, err := sas.DecodeKey(s.SymmetricKey)
		if err != nil {
			return nil, configError("SymmetricKey: %v", err)
		}
		s.key = k
	case s.GroupKey != "":
		g, err := sas.DecodeKey(s.GroupKey)
		if err != nil {
			return nil, configError("GroupKey: %v", err)
		}
		s.key = sas.DeriveDeviceKey(g, s.RegistrationID)
	default:
		return nil, configError("no credential: set SymmetricKey (individual enrollment, or a derived key), GroupKey (enrollment group) or Certificate (X.509)")
	}
	if len(s.Payload) > 0 && !json.Valid(s.Payload) {
		return nil, configError("Payload is not JSON")
	}
	switch s.Transport {
	case "":
		s.Transport = ProvisionMQTT
	case ProvisionMQTT, ProvisionHTTPS:
	default:
		return nil, configError("Transport %q: want %s or %s", s.Transport, ProvisionMQTT, ProvisionHTTPS)
	}
	if s.TokenTTL <= 0 {
		s.TokenTTL = DefaultTokenTTL
	}
	if s.ConnectTimeout <= 0 {
		s.ConnectTimeout = DefaultConnectTimeout
	}
	if s.APIVersion == "" {
		s.APIVersion = dps.APIVersion
	}
	if s.ClientVersion == "" {
		s.ClientVersion = "hubkit/" + Version
	}
	if s.Now == nil {
		s.Now = time.Now
	}
	if s.Logger == nil {
		s.Logger = slog.New(slog.DiscardHandler)
	}
	s.tlsName = s.GlobalEndpoint
	port := iothub.DefaultPort
	if s.Transport == ProvisionHTTPS {
		port = 443
	}
	s.dialAddr = s.Endpoint
	if s.dialAddr == "" {
		s.dialAddr = s.GlobalEndpoint
	}
	if _, _, err := net.SplitHostPort(s.dialAddr); err != nil {
		s.dialAddr = net.JoinHostPort(strings.Trim(s.dialAddr, "[]"), strconv.Itoa(port))
	}
	return s, nil
}

// tlsConfig is the client TLS configuration of both transports: the X.509 device's
// certificate, if any, goes in the handshake.
func (s *provisionSettings) tlsConfig() *tls.Config {
	c := &tls.Config{RootCAs: s.RootCAs, ServerName: s.tlsName, MinVersion: tls.VersionTLS12}
	if s.Certificate != nil {
		c.Certificates = []tls.Certificate{*s.Certificate}
	}
	return c
}

// password is the registration token of a symmetric-key device, "" for an X.509 one.
func (s *provisionSettings) password() string {
	if s.Certificate != nil {
		return ""
	}
	return s.token().String()
}

// token mints the registration token: sr={idScope}%2Fregistrations%2F{registrationId},
// skn=registration (docs/iothub-behavior.md §7.2).
func (s *provisionSettings) token() sas.Token {
	return sas.Sign(sas.EncodeResource(sas.DPSResource(s.IDScope, s.RegistrationID)), dps.RegistrationKeyName, s.key, s.Now().Add(s.TokenTTL))
}

func (s *provisionSettings) request() []byte {
	b, _ := json.Marshal(dps.RegistrationRequest{RegistrationID: s.RegistrationID, Payload: s.Payload})
	return b
}

// Provision registers the device with DPS and waits for its assignment, the way the SDKs
// do (docs/iothub-behavior.md §7.5): register, then poll the operation every retry-after
// seconds (DefaultPollInterval without one) until it is assigned, failed or disabled; a 429
// is retried after its retry-after. It returns where the device was assigned, or a
// *ProvisionError (failed, disabled), a *dps.Error (DPS refused a request: 401 for
// credentials no enrollment accepts over HTTPS, ...), a *ConnectError (DPS refused the MQTT
// CONNECT: wrong ID scope, key or registration ID) or ctx's error.
func Provision(ctx context.Context, cfg ProvisionConfig) (Provisioned, error) {
	s, err := cfg.settings()
	if err != nil {
		return Provisioned{}, err
	}
	var t provisionTransport
	if s.Transport == ProvisionHTTPS {
		t = newHTTPSProvisioning(s)
	} else {
		t = &mqttProvisioning{s: s}
	}
	defer t.close()
	answer, err := t.register(ctx)
	for {
		if err != nil {
			return Provisioned{}, err
		}
		st := answer.status
		switch {
		case answer.code == 429:
			s.Logger.Info("DPS throttled the request; retrying", "retryAfter", answer.retryAfter)
			if err := waitFor(ctx, answer.retryAfter); err != nil {
				return Provisioned{}, err
			}
			if answer.operationID == "" {
				answer, err = t.register(ctx)
			} else {
				answer, err = t.poll(ctx, answer.operationID)
			}
			continue
		case answer.code >= 300:
			return Provisioned{}, answer.err
		case st.Status == dps.StatusAssigned:
			rs := st.RegistrationState
			if rs == nil || rs.AssignedHub == "" || rs.DeviceID == "" {
				return Provisioned{}, fmt.Errorf("device: DPS answered assigned without assignedHub and deviceId: %+v", rs)
			}
			p := Provisioned{AssignedHub: rs.AssignedHub, DeviceID: rs.DeviceID, RegistrationID: rs.RegistrationID, Substatus: rs.Substatus,
				Payload: rs.Payload, State: *rs}
			if s.Certificate != nil {
				p.Certificate = s.Certificate
			} else {
				p.SymmetricKey = base64.StdEncoding.EncodeToString(s.key)
			}
			return p, nil
		case st.Status == dps.StatusFailed || st.Status == dps.StatusDisabled:
			pe := &ProvisionError{Status: st.Status, State: dps.RegistrationState{RegistrationID: s.RegistrationID, Status: st.Status}}
			if st.RegistrationState != nil {
				pe.State = *st.RegistrationState
			}
			return Provisioned{}, pe
		case st.OperationID == "":
			return Provisioned{}, fmt.Errorf("device: DPS answered status %q without an operationId", st.Status)
		}
		wait := answer.retryAfter
		if wait <= 0 {
			wait = DefaultPollInterval
		}
		s.Logger.Debug("DPS is assigning; polling", "operationId", st.OperationID, "retryAfter", wait)
		if err := waitFor(ctx, wait); err != nil {
			return Provisioned{}, err
		}
		answer, err = t.poll(ctx, st.OperationID)
	}
}

// provisionTransport sends the two requests of the registration flow.
type provisionTransport interface {
	register(ctx context.Context) (provisionAnswer, error)
	poll(ctx context.Context, operationID string) (provisionAnswer, error)
	close()
}

// provisionAnswer is one DPS answer: its status code, the operation status of a 2xx, the
// error of the others, and the retry-after.
type provisionAnswer struct {
	code        int
	status      dps.OperationStatus
	err         *dps.Error
	retryAfter  time.Duration
	operationID string // of the request (polls), to retry a 429
}

// decodeAnswer reads a DPS answer body for status code.
func decodeAnswer(code int, body []byte, retryAfter time.Duration) (provisionAnswer, error) {
	a := provisionAnswer{code: code, retryAfter: retryAfter}
	if code >= 300 {
		a.err = dps.ReadError(code, nil, body)
		a.err.RetryAfter = retryAfter
		return a, nil
	}
	if err := json.Unmarshal(body, &a.status); err != nil {
		return a, fmt.Errorf("device: DPS answered %d with a body that is not a RegistrationOperationStatus: %v", code, err)
	}
	return a, nil
}

// waitFor waits d or until ctx ends (the protocol's retry-after, not synchronisation).
func waitFor(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
