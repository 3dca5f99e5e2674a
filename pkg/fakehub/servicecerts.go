package fakehub

import (
	"context"

	"github.com/hubkit/hubkit/pkg/fakehub/internal/restapi"
	"github.com/hubkit/hubkit/pkg/iothub"
)

// The service API's CA certificate routes (restapi.CertificateBackend), from the registry.

var _ restapi.CertificateBackend = serviceBackend{}

func (b serviceBackend) Certificates(context.Context) ([]iothub.Certificate, error) {
	return b.s.opts.Registry.Certificates(), nil
}

func (b serviceBackend) Certificate(_ context.Context, name string) (iothub.Certificate, error) {
	return b.s.opts.Registry.Certificate(name)
}

func (b serviceBackend) PutCertificate(_ context.Context, name, text string, verified bool, ifMatch string) (iothub.Certificate, bool, error) {
	_, err := b.s.opts.Registry.Certificate(name)
	created := err != nil
	c, err := b.s.opts.Registry.PutCertificate(name, text, verified, ifMatch)
	return c, created, err
}

func (b serviceBackend) DeleteCertificate(_ context.Context, name, ifMatch string) error {
	return b.s.opts.Registry.DeleteCertificate(name, ifMatch)
}

func (b serviceBackend) GenerateVerificationCode(_ context.Context, name, ifMatch string) (iothub.Certificate, error) {
	return b.s.opts.Registry.GenerateVerificationCode(name, ifMatch)
}

func (b serviceBackend) VerifyCertificate(_ context.Context, name, ifMatch, proof string) (iothub.Certificate, error) {
	return b.s.opts.Registry.VerifyCertificate(name, ifMatch, proof)
}
