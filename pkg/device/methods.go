package device

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/hubkit/hubkit/pkg/iothub"
)

// startMethod runs a direct-method call in its own goroutine (paho's router must not wait for
// user code) and answers on $iothub/methods/res/{status}/?$rid={rid}.
func (c *Client) startMethod(name, rid string, payload []byte) {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return
	}
	c.wg.Add(1) // under c.mu: Close has not started waiting
	h, ok := c.handlers.methods[name]
	anyH := c.handlers.anyMethod
	c.mu.Unlock()
	go func() {
		defer c.wg.Done()
		var (
			status int
			resp   any
			err    error
		)
		switch {
		case ok:
			status, resp, err = h(c.life, payload)
		case anyH != nil:
			status, resp, err = anyH(c.life, name, payload)
		default:
			status = c.s.UnknownMethodStatus
			resp = map[string]string{"message": fmt.Sprintf("method %q is not implemented by this device", name)}
		}
		if err != nil {
			if status == 0 {
				status = 500
			}
			resp = map[string]string{"message": err.Error()}
		}
		body, merr := responseBody(resp)
		if merr != nil {
			status, body = 500, []byte(`{"message":"the method handler's response could not be encoded as JSON"}`)
			c.log.Warn("encoding a method response", "method", name, "err", merr)
		}
		if status == 0 {
			status = 200
		}
		if err := c.respond(iothub.MethodResponseTopic(status, rid), body); err != nil {
			c.log.Warn("answering a direct method", "method", name, "rid", rid, "err", err)
		}
	}()
}

// respond publishes a method response on the connection the request came in on (its $rid
// means nothing to the hub on another one). It does not use the client's life context: a
// handler that returned before or while Close runs still gets its answer out, because Close
// waits for this goroutine before it disconnects. It counts as in flight, so a token renewal
// waits for it too.
func (c *Client) respond(topic string, body []byte) error {
	ctx, cancel := context.WithTimeout(context.Background(), closingResponseTimeout)
	defer cancel()
	var sess *session
	for sess == nil {
		c.mu.Lock()
		switch {
		case c.sess != nil && c.online && !isDone(c.sess.lost):
			// Also while Close runs: it waits for this goroutine before it disconnects.
			sess = c.sess
			c.inflight++
			c.mu.Unlock()
			continue
		case c.closed:
			c.mu.Unlock()
			return ErrClosed
		}
		// Not online yet: with a persistent session a request can arrive right after the
		// CONNACK, before the client has finished setting the connection up.
		ch := c.changed
		c.mu.Unlock()
		select {
		case <-ch:
		case <-ctx.Done():
			return fmt.Errorf("%w: %w", ErrNotConnected, ctx.Err())
		}
	}
	defer c.release()
	c.log.Debug("PUBLISH", "topic", topic, "qos", 0, "bytes", len(body))
	select {
	case <-sess.pc.Publish(topic, 0, false, body).Done():
		return nil
	case <-sess.lost:
		return ErrConnectionLost
	case <-ctx.Done():
		return ctx.Err()
	}
}

// closingResponseTimeout bounds how long a method response may take to go out (and so how
// long Close waits for a last one).
const closingResponseTimeout = 2 * time.Second

// responseBody encodes a method response: nil is an empty body, bytes are sent as is.
func responseBody(resp any) ([]byte, error) {
	switch r := resp.(type) {
	case nil:
		return nil, nil
	case []byte:
		return r, nil
	case json.RawMessage:
		return r, nil
	}
	return json.Marshal(resp)
}
