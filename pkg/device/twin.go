package device

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"

	"github.com/hubkit/hubkit/pkg/iothub"
)

// Twin is the device twin as a GET returns it: the desired and reported property documents
// (each including "$version") and their versions.
type Twin struct {
	Desired         json.RawMessage
	Reported        json.RawMessage
	DesiredVersion  int64
	ReportedVersion int64
}

type twinResult struct {
	status  int
	version int64
	body    []byte
	err     error
}

type desiredItem struct {
	version int64
	body    []byte
	// resync marks the answer to the twin GET made on (re)connection: the floor moves to
	// version, and with deliver the handler gets body (the full desired properties) if it is
	// newer than what it has seen.
	resync  bool
	deliver bool
}

// twinState is the desired-properties bookkeeping, guarded by Client.mu.
type twinState struct {
	floor     int64         // highest desired version seen (GET or notification)
	resyncing bool          // a resync GET is in flight: notifications wait for it
	held      []desiredItem // notifications that arrived during the resync
}

// GetTwin asks the hub for the twin ($iothub/twin/GET) and waits for the answer. A non-200
// answer is a *StatusError.
func (c *Client) GetTwin(ctx context.Context) (Twin, error) {
	res, err := c.twinRequest(ctx, "twin get", iothub.TwinGetTopic, nil)
	if err != nil {
		return Twin{}, err
	}
	t, err := parseTwin(res.body)
	if err != nil {
		return Twin{}, err
	}
	c.mu.Lock()
	c.twin.floor = max(c.twin.floor, t.DesiredVersion)
	c.mu.Unlock()
	return t, nil
}

// UpdateReported sends patch (marshalled as JSON; []byte and json.RawMessage are sent as is)
// as a reported-properties JSON merge patch and returns the new reported version. A non-2xx
// answer (e.g. 400 for an invalid patch) is a *StatusError.
func (c *Client) UpdateReported(ctx context.Context, patch any) (int64, error) {
	var body []byte
	switch p := patch.(type) {
	case []byte:
		body = p
	case json.RawMessage:
		body = p
	default:
		b, err := json.Marshal(patch)
		if err != nil {
			return 0, fmt.Errorf("device: encoding the reported patch: %w", err)
		}
		body = b
	}
	res, err := c.twinRequest(ctx, "twin update reported", iothub.TwinPatchReportedTopic, body)
	if err != nil {
		return 0, err
	}
	return res.version, nil
}

// twinRequest publishes a twin request with a fresh $rid and waits for the matching response.
func (c *Client) twinRequest(ctx context.Context, op string, topic func(rid string) string, body []byte) (twinResult, error) {
	c.addWanted(map[string]byte{iothub.TwinResponseFilter: 0}, false) // subscribed below, before the request
	for {
		sess, err := c.acquire(ctx, nil)
		if err != nil {
			return twinResult{}, fmt.Errorf("device: %s: %w", op, err)
		}
		err = c.subscribe(ctx, sess)
		c.release()
		if errors.Is(err, errNotSent) || errors.Is(err, errSessionLost) {
			continue // a new connection subscribes anew
		}
		if err != nil {
			return twinResult{}, fmt.Errorf("device: %s: %w", op, err)
		}
		break
	}
	res, err := c.roundTrip(ctx, nil, topic, body)
	for errors.Is(err, errNotSent) { // nothing went out: ask again on the next connection
		res, err = c.roundTrip(ctx, nil, topic, body)
	}
	if err != nil {
		return twinResult{}, fmt.Errorf("device: %s: %w", op, err)
	}
	if res.status < 200 || res.status > 299 {
		return twinResult{}, &StatusError{Op: op, Status: res.status, Body: res.body}
	}
	return res, nil
}

// roundTrip publishes one twin request (at QoS 0, like the SDKs) on sess, or on the current
// connection when sess is nil, and waits for the response with the same $rid.
func (c *Client) roundTrip(ctx context.Context, sess *session, topic func(rid string) string, body []byte) (twinResult, error) {
	ch := make(chan twinResult, 1)
	var rid string
	register := func() {
		c.rid++
		rid = strconv.FormatUint(c.rid, 10)
		c.pending[rid] = ch
	}
	if sess == nil {
		s, err := c.acquire(ctx, register)
		if err != nil {
			return twinResult{}, err
		}
		defer c.release()
		sess = s
	} else {
		c.mu.Lock()
		register()
		c.mu.Unlock()
	}
	defer func() {
		c.mu.Lock()
		delete(c.pending, rid)
		c.mu.Unlock()
	}()
	c.log.Debug("PUBLISH", "topic", topic(rid), "qos", 0, "bytes", len(body))
	if err := c.await(ctx, sess, sess.pc.Publish(topic(rid), 0, false, body), "publishing"); err != nil {
		if errors.Is(err, errSessionLost) {
			return twinResult{}, ErrConnectionLost
		}
		return twinResult{}, err // errNotSent included: the caller retries
	}
	select {
	case res := <-ch:
		return res, res.err
	case <-sess.lost:
		return twinResult{}, ErrConnectionLost
	case <-ctx.Done():
		return twinResult{}, ctx.Err()
	case <-c.done:
		return twinResult{}, ErrClosed
	}
}

// deliverTwin hands a twin response to the request waiting for its $rid.
func (c *Client) deliverTwin(rid string, res twinResult) {
	c.mu.Lock()
	ch := c.pending[rid]
	delete(c.pending, rid)
	c.mu.Unlock()
	if ch == nil {
		c.log.Debug("ignoring a twin response nobody waits for", "rid", rid, "status", res.status)
		return
	}
	ch <- res // buffered, one response per rid
}

// failPending ends every waiting twin request with err.
func (c *Client) failPending(err error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for rid, ch := range c.pending {
		delete(c.pending, rid)
		ch <- twinResult{err: err}
	}
}

func parseTwin(body []byte) (Twin, error) {
	var doc struct {
		Desired  json.RawMessage `json:"desired"`
		Reported json.RawMessage `json:"reported"`
	}
	if err := json.Unmarshal(body, &doc); err != nil {
		return Twin{}, fmt.Errorf("device: twin get: the hub's answer is not a twin document: %w", err)
	}
	t := Twin{Desired: doc.Desired, Reported: doc.Reported}
	t.DesiredVersion = versionOf(doc.Desired)
	t.ReportedVersion = versionOf(doc.Reported)
	return t, nil
}

// versionOf returns the "$version" member of a JSON object, or 0.
func versionOf(doc []byte) int64 {
	var v struct {
		Version int64 `json:"$version"`
	}
	_ = json.Unmarshal(doc, &v)
	return v.Version
}

// resyncTwin GETs the twin on connection. Notifications arriving meanwhile are held, then
// delivered only if newer than the GET (docs/iothub-behavior.md §4.3).
func (c *Client) resyncTwin(ctx context.Context, sess *session, deliver bool) error {
	c.mu.Lock()
	c.twin.resyncing = true
	c.mu.Unlock()
	res, err := c.roundTrip(ctx, sess, iothub.TwinGetTopic, nil)
	if err == nil && res.status != 200 {
		err = &StatusError{Op: "twin get", Status: res.status, Body: res.body}
	}
	var t Twin
	if err == nil {
		t, err = parseTwin(res.body)
	}
	if err != nil {
		// Release the held notifications against the old floor.
		c.desired.push(desiredItem{resync: true, version: 0})
		return fmt.Errorf("device: resynchronising the twin: %w", err)
	}
	c.desired.push(desiredItem{resync: true, version: t.DesiredVersion, body: t.Desired, deliver: deliver})
	return nil
}

// runDesired delivers desired-properties patches one at a time, in order, dropping stale ones.
func (c *Client) runDesired() {
	defer c.wg.Done()
	for {
		it, ok := c.desired.pop()
		if !ok {
			select {
			case <-c.done:
				return
			case <-c.desired.wake:
			}
			continue
		}
		for _, d := range c.admitDesired(it) {
			c.mu.Lock()
			h := c.handlers.desired
			c.mu.Unlock()
			if h == nil {
				continue
			}
			select {
			case <-c.done:
				return
			default:
			}
			h(c.life, d.body, d.version)
		}
	}
}

// admitDesired applies the version rules to one item and returns what to deliver now.
func (c *Client) admitDesired(it desiredItem) []desiredItem {
	c.mu.Lock()
	defer c.mu.Unlock()
	t := &c.twin
	if !it.resync {
		if t.resyncing {
			t.held = append(t.held, it)
			return nil
		}
		if it.version <= t.floor {
			c.log.Debug("ignoring a stale desired-properties patch", "version", it.version, "seen", t.floor)
			return nil
		}
		t.floor = it.version
		return []desiredItem{it}
	}
	var out []desiredItem
	if it.deliver && it.version > t.floor && len(it.body) > 0 {
		out = append(out, it)
	}
	t.floor = max(t.floor, it.version)
	t.resyncing = false
	for _, h := range t.held {
		if h.version > t.floor {
			t.floor = h.version
			out = append(out, h)
		}
	}
	t.held = nil
	return out
}
