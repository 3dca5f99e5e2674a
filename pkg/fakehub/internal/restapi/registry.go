package restapi

import (
	"encoding/json"
	"io"
	"net/http"
	"strconv"

	"github.com/hubkit/hubkit/pkg/iothub"
)

// maxJSONBody bounds request bodies other than C2D messages.
const maxJSONBody = 1 << 20

// identity returns the device or module named by the path, validated.
func identity(r *http.Request) (iothub.Identity, error) {
	id := iothub.Identity{DeviceID: r.PathValue("id"), ModuleID: r.PathValue("mid")}
	if err := iothub.ValidateID(id.DeviceID); err != nil {
		return id, &iothub.Error{Code: iothub.CodeArgumentInvalid, Message: err.Error(), Err: err}
	}
	if id.ModuleID != "" {
		if err := iothub.ValidateID(id.ModuleID); err != nil {
			return id, &iothub.Error{Code: iothub.CodeArgumentInvalid, Message: err.Error(), Err: err}
		}
	}
	return id, nil
}

// readJSON decodes a JSON request body into v.
func readJSON(r *http.Request, v any) error {
	body, err := io.ReadAll(io.LimitReader(r.Body, maxJSONBody+1))
	if err != nil {
		return iothub.Errorf(iothub.CodeArgumentInvalid, "reading the body: %v", err)
	}
	if len(body) > maxJSONBody {
		return iothub.Errorf(iothub.CodeMessageTooLarge, "the body is larger than %d bytes", maxJSONBody)
	}
	if err := json.Unmarshal(body, v); err != nil {
		return iothub.Errorf(iothub.CodeIotHubFormatError, "malformed JSON body: %v", err)
	}
	return nil
}

func (h *handler) listDevices(w http.ResponseWriter, r *http.Request) {
	ds, err := h.b.Devices(r.Context())
	if err != nil {
		h.writeError(w, err)
		return
	}
	if top := r.URL.Query().Get("top"); top != "" {
		n, err := strconv.Atoi(top)
		if err != nil || n < 0 || n > 1000 {
			h.writeError(w, iothub.Errorf(iothub.CodeArgumentInvalid, "top must be an integer from 0 to 1000, got %q", top))
			return
		}
		if n > 0 && n < len(ds) {
			ds = ds[:n]
		}
	}
	writeJSON(w, http.StatusOK, nonNil(ds))
}

func (h *handler) listModules(w http.ResponseWriter, r *http.Request) {
	id, err := identity(r)
	if err != nil {
		h.writeError(w, err)
		return
	}
	ms, err := h.b.Modules(r.Context(), id.DeviceID)
	if err != nil {
		h.writeError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, nonNil(ms))
}

// nonNil renders an empty list as [] rather than null.
func nonNil[T any](s []T) []T {
	if s == nil {
		return []T{}
	}
	return s
}

func (h *handler) getIdentity(w http.ResponseWriter, r *http.Request) {
	id, err := identity(r)
	if err != nil {
		h.writeError(w, err)
		return
	}
	d, err := h.b.Device(r.Context(), id)
	if err != nil {
		h.writeError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, d)
}

func (h *handler) deleteIdentity(w http.ResponseWriter, r *http.Request) {
	id, err := identity(r)
	if err != nil {
		h.writeError(w, err)
		return
	}
	if err := h.b.DeleteDevice(r.Context(), id, r.Header.Get("If-Match")); err != nil {
		h.writeError(w, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// putIdentity is "Create Or Update Identity": no If-Match creates (409 if the identity
// exists), "If-Match: *" creates or updates, an etag updates that version only. Missing keys
// are generated on create and kept on update.
func (h *handler) putIdentity(w http.ResponseWriter, r *http.Request) {
	id, err := identity(r)
	if err != nil {
		h.writeError(w, err)
		return
	}
	var in iothub.Device
	if err := readJSON(r, &in); err != nil {
		h.writeError(w, err)
		return
	}
	if in.DeviceID != "" && in.DeviceID != id.DeviceID {
		h.writeError(w, iothub.Errorf(iothub.CodeArgumentInvalid, "deviceId %q in the body does not match %q in the path", in.DeviceID, id.DeviceID))
		return
	}
	if id.IsModule() && in.ModuleID != "" && in.ModuleID != id.ModuleID {
		h.writeError(w, iothub.Errorf(iothub.CodeArgumentInvalid, "moduleId %q in the body does not match %q in the path", in.ModuleID, id.ModuleID))
		return
	}
	in.DeviceID, in.ModuleID = id.DeviceID, id.ModuleID
	stored, err := h.b.PutDevice(r.Context(), in, r.Header.Get("If-Match"))
	if err != nil {
		h.writeError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, stored)
}
