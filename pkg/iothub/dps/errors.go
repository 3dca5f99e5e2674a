package dps

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/hubkit/hubkit/pkg/iothub"
)

// ErrorCode is a six-digit DPS error code, as it appears in the errorCode member of DPS's
// error answers (and of a failed RegistrationState). Its first three digits are the HTTP
// status (over MQTT: the status in $dps/registrations/res/{status}/), as for IoT Hub
// (docs/iothub-behavior.md §7.6).
type ErrorCode int

// The codes DPS answers with. The x00000 code of a status class is what fakehub answers
// where no specific code is known, as iothub.GenericCode does for the hub. Sources:
// 401000 "Unauthorized" in a captured answer to a registration with wrong credentials
// (MicrosoftLearning/AZ-220-Microsoft-Azure-IoT-Developer#119); 401002 and 400207 in
// azure-sdk-for-c's provisioning parser tests; the status classes in Microsoft Learn's
// "Troubleshooting with Azure IoT Hub Device Provisioning Service" (common error codes).
const (
	CodeBadRequest             ErrorCode = 400000 // the body cannot be parsed or validated
	CodeCustomAllocationFailed ErrorCode = 400207 // the custom allocation failed (in a failed RegistrationState)
	CodeUnauthorized           ErrorCode = 401000 // the token cannot be validated, or names no enrollment
	CodeInvalidCertificate     ErrorCode = 401002 // X.509: the certificate is not accepted
	CodeNotFound               ErrorCode = 404000 // no such enrollment, group, registration or operation
	CodeMethodNotAllowed       ErrorCode = 405000
	CodeConflict               ErrorCode = 409000 // the resource exists (PUT without If-Match)
	CodePreconditionFailed     ErrorCode = 412000 // If-Match does not match the etag
	CodeThrottled              ErrorCode = 429000 // too many requests: retry after retry-after seconds
	CodeInternalServerError    ErrorCode = 500000
)

var codeNames = map[ErrorCode]string{
	CodeBadRequest:             "BadRequest",
	CodeCustomAllocationFailed: "CustomAllocationFailed",
	CodeUnauthorized:           "Unauthorized",
	CodeInvalidCertificate:     "InvalidCertificate",
	CodeNotFound:               "NotFound",
	CodeMethodNotAllowed:       "MethodNotAllowed",
	CodeConflict:               "Conflict",
	CodePreconditionFailed:     "PreconditionFailed",
	CodeThrottled:              "Throttled",
	CodeInternalServerError:    "InternalServerError",
}

// HTTPStatus returns the status the code is answered with: its first three digits.
func (c ErrorCode) HTTPStatus() int { return int(c) / 1000 }

// Name returns the code's name ("" for a code this package does not know).
func (c ErrorCode) Name() string { return codeNames[c] }

// String returns "401000 Unauthorized" (just the number for an unknown code).
func (c ErrorCode) String() string {
	if n := c.Name(); n != "" {
		return strconv.Itoa(int(c)) + " " + n
	}
	return strconv.Itoa(int(c))
}

// Error is a DPS error answer: a refused registration, poll or service API call. Is matches
// by code, so errors.Is(err, dps.ErrUnauthorized) holds for any 401000 error.
type Error struct {
	Code       ErrorCode
	Message    string
	TrackingID string
	// RetryAfter is the retry-after of a 429 (0: none given).
	RetryAfter time.Duration
	// Reason and Hints are hubkit's diagnosis of a refusal (the pkg/sas reason and what most
	// likely went wrong), carried in the answer's info member and in the X-Hubkit-Reason and
	// X-Hubkit-Hint headers. Empty from a real DPS.
	Reason string
	Hints  []string
}

// Errorf returns an *Error with code and a formatted message.
func Errorf(code ErrorCode, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...)}
}

// Error returns "dps: 401000 Unauthorized: <message>".
func (e *Error) Error() string {
	s := "dps: " + e.Code.String()
	if e.Message != "" {
		s += ": " + e.Message
	}
	return s
}

// Status returns the HTTP status of the error.
func (e *Error) Status() int { return e.Code.HTTPStatus() }

// Is reports whether target is an *Error with the same code.
func (e *Error) Is(target error) bool {
	t, ok := target.(*Error)
	return ok && t.Code == e.Code
}

// Sentinels, one per code callers branch on; match them with errors.Is.
var (
	ErrBadRequest         = &Error{Code: CodeBadRequest}
	ErrUnauthorized       = &Error{Code: CodeUnauthorized}
	ErrNotFound           = &Error{Code: CodeNotFound}
	ErrConflict           = &Error{Code: CodeConflict}
	ErrPreconditionFailed = &Error{Code: CodePreconditionFailed}
	ErrThrottled          = &Error{Code: CodeThrottled}
)

// ErrorBody is DPS's error answer (ProvisioningServiceErrorDetails):
//
//	{"errorCode":401000,"trackingId":"a5c087cd-…","message":"Unauthorized","timestampUtc":"2021-10-13T09:00:13.2276933Z"}
//
// hubkit puts its diagnosis in Info as {"hubkit":{"reason":…,"hints":[…]}}.
type ErrorBody struct {
	ErrorCode    ErrorCode       `json:"errorCode"`
	TrackingID   string          `json:"trackingId,omitempty"`
	Message      string          `json:"message"`
	Info         json.RawMessage `json:"info,omitempty"`
	TimestampUTC string          `json:"timestampUtc,omitempty"`
}

// TimeFormat is how DPS writes timestampUtc (seven fractional digits, like .NET).
const TimeFormat = "2006-01-02T15:04:05.0000000Z"

type hubkitInfo struct {
	Hubkit struct {
		Reason string   `json:"reason,omitempty"`
		Hints  []string `json:"hints,omitempty"`
	} `json:"hubkit"`
}

// Body returns the error answer for e, stamped with trackingID and now.
func (e *Error) Body(trackingID string, now time.Time) ErrorBody {
	b := ErrorBody{ErrorCode: e.Code, TrackingID: trackingID, Message: oneLine(e.Message), TimestampUTC: now.UTC().Format(TimeFormat)}
	if e.Reason != "" || len(e.Hints) > 0 {
		var info hubkitInfo
		info.Hubkit.Reason, info.Hubkit.Hints = e.Reason, e.Hints
		b.Info, _ = json.Marshal(info)
	}
	return b
}

// Header names of a DPS error answer over HTTPS.
const HeaderErrorCode = "x-ms-error-code"

// WriteError answers an HTTP request with e: its status, x-ms-error-code, retry-after for a
// 429, hubkit's X-Hubkit-Reason and X-Hubkit-Hint headers, and the ErrorBody.
func WriteError(w http.ResponseWriter, e *Error, trackingID string, now time.Time) {
	h := w.Header()
	h.Set(HeaderErrorCode, e.Code.Name())
	if e.RetryAfter > 0 {
		h.Set("Retry-After", strconv.Itoa(retrySeconds(e.RetryAfter)))
	}
	if e.Reason != "" {
		h.Set(iothub.HeaderReason, e.Reason)
	}
	for _, hint := range e.Hints {
		h.Add(iothub.HeaderHint, oneLine(hint))
	}
	body, _ := json.Marshal(e.Body(trackingID, now))
	h.Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(e.Code.HTTPStatus())
	_, _ = w.Write(body)
}

// ReadError decodes a DPS error answer (the status, the headers when there are any, the
// body) into an *Error. An answer without a recognisable code gets the x00000 code of its
// status.
func ReadError(status int, header http.Header, body []byte) *Error {
	e := &Error{}
	var b ErrorBody
	if json.Unmarshal(body, &b) == nil {
		e.Code, e.Message, e.TrackingID = b.ErrorCode, b.Message, b.TrackingID
		var info hubkitInfo
		if len(b.Info) > 0 && json.Unmarshal(b.Info, &info) == nil {
			e.Reason, e.Hints = info.Hubkit.Reason, info.Hubkit.Hints
		}
	} else {
		e.Message = oneLine(string(body))
	}
	if header != nil {
		if r := header.Get(iothub.HeaderReason); r != "" {
			e.Reason, e.Hints = r, header.Values(iothub.HeaderHint)
		}
		if s, err := strconv.Atoi(header.Get("Retry-After")); err == nil && s > 0 {
			e.RetryAfter = time.Duration(s) * time.Second
		}
	}
	if e.Code == 0 {
		e.Code = ErrorCode(status * 1000)
	}
	return e
}

// retrySeconds rounds a retry-after up to whole seconds (at least 1).
func retrySeconds(d time.Duration) int {
	return max(int((d+time.Second-1)/time.Second), 1)
}

func oneLine(s string) string { return strings.Join(strings.Fields(s), " ") }
