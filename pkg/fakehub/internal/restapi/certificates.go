package restapi

import (
	"context"
	"net/http"

	"github.com/hubkit/hubkit/pkg/iothub"
)

// CertificateBackend is the optional part of a Backend that keeps CA certificates for
// certificateAuthority identities. The real hub manages them through Azure Resource
// Manager (Certificates_CreateOrUpdate, _Get, _ListByIotHub, _Delete,
// _GenerateVerificationCode, _Verify); the service API serves the same JSON shapes under
// /hubkit/certificates, a hubkit extension (docs/iothub-behavior.md §1.25). Errors follow
// Backend's rules; ifMatch is "" or "*" (unconditional) or an etag.
type CertificateBackend interface {
	Certificates(ctx context.Context) ([]iothub.Certificate, error)
	Certificate(ctx context.Context, name string) (iothub.Certificate, error)
	// PutCertificate registers or replaces the CA certificate name (PEM or base64 DER);
	// created reports whether it is new.
	PutCertificate(ctx context.Context, name, text string, verified bool, ifMatch string) (c iothub.Certificate, created bool, err error)
	DeleteCertificate(ctx context.Context, name, ifMatch string) error
	GenerateVerificationCode(ctx context.Context, name, ifMatch string) (iothub.Certificate, error)
	VerifyCertificate(ctx context.Context, name, ifMatch, proof string) (iothub.Certificate, error)
}

func (h *handler) certs(w http.ResponseWriter) (CertificateBackend, bool) {
	cb, ok := h.b.(CertificateBackend)
	if !ok {
		h.writeError(w, iothub.Errorf(iothub.CodeGenericNotFound, "this hub keeps no CA certificates"))
	}
	return cb, ok
}

func (h *handler) listCertificates(w http.ResponseWriter, r *http.Request) {
	cb, ok := h.certs(w)
	if !ok {
		return
	}
	cs, err := cb.Certificates(r.Context())
	if err != nil {
		h.writeError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, iothub.CertificateList{Value: nonNil(cs)})
}

func (h *handler) getCertificate(w http.ResponseWriter, r *http.Request) {
	cb, ok := h.certs(w)
	if !ok {
		return
	}
	c, err := cb.Certificate(r.Context(), r.PathValue("name"))
	if err != nil {
		h.writeError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, c)
}

func (h *handler) putCertificate(w http.ResponseWriter, r *http.Request) {
	cb, ok := h.certs(w)
	if !ok {
		return
	}
	var in iothub.Certificate
	if err := readJSON(r, &in); err != nil {
		h.writeError(w, err)
		return
	}
	if in.Properties.Certificate == "" {
		h.writeError(w, iothub.Errorf(iothub.CodeArgumentInvalid, "properties.certificate is empty: want the CA certificate's PEM (or base64 DER)"))
		return
	}
	c, created, err := cb.PutCertificate(r.Context(), r.PathValue("name"), in.Properties.Certificate, in.Properties.IsVerified, r.Header.Get("If-Match"))
	if err != nil {
		h.writeError(w, err)
		return
	}
	status := http.StatusOK
	if created {
		status = http.StatusCreated
	}
	writeJSON(w, status, c)
}

func (h *handler) deleteCertificate(w http.ResponseWriter, r *http.Request) {
	cb, ok := h.certs(w)
	if !ok {
		return
	}
	if err := cb.DeleteCertificate(r.Context(), r.PathValue("name"), r.Header.Get("If-Match")); err != nil {
		h.writeError(w, err)
		return
	}
	w.WriteHeader(http.StatusOK)
}

func (h *handler) generateVerificationCode(w http.ResponseWriter, r *http.Request) {
	cb, ok := h.certs(w)
	if !ok {
		return
	}
	c, err := cb.GenerateVerificationCode(r.Context(), r.PathValue("name"), r.Header.Get("If-Match"))
	if err != nil {
		h.writeError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, c)
}

func (h *handler) verifyCertificate(w http.ResponseWriter, r *http.Request) {
	cb, ok := h.certs(w)
	if !ok {
		return
	}
	var in iothub.CertificateVerification
	if err := readJSON(r, &in); err != nil {
		h.writeError(w, err)
		return
	}
	c, err := cb.VerifyCertificate(r.Context(), r.PathValue("name"), r.Header.Get("If-Match"), in.Certificate)
	if err != nil {
		h.writeError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, c)
}
