// Command mkimage builds fakehub's OCI image without a Docker daemon: it
// compiles cmd/fakehub as a static binary (CGO_ENABLED=0, GOOS=linux) and
// writes an image tarball (`make image`; then `docker load -i FILE`).
package main

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"time"

	"github.com/hubkit/hubkit/internal/ociimage"
)

func main() {
	out := flag.String("o", "bin/fakehub-image.tar", "image tarball `FILE` to write")
	tag := flag.String("tag", "hubkit/fakehub:dev", "image `TAG`")
	arch := flag.String("arch", runtime.GOARCH, "target `GOARCH`")
	version := flag.String("version", "dev", "org.opencontainers.image.version `LABEL`")
	revision := flag.String("revision", "", "org.opencontainers.image.revision `LABEL` (git commit)")
	flag.Parse()
	if err := run(*out, *tag, *arch, *version, *revision); err != nil {
		fmt.Fprintln(os.Stderr, "mkimage: error:", err)
		os.Exit(1)
	}
}

func run(out, tag, arch, version, revision string) error {
	dir, err := os.MkdirTemp("", "mkimage")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	bin := filepath.Join(dir, "fakehub")
	if err := ociimage.BuildBinary(bin, arch); err != nil {
		return err
	}
	img, err := ociimage.Build(ociimage.FakehubConfig(bin, arch, version, revision, time.Unix(0, 0).UTC()))
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(out), 0o755); err != nil {
		return err
	}
	if err := ociimage.Write(out, tag, img); err != nil {
		return err
	}
	d, _ := img.Digest()
	fmt.Printf("%s: %s (%s), load with: docker load -i %s\n", out, tag, d, out)
	return nil
}
