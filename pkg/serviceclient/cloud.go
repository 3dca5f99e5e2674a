package serviceclient

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/hubkit/hubkit/pkg/iothub"
)

// Twin returns a device twin (GET /twins/{id}).
func (c *Client) Twin(ctx context.Context, deviceID string) (iothub.Twin, error) {
	return c.twin(ctx, twinPath(deviceID, ""))
}

// ModuleTwin returns a module twin (GET /twins/{id}/modules/{mid}).
func (c *Client) ModuleTwin(ctx context.Context, deviceID, moduleID string) (iothub.Twin, error) {
	return c.twin(ctx, twinPath(deviceID, moduleID))
}

func twinPath(deviceID, moduleID string) string {
	if moduleID == "" {
		return path("twins", deviceID)
	}
	return path("twins", deviceID, "modules", moduleID)
}

func (c *Client) twin(ctx context.Context, p string) (iothub.Twin, error) {
	var t iothub.Twin
	err := c.call(ctx, request{method: http.MethodGet, path: p}, &t)
	return t, err
}

// UpdateTwin patches (PATCH) or replaces (PUT, u.Replace) a device twin's tags and desired
// properties and returns the new twin; u.IfMatch "" is unconditional.
func (c *Client) UpdateTwin(ctx context.Context, deviceID string, u iothub.TwinUpdate) (iothub.Twin, error) {
	return c.updateTwin(ctx, twinPath(deviceID, ""), u)
}

// UpdateModuleTwin is UpdateTwin for a module twin.
func (c *Client) UpdateModuleTwin(ctx context.Context, deviceID, moduleID string, u iothub.TwinUpdate) (iothub.Twin, error) {
	return c.updateTwin(ctx, twinPath(deviceID, moduleID), u)
}

func (c *Client) updateTwin(ctx context.Context, pth string, u iothub.TwinUpdate) (iothub.Twin, error) {
	method := http.MethodPatch
	if u.Replace {
		method = http.MethodPut
	}
	r, err := jsonRequest(method, pth, iothub.NewTwinPatch(u.Tags, u.Desired))
	if err != nil {
		return iothub.Twin{}, err
	}
	if u.IfMatch != "" {
		r.header.Set("If-Match", iothub.QuoteETag(u.IfMatch))
	}
	var t iothub.Twin
	err = c.call(ctx, r, &t)
	return t, err
}

// InvokeMethod calls a direct method on a device (POST /twins/{id}/methods; build req with
// iothub.NewMethodRequest). A device that is not connected gives iothub.ErrDeviceNotOnline
// (404103); no answer in time gives iothub.ErrGatewayTimeout (504101).
func (c *Client) InvokeMethod(ctx context.Context, deviceID string, req iothub.MethodRequest) (iothub.MethodResult, error) {
	return c.invoke(ctx, path("twins", deviceID, "methods"), req)
}

// InvokeModuleMethod calls a direct method on a module.
func (c *Client) InvokeModuleMethod(ctx context.Context, deviceID, moduleID string, req iothub.MethodRequest) (iothub.MethodResult, error) {
	return c.invoke(ctx, path("twins", deviceID, "modules", moduleID, "methods"), req)
}

func (c *Client) invoke(ctx context.Context, p string, req iothub.MethodRequest) (iothub.MethodResult, error) {
	r, err := jsonRequest(http.MethodPost, p, req)
	if err != nil {
		return iothub.MethodResult{}, err
	}
	var res iothub.MethodResult
	err = c.call(ctx, r, &res)
	return res, err
}

// SendC2D sends a cloud-to-device message (POST /devices/{id}/messages/devicebound, a hubkit
// extension; the real hub takes these over AMQP). System properties travel as IoT Hub's HTTP
// headers, application properties as an X-Hubkit-Properties bag so that their names keep
// their case (iothub.C2DMessage.Header); a TTL becomes an absolute expiry.
func (c *Client) SendC2D(ctx context.Context, deviceID string, m iothub.C2DMessage) (iothub.C2DStatus, error) {
	body := m.Payload
	if body == nil {
		body = []byte{}
	}
	var st iothub.C2DStatus
	err := c.call(ctx, request{method: http.MethodPost, path: path("devices", deviceID, "messages", "devicebound"), header: m.Header(c.now()), body: body}, &st)
	return st, err
}

// C2DStatus returns the state of a message sent to a device (iothub.ErrNotFound if none).
func (c *Client) C2DStatus(ctx context.Context, deviceID, messageID string) (iothub.C2DStatus, error) {
	var st iothub.C2DStatus
	err := c.call(ctx, request{method: http.MethodGet, path: path("devices", deviceID, "messages", "devicebound", messageID)}, &st)
	return st, err
}

// WaitC2D waits until a message sent to a device is in a final state (completed, rejected,
// expired, purged) and returns it: it asks GET .../devicebound/{messageId}?wait=SECONDS (a
// hubkit extension) again every iothub.MaxC2DWait until then. When ctx ends first it returns
// the last state seen with ctx's error.
func (c *Client) WaitC2D(ctx context.Context, deviceID, messageID string) (iothub.C2DStatus, error) {
	wait := url.Values{"wait": {strconv.Itoa(int(iothub.MaxC2DWait / time.Second))}}
	var last iothub.C2DStatus
	for {
		var st iothub.C2DStatus
		err := c.call(ctx, request{method: http.MethodGet, path: path("devices", deviceID, "messages", "devicebound", messageID), query: wait}, &st)
		switch {
		case ctx.Err() != nil:
			return last, ctx.Err()
		case err != nil:
			return last, err
		case st.State.Finished():
			return st, nil
		}
		last = st
	}
}

// C2DStatuses lists the messages sent to a device, oldest first.
func (c *Client) C2DStatuses(ctx context.Context, deviceID string) ([]iothub.C2DStatus, error) {
	var sts []iothub.C2DStatus
	err := c.call(ctx, request{method: http.MethodGet, path: path("devices", deviceID, "messages", "devicebound")}, &sts)
	return sts, err
}

// PurgeC2D removes the messages waiting for a device (DELETE
// /devices/{id}/commands, IoT Hub's Purge Cloud To Device Message Queue) and
// returns how many were purged.
func (c *Client) PurgeC2D(ctx context.Context, deviceID string) (int, error) {
	var res iothub.PurgeResult
	err := c.call(ctx, request{method: http.MethodDelete, path: path("devices", deviceID, "commands")}, &res)
	return res.TotalMessagesPurged, err
}

// Feedback lists the delivery feedback of messages sent with Ack other than
// none, oldest first (GET /hubkit/feedback; the real hub delivers these over
// AMQP).
func (c *Client) Feedback(ctx context.Context) ([]iothub.C2DFeedback, error) {
	var fs []iothub.C2DFeedback
	err := c.call(ctx, request{method: http.MethodGet, path: "/hubkit/feedback", hubkit: true}, &fs)
	return fs, err
}

// EventQuery selects telemetry for Events, and rejection records for WatchRejections.
type EventQuery struct {
	DeviceID string    // "" = all devices
	Follow   bool      // keep waiting for new records
	Count    int       // stop after this many (0 = no limit)
	Since    time.Time // zero = from the oldest record kept
}

// values is the query of the stream routes.
func (q EventQuery) values() url.Values {
	v := url.Values{}
	if q.DeviceID != "" {
		v.Set("device", q.DeviceID)
	}
	if q.Follow {
		v.Set("follow", "true")
	}
	if q.Count > 0 {
		v.Set("count", strconv.Itoa(q.Count))
	}
	if !q.Since.IsZero() {
		v.Set("since", q.Since.UTC().Format(time.RFC3339Nano))
	}
	return v
}

// ErrStop, returned by an Events or WatchRejections callback, ends the stream without error.
var ErrStop = errors.New("serviceclient: stop")

// Events reads captured telemetry (GET /hubkit/telemetry, NDJSON) and calls
// fn for each message, oldest first. It returns when the messages captured so
// far are read (or, with q.Follow, when ctx ends: it then returns ctx.Err()),
// after q.Count messages, or when fn returns an error (returned, except
// ErrStop).
func (c *Client) Events(ctx context.Context, q EventQuery, fn func(iothub.Event) error) error {
	return readNDJSON(ctx, c, request{method: http.MethodGet, path: "/hubkit/telemetry", query: q.values(), hubkit: true}, "telemetry stream", fn)
}

// readNDJSON calls fn for each JSON line of the answer to r.
func readNDJSON[T any](ctx context.Context, c *Client, r request, what string, fn func(T) error) error {
	resp, err := c.do(ctx, r)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64*1024), 4<<20)
	for sc.Scan() {
		var rec T
		if err := json.Unmarshal(sc.Bytes(), &rec); err != nil {
			return fmt.Errorf("%s: %w", what, err)
		}
		if err := fn(rec); err != nil {
			if errors.Is(err, ErrStop) {
				return nil
			}
			return err
		}
	}
	if ctx.Err() != nil {
		return ctx.Err()
	}
	return sc.Err()
}

// Rejections lists the connections the hub refused or closed, oldest first.
func (c *Client) Rejections(ctx context.Context) ([]iothub.Rejection, error) {
	var rs []iothub.Rejection
	err := c.call(ctx, request{method: http.MethodGet, path: "/hubkit/rejections", hubkit: true}, &rs)
	return rs, err
}

// WatchRejections reads the rejection log (GET /hubkit/rejections) under the rule of
// Events and calls fn for each record, oldest first: without q.Follow the records the hub
// holds (of q.DeviceID, from q.Since, at most q.Count), with it the records from now on
// (from q.Since when set) until ctx ends (then it returns ctx.Err()) or q.Count records
// were read. An error from fn is returned, except ErrStop.
func (c *Client) WatchRejections(ctx context.Context, q EventQuery, fn func(iothub.Rejection) error) error {
	r := request{method: http.MethodGet, path: "/hubkit/rejections", query: q.values(), hubkit: true}
	if q.Follow {
		return readNDJSON(ctx, c, r, "rejection stream", fn)
	}
	var rs []iothub.Rejection // a listing is one JSON array
	if err := c.call(ctx, r, &rs); err != nil {
		return err
	}
	for _, rj := range rs {
		if err := fn(rj); err != nil {
			if errors.Is(err, ErrStop) {
				return nil
			}
			return err
		}
	}
	return nil
}

// Clock reads a hubkit hub's movable clock (GET /hubkit/clock, a hubkit extension).
func (c *Client) Clock(ctx context.Context) (iothub.ClockReading, error) {
	var out iothub.ClockReading
	err := c.call(ctx, request{method: http.MethodGet, path: "/hubkit/clock", hubkit: true}, &out)
	return out, err
}

// MoveClock moves a hubkit hub's clock (POST /hubkit/clock): advance it, set it, or reset it
// to the real time.
func (c *Client) MoveClock(ctx context.Context, ch iothub.ClockChange) (iothub.ClockReading, error) {
	r, err := jsonRequest(http.MethodPost, "/hubkit/clock", ch)
	if err != nil {
		return iothub.ClockReading{}, err
	}
	r.hubkit = true
	var out iothub.ClockReading
	err = c.call(ctx, r, &out)
	return out, err
}

// Fault injects a service-side fault into a hubkit hub (POST /hubkit/faults).
func (c *Client) Fault(ctx context.Context, f iothub.FaultRequest) (iothub.FaultResult, error) {
	r, err := jsonRequest(http.MethodPost, "/hubkit/faults", f)
	if err != nil {
		return iothub.FaultResult{}, err
	}
	r.hubkit = true
	var out iothub.FaultResult
	err = c.call(ctx, r, &out)
	return out, err
}

// Limits reads a hubkit hub's throttles and daily quota, and how much of the day's quota is
// used (GET /hubkit/limits, a hubkit extension).
func (c *Client) Limits(ctx context.Context) (iothub.LimitsStatus, error) {
	var out iothub.LimitsStatus
	err := c.call(ctx, request{method: http.MethodGet, path: "/hubkit/limits", hubkit: true}, &out)
	return out, err
}

// SetLimits replaces a hubkit hub's throttles and daily quota while it runs (PUT
// /hubkit/limits): effective at once for new operations; a throttle that changed starts with
// a full burst, and the day's quota count is kept. The zero Limits removes every limit.
func (c *Client) SetLimits(ctx context.Context, l iothub.Limits) (iothub.LimitsStatus, error) {
	r, err := jsonRequest(http.MethodPut, "/hubkit/limits", l)
	if err != nil {
		return iothub.LimitsStatus{}, err
	}
	r.hubkit = true
	var out iothub.LimitsStatus
	err = c.call(ctx, r, &out)
	return out, err
}

// Reset clears the hub's run-time state between tests (POST /hubkit/reset, a hubkit
// extension): the parts named ("telemetry", "rejections", "c2d", "twins"), or all of them.
// Devices, keys and connections stay.
func (c *Client) Reset(ctx context.Context, parts ...string) error {
	v := url.Values{}
	if len(parts) > 0 {
		v.Set("what", strings.Join(parts, ","))
	}
	return c.call(ctx, request{method: http.MethodPost, path: "/hubkit/reset", query: v, hubkit: true}, nil)
}
