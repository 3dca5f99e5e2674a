package certs

import "errors"

// Errors from LoadCA. They are wrapped as "certs: <file>: <problem> (<details>)",
// so that errors.Is(err, certs.ErrNotCA) holds; their own text therefore
// carries no "certs:" prefix. A missing file gives an error wrapping
// fs.ErrNotExist.
var (
	// ErrNotPEM: the file holds no PEM block of the expected type.
	ErrNotPEM = errors.New("no PEM data of the expected type")
	// ErrBadCert: the PEM block does not hold a parsable X.509 certificate.
	ErrBadCert = errors.New("not a valid X.509 certificate")
	// ErrNotCA: the certificate is not a CA (BasicConstraints CA=false, or
	// no certificate-signing key usage).
	ErrNotCA = errors.New("certificate is not a CA")
	// ErrBadKey: the key file holds no usable private key.
	ErrBadKey = errors.New("not a usable private key")
	// ErrKeyMismatch: the private key does not belong to the certificate.
	ErrKeyMismatch = errors.New("private key does not match the certificate")
	// ErrNoCA: LoadOrCreateCA found no CA where it will not create one
	// unasked (a folder with other files, or a file).
	ErrNoCA = errors.New("no CA there")
	// ErrExpired: the CA is not valid at the time given.
	ErrExpired = errors.New("CA certificate expired or not yet valid")
)
