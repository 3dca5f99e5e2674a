package certs

import (
	"crypto/x509"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"testing"
	"time"
)

func TestLoadPool(t *testing.T) {
	ca := newTestCA(t)
	dir := t.TempDir()
	caDir := filepath.Join(dir, "ca")
	if err := ca.Save(caDir); err != nil {
		t.Fatal(err)
	}
	notPEM := filepath.Join(dir, "notpem.txt")
	keyOnly := filepath.Join(caDir, KeyFile)
	if err := os.WriteFile(notPEM, []byte("hello\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	empty := filepath.Join(dir, "empty")
	if err := os.Mkdir(empty, 0o755); err != nil {
		t.Fatal(err)
	}
	missing := filepath.Join(dir, "missing.pem")

	leaf, err := ca.Issue([]string{"localhost"}, time.Hour, testNow)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name    string
		path    string
		wantErr string // "" = a pool that trusts ca
		wantIs  error
	}{
		{name: "folder", path: caDir},
		{name: "file", path: filepath.Join(caDir, CertFile)},
		{name: "not-pem", path: notPEM, wantErr: "no PEM certificate in " + notPEM + ": " + CAFileWant, wantIs: ErrNotPEM},
		{name: "key-not-certificate", path: keyOnly, wantErr: "no PEM certificate in " + keyOnly + ": " + CAFileWant, wantIs: ErrNotPEM},
		{name: "missing-file", path: missing, wantErr: missing + " does not exist: " + CAFileWant, wantIs: fs.ErrNotExist},
		{name: "folder-without-ca", path: empty, wantErr: "folder " + empty + " holds no ca.pem: " + CAFileWant, wantIs: fs.ErrNotExist},
		{name: "empty-path", path: "", wantErr: "empty path: " + CAFileWant},
	} {
		t.Run(tc.name, func(t *testing.T) {
			pool, err := LoadPool(tc.path)
			if tc.wantErr != "" {
				if err == nil || err.Error() != tc.wantErr || (tc.wantIs != nil && !errors.Is(err, tc.wantIs)) {
					t.Fatalf("LoadPool(%q) = %v, want %q (wrapping %v)", tc.path, err, tc.wantErr, tc.wantIs)
				}
				return
			}
			if err != nil {
				t.Fatalf("LoadPool(%q) = %v, want a pool", tc.path, err)
			}
			opts := x509.VerifyOptions{Roots: pool, DNSName: "localhost", CurrentTime: testNow}
			if _, err := leaf.Leaf.Verify(opts); err != nil {
				t.Errorf("a leaf of the CA does not verify against LoadPool(%q): %v", tc.path, err)
			}
		})
	}
}

func TestCAFile(t *testing.T) {
	dir := t.TempDir()
	if err := newTestCA(t).Save(dir); err != nil {
		t.Fatal(err)
	}
	want := filepath.Join(dir, CertFile)
	for _, path := range []string{dir, want} {
		if got, err := CAFile(path); got != want || err != nil {
			t.Errorf("CAFile(%q) = %q, %v; want %q, nil", path, got, err, want)
		}
	}
	if got, err := CAFile(filepath.Join(dir, "nope")); got != "" || !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("CAFile(missing) = %q, %v; want an error wrapping fs.ErrNotExist", got, err)
	}
}
