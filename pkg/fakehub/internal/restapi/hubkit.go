package restapi

import (
	"bytes"
	"encoding/json"
	"net/http"

	"github.com/hubkit/hubkit/pkg/iothub"
)

// Extensions that drive the hub in tests: its movable clock, service-side faults and its
// limits (docs/iothub-behavior.md §14). GET /hubkit/clock needs no token: the time is no secret,
// and a device under test in another process reads it the way it would ask a time server.

func (h *handler) getClock(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, h.b.Clock(r.Context()))
}

func (h *handler) moveClock(w http.ResponseWriter, r *http.Request) {
	var in iothub.ClockChange
	if err := readJSON(r, &in); err != nil {
		h.writeError(w, err)
		return
	}
	out, err := h.b.MoveClock(r.Context(), in)
	if err != nil {
		h.writeError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, out)
}

func (h *handler) fault(w http.ResponseWriter, r *http.Request) {
	var in iothub.FaultRequest
	if err := readJSON(r, &in); err != nil {
		h.writeError(w, err)
		return
	}
	out, err := h.b.Fault(r.Context(), in)
	if err != nil {
		h.writeError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, out)
}

func (h *handler) getLimits(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, h.b.Limits(r.Context()))
}

// putLimits replaces the limits. Unknown members are refused (a misspelt "twinRead" would
// otherwise remove the twin-read throttle without a word).
func (h *handler) putLimits(w http.ResponseWriter, r *http.Request) {
	var raw json.RawMessage
	if err := readJSON(r, &raw); err != nil {
		h.writeError(w, err)
		return
	}
	var in iothub.Limits
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&in); err != nil {
		h.writeError(w, iothub.Errorf(iothub.CodeArgumentInvalid, "limits: %v (members: connections, d2c, c2d, twinReads, twinUpdates, methods, registry as {\"perSecond\",\"burst\",\"backlog\"}; dailyMessages; meterSize)", err))
		return
	}
	out, err := h.b.SetLimits(r.Context(), in)
	if err != nil {
		h.writeError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, out)
}
