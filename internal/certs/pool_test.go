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
		{name: "not-pem", path: notPEM, wantErr: "no PEM certificate in " + notPEM, wantIs: ErrNotPEM},
		{name: "key-not-certificate", path: keyOnly, wantErr: "no PEM certificate in " + keyOnly, wantIs: ErrNotPEM},
		{name: "missing-file", path: missing, wantErr: "open " + missing + ": no such file or directory", wantIs: fs.ErrNotExist},
		{name: "folder-without-ca", path: empty, wantErr: "open " + filepath.Join(empty, CertFile) + ": no such file or directory", wantIs: fs.ErrNotExist},
	} {
		t.Run(tc.name, func(t *testing.T) {
			pool, err := LoadPool(tc.path)
			if tc.wantErr != "" {
				if err == nil || err.Error() != tc.wantErr || !errors.Is(err, tc.wantIs) {
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
