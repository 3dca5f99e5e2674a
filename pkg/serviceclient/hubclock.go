package serviceclient

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/hubkit/hubkit/pkg/iothub"
)

// HubClock follows a hubkit hub's movable clock from another process, the way a device
// follows a time server: it reads GET /hubkit/clock (a hubkit extension that needs no token)
// and adds how far the hub's clock has been moved to the local clock
// (docs/iothub-behavior.md §14.5, §14.10). Give its Now to a device client
// (device.WithNow) and the device renews its SAS token, or lets it expire, when a test moves
// the hub's clock (fakehub clock advance 55m). It takes the hub's offset, not its absolute
// time, so network latency adds no jitter; hub and device are expected to share a real
// clock (the same machine, or NTP). It is safe for concurrent use.
type HubClock struct {
	url  string
	http *http.Client
	now  func() time.Time

	mu     sync.Mutex
	offset time.Duration
	err    error // of the last Sync
}

// NewHubClock returns a HubClock for the hub whose service API is at serviceURL
// (https://localhost:8443; a URL ending in /hubkit/clock is taken as is). The TLS options
// (WithRootCAs, WithTLSConfig, WithHTTPClient) and WithNow (the local clock) apply; it makes
// no request until Sync or Follow.
func NewHubClock(serviceURL string, opts ...Option) (*HubClock, error) {
	u, err := url.Parse(strings.TrimSuffix(serviceURL, "/"))
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		return nil, fmt.Errorf("serviceclient: hub URL %q: want https://host:port", serviceURL)
	}
	if !strings.HasSuffix(u.Path, "/hubkit/clock") {
		u.Path += "/hubkit/clock"
	}
	var c config
	for _, o := range opts {
		o(&c)
	}
	h := &HubClock{url: u.String(), http: c.client, now: c.now}
	if h.http == nil {
		h.http = c.httpClient()
	}
	if h.now == nil {
		h.now = time.Now
	}
	return h, nil
}

// Sync reads the hub's clock once and takes its offset. On an error the last offset stays.
func (h *HubClock) Sync(ctx context.Context) error {
	err := h.sync(ctx)
	h.mu.Lock()
	h.err = err
	h.mu.Unlock()
	return err
}

func (h *HubClock) sync(ctx context.Context) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, h.url, nil)
	if err != nil {
		return err
	}
	resp, err := h.http.Do(req)
	if err != nil {
		return fmt.Errorf("reading the hub's clock: %w", err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	if err != nil {
		return fmt.Errorf("reading the hub's clock: %w", err)
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("reading the hub's clock: GET %s: %s (is it a fakehub's service API?)", h.url, resp.Status)
	}
	var r iothub.ClockReading
	if err := json.Unmarshal(body, &r); err != nil || r.Now.IsZero() {
		return fmt.Errorf("reading the hub's clock: GET %s answered no clock reading (is it a fakehub's service API?)", h.url)
	}
	h.mu.Lock()
	h.offset = time.Duration(r.OffsetSeconds * float64(time.Second))
	h.mu.Unlock()
	return nil
}

// Follow calls Sync every interval until ctx ends. A failed Sync keeps the last offset (see
// Err).
func (h *HubClock) Follow(ctx context.Context, interval time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			sctx, cancel := context.WithTimeout(ctx, max(interval, time.Second))
			_ = h.Sync(sctx)
			cancel()
		}
	}
}

// Now returns the local clock plus the hub's offset.
func (h *HubClock) Now() time.Time {
	h.mu.Lock()
	off := h.offset
	h.mu.Unlock()
	return h.now().Add(off)
}

// Offset returns how far the hub's clock was moved, as last read.
func (h *HubClock) Offset() time.Duration {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.offset
}

// Err returns the error of the last Sync (nil after a good one).
func (h *HubClock) Err() error {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.err
}
