package testutil

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"testing"
)

// RequireInteropEnv names the environment variable that turns a missing third-party
// client from a skip into a failure. .ci/run sets it to 1: CI must really run the
// interop tests.
const RequireInteropEnv = "HUBKIT_REQUIRE_INTEROP"

// InteropRequired reports whether RequireInteropEnv is "1".
func InteropRequired() bool { return os.Getenv(RequireInteropEnv) == "1" }

// MissingTool ends t because a tool it needs is missing: a skip, or a failure when
// InteropRequired. The message should say what is missing and how to install it.
func MissingTool(t testing.TB, format string, args ...any) {
	t.Helper()
	msg := fmt.Sprintf(format, args...)
	if InteropRequired() {
		t.Fatalf("%s (%s=1: interop clients must run)", msg, RequireInteropEnv)
		return // for a testing.TB whose Fatalf returns
	}
	t.Skipf("%s (set %s=1 to make this a failure)", msg, RequireInteropEnv)
}

// LookTool returns the path of the executable name, or ends t with MissingTool naming
// the Debian package that provides it.
func LookTool(t testing.TB, name, debianPackage string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		MissingTool(t, "%s is not installed (apt-get install %s)", name, debianPackage)
	}
	return p
}

// PahoPython returns Debian's /usr/bin/python3 once it can import Paho for Python
// (python3-paho-mqtt), or ends t with MissingTool.
func PahoPython(t testing.TB) string {
	t.Helper()
	const python = "/usr/bin/python3"
	if _, err := os.Stat(python); err != nil {
		MissingTool(t, "%s not found: apt-get install python3 python3-paho-mqtt", python)
	}
	if out, err := exec.Command(python, "-c", "import paho.mqtt.client").CombinedOutput(); err != nil {
		MissingTool(t, "Paho for Python is missing (%v: %s): apt-get install python3-paho-mqtt", err, bytes.TrimSpace(out))
	}
	return python
}
