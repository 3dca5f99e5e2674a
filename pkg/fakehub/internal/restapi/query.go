package restapi

import (
	"encoding/base64"
	"encoding/json"
	"net/http"
	"strconv"
	"strings"

	"github.com/hubkit/hubkit/pkg/fakehub/internal/query"
	"github.com/hubkit/hubkit/pkg/iothub"
)

// Query paging (docs/iothub-behavior.md §13.5): the page size comes from x-ms-max-item-count
// (default and bounds below), the position from the opaque x-ms-continuation token the
// previous page answered with. The answer names its item type in x-ms-item-type, which the
// .NET and Python service SDKs read.
const (
	headerContinuation = "x-ms-continuation"
	headerMaxItemCount = "x-ms-max-item-count"
	headerItemType     = "x-ms-item-type"
	defaultPageSize    = 100
	maxPageSize        = 1000
)

// queryTwins is "Query IoT Hub" (POST /devices/query, body {"query": "SELECT ..."}): the
// twins matching the query, one page at a time, in device ID (then module ID) order.
func (h *handler) queryTwins(w http.ResponseWriter, r *http.Request) {
	var in struct {
		Query *string `json:"query"`
	}
	if err := readJSON(r, &in); err != nil {
		h.writeError(w, err)
		return
	}
	if in.Query == nil {
		h.writeError(w, iothub.Errorf(iothub.CodeArgumentInvalid, `the body must be {"query": "SELECT * FROM devices ..."}`))
		return
	}
	q, err := query.Parse(*in.Query)
	if err != nil {
		h.writeError(w, iothub.Errorf(iothub.CodeArgumentInvalid, "%v", err))
		return
	}
	size := defaultPageSize
	if v := r.Header.Get(headerMaxItemCount); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > maxPageSize {
			h.writeError(w, iothub.Errorf(iothub.CodeArgumentInvalid, "%s must be an integer from 1 to %d, got %q", headerMaxItemCount, maxPageSize, v))
			return
		}
		size = n
	}
	after, err := decodeContinuation(r.Header.Get(headerContinuation))
	if err != nil {
		h.writeError(w, err)
		return
	}
	twins, err := h.b.Twins(r.Context(), q.Modules)
	if err != nil {
		h.writeError(w, err)
		return
	}
	page := []iothub.Twin{}
	more := false
	for _, t := range twins {
		if after != "" && key(t) <= after {
			continue
		}
		if !matches(q, t) {
			continue
		}
		if len(page) == size {
			more = true
			break
		}
		page = append(page, t)
	}
	// IoT Hub bills a query by its result, in meter chunks (docs/iothub-behavior.md §14.9).
	body, err := json.Marshal(page)
	if err != nil {
		h.writeError(w, err)
		return
	}
	if err := h.b.MeterQuery(r.Context(), len(body)); err != nil {
		h.writeError(w, err)
		return
	}
	w.Header().Set(headerItemType, "twin")
	if more {
		w.Header().Set(headerContinuation, encodeContinuation(key(page[len(page)-1])))
	}
	writeJSON(w, http.StatusOK, json.RawMessage(body))
}

// key orders twins as the backend lists them: device ID, then module ID ("\x00" sorts
// before any ID character).
func key(t iothub.Twin) string { return t.DeviceID + "\x00" + t.ModuleID }

func matches(q *query.Query, t iothub.Twin) bool {
	b, err := json.Marshal(t)
	if err != nil {
		return false
	}
	var doc map[string]any
	if json.Unmarshal(b, &doc) != nil {
		return false
	}
	return q.Match(doc)
}

// A continuation token is the key of the last twin served, base64url-encoded behind a
// version prefix: opaque to clients, as IoT Hub's are.
const continuationPrefix = "hubkit1:"

func encodeContinuation(k string) string {
	return base64.RawURLEncoding.EncodeToString([]byte(continuationPrefix + k))
}

func decodeContinuation(s string) (string, error) {
	if s == "" {
		return "", nil
	}
	b, err := base64.RawURLEncoding.DecodeString(s)
	k, ok := strings.CutPrefix(string(b), continuationPrefix)
	if err != nil || !ok || k == "" {
		return "", &iothub.Error{Code: iothub.CodeArgumentInvalid, Message: headerContinuation + " is not a continuation token this hub issued (send back the header value of the previous page as is)"}
	}
	return k, nil
}
