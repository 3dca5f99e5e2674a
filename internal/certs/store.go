package certs

import (
	"crypto"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"time"
)

// LoadCA reads dir/ca.pem and dir/ca-key.pem. Errors name the file and what
// is wrong with it: missing (wraps fs.ErrNotExist), not PEM (ErrNotPEM),
// not a certificate (ErrBadCert), not a CA (ErrNotCA), not a key
// (ErrBadKey), or a key that does not match the certificate
// (ErrKeyMismatch). The key may be PKCS #8, SEC 1 ("EC PRIVATE KEY") or
// PKCS #1 ("RSA PRIVATE KEY").
func LoadCA(dir string) (*CA, error) {
	certPath, keyPath := filepath.Join(dir, CertFile), filepath.Join(dir, KeyFile)
	certPEM, err := readFile(certPath, "CA certificate")
	if err != nil {
		return nil, err
	}
	cert, err := parseCACert(certPEM)
	if err != nil {
		return nil, fmt.Errorf("certs: %s: %w", certPath, err)
	}
	keyPEM, err := readFile(keyPath, "CA private key")
	if err != nil {
		return nil, err
	}
	key, err := parseKey(keyPEM)
	if err != nil {
		return nil, fmt.Errorf("certs: %s: %w", keyPath, err)
	}
	if pub, ok := key.Public().(interface{ Equal(crypto.PublicKey) bool }); !ok || !pub.Equal(cert.PublicKey) {
		return nil, fmt.Errorf("certs: %s: %w in %s", keyPath, ErrKeyMismatch, certPath)
	}
	return &CA{Cert: cert, Key: key, CertPEM: encodePEM("CERTIFICATE", cert.Raw)}, nil
}

// LoadOrCreateCA loads the CA in dir, or creates a new one there
// (DefaultCommonName, DefaultCAValidity) and saves it; created reports which
// happened. A CA is created only where that cannot be a typo: in a folder
// that exists and is empty, or, with create, in any folder without a CA
// (created with its parents if needed). Otherwise a dir that does not exist
// gives an error wrapping fs.ErrNotExist and a folder with other files
// ErrNoCA, each saying how to ask for a new CA. It refuses a path that is a
// file (ErrNoCA), a folder holding only one of the two files, and a CA that
// is not valid at now (ErrExpired).
func LoadOrCreateCA(dir string, now time.Time, create bool) (ca *CA, created bool, err error) {
	certPath, keyPath := filepath.Join(dir, CertFile), filepath.Join(dir, KeyFile)
	if fi, err := os.Stat(dir); err == nil && !fi.IsDir() {
		return nil, false, fmt.Errorf("certs: %s: %w: it is a file, not the folder holding %s and %s (%s?)",
			dir, ErrNoCA, CertFile, KeyFile, filepath.Dir(dir))
	}
	certExists, err := exists(certPath)
	if err != nil {
		return nil, false, err
	}
	keyExists, err := exists(keyPath)
	if err != nil {
		return nil, false, err
	}
	switch {
	case certExists && keyExists:
		ca, err := LoadCA(dir)
		if err != nil {
			return nil, false, err
		}
		if now.Before(ca.Cert.NotBefore) || now.After(ca.Cert.NotAfter) {
			return nil, false, fmt.Errorf("certs: %s: %w (valid %s to %s; regenerate it with `make certs`)",
				certPath, ErrExpired, ca.Cert.NotBefore.Format(time.RFC3339), ca.Cert.NotAfter.Format(time.RFC3339))
		}
		return ca, false, nil
	case certExists != keyExists:
		return nil, false, fmt.Errorf("certs: %s holds only one of %s and %s; remove it or restore the other file",
			dir, CertFile, KeyFile)
	}
	if !create {
		entries, err := os.ReadDir(dir)
		switch {
		case errors.Is(err, fs.ErrNotExist):
			return nil, false, notExistError("certs: folder " + dir + " does not exist")
		case err != nil:
			return nil, false, fmt.Errorf("certs: %w", err)
		case len(entries) > 0:
			return nil, false, fmt.Errorf("certs: %s: %w: the folder holds other files, but not %s and %s", dir, ErrNoCA, CertFile, KeyFile)
		}
	}
	ca, err = NewCA(DefaultCommonName, DefaultCAValidity, now, nil)
	if err != nil {
		return nil, false, err
	}
	if err := ca.Save(dir); err != nil {
		return nil, false, err
	}
	return ca, true, nil
}

// Save writes the CA to dir/ca.pem (mode 0644) and dir/ca-key.pem (mode
// 0600), creating dir if needed and replacing existing files.
func (ca *CA) Save(dir string) error {
	keyDER, err := x509.MarshalPKCS8PrivateKey(ca.Key)
	if err != nil {
		return fmt.Errorf("certs: encoding CA key: %w", err)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("certs: %w", err)
	}
	if err := writeFile(filepath.Join(dir, KeyFile), encodePEM("PRIVATE KEY", keyDER), 0o600); err != nil {
		return err
	}
	return writeFile(filepath.Join(dir, CertFile), ca.CertPEM, 0o644)
}

func parseCACert(data []byte) (*x509.Certificate, error) {
	block := findPEM(data, "CERTIFICATE")
	if block == nil {
		return nil, fmt.Errorf("%w (want a \"CERTIFICATE\" block)", ErrNotPEM)
	}
	cert, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrBadCert, err)
	}
	if !cert.BasicConstraintsValid || !cert.IsCA {
		return nil, fmt.Errorf("%w (BasicConstraints CA=false; subject %q)", ErrNotCA, cert.Subject.CommonName)
	}
	if cert.KeyUsage != 0 && cert.KeyUsage&x509.KeyUsageCertSign == 0 {
		return nil, fmt.Errorf("%w (key usage lacks certificate signing; subject %q)", ErrNotCA, cert.Subject.CommonName)
	}
	return cert, nil
}

func parseKey(data []byte) (crypto.Signer, error) {
	for rest := data; ; {
		var block *pem.Block
		block, rest = pem.Decode(rest)
		if block == nil {
			return nil, fmt.Errorf("%w (want a \"PRIVATE KEY\", \"EC PRIVATE KEY\" or \"RSA PRIVATE KEY\" block)", ErrNotPEM)
		}
		var key any
		var err error
		switch block.Type {
		case "PRIVATE KEY":
			key, err = x509.ParsePKCS8PrivateKey(block.Bytes)
		case "EC PRIVATE KEY":
			key, err = x509.ParseECPrivateKey(block.Bytes)
		case "RSA PRIVATE KEY":
			key, err = x509.ParsePKCS1PrivateKey(block.Bytes)
		default:
			continue // e.g. "EC PARAMETERS" written by openssl
		}
		if err != nil {
			return nil, fmt.Errorf("%w: %v", ErrBadKey, err)
		}
		signer, ok := key.(crypto.Signer)
		if !ok {
			return nil, fmt.Errorf("%w: %T cannot sign", ErrBadKey, key)
		}
		return signer, nil
	}
}

// findPEM returns the first PEM block of type typ in data, or nil.
func findPEM(data []byte, typ string) *pem.Block {
	for {
		var block *pem.Block
		block, data = pem.Decode(data)
		if block == nil || block.Type == typ {
			return block
		}
	}
}

// readFile reads path; a missing file gives an error wrapping
// fs.ErrNotExist that says how to create a CA.
func readFile(path, what string) ([]byte, error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("certs: %s: %s missing (create a CA with `go run ./internal/certs/cmd/mkca -dir %s`): %w",
			path, what, filepath.Dir(path), fs.ErrNotExist)
	}
	if err != nil {
		return nil, fmt.Errorf("certs: reading %s: %w", what, err)
	}
	return b, nil
}

func exists(path string) (bool, error) {
	_, err := os.Stat(path)
	if errors.Is(err, fs.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("certs: %w", err)
	}
	return true, nil
}

// writeFile replaces path atomically with data and gives it mode perm,
// whatever the mode of a file it replaces.
func writeFile(path string, data []byte, perm os.FileMode) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp*")
	if err != nil {
		return fmt.Errorf("certs: %w", err)
	}
	defer os.Remove(tmp.Name()) // no-op after the rename
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return fmt.Errorf("certs: writing %s: %w", path, err)
	}
	if err := tmp.Chmod(perm); err != nil {
		tmp.Close()
		return fmt.Errorf("certs: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("certs: writing %s: %w", path, err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("certs: %w", err)
	}
	return nil
}
