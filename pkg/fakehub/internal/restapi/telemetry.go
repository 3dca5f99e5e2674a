package restapi

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/hubkit/hubkit/pkg/iothub"
)

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
			h.writeError(w, iothub.Errorf(iothub.CodeArgumentInvalid, "follow must be true or false, got %q", v))
			return
		}
	}
	if v := q.Get("count"); v != "" {
		if count, err = strconv.Atoi(v); err != nil || count < 0 {
			h.writeError(w, iothub.Errorf(iothub.CodeArgumentInvalid, "count must be a non-negative integer, got %q", v))
			return
		}
	}
	if v := q.Get("since"); v != "" {
		if tq.Since, err = time.Parse(time.RFC3339Nano, v); err != nil {
			h.writeError(w, iothub.Errorf(iothub.CodeArgumentInvalid, "since must be an RFC 3339 time, got %q", v))
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
	enc.SetEscapeHTML(false) // keep '&' in topics readable, as writeJSON does
	for n := 0; count == 0 || n < count; n++ {
		rec, err := rd.Next(ctx)
		if err != nil {
			if !errors.Is(err, io.EOF) && !errors.Is(err, context.Canceled) && ctx.Err() == nil {
				h.log.Error("telemetry stream ended", "err", err)
			}
			return
		}
		if err := enc.Encode(rec); err != nil {
			return // the client went away
		}
		if err := rc.Flush(); err != nil {
			return
		}
	}
}

func (h *handler) rejections(w http.ResponseWriter, r *http.Request) {
	rs, err := h.b.Rejections(r.Context())
	if err != nil {
		h.writeError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, nonNil(rs))
}

// reset clears run-time state between tests: ?what=telemetry,rejections,c2d,twins (default:
// all). 204 No Content.
func (h *handler) reset(w http.ResponseWriter, r *http.Request) {
	var parts []string
	if v := r.URL.Query().Get("what"); v != "" {
		parts = strings.Split(v, ",")
	}
	if err := h.b.Reset(r.Context(), parts); err != nil {
		h.writeError(w, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}
