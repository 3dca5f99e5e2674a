package serviceclient

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"time"

	"github.com/hubkit/hubkit/pkg/fakehub/internal/restapi"
	"github.com/hubkit/hubkit/pkg/iothub"
)

// Twin is a device or module twin as the service sees it.
type Twin struct {
	DeviceID        string
	ModuleID        string
	ETag            string
	Version         int64
	Status          string
	ConnectionState string
	Tags            json.RawMessage // JSON object, nil when the twin has no tags
	Desired         json.RawMessage // JSON object with "$version"
	Reported        json.RawMessage // JSON object with "$version"
}

// TwinPatch changes a twin's tags and desired properties. Nil fields are left
// alone. Without Replace, Tags and Desired are JSON merge patches (null
// deletes a key); with Replace they replace the sections (PUT /twins/{id}).
// IfMatch is "" (unconditional) or the twin ETag the caller read.
type TwinPatch struct {
	Tags    json.RawMessage
	Desired json.RawMessage
	Replace bool
	IfMatch string
}

// Twin returns a device twin (GET /twins/{id}).
func (c *Client) Twin(ctx context.Context, deviceID string) (Twin, error) {
	return c.twin(ctx, twinPath(deviceID, ""))
}

// ModuleTwin returns a module twin (GET /twins/{id}/modules/{mid}).
func (c *Client) ModuleTwin(ctx context.Context, deviceID, moduleID string) (Twin, error) {
	return c.twin(ctx, twinPath(deviceID, moduleID))
}

func twinPath(deviceID, moduleID string) string {
	if moduleID == "" {
		return path("twins", deviceID)
	}
	return path("twins", deviceID, "modules", moduleID)
}

func (c *Client) twin(ctx context.Context, p string) (Twin, error) {
	var j restapi.TwinJSON
	if err := c.call(ctx, request{method: http.MethodGet, path: p}, &j); err != nil {
		return Twin{}, err
	}
	return fromTwinJSON(j), nil
}

func fromTwinJSON(j restapi.TwinJSON) Twin {
	return Twin{DeviceID: j.DeviceID, ModuleID: j.ModuleID, ETag: j.ETag, Version: j.Version, Status: j.Status,
		ConnectionState: j.ConnectionState, Tags: j.Tags, Desired: j.Properties.Desired, Reported: j.Properties.Reported}
}

// UpdateTwin patches (PATCH) or replaces (PUT, p.Replace) a device twin's
// tags and desired properties and returns the new twin.
func (c *Client) UpdateTwin(ctx context.Context, deviceID string, p TwinPatch) (Twin, error) {
	return c.updateTwin(ctx, twinPath(deviceID, ""), p)
}

// UpdateModuleTwin is UpdateTwin for a module twin.
func (c *Client) UpdateModuleTwin(ctx context.Context, deviceID, moduleID string, p TwinPatch) (Twin, error) {
	return c.updateTwin(ctx, twinPath(deviceID, moduleID), p)
}

func (c *Client) updateTwin(ctx context.Context, pth string, p TwinPatch) (Twin, error) {
	body := map[string]any{}
	if p.Tags != nil {
		body["tags"] = p.Tags
	}
	if p.Desired != nil {
		body["properties"] = map[string]any{"desired": p.Desired}
	}
	method := http.MethodPatch
	if p.Replace {
		method = http.MethodPut
	}
	r, err := jsonRequest(method, pth, body)
	if err != nil {
		return Twin{}, err
	}
	if p.IfMatch != "" {
		r.header.Set("If-Match", quoteETag(p.IfMatch))
	}
	var j restapi.TwinJSON
	if err := c.call(ctx, r, &j); err != nil {
		return Twin{}, err
	}
	return fromTwinJSON(j), nil
}

// MethodCall is a direct method invocation.
type MethodCall struct {
	Name            string
	Payload         json.RawMessage // JSON; nil sends null
	ResponseTimeout time.Duration   // 5s..300s; 0 = the hub's default (30s)
	ConnectTimeout  time.Duration   // 0..300s; 0 = the device must be online now
}

// MethodResult is the device's answer.
type MethodResult struct {
	Status  int             `json:"status"`
	Payload json.RawMessage `json:"payload"`
}

// InvokeMethod calls a direct method on a device (POST /twins/{id}/methods).
// A device that is not connected gives an *Error with Code DeviceNotOnline
// (404); no answer in time gives GatewayTimeout (504).
func (c *Client) InvokeMethod(ctx context.Context, deviceID string, m MethodCall) (MethodResult, error) {
	return c.invoke(ctx, path("twins", deviceID, "methods"), m)
}

// InvokeModuleMethod calls a direct method on a module.
func (c *Client) InvokeModuleMethod(ctx context.Context, deviceID, moduleID string, m MethodCall) (MethodResult, error) {
	return c.invoke(ctx, path("twins", deviceID, "modules", moduleID, "methods"), m)
}

func (c *Client) invoke(ctx context.Context, p string, m MethodCall) (MethodResult, error) {
	body := map[string]any{"methodName": m.Name, "payload": json.RawMessage("null")}
	if m.Payload != nil {
		body["payload"] = m.Payload
	}
	if m.ResponseTimeout > 0 {
		body["responseTimeoutInSeconds"] = int(m.ResponseTimeout / time.Second)
	}
	body["connectTimeoutInSeconds"] = int(m.ConnectTimeout / time.Second)
	r, err := jsonRequest(http.MethodPost, p, body)
	if err != nil {
		return MethodResult{}, err
	}
	var res MethodResult
	err = c.call(ctx, r, &res)
	return res, err
}

// Message is a cloud-to-device message.
type Message struct {
	MessageID       string // empty: the hub generates one
	CorrelationID   string
	UserID          string
	To              string
	Ack             string    // "none", "positive", "negative", "full"; empty = none
	Expiry          time.Time // zero = the hub's default TTL
	ContentType     string
	ContentEncoding string
	Properties      map[string]string // application properties (case preserved)
	Body            []byte
}

// MessageState is what the hub knows about a cloud-to-device message.
type MessageState struct {
	DeviceID     string    `json:"deviceId"`
	ModuleID     string    `json:"moduleId,omitempty"`
	MessageID    string    `json:"messageId"`
	State        string    `json:"state"` // queued, delivered, completed, rejected, expired, purged
	EnqueuedTime time.Time `json:"enqueuedTime"`
	UpdatedTime  time.Time `json:"updatedTime"`
	Detail       string    `json:"detail,omitempty"`
}

// SendC2D sends a cloud-to-device message (POST
// /devices/{id}/messages/devicebound, a hubkit extension; the real hub takes
// these over AMQP). System properties travel as IoT Hub's HTTP headers,
// application properties as an X-Hubkit-Properties property bag so that
// their names keep their case.
func (c *Client) SendC2D(ctx context.Context, deviceID string, m Message) (MessageState, error) {
	h := http.Header{}
	set := func(k, v string) {
		if v != "" {
			h.Set(k, v)
		}
	}
	set(restapi.HeaderMessageID, m.MessageID)
	set(restapi.HeaderCorrelationID, m.CorrelationID)
	set(restapi.HeaderUserID, m.UserID)
	set(restapi.HeaderTo, m.To)
	set(restapi.HeaderAck, m.Ack)
	set(restapi.HeaderContentType, m.ContentType)
	set(restapi.HeaderContentEncoding, m.ContentEncoding)
	if !m.Expiry.IsZero() {
		h.Set(restapi.HeaderExpiry, m.Expiry.UTC().Format(time.RFC3339Nano))
	}
	if len(m.Properties) > 0 {
		var ps iothub.Properties
		for _, k := range slices.Sorted(maps.Keys(m.Properties)) {
			ps = append(ps, iothub.Property{Key: k, Value: m.Properties[k]})
		}
		h.Set(restapi.HeaderProperties, ps.Encode())
	}
	set("Content-Type", m.ContentType)
	body := m.Body
	if body == nil {
		body = []byte{}
	}
	var st MessageState
	err := c.call(ctx, request{method: http.MethodPost, path: path("devices", deviceID, "messages", "devicebound"), header: h, body: body}, &st)
	return st, err
}

// MessageState returns the state of a message sent to a device.
func (c *Client) MessageState(ctx context.Context, deviceID, messageID string) (MessageState, error) {
	var st MessageState
	err := c.call(ctx, request{method: http.MethodGet, path: path("devices", deviceID, "messages", "devicebound", messageID)}, &st)
	return st, err
}

// MessageStates lists the messages sent to a device, oldest first.
func (c *Client) MessageStates(ctx context.Context, deviceID string) ([]MessageState, error) {
	var sts []MessageState
	err := c.call(ctx, request{method: http.MethodGet, path: path("devices", deviceID, "messages", "devicebound")}, &sts)
	return sts, err
}

// PurgeC2D removes the messages waiting for a device (DELETE
// /devices/{id}/commands, IoT Hub's Purge Cloud To Device Message Queue) and
// returns how many were purged.
func (c *Client) PurgeC2D(ctx context.Context, deviceID string) (int, error) {
	var res struct {
		TotalMessagesPurged int `json:"totalMessagesPurged"`
	}
	err := c.call(ctx, request{method: http.MethodDelete, path: path("devices", deviceID, "commands")}, &res)
	return res.TotalMessagesPurged, err
}

// Feedback is one cloud-to-device delivery feedback record.
type Feedback struct {
	OriginalMessageID string    `json:"originalMessageId"`
	DeviceID          string    `json:"deviceId"`
	ModuleID          string    `json:"moduleId,omitempty"`
	StatusCode        string    `json:"statusCode"` // Success, Expired, Rejected, Purged, DeliveryCountExceeded
	Description       string    `json:"description"`
	EnqueuedTime      time.Time `json:"enqueuedTimeUtc"`
}

// Feedback lists the delivery feedback of messages sent with Ack other than
// none, oldest first (GET /hubkit/feedback; the real hub delivers these over
// AMQP).
func (c *Client) Feedback(ctx context.Context) ([]Feedback, error) {
	var fs []Feedback
	err := c.call(ctx, request{method: http.MethodGet, path: "/hubkit/feedback", hubkit: true}, &fs)
	return fs, err
}

// Event is one device-to-cloud (telemetry) message the hub captured.
type Event struct {
	DeviceID         string            `json:"deviceId"`
	ModuleID         string            `json:"moduleId,omitempty"`
	EnqueuedTime     time.Time         `json:"enqueuedTime"`
	Topic            string            `json:"topic,omitempty"`
	SystemProperties map[string]string `json:"systemProperties,omitempty"`
	Properties       map[string]string `json:"properties,omitempty"`
	Annotations      map[string]string `json:"annotations,omitempty"` // stamped by the hub: iothub-connection-device-id, ...
	Payload          json.RawMessage   `json:"payload,omitempty"`     // body as JSON, or as a JSON string if UTF-8 text
	Body             []byte            `json:"bodyBase64"`            // the exact body
}

// EventQuery selects telemetry for Events.
type EventQuery struct {
	DeviceID string    // "" = all devices
	Follow   bool      // keep waiting for new messages
	Count    int       // stop after this many (0 = no limit)
	Since    time.Time // zero = from the oldest message kept
}

// ErrStop, returned by an Events callback, ends the stream without error.
var ErrStop = errors.New("serviceclient: stop")

// Events reads captured telemetry (GET /hubkit/telemetry, NDJSON) and calls
// fn for each message, oldest first. It returns when the messages captured so
// far are read (or, with q.Follow, when ctx ends: it then returns ctx.Err()),
// after q.Count messages, or when fn returns an error (returned, except
// ErrStop).
func (c *Client) Events(ctx context.Context, q EventQuery, fn func(Event) error) error {
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
	resp, err := c.do(ctx, request{method: http.MethodGet, path: "/hubkit/telemetry", query: v, hubkit: true})
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64*1024), 4<<20)
	for sc.Scan() {
		var e Event
		if err := json.Unmarshal(sc.Bytes(), &e); err != nil {
			return fmt.Errorf("telemetry stream: %w", err)
		}
		if err := fn(e); err != nil {
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

// Rejection is a connection the hub refused, with the pkg/sas verdict.
type Rejection struct {
	Time       time.Time `json:"time"`
	RemoteAddr string    `json:"remoteAddr,omitempty"`
	ClientID   string    `json:"clientId,omitempty"`
	DeviceID   string    `json:"deviceId,omitempty"`
	ModuleID   string    `json:"moduleId,omitempty"`
	Reason     string    `json:"reason"`
	Detail     string    `json:"detail,omitempty"`
	Hints      []string  `json:"hints,omitempty"`
}

// Rejections lists the connections the hub refused, oldest first.
func (c *Client) Rejections(ctx context.Context) ([]Rejection, error) {
	var rs []Rejection
	err := c.call(ctx, request{method: http.MethodGet, path: "/hubkit/rejections", hubkit: true}, &rs)
	return rs, err
}
