package main

import (
	"bytes"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hubkit/hubkit/internal/certs"
)

func TestRun(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "certs")
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	mkca := func(args ...string) (int, string) {
		var out, errOut bytes.Buffer
		code := run(args, &out, &errOut, now)
		return code, out.String() + errOut.String()
	}

	if code, out := mkca("-dir", dir); code != 0 || !strings.Contains(out, "wrote ") {
		t.Fatalf("mkca -dir = %d, %q; want 0 and a \"wrote\" line", code, out)
	}
	first, err := certs.LoadCA(dir)
	if err != nil {
		t.Fatalf("LoadCA after mkca: %v", err)
	}
	if code, out := mkca("-dir", dir); code != 1 || !strings.Contains(out, "already exists; use -force") {
		t.Errorf("mkca over an existing CA = %d, %q; want 1 and a refusal", code, out)
	}
	if code, out := mkca("-dir", dir, "-force"); code != 0 {
		t.Fatalf("mkca -force = %d, %q; want 0", code, out)
	}
	second, err := certs.LoadCA(dir)
	if err != nil {
		t.Fatalf("LoadCA after mkca -force: %v", err)
	}
	if second.Cert.Equal(first.Cert) {
		t.Error("mkca -force did not replace the CA")
	}
	if code, _ := mkca("-nope"); code != 2 {
		t.Errorf("mkca -nope = %d, want 2", code)
	}
	if code, _ := mkca("-dir", dir, "extra"); code != 2 {
		t.Errorf("mkca with an argument = %d, want 2", code)
	}
}
