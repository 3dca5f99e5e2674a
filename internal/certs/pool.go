package certs

import (
	"crypto/x509"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
)

// CAFileWant says what a client's --ca takes; errors end with it.
const CAFileWant = "want a folder holding " + CertFile + " (the --ca folder of fakehub) or a PEM file"

// CAFile resolves the CA a client should trust the way every hubkit command's
// client --ca flag takes it (sastool mqtt, devicesim, fakehub's service
// verbs): path is a folder holding [CertFile] (DIR/ca.pem, the layout of
// LoadCA and "fakehub --ca DIR"), or a PEM file. It returns the file, after
// checking that it holds a PEM certificate.
//
// Errors name the path and end with [CAFileWant]: a path that does not exist
// or a folder without ca.pem (both wrap fs.ErrNotExist), an unreadable file,
// a file without a PEM certificate (wraps ErrNotPEM). They carry no "certs:"
// prefix: callers add their own context, as in fmt.Errorf("--ca: %w", err).
func CAFile(path string) (string, error) {
	if path == "" {
		return "", fmt.Errorf("empty path: %s", CAFileWant)
	}
	fi, err := os.Stat(path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return "", notExistError(path + " does not exist: " + CAFileWant)
	case err != nil:
		return "", err
	case fi.IsDir():
		file := filepath.Join(path, CertFile)
		if _, err := os.Stat(file); errors.Is(err, fs.ErrNotExist) {
			return "", notExistError("folder " + path + " holds no " + CertFile + ": " + CAFileWant)
		}
		path = file
	}
	if _, err := loadPool(path); err != nil {
		return "", err
	}
	return path, nil
}

// LoadPool reads the CA certificates a client should trust from path, as
// resolved by CAFile (a PEM file, or a folder holding ca.pem), with
// CAFile's errors.
func LoadPool(path string) (*x509.CertPool, error) {
	file, err := CAFile(path)
	if err != nil {
		return nil, err
	}
	return loadPool(file)
}

func loadPool(file string) (*x509.CertPool, error) {
	pem, err := os.ReadFile(file)
	if err != nil {
		return nil, err
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return nil, &noCertError{path: file}
	}
	return pool, nil
}

// noCertError is LoadPool's error for a file without a PEM certificate.
type noCertError struct{ path string }

func (e *noCertError) Error() string { return "no PEM certificate in " + e.path + ": " + CAFileWant }
func (e *noCertError) Unwrap() error { return ErrNotPEM }

// notExistError is CAFile's error for a path or ca.pem that does not exist.
type notExistError string

func (e notExistError) Error() string { return string(e) }
func (e notExistError) Unwrap() error { return fs.ErrNotExist }
