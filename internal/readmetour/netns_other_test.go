//go:build unix && !linux

package readmetour

import (
	"errors"
	"os/exec"
)

// inNamespace makes cmd fail to start: only Linux has the namespaces, and a command that
// never starts sends the parent to the machine's loopback.
func inNamespace(cmd *exec.Cmd) { cmd.Path = "/nonexistent/no-network-namespaces" }

func loopbackUp() error { return errors.New("no network namespaces on this system") }
