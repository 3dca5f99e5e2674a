package certs

import (
	"crypto/x509"
	"os"
	"path/filepath"
)

// LoadPool reads the CA certificates a client should trust, the way the
// --ca flags of fakehub's service verbs and of devicesim take them: path is
// a PEM file, or a folder holding [CertFile] (DIR/ca.pem, the layout of
// LoadCA and "fakehub --ca DIR").
//
// Errors name the file. A file that cannot be read gives os.ReadFile's
// *fs.PathError ("open PATH: no such file or directory"); a file without a
// PEM certificate gives "no PEM certificate in PATH", which wraps ErrNotPEM.
// Unlike LoadCA's, these errors carry no "certs:" prefix: callers add their
// own context, as in fmt.Errorf("reading the CA: %w", err).
func LoadPool(path string) (*x509.CertPool, error) {
	if fi, err := os.Stat(path); err == nil && fi.IsDir() {
		path = filepath.Join(path, CertFile)
	}
	pem, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return nil, &noCertError{path: path}
	}
	return pool, nil
}

// noCertError is LoadPool's error for a file without a PEM certificate.
type noCertError struct{ path string }

func (e *noCertError) Error() string { return "no PEM certificate in " + e.path }
func (e *noCertError) Unwrap() error { return ErrNotPEM }
