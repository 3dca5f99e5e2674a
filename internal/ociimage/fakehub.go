package ociimage

import (
	"fmt"
	"os"
	"os/exec"
	"time"
)

// StateDir is where the image's fakehub keeps its CA (and, later, its state).
const StateDir = "/var/lib/fakehub"

// FakehubConfig is fakehub's image: the device endpoint and the service
// port exposed, a demo device, the CA created in StateDir on first start,
// and OCI labels.
func FakehubConfig(binary, arch, version, revision string, created time.Time) Config {
	labels := map[string]string{
		"org.opencontainers.image.title":       "fakehub",
		"org.opencontainers.image.description": "A fake Azure IoT Hub for offline device tests: MQTT on 8883, service API, dashboard and /metrics on 8443",
		"org.opencontainers.image.source":      "https://github.com/hubkit/hubkit",
		"org.opencontainers.image.licenses":    "MIT",
		"org.opencontainers.image.version":     version,
	}
	if revision != "" {
		labels["org.opencontainers.image.revision"] = revision
	}
	return Config{
		Binary: binary, Arch: arch,
		Cmd:          []string{"--ca", StateDir + "/ca", "--ca-create", "--device", "demo-device"},
		ExposedPorts: []string{"8883/tcp", "8443/tcp"},
		Labels:       labels, User: "65532:65532", StateDir: StateDir, Created: created,
	}
}

// BuildBinary compiles cmd/fakehub for linux/arch as a static binary
// (CGO_ENABLED=0, -trimpath, no symbol table) at out. It runs the go
// command of the toolchain in use, from the module's root or below.
func BuildBinary(out, arch string) error {
	cmd := exec.Command("go", "build", "-trimpath", "-ldflags=-s -w", "-o", out, "github.com/hubkit/hubkit/cmd/fakehub")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux", "GOARCH="+arch)
	if b, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("go build cmd/fakehub: %v\n%s", err, b)
	}
	return nil
}
