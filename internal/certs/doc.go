// Package certs mints the TLS material hubkit's tests and tools need: small
// certificate authorities (ECDSA or RSA, roots and intermediates), server
// leaves, device certificates for X.509 identities (CA-signed or self-signed),
// proof-of-possession certificates, and the TLS drills (NewDrill): chains
// shaped like IoT Hub's and the broken ones a device must refuse.
//
// A CA lives in a directory as two PEM files, [CertFile] (ca.pem, 0644) and
// [KeyFile] (ca-key.pem, 0600). The repository commits one under
// testdata/certs (created by `make certs`, which runs cmd/mkca); its private
// key is public test material and must never be trusted outside tests.
//
// Typical use in a test or in fakehub:
//
//	ca, err := certs.LoadCA("testdata/certs")            // or NewCA / LoadOrCreateCA
//	srvTLS, err := ca.ServerTLS([]string{"localhost", "127.0.0.1"}, 24*time.Hour, time.Now())
//	cliTLS := ca.ClientTLS("localhost")                   // trusts only this CA
//
// A client that has only the certificate (devicesim --ca, fakehub's service
// verbs --ca) reads it with LoadPool, from a PEM file or DIR/ca.pem.
//
// The package uses the standard library only. Time is always passed in.
// Randomness is taken from an io.Reader where it matters (serial numbers);
// note that since Go 1.26 the crypto/ecdsa key generation and signing
// ignore caller-supplied readers and always use a secure source.
package certs
