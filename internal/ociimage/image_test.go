package ociimage_test

import (
	"archive/tar"
	"debug/elf"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/hubkit/hubkit/internal/ociimage"
)

// TestImage builds the image once as `make image` does, reads the tarball
// back, checks its configuration, and runs the binary it holds.
func TestImage(t *testing.T) {
	if testing.Short() {
		t.Skip("builds cmd/fakehub")
	}
	dir := t.TempDir()
	bin := filepath.Join(dir, "fakehub-build")
	if err := ociimage.BuildBinary(bin, runtime.GOARCH); err != nil {
		t.Fatal(err)
	}
	img, err := ociimage.Build(ociimage.FakehubConfig(bin, runtime.GOARCH, "v1.2.3", "abc123", time.Unix(0, 0).UTC()))
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "image.tar")
	if err := ociimage.Write(path, "hubkit/fakehub:test", img); err != nil {
		t.Fatal(err)
	}

	back, err := tarball.ImageFromPath(path, nil)
	if err != nil {
		t.Fatalf("reading the tarball back: %v", err)
	}
	// The docker-load tarball does not record the manifest's media type: check
	// the image as built.
	if mt, _ := img.MediaType(); mt != types.OCIManifestSchema1 {
		t.Errorf("manifest media type %s, want %s", mt, types.OCIManifestSchema1)
	}
	cf, err := back.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	if cf.OS != "linux" || cf.Architecture != runtime.GOARCH {
		t.Errorf("platform %s/%s, want linux/%s", cf.OS, cf.Architecture, runtime.GOARCH)
	}
	c := cf.Config
	if diff := cmp.Diff([]string{"/fakehub"}, c.Entrypoint); diff != "" {
		t.Errorf("entrypoint (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]string{"--ca", "/var/lib/fakehub/ca", "--ca-create", "--device", "demo-device"}, c.Cmd); diff != "" {
		t.Errorf("cmd (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(map[string]struct{}{"8883/tcp": {}, "8443/tcp": {}}, c.ExposedPorts); diff != "" {
		t.Errorf("exposed ports (-want +got):\n%s", diff)
	}
	for k, want := range map[string]string{
		"org.opencontainers.image.title": "fakehub", "org.opencontainers.image.version": "v1.2.3",
		"org.opencontainers.image.revision": "abc123", "org.opencontainers.image.source": "https://github.com/hubkit/hubkit",
		"org.opencontainers.image.licenses": "MIT",
	} {
		if got := c.Labels[k]; got != want {
			t.Errorf("label %s = %q, want %q", k, got, want)
		}
	}
	if c.User != "65532:65532" {
		t.Errorf("user %q, want 65532:65532 (not root)", c.User)
	}
	layers, _ := back.Layers()
	if len(layers) != 1 {
		t.Errorf("%d layers, want 1 on an empty base", len(layers))
	}

	// Extract the files and run the binary the image holds.
	var names []string
	exe := filepath.Join(dir, "fakehub")
	tr := tar.NewReader(mutate.Extract(back))
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		names = append(names, h.Name)
		if h.Name == "fakehub" {
			if h.Mode&0o111 == 0 {
				t.Errorf("/fakehub has mode %o, want executable", h.Mode)
			}
			f, err := os.OpenFile(exe, os.O_CREATE|os.O_WRONLY, 0o755)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := io.Copy(f, tr); err != nil {
				t.Fatal(err)
			}
			f.Close()
		}
		if h.Name == "var/lib/fakehub" && (h.Uid != 65532 || h.Gid != 65532) {
			t.Errorf("/var/lib/fakehub is owned by %d:%d, want 65532:65532", h.Uid, h.Gid)
		}
	}
	slices.Sort(names)
	if diff := cmp.Diff([]string{"fakehub", "tmp", "var", "var/lib", "var/lib/fakehub"}, names); diff != "" {
		t.Errorf("files (-want +got):\n%s", diff)
	}
	ef, err := elf.Open(exe)
	if err != nil {
		t.Fatalf("/fakehub is not an ELF binary: %v", err)
	}
	for _, p := range ef.Progs {
		if p.Type == elf.PT_INTERP {
			t.Errorf("/fakehub has a program interpreter: it is not static (CGO_ENABLED=0)")
		}
	}
	ef.Close()
	out, err := exec.Command(exe, "version").CombinedOutput()
	if err != nil || !strings.Contains(string(out), "fakehub") {
		t.Errorf("fakehub version = %v:\n%s", err, out)
	}
	// The image's default command, with loopback ports, starts and prints the banner.
	args := []string{"--ca", filepath.Join(dir, "state", "ca"), "--ca-create", "--device", "demo-device", "--listen", "127.0.0.1:0", "--http", "127.0.0.1:0", "--exit-after-start"}
	out, err = exec.Command(exe, args...).CombinedOutput()
	if err != nil || !strings.Contains(string(out), "demo-device") || !strings.Contains(string(out), "dashboard: https://") {
		t.Errorf("fakehub %s = %v:\n%s", strings.Join(args, " "), err, out)
	}
}
