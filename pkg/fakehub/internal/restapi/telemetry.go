package restapi

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/url"
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
	tq, count, err := streamQuery(r.URL.Query())
	if err != nil {
		h.writeError(w, err)
		return
	}
	rd, err := h.b.Telemetry(r.Context(), tq)
	if err != nil {
		h.writeError(w, err)
		return
	}
	defer rd.Close()
	writeNDJSON(h, w, r, count, rd, "telemetry stream ended")
}

// rejections lists the rejection log as one JSON array (?device=ID, ?since=RFC3339,
// ?count=N: the first N), or with ?follow=true streams it as newline-delimited JSON, as
// telemetry does: the records from now on (with since: from then), until the client goes
// away or count is reached.
func (h *handler) rejections(w http.ResponseWriter, r *http.Request) {
	q, count, err := streamQuery(r.URL.Query())
	if err != nil {
		h.writeError(w, err)
		return
	}
	ctx := r.Context()
	rd, err := h.b.Rejections(ctx, q)
	if err != nil {
		h.writeError(w, err)
		return
	}
	defer rd.Close()
	if q.Follow {
		writeNDJSON(h, w, r, count, rd, "rejection stream ended")
		return
	}
	rs := []iothub.Rejection{}
	for count == 0 || len(rs) < count {
		rec, err := rd.Next(ctx)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			h.writeError(w, err)
			return
		}
		rs = append(rs, rec)
	}
	writeJSON(w, http.StatusOK, rs)
}

// streamQuery reads the parameters the stream routes share: device, since, follow, count.
func streamQuery(q url.Values) (StreamQuery, int, error) {
	sq := StreamQuery{DeviceID: q.Get("device")}
	count := 0
	var err error
	if v := q.Get("follow"); v != "" {
		if sq.Follow, err = strconv.ParseBool(v); err != nil {
			return sq, 0, iothub.Errorf(iothub.CodeArgumentInvalid, "follow must be true or false, got %q", v)
		}
	}
	if v := q.Get("count"); v != "" {
		if count, err = strconv.Atoi(v); err != nil || count < 0 {
			return sq, 0, iothub.Errorf(iothub.CodeArgumentInvalid, "count must be a non-negative integer, got %q", v)
		}
	}
	if v := q.Get("since"); v != "" {
		if sq.Since, err = time.Parse(time.RFC3339Nano, v); err != nil {
			return sq, 0, iothub.Errorf(iothub.CodeArgumentInvalid, "since must be an RFC 3339 time, got %q", v)
		}
	}
	return sq, count, nil
}

// writeNDJSON answers 200 and writes what rd yields, one JSON object per line, each
// flushed, until rd ends, the client goes away or count records (0: no limit) are written.
func writeNDJSON[T any](h *handler, w http.ResponseWriter, r *http.Request, count int, rd Reader[T], ended string) {
	ctx := r.Context()
	w.Header().Set("Content-Type", "application/x-ndjson")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusOK)
	rc := http.NewResponseController(w)
	_ = rc.Flush() // the client sees the 200 before the first record
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false) // keep '&' in topics readable, as writeJSON does
	for n := 0; count == 0 || n < count; n++ {
		rec, err := rd.Next(ctx)
		if err != nil {
			if !errors.Is(err, io.EOF) && !errors.Is(err, context.Canceled) && ctx.Err() == nil {
				h.log.Error(ended, "err", err)
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
