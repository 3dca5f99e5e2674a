package serviceclient

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/hubkit/hubkit/pkg/iothub"
	"github.com/hubkit/hubkit/pkg/sas"
)

// APIVersion is the api-version the client sends.
const APIVersion = "2021-04-12"

// DefaultPort is fakehub's service API port (the URL default is
// https://{HostName}:8443).
const DefaultPort = 8443

// DefaultTokenTTL is the lifetime of the token minted for each request.
const DefaultTokenTTL = 5 * time.Minute

// Client calls a fakehub's service API. It is safe for concurrent use.
type Client struct {
	base *url.URL
	cs   sas.ConnectionString
	http *http.Client
	now  func() time.Time
	ttl  time.Duration
}

// Option configures New.
type Option func(*config)

type config struct {
	url    string
	roots  *x509.CertPool
	tls    *tls.Config
	client *http.Client
	now    func() time.Time
	ttl    time.Duration
}

// WithURL sets the service API's base URL (default https://{HostName}:8443).
func WithURL(u string) Option { return func(c *config) { c.url = u } }

// WithRootCAs trusts pool for the server certificate (for example the CA
// fakehub --ca wrote).
func WithRootCAs(pool *x509.CertPool) Option { return func(c *config) { c.roots = pool } }

// WithTLSConfig uses cfg for TLS (WithRootCAs, if also given, sets its
// RootCAs on a clone).
func WithTLSConfig(cfg *tls.Config) Option { return func(c *config) { c.tls = cfg } }

// WithHTTPClient uses hc for every request (TLS options are then ignored).
func WithHTTPClient(hc *http.Client) Option { return func(c *config) { c.client = hc } }

// WithNow sets the clock tokens are minted with (default time.Now).
func WithNow(now func() time.Time) Option { return func(c *config) { c.now = now } }

// WithTokenTTL sets the lifetime of each request's token (default
// DefaultTokenTTL).
func WithTokenTTL(d time.Duration) Option { return func(c *config) { c.ttl = d } }

// New returns a client for the hub named by a service connection string
// ("HostName=...;SharedAccessKeyName=iothubowner;SharedAccessKey=...").
func New(connectionString string, opts ...Option) (*Client, error) {
	cs, err := sas.ParseConnectionString(connectionString)
	if err != nil {
		return nil, err
	}
	if cs.Kind() != sas.KindPolicy || cs.SharedAccessKeyName == "" {
		return nil, fmt.Errorf("serviceclient: need a service (shared access policy) connection string with HostName, SharedAccessKeyName and SharedAccessKey; got a %s connection string (%s)", cs.Kind(), cs.Redacted())
	}
	if cs.SharedAccessSignature == "" {
		if _, err := cs.Key(); err != nil {
			return nil, err
		}
	}
	var c config
	for _, o := range opts {
		o(&c)
	}
	if c.url == "" {
		c.url = fmt.Sprintf("https://%s:%d", cs.HostName, DefaultPort)
	}
	base, err := url.Parse(strings.TrimSuffix(c.url, "/"))
	if err != nil || (base.Scheme != "https" && base.Scheme != "http") || base.Host == "" {
		return nil, fmt.Errorf("serviceclient: hub URL %q: want https://host:port", c.url)
	}
	cl := &Client{base: base, cs: cs, http: c.client, now: c.now, ttl: c.ttl}
	if cl.now == nil {
		cl.now = time.Now
	}
	if cl.ttl <= 0 {
		cl.ttl = DefaultTokenTTL
	}
	if cl.http == nil {
		cl.http = c.httpClient()
	}
	return cl, nil
}

// httpClient builds the HTTP client of the TLS options (WithRootCAs, WithTLSConfig).
func (c *config) httpClient() *http.Client {
	tc := &tls.Config{MinVersion: tls.VersionTLS12}
	if c.tls != nil {
		tc = c.tls.Clone()
	}
	if c.roots != nil {
		tc.RootCAs = c.roots
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.TLSClientConfig = tc
	return &http.Client{Transport: tr}
}

// Close closes the client's idle connections (those of the HTTP client it made, or of the
// one given with WithHTTPClient). The client stays usable.
func (c *Client) Close() error {
	c.http.CloseIdleConnections()
	return nil
}

// HostName returns the hub host name from the connection string.
func (c *Client) HostName() string { return c.cs.HostName }

// URL returns the service API's base URL.
func (c *Client) URL() string { return c.base.String() }

// path joins escaped segments: path("devices", id) = "/devices/a%2Fb".
func path(segments ...string) string {
	var b strings.Builder
	for _, s := range segments {
		b.WriteByte('/')
		b.WriteString(url.PathEscape(s))
	}
	return b.String()
}

// request is one call: method, escaped path, query (api-version is added for
// IoT Hub routes), headers, body.
type request struct {
	method, path string
	query        url.Values
	header       http.Header
	body         []byte
	hubkit       bool // a /hubkit/ route: no api-version
}

func (c *Client) do(ctx context.Context, r request) (*http.Response, error) {
	q := r.query
	if q == nil {
		q = url.Values{}
	}
	if !r.hubkit {
		q.Set("api-version", APIVersion)
	}
	u := c.base.String() + r.path // r.path is already escaped
	if len(q) > 0 {
		u += "?" + q.Encode()
	}
	var body io.Reader
	if r.body != nil {
		body = bytes.NewReader(r.body)
	}
	req, err := http.NewRequestWithContext(ctx, r.method, u, body)
	if err != nil {
		return nil, err
	}
	for k, vs := range r.header {
		req.Header[k] = vs
	}
	tok, err := c.cs.Token(c.now().Add(c.ttl))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Authorization", tok.String())
	resp, err := c.http.Do(req)
	if err != nil {
		return nil, err // a *url.Error naming the method and URL
	}
	if resp.StatusCode >= 400 {
		defer resp.Body.Close()
		return nil, parseError(resp)
	}
	return resp, nil
}

// call does r and decodes a JSON answer into out (nil: discard).
func (c *Client) call(ctx context.Context, r request, out any) error {
	resp, err := c.do(ctx, r)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if out == nil {
		_, _ = io.Copy(io.Discard, resp.Body)
		return nil
	}
	if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
		return fmt.Errorf("%s %s: decoding the answer: %w", r.method, r.path, err)
	}
	return nil
}

func jsonRequest(method, p string, v any) (request, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return request{}, err
	}
	return request{method: method, path: p, body: b, header: http.Header{"Content-Type": {"application/json"}}}, nil
}

func parseError(resp *http.Response) error {
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 64*1024))
	return iothub.ReadError(resp.StatusCode, resp.Header, b)
}
