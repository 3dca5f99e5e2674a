// Package servicetest starts fakehub's service API over an in-memory hub, for
// testing code that plays the cloud side (with serviceclient, curl, or any
// IoT Hub service SDK pointed at its URL) without an MQTT hub.
//
// The in-memory hub keeps a registry, twins (shallow merge patches), C2D
// message states (all stay "queued") and captured telemetry; devices are
// offline until SetOnline, and direct methods answer what HandleMethod says.
// Its policies are IoT Hub's built-in ones (iothubowner, service,
// registryRead, registryReadWrite, device) with keys derived from fixed
// strings: public test material, never secrets.
package servicetest

import (
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"slices"
	"time"

	"github.com/hubkit/hubkit/pkg/fakehub/internal/restapi"
	"github.com/hubkit/hubkit/pkg/fakehub/serviceclient"
	"github.com/hubkit/hubkit/pkg/iothub"
)

// Options configures NewServer.
type Options struct {
	// HostName is the hub name tokens are signed for (default "localhost").
	HostName string
	// Now is the hub clock (default time.Now).
	Now func() time.Time
	// Rand is the source of generated keys and IDs (default crypto/rand).
	Rand io.Reader
	// TLS serves with this configuration (for example a leaf issued by a
	// test CA); nil serves with httptest's own certificate.
	TLS *tls.Config
	// PlainHTTP serves without TLS.
	PlainHTTP bool
}

// Server is a running service API over an in-memory hub. Close it when done.
type Server struct {
	srv  *httptest.Server
	b    *memBackend
	host string
}

// PolicyNames are the policies every Server has, with IoT Hub's rights.
var PolicyNames = []string{"iothubowner", "service", "registryRead", "registryReadWrite", "device"}

var policyRights = map[string]restapi.Rights{
	"iothubowner": restapi.RightsIoTHubOwner, "service": restapi.RightsService, "registryRead": restapi.RightsRegistryRead,
	"registryReadWrite": restapi.RightsRegistryReadWrite, "device": restapi.RightsDevice,
}

// PolicyKey returns the fixed test keys of a built-in policy.
func PolicyKey(name string) (primary, secondary []byte) {
	p := sha256.Sum256([]byte("servicetest primary " + name))
	s := sha256.Sum256([]byte("servicetest secondary " + name))
	return p[:], s[:]
}

// NewServer starts a service API; it is listening on return.
func NewServer(opts Options) *Server {
	if opts.HostName == "" {
		opts.HostName = "localhost"
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	var policies []restapi.Policy
	for _, n := range PolicyNames {
		p, s := PolicyKey(n)
		policies = append(policies, restapi.Policy{Name: n, PrimaryKey: p, SecondaryKey: s, Rights: policyRights[n]})
	}
	b := newMemBackend(opts.Now, policies...)
	h := restapi.NewHandler(b, restapi.Options{HostName: opts.HostName, Now: opts.Now, Rand: opts.Rand})
	srv := httptest.NewUnstartedServer(h)
	srv.Config.ErrorLog = log.New(io.Discard, "", 0) // TLS handshake failures are the client's to report
	switch {
	case opts.PlainHTTP:
		srv.Start()
	default:
		srv.TLS = opts.TLS
		srv.StartTLS()
	}
	return &Server{srv: srv, b: b, host: opts.HostName}
}

// URL is the base URL, e.g. https://127.0.0.1:41234.
func (s *Server) URL() string { return s.srv.URL }

// HostName is the hub name tokens must be signed for.
func (s *Server) HostName() string { return s.host }

// HTTPClient returns a client that trusts the server's certificate (only
// meaningful when Options.TLS was nil).
func (s *Server) HTTPClient() *http.Client { return s.srv.Client() }

// Certificate returns the server's leaf certificate (nil with PlainHTTP).
func (s *Server) Certificate() *x509.Certificate { return s.srv.Certificate() }

// ConnectionString returns the service connection string for a built-in
// policy: "HostName={host};SharedAccessKeyName={policy};SharedAccessKey=...".
func (s *Server) ConnectionString(policy string) string {
	p, _ := PolicyKey(policy)
	return "HostName=" + s.host + ";SharedAccessKeyName=" + policy + ";SharedAccessKey=" + base64.StdEncoding.EncodeToString(p)
}

// Client returns a serviceclient for policy, wired to this server.
func (s *Server) Client(policy string) (*serviceclient.Client, error) {
	return serviceclient.New(s.ConnectionString(policy), serviceclient.WithURL(s.URL()), serviceclient.WithHTTPClient(s.HTTPClient()))
}

// Close shuts the server down, ending open telemetry streams.
func (s *Server) Close() {
	s.srv.CloseClientConnections()
	s.srv.Close()
}

func parseIdentity(clientID string) iothub.Identity {
	id, err := iothub.ParseClientID(clientID)
	if err != nil {
		return iothub.Identity{DeviceID: clientID}
	}
	return id
}

// SetOnline marks a device ("dev") or module ("dev/mod") connected or not;
// direct methods need it online.
func (s *Server) SetOnline(clientID string, online bool) {
	s.b.mu.Lock()
	defer s.b.mu.Unlock()
	s.b.online[parseIdentity(clientID).ClientID()] = online
	id := parseIdentity(clientID)
	if d, ok := s.b.devices[id]; ok {
		d.ConnectionState = restapi.StateDisconnected
		if online {
			d.ConnectionState = restapi.StateConnected
		}
		s.b.devices[id] = d
	}
}

// HandleMethod makes online devices answer method name with status and
// payload (JSON; nil = no body). Unhandled methods time out (504).
func (s *Server) HandleMethod(name string, status int, payload json.RawMessage) {
	s.b.mu.Lock()
	defer s.b.mu.Unlock()
	s.b.methods[name] = restapi.MethodResult{Status: status, Payload: payload}
}

// MethodCalls returns the direct method calls received, oldest first.
func (s *Server) MethodCalls() []serviceclient.MethodCall {
	s.b.mu.Lock()
	defer s.b.mu.Unlock()
	var out []serviceclient.MethodCall
	for _, r := range s.b.calls {
		out = append(out, serviceclient.MethodCall{Name: r.Name, Payload: r.Payload, ResponseTimeout: r.ResponseTimeout, ConnectTimeout: r.ConnectTimeout})
	}
	return out
}

// C2DMessages returns the cloud-to-device messages sent to a device ("dev"
// or "dev/mod"), oldest first, as the hub received them.
func (s *Server) C2DMessages(clientID string) []serviceclient.Message {
	s.b.mu.Lock()
	defer s.b.mu.Unlock()
	id := parseIdentity(clientID)
	var out []serviceclient.Message
	for i, m := range s.b.c2dMsgs {
		if s.b.c2d[i].Identity != id {
			continue
		}
		out = append(out, serviceclient.Message{
			MessageID: m.MessageID, CorrelationID: m.CorrelationID, UserID: m.UserID, To: m.To, Ack: m.Ack,
			Expiry: m.ExpiryTime, ContentType: m.ContentType, ContentEncoding: m.ContentEncoding,
			Properties: propsMap(m.Properties), Body: m.Body,
		})
	}
	return out
}

// SetQueueLimit sets the C2D queue depth after which sends fail with
// DeviceMaximumQueueDepthExceeded (default 50, as IoT Hub).
func (s *Server) SetQueueLimit(n int) {
	s.b.mu.Lock()
	defer s.b.mu.Unlock()
	s.b.queueMax = n
}

// Publish records a telemetry message as if a device had sent it (e.Body is
// the body; Payload is ignored) and wakes followers of the telemetry stream.
// A zero EnqueuedTime means now.
func (s *Server) Publish(e serviceclient.Event) {
	if e.EnqueuedTime.IsZero() {
		e.EnqueuedTime = s.b.now()
	}
	id := iothub.Identity{DeviceID: e.DeviceID, ModuleID: e.ModuleID}
	if e.Topic == "" {
		e.Topic = iothub.TelemetryTopic(id, nil)
	}
	s.b.publish(restapi.TelemetryRecord{Identity: id, EnqueuedTime: e.EnqueuedTime, Topic: e.Topic,
		SystemProperties: e.SystemProperties, Properties: e.Properties, Annotations: e.Annotations, Body: e.Body})
}

// AddRejection records a refused connection.
func (s *Server) AddRejection(r serviceclient.Rejection) {
	s.b.mu.Lock()
	defer s.b.mu.Unlock()
	s.b.rejections = append(s.b.rejections, restapi.Rejection{Time: r.Time, RemoteAddr: r.RemoteAddr, ClientID: r.ClientID,
		Identity: iothub.Identity{DeviceID: r.DeviceID, ModuleID: r.ModuleID}, Reason: r.Reason, Detail: r.Detail, Hints: slices.Clone(r.Hints)})
}

func propsMap(ps iothub.Properties) map[string]string {
	if len(ps) == 0 {
		return nil
	}
	m := map[string]string{}
	for _, p := range ps {
		m[p.Key] = p.Value
	}
	return m
}
