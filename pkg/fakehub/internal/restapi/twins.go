package restapi

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"time"
)

// TwinJSON is a device or module twin as the IoT Hub service API returns it.
type TwinJSON struct {
	DeviceID                  string             `json:"deviceId"`
	ModuleID                  string             `json:"moduleId,omitempty"`
	ETag                      string             `json:"etag"`
	DeviceETag                string             `json:"deviceEtag"`
	Status                    string             `json:"status,omitempty"`
	StatusUpdateTime          string             `json:"statusUpdateTime,omitempty"`
	ConnectionState           string             `json:"connectionState"`
	LastActivityTime          string             `json:"lastActivityTime"`
	CloudToDeviceMessageCount int                `json:"cloudToDeviceMessageCount"`
	AuthenticationType        string             `json:"authenticationType"`
	X509Thumbprint            X509JSON           `json:"x509Thumbprint"`
	ModelID                   string             `json:"modelId"`
	Version                   int64              `json:"version"`
	Tags                      json.RawMessage    `json:"tags,omitempty"`
	Properties                TwinPropertiesJSON `json:"properties"`
	Capabilities              *CapabilitiesJSON  `json:"capabilities,omitempty"`
}

// TwinPropertiesJSON holds the desired and reported sections.
type TwinPropertiesJSON struct {
	Desired  json.RawMessage `json:"desired,omitempty"`
	Reported json.RawMessage `json:"reported,omitempty"`
}

func twinJSON(t Twin, d Device) TwinJSON {
	j := TwinJSON{
		DeviceID:                  t.Identity.DeviceID,
		ModuleID:                  t.Identity.ModuleID,
		ETag:                      t.ETag,
		DeviceETag:                d.ETag,
		ConnectionState:           orDefault(d.ConnectionState, StateDisconnected),
		LastActivityTime:          timeJSON(d.LastActivityTime),
		CloudToDeviceMessageCount: d.CloudToDeviceMessageCount,
		AuthenticationType:        AuthenticationSAS,
		Version:                   t.Version,
		Tags:                      t.Tags,
		Properties:                TwinPropertiesJSON{Desired: orEmptyObject(t.Desired), Reported: orEmptyObject(t.Reported)},
	}
	if !t.Identity.IsModule() {
		j.Status = orDefault(d.Status, StatusEnabled)
		j.StatusUpdateTime = timeJSON(d.StatusUpdatedTime)
		j.Capabilities = &CapabilitiesJSON{}
	}
	return j
}

func orEmptyObject(m json.RawMessage) json.RawMessage {
	if len(bytes.TrimSpace(m)) == 0 {
		return json.RawMessage(`{}`)
	}
	return m
}

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
	h.writeTwin(w, r, t)
}

func (h *handler) writeTwin(w http.ResponseWriter, r *http.Request, t Twin) {
	if t.ETag != "" {
		w.Header().Set("ETag", `"`+t.ETag+`"`)
	}
	if len(t.View) > 0 {
		w.Header().Set("Content-Type", "application/json; charset=utf-8")
		w.WriteHeader(http.StatusOK)
		_, _ = w.Write(t.View)
		return
	}
	d, err := h.b.Device(r.Context(), t.Identity)
	if err != nil {
		h.writeError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, twinJSON(t, d))
}

// twinPatchJSON is the body of PATCH and PUT /twins/{id}: the twin, of which
// only tags and properties.desired are taken (the SDKs send the whole twin).
type twinPatchJSON struct {
	Tags       json.RawMessage `json:"tags"`
	Properties *struct {
		Desired  json.RawMessage `json:"desired"`
		Reported json.RawMessage `json:"reported"`
	} `json:"properties"`
}

// updateTwin is Update Twin (PATCH: JSON merge patch of tags and desired
// properties) and Replace Twin (PUT), with If-Match.
func (h *handler) updateTwin(w http.ResponseWriter, r *http.Request) {
	id, err := identity(r)
	if err != nil {
		h.writeError(w, err)
		return
	}
	var in twinPatchJSON
	if err := readJSON(r, &in); err != nil {
		h.writeError(w, err)
		return
	}
	u := TwinUpdate{Tags: nullToNil(in.Tags), Replace: r.Method == http.MethodPut, IfMatch: unquoteETag(r.Header.Get("If-Match"))}
	if in.Properties != nil {
		if len(nullToNil(in.Properties.Reported)) > 0 && !isEmptyObject(in.Properties.Reported) {
			h.writeError(w, fmt.Errorf("%w: properties.reported is read-only for the service; only tags and properties.desired can be changed", ErrInvalid))
			return
		}
		u.Desired = nullToNil(in.Properties.Desired)
	}
	for _, sec := range []struct {
		name string
		v    json.RawMessage
	}{{"tags", u.Tags}, {"properties.desired", u.Desired}} {
		if sec.v != nil && !isObject(sec.v) {
			h.writeError(w, fmt.Errorf("%w: %s must be a JSON object", ErrInvalid, sec.name))
			return
		}
	}
	t, err := h.b.UpdateTwin(r.Context(), id, u)
	if err != nil {
		h.writeError(w, err)
		return
	}
	h.writeTwin(w, r, t)
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

// unquoteETag accepts If-Match as the SDKs send it: quoted ("AAAAAAAAAAE=")
// or bare, and W/ weak tags.
func unquoteETag(s string) string {
	if len(s) > 2 && s[:2] == "W/" {
		s = s[2:]
	}
	if len(s) >= 2 && s[0] == '"' && s[len(s)-1] == '"' {
		s = s[1 : len(s)-1]
	}
	return s
}

// methodJSON is the Invoke Method body (CloudToDeviceMethod).
type methodJSON struct {
	MethodName               string          `json:"methodName"`
	Payload                  json.RawMessage `json:"payload"`
	ResponseTimeoutInSeconds *int            `json:"responseTimeoutInSeconds"`
	ConnectTimeoutInSeconds  *int            `json:"connectTimeoutInSeconds"`
}

// MethodResultJSON is the Invoke Method answer (CloudToDeviceMethodResult).
type MethodResultJSON struct {
	Status  int             `json:"status"`
	Payload json.RawMessage `json:"payload"`
}

// Limits of direct method calls (docs/iothub-behavior.md §4.4).
const (
	DefaultMethodResponseTimeout = 30 * time.Second
	MinMethodResponseTimeout     = 5 * time.Second
	MaxMethodTimeout             = 300 * time.Second
	MaxMethodPayload             = 128 * 1024
)

func (h *handler) invokeMethod(w http.ResponseWriter, r *http.Request) {
	id, err := identity(r)
	if err != nil {
		h.writeError(w, err)
		return
	}
	var in methodJSON
	if err := readJSON(r, &in); err != nil {
		h.writeError(w, err)
		return
	}
	req, err := methodRequest(in)
	if err != nil {
		h.writeError(w, err)
		return
	}
	res, err := h.b.InvokeMethod(r.Context(), id, req)
	if err != nil {
		h.writeError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, MethodResultJSON{Status: res.Status, Payload: orNull(res.Payload)})
}

func methodRequest(in methodJSON) (MethodRequest, error) {
	req := MethodRequest{Name: in.MethodName, Payload: orNull(in.Payload), ResponseTimeout: DefaultMethodResponseTimeout}
	if req.Name == "" {
		return req, fmt.Errorf("%w: methodName is required", ErrInvalid)
	}
	if len(req.Payload) > MaxMethodPayload {
		return req, fmt.Errorf("%w: payload is %d bytes, the limit is %d", ErrMessageTooLarge, len(req.Payload), MaxMethodPayload)
	}
	if p := in.ResponseTimeoutInSeconds; p != nil {
		req.ResponseTimeout = time.Duration(*p) * time.Second
		if req.ResponseTimeout < MinMethodResponseTimeout || req.ResponseTimeout > MaxMethodTimeout {
			return req, fmt.Errorf("%w: responseTimeoutInSeconds must be from 5 to 300, got %d", ErrInvalid, *p)
		}
	}
	if p := in.ConnectTimeoutInSeconds; p != nil {
		req.ConnectTimeout = time.Duration(*p) * time.Second
		if req.ConnectTimeout < 0 || req.ConnectTimeout > MaxMethodTimeout {
			return req, fmt.Errorf("%w: connectTimeoutInSeconds must be from 0 to 300, got %d", ErrInvalid, *p)
		}
	}
	return req, nil
}

func orNull(m json.RawMessage) json.RawMessage {
	if len(bytes.TrimSpace(m)) == 0 {
		return json.RawMessage("null")
	}
	return m
}
