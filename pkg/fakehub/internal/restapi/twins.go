package restapi

import (
	"bytes"
	"encoding/json"
	"net/http"

	"github.com/hubkit/hubkit/pkg/iothub"
)

func (h *handler) getTwin(w http.ResponseWriter, r *http.Request) {
	id, err := identity(r)
	if err != nil {
		h.writeError(w, err)
		return
	}
	t, err := h.b.Twin(r.Context(), id)
	if err != nil {
		h.writeError(w, err)
		return
	}
	writeTwin(w, t)
}

func writeTwin(w http.ResponseWriter, t iothub.Twin) {
	if t.ETag != "" {
		w.Header().Set("ETag", `"`+t.ETag+`"`)
	}
	writeJSON(w, http.StatusOK, t)
}

// updateTwin is Update Twin (PATCH: JSON merge patch of tags and desired properties) and
// Replace Twin (PUT), with If-Match.
func (h *handler) updateTwin(w http.ResponseWriter, r *http.Request) {
	id, err := identity(r)
	if err != nil {
		h.writeError(w, err)
		return
	}
	var in iothub.TwinPatch
	if err := readJSON(r, &in); err != nil {
		h.writeError(w, err)
		return
	}
	u := iothub.TwinUpdate{Tags: nullToNil(in.Tags), Replace: r.Method == http.MethodPut, IfMatch: iothub.UnquoteETag(r.Header.Get("If-Match"))}
	if p := in.Properties; p != nil {
		if len(nullToNil(p.Reported)) > 0 && !isEmptyObject(p.Reported) {
			h.writeError(w, iothub.Errorf(iothub.CodeArgumentInvalid, "properties.reported is read-only for the service; only tags and properties.desired can be changed"))
			return
		}
		u.Desired = nullToNil(p.Desired)
	}
	for _, sec := range []struct {
		name string
		v    json.RawMessage
	}{{"tags", u.Tags}, {"properties.desired", u.Desired}} {
		if sec.v != nil && !isObject(sec.v) {
			h.writeError(w, iothub.Errorf(iothub.CodeArgumentInvalid, "%s must be a JSON object", sec.name))
			return
		}
	}
	t, err := h.b.UpdateTwin(r.Context(), id, u)
	if err != nil {
		h.writeError(w, err)
		return
	}
	writeTwin(w, t)
}

func nullToNil(m json.RawMessage) json.RawMessage {
	if t := bytes.TrimSpace(m); len(t) == 0 || bytes.Equal(t, []byte("null")) {
		return nil
	}
	return m
}

func isObject(m json.RawMessage) bool {
	t := bytes.TrimSpace(m)
	return len(t) > 0 && t[0] == '{'
}

func isEmptyObject(m json.RawMessage) bool {
	var v map[string]json.RawMessage
	return json.Unmarshal(m, &v) == nil && len(v) == 0
}

func (h *handler) invokeMethod(w http.ResponseWriter, r *http.Request) {
	id, err := identity(r)
	if err != nil {
		h.writeError(w, err)
		return
	}
	var req iothub.MethodRequest
	if err := readJSON(r, &req); err != nil {
		h.writeError(w, err)
		return
	}
	response, connect, err := req.Timeouts()
	if err != nil {
		h.writeError(w, err)
		return
	}
	payload := req.Payload
	if bytes.Equal(bytes.TrimSpace(payload), []byte("null")) {
		payload = nil
	}
	res, err := h.b.InvokeMethod(r.Context(), id, req.MethodName, payload, response, connect)
	if err != nil {
		h.writeError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, res)
}
