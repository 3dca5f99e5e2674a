package restapi

import (
	"encoding/hex"
	"fmt"
	"io"
	"maps"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/hubkit/hubkit/pkg/iothub"
)

// MaxC2DBody is the largest cloud-to-device message body IoT Hub accepts.
const MaxC2DBody = 64 * 1024

// C2D request headers. They are the names IoT Hub's HTTPS device API uses for
// a message's system properties (Azure IoT C# device SDK HttpTransportHandler,
// Java HttpsSingleMessage, Node azure-iot-http-base, Python HTTP transport):
// iothub-messageid, iothub-correlationid, iothub-userid, iothub-to,
// iothub-ack, iothub-expiry, iothub-contenttype, iothub-contentencoding, and
// iothub-app-{name} for application properties.
const (
	HeaderMessageID       = "iothub-messageid"
	HeaderCorrelationID   = "iothub-correlationid"
	HeaderUserID          = "iothub-userid"
	HeaderTo              = "iothub-to"
	HeaderAck             = "iothub-ack"
	HeaderExpiry          = "iothub-expiry" // RFC 3339 (ISO 8601) UTC time
	HeaderContentType     = "iothub-contenttype"
	HeaderContentEncoding = "iothub-contentencoding"
	HeaderAppPrefix       = "iothub-app-"
	// HeaderProperties is a hubkit extension: application properties as an
	// IoT Hub property bag ("k1=v1&k2=v2", percent-encoded), because HTTP
	// header names are case-insensitive and arrive lower-cased or
	// canonicalized, while property names are case-sensitive.
	HeaderProperties = "X-Hubkit-Properties"
)

// C2DStatusJSON is the state of a cloud-to-device message (hubkit extension).
type C2DStatusJSON struct {
	DeviceID     string `json:"deviceId"`
	ModuleID     string `json:"moduleId,omitempty"`
	MessageID    string `json:"messageId"`
	State        string `json:"state"`
	EnqueuedTime string `json:"enqueuedTime"`
	UpdatedTime  string `json:"updatedTime"`
	Detail       string `json:"detail,omitempty"`
}

func c2dStatusJSON(s C2DStatus) C2DStatusJSON {
	return C2DStatusJSON{
		DeviceID: s.Identity.DeviceID, ModuleID: s.Identity.ModuleID, MessageID: s.MessageID, State: s.State,
		EnqueuedTime: timeJSON(s.EnqueuedTime), UpdatedTime: timeJSON(s.UpdatedTime), Detail: s.Detail,
	}
}

func (h *handler) sendC2D(w http.ResponseWriter, r *http.Request) {
	id, err := identity(r)
	if err != nil {
		h.writeError(w, err)
		return
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, MaxC2DBody+1))
	if err != nil {
		h.writeError(w, fmt.Errorf("%w: reading body: %v", ErrInvalid, err))
		return
	}
	if len(body) > MaxC2DBody {
		h.writeError(w, fmt.Errorf("%w: a cloud-to-device message body is limited to %d bytes", ErrMessageTooLarge, MaxC2DBody))
		return
	}
	m, err := h.c2dFromRequest(r, id, body)
	if err != nil {
		h.writeError(w, err)
		return
	}
	st, err := h.b.SendC2D(r.Context(), id, m)
	if err != nil {
		h.writeError(w, err)
		return
	}
	w.Header().Set(HeaderMessageID, st.MessageID)
	w.Header().Set("Location", "/devices/"+url.PathEscape(id.DeviceID)+"/messages/devicebound/"+url.PathEscape(st.MessageID)+"?api-version="+url.QueryEscape(r.URL.Query().Get("api-version")))
	writeJSON(w, http.StatusCreated, c2dStatusJSON(st))
}

// c2dFromRequest maps the request's headers and body to a message.
func (h *handler) c2dFromRequest(r *http.Request, id iothub.Identity, body []byte) (C2DMessage, error) {
	hd := r.Header
	m := C2DMessage{
		MessageID:       hd.Get(HeaderMessageID),
		CorrelationID:   hd.Get(HeaderCorrelationID),
		UserID:          hd.Get(HeaderUserID),
		To:              hd.Get(HeaderTo),
		Ack:             strings.ToLower(hd.Get(HeaderAck)),
		ContentType:     hd.Get(HeaderContentType),
		ContentEncoding: hd.Get(HeaderContentEncoding),
		Body:            body,
	}
	// Plain Content-Type stands in for iothub-contenttype, except curl's
	// default for -d (which says nothing about the message).
	if ct := hd.Get("Content-Type"); m.ContentType == "" && ct != "" && ct != "application/x-www-form-urlencoded" {
		m.ContentType = ct
	}
	switch m.Ack {
	case "", AckNone, AckPositive, AckNegative, AckFull:
	default:
		return m, fmt.Errorf("%w: %s must be none, positive, negative or full, got %q", ErrInvalid, HeaderAck, m.Ack)
	}
	if exp := hd.Get(HeaderExpiry); exp != "" {
		t, err := time.Parse(time.RFC3339Nano, exp)
		if err != nil {
			return m, fmt.Errorf("%w: %s must be an RFC 3339 time such as 2030-01-01T00:00:00Z, got %q", ErrInvalid, HeaderExpiry, exp)
		}
		m.ExpiryTime = t.UTC()
	}
	// iothub-app-* headers (names lower-cased, sorted), then the
	// X-Hubkit-Properties bag in its order; a later key replaces an earlier one.
	set := func(k, v string) {
		for i := range m.Properties {
			if m.Properties[i].Key == k {
				m.Properties[i].Value = v
				return
			}
		}
		m.Properties = append(m.Properties, iothub.Property{Key: k, Value: v})
	}
	for _, name := range slices.Sorted(maps.Keys(hd)) {
		lower := strings.ToLower(name)
		if strings.HasPrefix(lower, HeaderAppPrefix) && len(lower) > len(HeaderAppPrefix) {
			set(lower[len(HeaderAppPrefix):], hd[name][0])
		}
	}
	if bag := hd.Get(HeaderProperties); bag != "" {
		ps, err := iothub.ParseProperties(bag)
		if err != nil {
			return m, fmt.Errorf("%w: %s: %v", ErrInvalid, HeaderProperties, err)
		}
		for _, p := range ps {
			if iothub.IsSystemProperty(p.Key) {
				return m, fmt.Errorf("%w: %s: %q is a system property; use its iothub-* header", ErrInvalid, HeaderProperties, p.Key)
			}
			set(p.Key, p.Value)
		}
	}
	if m.MessageID == "" {
		mid, err := h.uuid()
		if err != nil {
			return m, err
		}
		m.MessageID = mid
	}
	return m, nil
}

// uuid returns a random (version 4) UUID, the form the SDKs use for message IDs.
func (h *handler) uuid() (string, error) {
	var b [16]byte
	if _, err := io.ReadFull(h.rand, b[:]); err != nil {
		return "", fmt.Errorf("generating a message id: %w", err)
	}
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	x := hex.EncodeToString(b[:])
	return x[:8] + "-" + x[8:12] + "-" + x[12:16] + "-" + x[16:20] + "-" + x[20:], nil
}

func (h *handler) listC2D(w http.ResponseWriter, r *http.Request) {
	id, err := identity(r)
	if err != nil {
		h.writeError(w, err)
		return
	}
	sts, err := h.b.C2DStatuses(r.Context(), id)
	if err != nil {
		h.writeError(w, err)
		return
	}
	out := make([]C2DStatusJSON, 0, len(sts))
	for _, s := range sts {
		out = append(out, c2dStatusJSON(s))
	}
	writeJSON(w, http.StatusOK, out)
}

func (h *handler) getC2D(w http.ResponseWriter, r *http.Request) {
	id, err := identity(r)
	if err != nil {
		h.writeError(w, err)
		return
	}
	st, err := h.b.C2DStatus(r.Context(), id, r.PathValue("msgId"))
	if err != nil {
		h.writeError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, c2dStatusJSON(st))
}

// PurgeResultJSON is IoT Hub's PurgeMessageQueueResult.
type PurgeResultJSON struct {
	DeviceID            string `json:"deviceId"`
	ModuleID            string `json:"moduleId,omitempty"`
	TotalMessagesPurged int    `json:"totalMessagesPurged"`
}

func (h *handler) purgeC2D(w http.ResponseWriter, r *http.Request) {
	id, err := identity(r)
	if err != nil {
		h.writeError(w, err)
		return
	}
	n, err := h.b.PurgeC2D(r.Context(), id)
	if err != nil {
		h.writeError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, PurgeResultJSON{DeviceID: id.DeviceID, ModuleID: id.ModuleID, TotalMessagesPurged: n})
}

// FeedbackJSON is one C2D feedback record, in the shape of the hub's
// feedback message body entries (originalMessageId, deviceId,
// statusCode, description, enqueuedTimeUtc).
type FeedbackJSON struct {
	OriginalMessageID string `json:"originalMessageId"`
	DeviceID          string `json:"deviceId"`
	ModuleID          string `json:"moduleId,omitempty"`
	StatusCode        string `json:"statusCode"`
	Description       string `json:"description"`
	EnqueuedTimeUTC   string `json:"enqueuedTimeUtc"`
}

func (h *handler) feedback(w http.ResponseWriter, r *http.Request) {
	fs, err := h.b.C2DFeedback(r.Context())
	if err != nil {
		h.writeError(w, err)
		return
	}
	out := make([]FeedbackJSON, 0, len(fs))
	for _, f := range fs {
		out = append(out, FeedbackJSON{OriginalMessageID: f.OriginalMessageID, DeviceID: f.Identity.DeviceID, ModuleID: f.Identity.ModuleID,
			StatusCode: f.Status, Description: f.Description, EnqueuedTimeUTC: timeJSON(f.EnqueuedTime)})
	}
	writeJSON(w, http.StatusOK, out)
}
