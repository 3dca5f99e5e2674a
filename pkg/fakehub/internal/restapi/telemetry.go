package restapi

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"time"
	"unicode/utf8"
)

// EventJSON is one captured telemetry message, one line of the NDJSON
// stream of GET /hubkit/telemetry. Payload is the body as JSON when it is
// valid JSON, else as a string when it is UTF-8, else absent (the shape of
// `az iot hub monitor-events`); BodyBase64 is always the exact body.
type EventJSON struct {
	DeviceID         string            `json:"deviceId"`
	ModuleID         string            `json:"moduleId,omitempty"`
	EnqueuedTime     string            `json:"enqueuedTime"`
	Topic            string            `json:"topic,omitempty"`
	SystemProperties map[string]string `json:"systemProperties,omitempty"`
	Properties       map[string]string `json:"properties,omitempty"`
	Annotations      map[string]string `json:"annotations,omitempty"`
	Payload          json.RawMessage   `json:"payload,omitempty"`
	BodyBase64       string            `json:"bodyBase64"`
}

// EventFromRecord renders a telemetry record as a stream line.
func EventFromRecord(rec TelemetryRecord) EventJSON {
	e := EventJSON{
		DeviceID:         rec.Identity.DeviceID,
		ModuleID:         rec.Identity.ModuleID,
		EnqueuedTime:     timeJSON(rec.EnqueuedTime),
		Topic:            rec.Topic,
		SystemProperties: rec.SystemProperties,
		Properties:       rec.Properties,
		Annotations:      rec.Annotations,
		BodyBase64:       base64.StdEncoding.EncodeToString(rec.Body),
	}
	switch {
	case len(rec.Body) > 0 && json.Valid(rec.Body):
		e.Payload = json.RawMessage(rec.Body)
	case utf8.Valid(rec.Body):
		e.Payload, _ = json.Marshal(string(rec.Body))
	}
	return e
}

// telemetry streams captured telemetry as newline-delimited JSON, flushed
// per message: ?device=ID (one device), ?since=RFC3339, ?count=N (stop after
// N), ?follow=true (wait for new messages until the client goes away or
// count is reached).
func (h *handler) telemetry(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	tq := TelemetryQuery{DeviceID: q.Get("device")}
	count := 0
	var err error
	if v := q.Get("follow"); v != "" {
		if tq.Follow, err = strconv.ParseBool(v); err != nil {
			h.writeError(w, fmt.Errorf("%w: follow must be true or false, got %q", ErrInvalid, v))
			return
		}
	}
	if v := q.Get("count"); v != "" {
		if count, err = strconv.Atoi(v); err != nil || count < 0 {
			h.writeError(w, fmt.Errorf("%w: count must be a non-negative integer, got %q", ErrInvalid, v))
			return
		}
	}
	if v := q.Get("since"); v != "" {
		if tq.Since, err = time.Parse(time.RFC3339Nano, v); err != nil {
			h.writeError(w, fmt.Errorf("%w: since must be an RFC 3339 time, got %q", ErrInvalid, v))
			return
		}
	}
	ctx := r.Context()
	rd, err := h.b.Telemetry(ctx, tq)
	if err != nil {
		h.writeError(w, err)
		return
	}
	defer rd.Close()
	w.Header().Set("Content-Type", "application/x-ndjson")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusOK)
	rc := http.NewResponseController(w)
	_ = rc.Flush() // the client sees the 200 before the first message
	enc := json.NewEncoder(w)
	for n := 0; count == 0 || n < count; n++ {
		rec, err := rd.Next(ctx)
		if err != nil {
			if !errors.Is(err, io.EOF) && !errors.Is(err, context.Canceled) && ctx.Err() == nil {
				h.log.Error("telemetry stream ended", "err", err)
			}
			return
		}
		if err := enc.Encode(EventFromRecord(rec)); err != nil {
			return // the client went away
		}
		if err := rc.Flush(); err != nil {
			return
		}
	}
}

// RejectionJSON is one refused connection (GET /hubkit/rejections).
type RejectionJSON struct {
	Time       string   `json:"time"`
	RemoteAddr string   `json:"remoteAddr,omitempty"`
	ClientID   string   `json:"clientId,omitempty"`
	DeviceID   string   `json:"deviceId,omitempty"`
	ModuleID   string   `json:"moduleId,omitempty"`
	Reason     string   `json:"reason"`
	Detail     string   `json:"detail,omitempty"`
	Hints      []string `json:"hints,omitempty"`
}

func (h *handler) rejections(w http.ResponseWriter, r *http.Request) {
	rs, err := h.b.Rejections(r.Context())
	if err != nil {
		h.writeError(w, err)
		return
	}
	out := make([]RejectionJSON, 0, len(rs))
	for _, x := range rs {
		out = append(out, RejectionJSON{
			Time: timeJSON(x.Time), RemoteAddr: x.RemoteAddr, ClientID: x.ClientID,
			DeviceID: x.Identity.DeviceID, ModuleID: x.Identity.ModuleID,
			Reason: x.Reason, Detail: x.Detail, Hints: x.Hints,
		})
	}
	writeJSON(w, http.StatusOK, out)
}
