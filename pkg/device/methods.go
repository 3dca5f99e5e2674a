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

// respond publishes a method response. A handler that returned before or while Close runs
// still gets its answer out: Close waits for this goroutine before it disconnects.
func (c *Client) respond(topic string, body []byte) error {
	c.mu.Lock()
	closing, sess, online := c.closed, c.sess, c.online && !c.renewing
	c.mu.Unlock()
	if !closing {
		return c.publish(c.life, topic, 0, body, false)
	}
	if !online {
		return ErrClosed
	}
	ctx, cancel := context.WithTimeout(context.Background(), closingResponseTimeout)
	defer cancel()
	select {
	case <-sess.pc.Publish(topic, 0, false, body).Done():
		return nil
	case <-sess.lost:
		return ErrConnectionLost
	case <-ctx.Done():
		return ctx.Err()
	}
}

// closingResponseTimeout bounds how long Close waits for a last method response to go out.
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
