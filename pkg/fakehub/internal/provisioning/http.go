package provisioning

import (
	"bytes"
	"crypto/x509"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/hubkit/hubkit/pkg/iothub"
	"github.com/hubkit/hubkit/pkg/iothub/dps"
	"github.com/hubkit/hubkit/pkg/sas"
)

// HandlerOptions configure Engine.Handler.
type HandlerOptions struct {
	// HostName is the service API's host name: service tokens are signed for it
	// (sr={HostName}). Required.
	HostName string
	// Reject records a refused device request (the registration API); nil drops it.
	Reject func(iothub.Rejection)
}

// maxBody bounds a request body (DPS: 96 KB messages).
const maxBody = 96 << 10

// Handler returns DPS's HTTPS API: the device registration API (PUT
// /{idScope}/registrations/{id}/register, GET .../operations/{operationId}), authorized by
// the device's attestation, and the service API (/enrollments, /enrollmentGroups,
// /registrations), authorized by DPS shared access policy tokens (docs/iothub-behavior.md
// §7.10).
func (e *Engine) Handler(o HandlerOptions) http.Handler {
	if o.HostName == "" {
		panic("provisioning: HandlerOptions.HostName is required")
	}
	if o.Reject == nil {
		o.Reject = func(iothub.Rejection) {}
	}
	h := &handler{e: e, o: o}
	mux := http.NewServeMux()
	mux.HandleFunc("PUT /{idScope}/registrations/{id}/register", h.register)
	mux.HandleFunc("GET /{idScope}/registrations/{id}/operations/{op}", h.poll)
	svc := []struct {
		pattern string
		need    dps.Rights
		serve   http.HandlerFunc
	}{
		{"GET /enrollments/{id}", dps.EnrollmentRead, h.getEnrollment},
		{"PUT /enrollments/{id}", dps.EnrollmentWrite, h.putEnrollment},
		{"DELETE /enrollments/{id}", dps.EnrollmentWrite, h.deleteEnrollment},
		{"POST /enrollments/query", dps.EnrollmentRead, h.queryEnrollments},
		{"GET /enrollmentGroups/{id}", dps.EnrollmentRead, h.getGroup},
		{"PUT /enrollmentGroups/{id}", dps.EnrollmentWrite, h.putGroup},
		{"DELETE /enrollmentGroups/{id}", dps.EnrollmentWrite, h.deleteGroup},
		{"POST /enrollmentGroups/query", dps.EnrollmentRead, h.queryGroups},
		{"GET /registrations/{id}", dps.RegistrationStatusRead, h.getRegistration},
		{"DELETE /registrations/{id}", dps.RegistrationStatusWrite, h.deleteRegistration},
		{"POST /registrations/{id}/query", dps.RegistrationStatusRead, h.queryRegistrations},
	}
	for _, rt := range svc {
		mux.Handle(rt.pattern, h.guard(rt.need, rt.serve))
	}
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		h.fail(w, dps.Errorf(dps.CodeNotFound, "no DPS route for %s %s", r.Method, r.URL.Path))
	})
	return mux
}

type handler struct {
	e *Engine
	o HandlerOptions
}

func (h *handler) fail(w http.ResponseWriter, err error) {
	var e *dps.Error
	if !errors.As(err, &e) {
		h.e.log.Error("DPS API error", "err", err)
		e = dps.Errorf(dps.CodeInternalServerError, "internal error")
	}
	dps.WriteError(w, e, h.e.TrackingID(), h.e.Now())
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(v)
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	_, _ = w.Write(bytes.TrimSuffix(buf.Bytes(), []byte("\n")))
}

// deviceCredential reads what a registering device presented over HTTPS.
func deviceCredential(r *http.Request, regID string) (Credential, *Refusal) {
	c := Credential{RegistrationID: regID}
	if r.TLS != nil {
		c.Certificates = append([]*x509.Certificate(nil), r.TLS.PeerCertificates...)
	}
	if hdr := r.Header.Get("Authorization"); hdr != "" {
		tok, err := sas.Parse(hdr)
		if err != nil {
			return c, unauthorized(sas.ReasonMalformed, "Authorization header: "+err.Error(),
				`the header is the whole token: "SharedAccessSignature sr=...&sig=...&se=...&skn=registration"`)
		}
		c.Token = &tok
	}
	return c, nil
}

// attest authorizes a device request; a refusal is answered and recorded.
func (h *handler) attest(w http.ResponseWriter, r *http.Request, body []byte) (*Attested, bool) {
	regID, scope := r.PathValue("id"), r.PathValue("idScope")
	rj := iothub.Rejection{RemoteAddr: r.RemoteAddr, ClientID: regID}
	refused := func(f *Refusal) (*Attested, bool) {
		rj.Reason, rj.Detail, rj.Hints = f.Reason, "DPS (HTTPS): "+f.Detail, f.Hints
		h.o.Reject(rj)
		h.fail(w, f.DPSError())
		return nil, false
	}
	if err := iothub.ValidateRegistrationID(regID); err != nil {
		return refused(refuse(dps.CodeBadRequest, sas.ReasonClientIDMismatch, err.Error()))
	}
	if r.URL.Query().Get("api-version") == "" {
		return refused(refuse(dps.CodeBadRequest, ReasonBadRequest, "the api-version query parameter is required (for example ?api-version="+dps.APIVersion+")"))
	}
	if !strings.EqualFold(scope, h.e.IDScope()) {
		return refused(unauthorized(sas.ReasonScopeMismatch, "the path names ID scope "+strconv.Quote(scope)+" but this DPS is "+strconv.Quote(h.e.IDScope())))
	}
	c, f := deviceCredential(r, regID)
	if f != nil {
		return refused(f)
	}
	var req struct {
		TPM *dps.TPMAttestation `json:"tpm"`
	}
	if json.Unmarshal(body, &req) == nil && req.TPM != nil {
		c.TPM = true
	}
	a, f := h.e.Attest(c)
	if f != nil {
		return refused(f)
	}
	return a, true
}

func (h *handler) register(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxBody))
	if err != nil {
		h.fail(w, dps.Errorf(dps.CodeBadRequest, "reading the body: %v", err))
		return
	}
	a, ok := h.attest(w, r, body)
	if !ok {
		return
	}
	st, retry, f := h.e.Register(a, body)
	h.answer(w, r, a.RegistrationID, st, retry, f)
}

func (h *handler) poll(w http.ResponseWriter, r *http.Request) {
	a, ok := h.attest(w, r, nil)
	if !ok {
		return
	}
	st, retry, f := h.e.Poll(r.Context(), a.RegistrationID, r.PathValue("op"))
	h.answer(w, r, a.RegistrationID, st, retry, f)
}

// answer writes a registration or poll answer (202 + retry-after while assigning, 200 when
// done) or its refusal.
func (h *handler) answer(w http.ResponseWriter, r *http.Request, regID string, st *dps.OperationStatus, retry time.Duration, f *Refusal) {
	if f != nil {
		h.o.Reject(iothub.Rejection{RemoteAddr: r.RemoteAddr, ClientID: regID, Reason: f.Reason, Detail: "DPS (HTTPS): " + f.Detail, Hints: f.Hints})
		if st != nil { // a disabled enrollment: answered, not an error
			writeJSON(w, http.StatusOK, st)
			return
		}
		e := f.DPSError()
		e.RetryAfter = retry
		h.fail(w, e)
		return
	}
	status := http.StatusOK
	if !st.Status.Done() {
		status = http.StatusAccepted
		w.Header().Set("Retry-After", strconv.Itoa(int(retry/time.Second)))
	}
	writeJSON(w, status, st)
}

// guard authorizes a service API request: a DPS policy token whose sr covers
// "{HostName}/{path}", from a policy holding need (docs/iothub-behavior.md §7.10).
func (h *handler) guard(need dps.Rights, serve http.HandlerFunc) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if rej := h.authorize(r, need); rej != nil {
			h.e.log.Info("DPS service API request refused", "method", r.Method, "path", r.URL.Path, "remoteAddr", r.RemoteAddr, "reason", string(rej.Reason), "detail", rej.Detail)
			h.fail(w, &dps.Error{Code: dps.CodeUnauthorized, Message: "Unauthorized; hubkit: " + string(rej.Reason) + ": " + rej.Detail, Reason: string(rej.Reason), Hints: rej.Hints})
			return
		}
		if r.URL.Query().Get("api-version") == "" {
			h.fail(w, dps.Errorf(dps.CodeBadRequest, "the api-version query parameter is required (for example ?api-version=%s)", dps.ServiceAPIVersion))
			return
		}
		serve(w, r)
	})
}

func (h *handler) authorize(r *http.Request, need dps.Rights) *sas.Rejection {
	hdr := r.Header.Get("Authorization")
	if hdr == "" {
		return sas.Reject(sas.ReasonNoPassword, "no Authorization header",
			"send Authorization: SharedAccessSignature sr={dps host}&sig=...&se=...&skn=provisioningserviceowner; mint one with: sastool gen --uri "+h.o.HostName+" --key KEY --policy "+dps.OwnerPolicy)
	}
	tok, err := sas.Parse(hdr)
	if err != nil {
		var rej *sas.Rejection
		if errors.As(err, &rej) {
			return rej
		}
		return sas.Reject(sas.ReasonMalformed, err.Error())
	}
	if tok.KeyName == "" || tok.KeyName == dps.RegistrationKeyName {
		return sas.Reject(sas.ReasonUnknownPolicy, "the service API needs a DPS shared access policy token (skn="+dps.OwnerPolicy+" or another policy), not a device registration token",
			"sign sr="+h.o.HostName+" with a policy key and --policy NAME")
	}
	p, ok := h.e.Policy(tok.KeyName)
	primary, err1 := sas.DecodeKey(p.PrimaryKey)
	secondary, err2 := sas.DecodeKey(p.SecondaryKey)
	if !ok || err1 != nil || err2 != nil {
		return sas.Reject(sas.ReasonUnknownPolicy, "no DPS shared access policy named "+strconv.Quote(tok.KeyName), "a new DPS has one policy, "+dps.OwnerPolicy)
	}
	audience := h.o.HostName + r.URL.Path
	if err := tok.Verify(primary, h.e.Now(), sas.WithSecondaryKey(secondary), sas.WithAudience(audience), sas.WithSkew(h.e.opts.Skew)); err != nil {
		var rej *sas.Rejection
		if errors.As(err, &rej) {
			return rej
		}
		return sas.Reject(sas.ReasonMalformed, err.Error())
	}
	if p.Rights&need != need {
		return sas.Reject(sas.ReasonPolicyPermission, "policy "+strconv.Quote(p.KeyName)+" has "+p.Rights.String()+"; "+r.Method+" "+r.URL.Path+" needs "+need.String())
	}
	return nil
}

func readJSON(w http.ResponseWriter, r *http.Request, v any) error {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxBody))
	if err != nil {
		return dps.Errorf(dps.CodeBadRequest, "reading the body: %v", err)
	}
	if err := json.Unmarshal(body, v); err != nil {
		return dps.Errorf(dps.CodeBadRequest, "the body is not the JSON expected: %v", err)
	}
	return nil
}

func (h *handler) getEnrollment(w http.ResponseWriter, r *http.Request) {
	en, err := h.e.Enrollment(r.PathValue("id"))
	if err != nil {
		h.fail(w, err)
		return
	}
	writeJSON(w, http.StatusOK, en)
}

func (h *handler) putEnrollment(w http.ResponseWriter, r *http.Request) {
	var en dps.Enrollment
	if err := readJSON(w, r, &en); err != nil {
		h.fail(w, err)
		return
	}
	if en.RegistrationID == "" {
		en.RegistrationID = r.PathValue("id")
	}
	if !strings.EqualFold(en.RegistrationID, r.PathValue("id")) {
		h.fail(w, dps.Errorf(dps.CodeBadRequest, "the body's registrationId %q is not the path's %q", en.RegistrationID, r.PathValue("id")))
		return
	}
	ifMatch := r.Header.Get("If-Match")
	if ifMatch == "" && en.ETag != "" {
		ifMatch = en.ETag
	}
	out, err := h.e.PutEnrollment(en, ifMatch)
	if err != nil {
		h.fail(w, err)
		return
	}
	writeJSON(w, http.StatusOK, out)
}

func (h *handler) deleteEnrollment(w http.ResponseWriter, r *http.Request) {
	if err := h.e.DeleteEnrollment(r.PathValue("id"), r.Header.Get("If-Match")); err != nil {
		h.fail(w, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (h *handler) queryEnrollments(w http.ResponseWriter, r *http.Request) {
	var q struct{ Query string }
	if err := readJSON(w, r, &q); err != nil {
		h.fail(w, err)
		return
	}
	w.Header().Set("x-ms-item-type", "Enrollment")
	writeJSON(w, http.StatusOK, h.e.Enrollments())
}

func (h *handler) getGroup(w http.ResponseWriter, r *http.Request) {
	g, err := h.e.Group(r.PathValue("id"))
	if err != nil {
		h.fail(w, err)
		return
	}
	writeJSON(w, http.StatusOK, g)
}

func (h *handler) putGroup(w http.ResponseWriter, r *http.Request) {
	var g dps.EnrollmentGroup
	if err := readJSON(w, r, &g); err != nil {
		h.fail(w, err)
		return
	}
	if g.EnrollmentGroupID == "" {
		g.EnrollmentGroupID = r.PathValue("id")
	}
	if g.EnrollmentGroupID != r.PathValue("id") {
		h.fail(w, dps.Errorf(dps.CodeBadRequest, "the body's enrollmentGroupId %q is not the path's %q", g.EnrollmentGroupID, r.PathValue("id")))
		return
	}
	ifMatch := r.Header.Get("If-Match")
	if ifMatch == "" && g.ETag != "" {
		ifMatch = g.ETag
	}
	out, err := h.e.PutGroup(g, ifMatch)
	if err != nil {
		h.fail(w, err)
		return
	}
	writeJSON(w, http.StatusOK, out)
}

func (h *handler) deleteGroup(w http.ResponseWriter, r *http.Request) {
	if err := h.e.DeleteGroup(r.PathValue("id"), r.Header.Get("If-Match")); err != nil {
		h.fail(w, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (h *handler) queryGroups(w http.ResponseWriter, r *http.Request) {
	var q struct{ Query string }
	if err := readJSON(w, r, &q); err != nil {
		h.fail(w, err)
		return
	}
	w.Header().Set("x-ms-item-type", "Enrollment")
	writeJSON(w, http.StatusOK, h.e.Groups())
}

func (h *handler) getRegistration(w http.ResponseWriter, r *http.Request) {
	st, err := h.e.Registration(r.PathValue("id"))
	if err != nil {
		h.fail(w, err)
		return
	}
	writeJSON(w, http.StatusOK, st)
}

func (h *handler) deleteRegistration(w http.ResponseWriter, r *http.Request) {
	if err := h.e.DeleteRegistration(r.PathValue("id"), r.Header.Get("If-Match")); err != nil {
		h.fail(w, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// queryRegistrations lists the registration records of enrollment group {id}.
func (h *handler) queryRegistrations(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	if _, err := h.e.Group(id); err != nil {
		h.fail(w, err)
		return
	}
	w.Header().Set("x-ms-item-type", "DeviceRegistration")
	writeJSON(w, http.StatusOK, h.e.Registrations(id))
}
