package restapi

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"time"

	"github.com/hubkit/hubkit/pkg/iothub"
	"github.com/hubkit/hubkit/pkg/sas"
)

// maxJSONBody bounds request bodies other than C2D messages.
const maxJSONBody = 1 << 20

// DeviceJSON is a device or module identity in IoT Hub's registry JSON
// (api-version 2021-04-12). Module identities have ModuleID and ManagedBy
// and no Status or Capabilities.
type DeviceJSON struct {
	DeviceID                   string              `json:"deviceId"`
	ModuleID                   string              `json:"moduleId,omitempty"`
	ManagedBy                  string              `json:"managedBy,omitempty"`
	GenerationID               string              `json:"generationId"`
	ETag                       string              `json:"etag"`
	ConnectionState            string              `json:"connectionState"`
	Status                     string              `json:"status,omitempty"`
	StatusReason               *string             `json:"statusReason,omitempty"`
	ConnectionStateUpdatedTime string              `json:"connectionStateUpdatedTime"`
	StatusUpdatedTime          string              `json:"statusUpdatedTime,omitempty"`
	LastActivityTime           string              `json:"lastActivityTime"`
	CloudToDeviceMessageCount  int                 `json:"cloudToDeviceMessageCount"`
	Authentication             *AuthenticationJSON `json:"authentication"`
	Capabilities               *CapabilitiesJSON   `json:"capabilities,omitempty"`
}

// AuthenticationJSON is IoT Hub's AuthenticationMechanism.
type AuthenticationJSON struct {
	SymmetricKey   *SymmetricKeyJSON `json:"symmetricKey,omitempty"`
	X509Thumbprint *X509JSON         `json:"x509Thumbprint,omitempty"`
	Type           string            `json:"type"`
}

// SymmetricKeyJSON holds base64 keys.
type SymmetricKeyJSON struct {
	PrimaryKey   string `json:"primaryKey"`
	SecondaryKey string `json:"secondaryKey"`
}

// X509JSON is always empty in fakehub (SAS only), kept for the shape.
type X509JSON struct {
	PrimaryThumbprint   *string `json:"primaryThumbprint"`
	SecondaryThumbprint *string `json:"secondaryThumbprint"`
}

// CapabilitiesJSON is IoT Hub's DeviceCapabilities.
type CapabilitiesJSON struct {
	IoTEdge bool `json:"iotEdge"`
}

// timeJSON renders t as IoT Hub does (the zero time as 0001-01-01T00:00:00Z).
func timeJSON(t time.Time) string { return t.UTC().Format(time.RFC3339Nano) }

func deviceJSON(d Device) DeviceJSON {
	j := DeviceJSON{
		DeviceID:                   d.Identity.DeviceID,
		ModuleID:                   d.Identity.ModuleID,
		ManagedBy:                  d.ManagedBy,
		GenerationID:               d.GenerationID,
		ETag:                       d.ETag,
		ConnectionState:            orDefault(d.ConnectionState, StateDisconnected),
		ConnectionStateUpdatedTime: timeJSON(d.ConnectionStateUpdatedTime),
		LastActivityTime:           timeJSON(d.LastActivityTime),
		CloudToDeviceMessageCount:  d.CloudToDeviceMessageCount,
		Authentication: &AuthenticationJSON{
			SymmetricKey:   &SymmetricKeyJSON{PrimaryKey: d.PrimaryKey, SecondaryKey: d.SecondaryKey},
			X509Thumbprint: &X509JSON{},
			Type:           AuthenticationSAS,
		},
	}
	if !d.Identity.IsModule() {
		j.Status = orDefault(d.Status, StatusEnabled)
		reason := d.StatusReason
		j.StatusReason = &reason
		if reason == "" {
			j.StatusReason = nil
		}
		j.StatusUpdatedTime = timeJSON(d.StatusUpdatedTime)
		j.Capabilities = &CapabilitiesJSON{}
	}
	return j
}

func orDefault(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

// identity returns the device or module named by the path, validated.
func identity(r *http.Request) (iothub.Identity, error) {
	id := iothub.Identity{DeviceID: r.PathValue("id"), ModuleID: r.PathValue("mid")}
	if err := iothub.ValidateID(id.DeviceID); err != nil {
		return id, fmt.Errorf("%w: %v", ErrInvalid, err)
	}
	if id.ModuleID != "" {
		if err := iothub.ValidateID(id.ModuleID); err != nil {
			return id, fmt.Errorf("%w: %v", ErrInvalid, err)
		}
	}
	return id, nil
}

// readJSON decodes a JSON request body into v.
func readJSON(r *http.Request, v any) error {
	body, err := io.ReadAll(io.LimitReader(r.Body, maxJSONBody+1))
	if err != nil {
		return fmt.Errorf("%w: reading body: %v", ErrInvalid, err)
	}
	if len(body) > maxJSONBody {
		return fmt.Errorf("%w: body larger than %d bytes", ErrMessageTooLarge, maxJSONBody)
	}
	if err := json.Unmarshal(body, v); err != nil {
		return fmt.Errorf("%w: %v", ErrFormat, err)
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
			h.writeError(w, fmt.Errorf("%w: top must be an integer from 0 to 1000, got %q", ErrInvalid, top))
			return
		}
		if n > 0 && n < len(ds) {
			ds = ds[:n]
		}
	}
	h.writeDevices(w, ds)
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
	h.writeDevices(w, ms)
}

func (h *handler) writeDevices(w http.ResponseWriter, ds []Device) {
	out := make([]DeviceJSON, 0, len(ds))
	for _, d := range ds {
		out = append(out, deviceJSON(d))
	}
	writeJSON(w, http.StatusOK, out)
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
	writeJSON(w, http.StatusOK, deviceJSON(d))
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

// putIdentity is "Create Or Update Identity": no If-Match creates (409 if
// the identity exists), "If-Match: *" creates or updates, an etag updates
// that version only. Missing keys are generated on create and kept on
// update.
func (h *handler) putIdentity(w http.ResponseWriter, r *http.Request) {
	id, err := identity(r)
	if err != nil {
		h.writeError(w, err)
		return
	}
	var in DeviceJSON
	if err := readJSON(r, &in); err != nil {
		h.writeError(w, err)
		return
	}
	d, err := h.deviceFromJSON(r, id, in)
	if err != nil {
		h.writeError(w, err)
		return
	}
	stored, _, err := h.b.PutDevice(r.Context(), d, r.Header.Get("If-Match"))
	if err != nil {
		h.writeError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, deviceJSON(stored))
}

func (h *handler) deviceFromJSON(r *http.Request, id iothub.Identity, in DeviceJSON) (Device, error) {
	if in.DeviceID != "" && in.DeviceID != id.DeviceID {
		return Device{}, fmt.Errorf("%w: deviceId %q in the body does not match %q in the path", ErrInvalid, in.DeviceID, id.DeviceID)
	}
	if id.IsModule() && in.ModuleID != "" && in.ModuleID != id.ModuleID {
		return Device{}, fmt.Errorf("%w: moduleId %q in the body does not match %q in the path", ErrInvalid, in.ModuleID, id.ModuleID)
	}
	d := Device{Identity: id, ManagedBy: in.ManagedBy}
	if !id.IsModule() {
		d.Status = orDefault(in.Status, StatusEnabled)
		if d.Status != StatusEnabled && d.Status != StatusDisabled {
			return Device{}, fmt.Errorf("%w: status must be %q or %q, got %q", ErrInvalid, StatusEnabled, StatusDisabled, in.Status)
		}
		if in.StatusReason != nil {
			d.StatusReason = *in.StatusReason
		}
		if in.Capabilities != nil && in.Capabilities.IoTEdge {
			return Device{}, fmt.Errorf("%w: fakehub does not support IoT Edge devices (capabilities.iotEdge)", ErrInvalid)
		}
	}
	if a := in.Authentication; a != nil {
		if a.Type != "" && a.Type != AuthenticationSAS {
			return Device{}, fmt.Errorf("%w: fakehub supports only authentication type %q, got %q", ErrInvalid, AuthenticationSAS, a.Type)
		}
		if k := a.SymmetricKey; k != nil {
			d.PrimaryKey, d.SecondaryKey = k.PrimaryKey, k.SecondaryKey
		}
	}
	for _, k := range []struct{ name, v string }{{"primaryKey", d.PrimaryKey}, {"secondaryKey", d.SecondaryKey}} {
		if k.v == "" {
			continue
		}
		if _, err := sas.DecodeKey(k.v); err != nil {
			return Device{}, fmt.Errorf("%w: authentication.symmetricKey.%s: %v", ErrInvalid, k.name, err)
		}
	}
	if d.PrimaryKey != "" && d.SecondaryKey != "" {
		return d, nil
	}
	// Keep the stored keys on update; generate the missing ones otherwise.
	if r.Header.Get("If-Match") != "" {
		old, err := h.b.Device(r.Context(), id)
		switch {
		case err == nil:
			d.PrimaryKey = orDefault(d.PrimaryKey, old.PrimaryKey)
			d.SecondaryKey = orDefault(d.SecondaryKey, old.SecondaryKey)
		case errors.Is(err, ErrDeviceNotFound) || errors.Is(err, ErrModuleNotFound):
		default:
			return Device{}, err
		}
	}
	for _, k := range []*string{&d.PrimaryKey, &d.SecondaryKey} {
		if *k == "" {
			key, err := sas.NewKey(h.rand)
			if err != nil {
				return Device{}, fmt.Errorf("generating a key: %w", err)
			}
			*k = key
		}
	}
	return d, nil
}
