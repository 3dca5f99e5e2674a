package serviceclient_test

import (
	"crypto/x509"
	"time"

	"github.com/hubkit/hubkit/internal/certs"
	"github.com/hubkit/hubkit/pkg/fakehub"
)

// exampleHub starts an in-process fakehub with its service API on a random loopback port and
// returns it with the pool that trusts its certificate: what fakehubtest.Start does for a
// test, for an Example, which has no *testing.T.
func exampleHub() (*fakehub.Server, *x509.CertPool) {
	now := time.Now()
	ca, err := certs.NewCA("example CA", time.Hour, now, nil)
	if err != nil {
		panic(err)
	}
	tlsConfig, err := ca.ServerTLS([]string{"localhost", "127.0.0.1"}, time.Hour, now)
	if err != nil {
		panic(err)
	}
	hub, err := fakehub.NewServer(fakehub.Options{TLS: tlsConfig, ServiceAddr: "127.0.0.1:0"})
	if err != nil {
		panic(err)
	}
	return hub, ca.Pool()
}
