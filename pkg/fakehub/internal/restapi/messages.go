package restapi

import (
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/hubkit/hubkit/pkg/iothub"
)

// sendC2D sends a cloud-to-device message: system properties in IoT Hub's iothub-* headers,
// application properties in iothub-app-* headers or the X-Hubkit-Properties bag
// (iothub.C2DMessageFromHeader), the body as the payload.
func (h *handler) sendC2D(w http.ResponseWriter, r *http.Request) {
	id, err := identity(r)
	if err != nil {
		h.writeError(w, err)
		return
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, iothub.MaxC2DSize+1))
	if err != nil {
		h.writeError(w, iothub.Errorf(iothub.CodeArgumentInvalid, "reading the body: %v", err))
		return
	}
	if len(body) > iothub.MaxC2DSize {
		h.writeError(w, iothub.Errorf(iothub.CodeMessageTooLarge, "a cloud-to-device message body is limited to %d bytes", iothub.MaxC2DSize))
		return
	}
	m, err := iothub.C2DMessageFromHeader(r.Header, body)
	if err != nil {
		h.writeError(w, err)
		return
	}
	if m.MessageID == "" {
		if m.MessageID, err = h.uuid(); err != nil {
			h.writeError(w, err)
			return
		}
	}
	st, err := h.b.SendC2D(r.Context(), id, m)
	if err != nil {
		h.writeError(w, err)
		return
	}
	w.Header().Set(iothub.HeaderMessageID, st.MessageID)
	w.Header().Set("Location", "/devices/"+url.PathEscape(id.DeviceID)+"/messages/devicebound/"+url.PathEscape(st.MessageID)+"?api-version="+url.QueryEscape(r.URL.Query().Get("api-version")))
	writeJSON(w, http.StatusCreated, st)
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
	writeJSON(w, http.StatusOK, nonNil(sts))
}

// getC2D answers a message's state; with ?wait=SECONDS (1 to iothub.MaxC2DWait) once it is
// final (completed, rejected, expired, purged), or when SECONDS have passed, with its state
// then.
func (h *handler) getC2D(w http.ResponseWriter, r *http.Request) {
	id, err := identity(r)
	if err != nil {
		h.writeError(w, err)
		return
	}
	var wait time.Duration
	if v := r.URL.Query().Get("wait"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 || time.Duration(n)*time.Second > iothub.MaxC2DWait {
			h.writeError(w, iothub.Errorf(iothub.CodeArgumentInvalid, "wait must be whole seconds from 0 to %d, got %q", int(iothub.MaxC2DWait/time.Second), v))
			return
		}
		wait = time.Duration(n) * time.Second
	}
	var st iothub.C2DStatus
	if wait > 0 {
		st, err = h.b.WaitC2DStatus(r.Context(), id, r.PathValue("msgId"), wait)
	} else {
		st, err = h.b.C2DStatus(r.Context(), id, r.PathValue("msgId"))
	}
	if err != nil {
		h.writeError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, st)
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
	writeJSON(w, http.StatusOK, iothub.PurgeResult{DeviceID: id.DeviceID, ModuleID: id.ModuleID, TotalMessagesPurged: n})
}

func (h *handler) feedback(w http.ResponseWriter, r *http.Request) {
	fs, err := h.b.C2DFeedback(r.Context())
	if err != nil {
		h.writeError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, nonNil(fs))
}
