package device

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"time"
)

// httpsProvisioning registers over DPS's HTTPS API: PUT
// /{idScope}/registrations/{id}/register and GET .../operations/{operationId}, each with the
// registration token in the Authorization header (docs/iothub-behavior.md §7.5).
type httpsProvisioning struct {
	s    *provisionSettings
	hc   *http.Client
	base string
}

func newHTTPSProvisioning(s *provisionSettings) *httpsProvisioning {
	dialer := &net.Dialer{Timeout: s.ConnectTimeout}
	tr := &http.Transport{
		TLSClientConfig:     s.tlsConfig(),
		TLSHandshakeTimeout: s.ConnectTimeout,
		DialContext: func(ctx context.Context, network, _ string) (net.Conn, error) {
			return dialer.DialContext(ctx, network, s.dialAddr) // the name stays GlobalEndpoint
		},
	}
	return &httpsProvisioning{s: s, hc: &http.Client{Transport: tr, Timeout: s.ConnectTimeout + 30*time.Second},
		base: "https://" + s.GlobalEndpoint + "/" + url.PathEscape(s.IDScope) + "/registrations/" + url.PathEscape(s.RegistrationID)}
}

func (h *httpsProvisioning) do(ctx context.Context, method, path string, body []byte, operationID string) (provisionAnswer, error) {
	req, err := http.NewRequestWithContext(ctx, method, h.base+path+"?api-version="+url.QueryEscape(h.s.APIVersion), bytes.NewReader(body))
	if err != nil {
		return provisionAnswer{}, err
	}
	req.Header.Set("Accept", "application/json")
	req.Header.Set("Content-Type", "application/json; charset=utf-8")
	req.Header.Set("User-Agent", h.s.ClientVersion)
	if pw := h.s.password(); pw != "" {
		req.Header.Set("Authorization", pw)
	}
	resp, err := h.hc.Do(req)
	if err != nil {
		return provisionAnswer{}, fmt.Errorf("device: DPS %s %s: %w", method, path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return provisionAnswer{}, fmt.Errorf("device: reading DPS's answer: %w", err)
	}
	retry := time.Duration(0)
	if n, err := strconv.Atoi(resp.Header.Get("Retry-After")); err == nil && n > 0 {
		retry = time.Duration(n) * time.Second
	}
	a, err := decodeAnswer(resp.StatusCode, b, retry)
	a.operationID = operationID
	return a, err
}

func (h *httpsProvisioning) register(ctx context.Context) (provisionAnswer, error) {
	return h.do(ctx, http.MethodPut, "/register", h.s.request(), "")
}

func (h *httpsProvisioning) poll(ctx context.Context, operationID string) (provisionAnswer, error) {
	return h.do(ctx, http.MethodGet, "/operations/"+url.PathEscape(operationID), nil, operationID)
}

func (h *httpsProvisioning) close() { h.hc.CloseIdleConnections() }
