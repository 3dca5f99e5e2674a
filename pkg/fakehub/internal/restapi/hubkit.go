package restapi

import (
	"net/http"

	"github.com/hubkit/hubkit/pkg/iothub"
)

// Extensions that drive the hub in tests: its movable clock and service-side faults
// (docs/iothub-behavior.md §14). GET /hubkit/clock needs no token: the time is no secret,
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
