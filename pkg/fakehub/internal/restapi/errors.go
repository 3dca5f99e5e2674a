package restapi

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"time"

	"github.com/hubkit/hubkit/pkg/iothub"
)

// writeError answers with err's code (iothub.WriteError). Errors that are not *iothub.Error
// are 500s whose text is not sent (it may hold internals); they are logged instead.
func (h *handler) writeError(w http.ResponseWriter, err error) {
	var e *iothub.Error
	if !errors.As(err, &e) {
		h.log.Error("service API backend error", "err", err)
		e = iothub.Errorf(iothub.CodeServerError, "internal error")
	}
	iothub.WriteError(w, e, h.trackingID(), h.now())
}

func (h *handler) trackingID() string {
	var b [16]byte
	if _, err := io.ReadFull(h.rand, b[:]); err != nil {
		return "00000000000000000000000000000000"
	}
	return hex.EncodeToString(b[:])
}

// writeJSON answers with v as JSON ('&' and '<' kept readable).
func writeJSON(w http.ResponseWriter, status int, v any) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		iothub.WriteError(w, iothub.Errorf(iothub.CodeServerError, "cannot encode the response"), "", time.Time{})
		return
	}
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	_, _ = w.Write(bytes.TrimSuffix(buf.Bytes(), []byte("\n")))
}
