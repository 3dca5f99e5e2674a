package certs

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/x509"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestSaveLoad(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "ca")
	ca := newTestCA(t)
	if err := ca.Save(dir); err != nil {
		t.Fatalf("Save: %v", err)
	}
	checkMode(t, filepath.Join(dir, CertFile), 0o644)
	checkMode(t, filepath.Join(dir, KeyFile), 0o600)

	got, err := LoadCA(dir)
	if err != nil {
		t.Fatalf("LoadCA: %v", err)
	}
	if !got.Cert.Equal(ca.Cert) || !bytes.Equal(got.CertPEM, ca.CertPEM) {
		t.Error("LoadCA returned a different certificate")
	}
	// The loaded CA can issue leaves that verify against the original's pool.
	leaf, err := got.Issue([]string{"localhost"}, time.Hour, testNow)
	if err != nil {
		t.Fatalf("Issue: %v", err)
	}
	if err := leaf.Leaf.CheckSignatureFrom(ca.Cert); err != nil {
		t.Errorf("leaf from loaded CA: %v", err)
	}

	// Save replaces a world-readable key file with a private one.
	if err := os.Chmod(filepath.Join(dir, KeyFile), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := ca.Save(dir); err != nil {
		t.Fatalf("second Save: %v", err)
	}
	checkMode(t, filepath.Join(dir, KeyFile), 0o600)
}

func checkMode(t *testing.T, path string, want os.FileMode) {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if got := fi.Mode().Perm(); got != want {
		t.Errorf("mode of %s = %o, want %o", filepath.Base(path), got, want)
	}
}

func TestLoadCAErrors(t *testing.T) {
	ca, other := newTestCA(t), newTestCA(t)
	leaf, err := ca.Issue([]string{"localhost"}, time.Hour, testNow)
	if err != nil {
		t.Fatal(err)
	}
	good := t.TempDir()
	if err := ca.Save(good); err != nil {
		t.Fatal(err)
	}
	goodKey, err := os.ReadFile(filepath.Join(good, KeyFile))
	if err != nil {
		t.Fatal(err)
	}
	otherDir := t.TempDir()
	if err := other.Save(otherDir); err != nil {
		t.Fatal(err)
	}
	otherKey, err := os.ReadFile(filepath.Join(otherDir, KeyFile))
	if err != nil {
		t.Fatal(err)
	}
	leafPEM := encodePEM("CERTIFICATE", leaf.Certificate[0])
	garbage := []byte("-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n")

	for _, tc := range []struct {
		name      string
		cert, key []byte // nil: file absent
		wantErr   error
		wantFile  string
		wantText  string
	}{
		{"missing-cert", nil, goodKey, fs.ErrNotExist, CertFile, "CA certificate missing"},
		{"missing-key", ca.CertPEM, nil, fs.ErrNotExist, KeyFile, "CA private key missing"},
		{"cert-not-pem", []byte("hello"), goodKey, ErrNotPEM, CertFile, `want a "CERTIFICATE" block`},
		{"cert-garbage", garbage, goodKey, ErrBadCert, CertFile, "not a valid X.509 certificate"},
		{"cert-is-leaf", leafPEM, goodKey, ErrNotCA, CertFile, "BasicConstraints CA=false"},
		{"key-not-pem", ca.CertPEM, []byte("secret"), ErrNotPEM, KeyFile, `"PRIVATE KEY"`},
		{"key-is-cert", ca.CertPEM, ca.CertPEM, ErrNotPEM, KeyFile, "no PEM data"},
		{"key-garbage", ca.CertPEM, []byte("-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n"), ErrBadKey, KeyFile, "not a usable private key"},
		{"key-mismatch", ca.CertPEM, otherKey, ErrKeyMismatch, KeyFile, "does not match"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			writeIf(t, filepath.Join(dir, CertFile), tc.cert)
			writeIf(t, filepath.Join(dir, KeyFile), tc.key)
			_, err := LoadCA(dir)
			if !errors.Is(err, tc.wantErr) {
				t.Fatalf("LoadCA = %v, want %v", err, tc.wantErr)
			}
			msg := err.Error()
			if !strings.HasPrefix(msg, "certs: ") || !strings.Contains(msg, filepath.Join(dir, tc.wantFile)) || !strings.Contains(msg, tc.wantText) {
				t.Errorf("LoadCA error %q, want it to start with \"certs: \" and name %s and say %q", msg, tc.wantFile, tc.wantText)
			}
			if strings.Contains(msg, "certs: certs:") {
				t.Errorf("LoadCA error %q repeats its prefix", msg)
			}
		})
	}
}

func writeIf(t *testing.T, path string, data []byte) {
	t.Helper()
	if data == nil {
		return
	}
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
}

func TestLoadCAKeyFormats(t *testing.T) {
	// Keys written by openssl (SEC 1, with an EC PARAMETERS block first) load too.
	ca := newTestCA(t)
	dir := t.TempDir()
	if err := ca.Save(dir); err != nil {
		t.Fatal(err)
	}
	sec1, err := marshalSEC1(ca)
	if err != nil {
		t.Fatal(err)
	}
	params := encodePEM("EC PARAMETERS", []byte{0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07})
	if err := os.WriteFile(filepath.Join(dir, KeyFile), append(params, sec1...), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadCA(dir); err != nil {
		t.Errorf("LoadCA with a SEC 1 key: %v", err)
	}
}

func TestLoadOrCreateCA(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "new", "certs")
	if _, _, err := LoadOrCreateCA(dir, testNow, false); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("LoadOrCreateCA (missing dir, create false) = %v, want an error wrapping fs.ErrNotExist", err)
	}
	if _, err := os.Stat(filepath.Dir(dir)); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("LoadOrCreateCA (create false) made the parent folder (stat: %v)", err)
	}
	ca, created, err := LoadOrCreateCA(dir, testNow, true)
	if err != nil || !created {
		t.Fatalf("LoadOrCreateCA (missing dir, create true) = created %v, %v; want created true, nil", created, err)
	}
	checkMode(t, filepath.Join(dir, KeyFile), 0o600)
	if ca.Cert.Subject.CommonName != DefaultCommonName {
		t.Errorf("CommonName = %q, want %q", ca.Cert.Subject.CommonName, DefaultCommonName)
	}

	again, created, err := LoadOrCreateCA(dir, testNow.Add(time.Hour), false)
	if err != nil || created {
		t.Fatalf("LoadOrCreateCA (second call) = created %v, %v; want created false, nil", created, err)
	}
	if !again.Cert.Equal(ca.Cert) {
		t.Error("second LoadOrCreateCA returned a different CA")
	}

	t.Run("expired", func(t *testing.T) {
		_, _, err := LoadOrCreateCA(dir, testNow.Add(101*365*24*time.Hour), false)
		if !errors.Is(err, ErrExpired) {
			t.Errorf("LoadOrCreateCA after 101 years = %v, want ErrExpired", err)
		}
	})
	t.Run("half-present", func(t *testing.T) {
		if err := os.Remove(filepath.Join(dir, KeyFile)); err != nil {
			t.Fatal(err)
		}
		_, _, err := LoadOrCreateCA(dir, testNow, true)
		if err == nil || !strings.Contains(err.Error(), "only one of") {
			t.Errorf("LoadOrCreateCA with only ca.pem = %v, want a refusal", err)
		}
		if _, err := os.Stat(filepath.Join(dir, KeyFile)); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("LoadOrCreateCA wrote a key next to a foreign certificate (stat: %v)", err)
		}
	})
	t.Run("empty-folder", func(t *testing.T) {
		dir := t.TempDir()
		if _, created, err := LoadOrCreateCA(dir, testNow, false); err != nil || !created {
			t.Errorf("LoadOrCreateCA (existing empty folder) = created %v, %v; want created true, nil", created, err)
		}
	})
	t.Run("folder-with-other-files", func(t *testing.T) {
		dir := t.TempDir()
		writeIf(t, filepath.Join(dir, "notes.txt"), []byte("x"))
		if _, _, err := LoadOrCreateCA(dir, testNow, false); !errors.Is(err, ErrNoCA) {
			t.Errorf("LoadOrCreateCA (folder with other files) = %v, want ErrNoCA", err)
		}
		if _, err := os.Stat(filepath.Join(dir, CertFile)); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("LoadOrCreateCA wrote a CA into a folder with other files (stat: %v)", err)
		}
		if _, created, err := LoadOrCreateCA(dir, testNow, true); err != nil || !created {
			t.Errorf("LoadOrCreateCA (other files, create true) = created %v, %v; want created true, nil", created, err)
		}
	})
	t.Run("file", func(t *testing.T) {
		file := filepath.Join(t.TempDir(), CertFile)
		writeIf(t, file, []byte("x"))
		if _, _, err := LoadOrCreateCA(file, testNow, true); !errors.Is(err, ErrNoCA) {
			t.Errorf("LoadOrCreateCA (a file) = %v, want ErrNoCA", err)
		}
	})
	t.Run("broken", func(t *testing.T) {
		dir := t.TempDir()
		writeIf(t, filepath.Join(dir, CertFile), []byte("x"))
		writeIf(t, filepath.Join(dir, KeyFile), []byte("y"))
		if _, _, err := LoadOrCreateCA(dir, testNow, false); !errors.Is(err, ErrNotPEM) {
			t.Errorf("LoadOrCreateCA with broken files = %v, want ErrNotPEM", err)
		}
	})
}

// TestCommittedCA checks the CA committed in testdata/certs: it loads, is
// valid for decades, and its README warns that the key is public.
func TestCommittedCA(t *testing.T) {
	dir := filepath.Join("..", "..", "testdata", "certs")
	ca, err := LoadCA(dir)
	if err != nil {
		t.Fatalf("LoadCA(%s): %v (regenerate with `make certs`)", dir, err)
	}
	if left := time.Until(ca.Cert.NotAfter); left < 50*365*24*time.Hour {
		t.Errorf("committed CA expires %v, want at least 50 years ahead", ca.Cert.NotAfter)
	}
	readme, err := os.ReadFile(filepath.Join(dir, "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(readme, []byte("PUBLIC")) {
		t.Error("testdata/certs/README.md does not say the key material is public")
	}
}

// marshalSEC1 encodes ca's key the way `openssl ecparam -genkey` does.
func marshalSEC1(ca *CA) ([]byte, error) {
	k, ok := ca.Key.(*ecdsa.PrivateKey)
	if !ok {
		return nil, fmt.Errorf("key is %T", ca.Key)
	}
	der, err := x509.MarshalECPrivateKey(k)
	if err != nil {
		return nil, err
	}
	return encodePEM("EC PRIVATE KEY", der), nil
}
