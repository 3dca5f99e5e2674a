// Package ociimage builds fakehub's container image without a Docker daemon
// (github.com/google/go-containerregistry): one layer holding a static
// binary on an empty base, OCI media types, written as a tarball that
// `docker load` and `podman load` read.
package ociimage

import (
	"archive/tar"
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// Config describes the image.
type Config struct {
	Binary       string            // path of the static binary, stored as /fakehub
	Arch         string            // GOARCH of the binary (amd64, arm64)
	Cmd          []string          // default arguments
	ExposedPorts []string          // "8883/tcp", ...
	Labels       map[string]string // org.opencontainers.image.* and others
	User         string            // "65532:65532"
	StateDir     string            // a folder the user may write (the CA, state), e.g. /var/lib/fakehub
	Created      time.Time         // the image's creation time (fixed for reproducible images)
}

// Entrypoint is the image's entrypoint: the binary, alone at the root.
var Entrypoint = []string{"/fakehub"}

// Build returns the image described by cfg.
func Build(cfg Config) (v1.Image, error) {
	bin, err := os.ReadFile(cfg.Binary)
	if err != nil {
		return nil, fmt.Errorf("ociimage: %w", err)
	}
	if cfg.Arch == "" {
		return nil, errors.New("ociimage: Config.Arch is required (the binary's GOARCH)")
	}
	uid, gid := 65532, 65532
	if cfg.User != "" {
		if _, err := fmt.Sscanf(cfg.User, "%d:%d", &uid, &gid); err != nil {
			return nil, fmt.Errorf("ociimage: User %q: want UID:GID", cfg.User)
		}
	}
	layerTar, err := layer(bin, cfg.StateDir, uid, gid, cfg.Created)
	if err != nil {
		return nil, err
	}
	l, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) {
		return io.NopCloser(bytes.NewReader(layerTar)), nil
	}, tarball.WithMediaType(types.OCILayer))
	if err != nil {
		return nil, fmt.Errorf("ociimage: layer: %w", err)
	}
	img := mutate.MediaType(empty.Image, types.OCIManifestSchema1)
	img = mutate.ConfigMediaType(img, types.OCIConfigJSON)
	img, err = mutate.Append(img, mutate.Addendum{Layer: l, MediaType: types.OCILayer,
		History: v1.History{Created: v1.Time{Time: cfg.Created}, CreatedBy: "hubkit internal/ociimage", Comment: "the fakehub binary"}})
	if err != nil {
		return nil, fmt.Errorf("ociimage: %w", err)
	}
	cf, err := img.ConfigFile()
	if err != nil {
		return nil, fmt.Errorf("ociimage: %w", err)
	}
	cf = cf.DeepCopy()
	cf.OS, cf.Architecture, cf.Created = "linux", cfg.Arch, v1.Time{Time: cfg.Created}
	cf.Config.Entrypoint = Entrypoint
	cf.Config.Cmd = cfg.Cmd
	cf.Config.User = fmt.Sprintf("%d:%d", uid, gid)
	cf.Config.WorkingDir = cfg.StateDir
	cf.Config.Labels = cfg.Labels
	cf.Config.ExposedPorts = map[string]struct{}{}
	for _, p := range cfg.ExposedPorts {
		cf.Config.ExposedPorts[p] = struct{}{}
	}
	img, err = mutate.ConfigFile(img, cf)
	if err != nil {
		return nil, fmt.Errorf("ociimage: %w", err)
	}
	return img, nil
}

// layer is the image's only layer: /fakehub, /tmp and the state folder.
func layer(bin []byte, stateDir string, uid, gid int, mod time.Time) ([]byte, error) {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	add := func(h *tar.Header, body []byte) error {
		h.ModTime, h.Format = mod, tar.FormatPAX
		if err := tw.WriteHeader(h); err != nil {
			return err
		}
		_, err := tw.Write(body)
		return err
	}
	if err := add(&tar.Header{Name: "fakehub", Mode: 0o755, Size: int64(len(bin)), Typeflag: tar.TypeReg}, bin); err != nil {
		return nil, err
	}
	if err := add(&tar.Header{Name: "tmp/", Mode: 0o1777, Typeflag: tar.TypeDir}, nil); err != nil {
		return nil, err
	}
	if stateDir != "" {
		var dirs []string
		for d := stateDir; d != "/" && d != "." && d != ""; d = parent(d) {
			dirs = append([]string{d}, dirs...)
		}
		for i, d := range dirs {
			h := &tar.Header{Name: d[1:] + "/", Mode: 0o755, Typeflag: tar.TypeDir}
			if i == len(dirs)-1 {
				h.Uid, h.Gid, h.Mode = uid, gid, 0o700
			}
			if err := add(h, nil); err != nil {
				return nil, err
			}
		}
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

func parent(p string) string {
	for i := len(p) - 1; i > 0; i-- {
		if p[i] == '/' {
			return p[:i]
		}
	}
	return "/"
}

// Write writes img as a tarball tagged tag (`docker load -i path`).
func Write(path, tag string, img v1.Image) error {
	ref, err := name.NewTag(tag)
	if err != nil {
		return fmt.Errorf("ociimage: tag %q: %w", tag, err)
	}
	if err := tarball.WriteToFile(path, ref, img); err != nil {
		return fmt.Errorf("ociimage: writing %s: %w", path, err)
	}
	return nil
}
