package serviceclient

import (
	"context"
	"net/http"

	"github.com/hubkit/hubkit/pkg/iothub"
)

// CA certificates for X.509 CA identities: a hubkit extension under /hubkit/certificates,
// in the JSON shapes of Azure Resource Manager's Certificates_* operations (the real hub
// manages them there, through az iot hub certificate).

func certPath(name string, rest ...string) string {
	return path(append([]string{"hubkit", "certificates", name}, rest...)...)
}

// Certificates lists the CA certificates registered on the hub.
func (c *Client) Certificates(ctx context.Context) ([]iothub.Certificate, error) {
	var l iothub.CertificateList
	err := c.call(ctx, request{method: http.MethodGet, path: "/hubkit/certificates", hubkit: true}, &l)
	return l.Value, err
}

// Certificate returns one registered CA certificate (iothub.ErrNotFound if none).
func (c *Client) Certificate(ctx context.Context, name string) (iothub.Certificate, error) {
	var out iothub.Certificate
	err := c.call(ctx, request{method: http.MethodGet, path: certPath(name), hubkit: true}, &out)
	return out, err
}

// PutCertificate registers (or replaces) a CA certificate: pemText is its PEM or base64
// DER; verified marks it verified on upload (az's --verified); otherwise prove possession
// with GenerateVerificationCode and VerifyCertificate.
func (c *Client) PutCertificate(ctx context.Context, name, pemText string, verified bool) (iothub.Certificate, error) {
	return c.certCall(ctx, http.MethodPut, certPath(name), iothub.Certificate{Properties: iothub.CertificateProperties{Certificate: pemText, IsVerified: verified}})
}

// DeleteCertificate removes a registered CA certificate.
func (c *Client) DeleteCertificate(ctx context.Context, name string) error {
	return c.call(ctx, request{method: http.MethodDelete, path: certPath(name), hubkit: true}, nil)
}

// GenerateVerificationCode returns the CA's properties with a fresh verification code: the
// common name of the proof-of-possession certificate to sign with the CA's key.
func (c *Client) GenerateVerificationCode(ctx context.Context, name string) (iothub.Certificate, error) {
	return c.certCall(ctx, http.MethodPost, certPath(name, "generateVerificationCode"), nil)
}

// VerifyCertificate completes proof of possession with the certificate (PEM or base64 DER)
// whose CN is the verification code, signed by the CA.
func (c *Client) VerifyCertificate(ctx context.Context, name, proofPEM string) (iothub.Certificate, error) {
	return c.certCall(ctx, http.MethodPost, certPath(name, "verify"), iothub.CertificateVerification{Certificate: proofPEM})
}

// certCall sends body (JSON; nil: none) to a /hubkit/certificates route and decodes the
// certificate it answers.
func (c *Client) certCall(ctx context.Context, method, p string, body any) (iothub.Certificate, error) {
	r := request{method: method, path: p}
	if body != nil {
		var err error
		if r, err = jsonRequest(method, p, body); err != nil {
			return iothub.Certificate{}, err
		}
	}
	r.hubkit = true
	var out iothub.Certificate
	err := c.call(ctx, r, &out)
	return out, err
}
