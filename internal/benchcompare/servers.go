package main

import (
	"context"
	"crypto/ecdsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/hubkit/hubkit/internal/certs"
)

// goTLSEnv makes the Go processes (fakehub, bare mochi, devicesim) negotiate
// X25519 like OpenSSL 3.0, which cannot do the hybrid X25519MLKEM768 and
// SecP256r1MLKEM768 Go prefers: the key exchange dominates a connect's CPU,
// so all three servers must do the same one.
const goTLSEnv = "GODEBUG=tlsmlkem=0,tlssecpmlkem=0"

// kind is a server under test.
type kind struct {
	name string // fakehub, mochi, mosquitto
	// command returns the process serving MQTT over TLS on port.
	command func(w *workdir, port int) (*exec.Cmd, error)
}

// workdir holds what the servers and the load share: the devices file, the
// leaf certificate and key (PEM), the CA directory, the binaries.
type workdir struct {
	dir       string
	bin       string
	caDir     string
	fleet     string // devices file with keys (fakehub --devices, devicesim --keys)
	cert, key string // a leaf for localhost and 127.0.0.1 from the CA
	mosquitto string // the mosquitto binary
}

func newWorkdir(bin, caDir, mosquitto string, devices int) (*workdir, error) {
	dir, err := os.MkdirTemp("", "bench-compare-")
	if err != nil {
		return nil, err
	}
	// mosquitto drops root privileges to its own user, which must read the
	// files here: they are public test material.
	if err := os.Chmod(dir, 0o755); err != nil {
		return nil, err
	}
	w := &workdir{dir: dir, bin: bin, caDir: caDir, mosquitto: mosquitto,
		fleet: filepath.Join(dir, "fleet.json"), cert: filepath.Join(dir, "leaf.pem"), key: filepath.Join(dir, "leaf-key.pem")}
	if err := w.writeFleet(devices); err != nil {
		return nil, err
	}
	if err := w.writeLeaf(); err != nil {
		return nil, err
	}
	return w, nil
}

// writeFleet writes devices load-0 … load-(n-1) with keys from a fixed seed
// (the same fleet every run), and the "device" policy.
func (w *workdir) writeFleet(n int) error {
	type keys struct {
		PrimaryKey string `json:"primaryKey"`
	}
	type auth struct {
		SymmetricKey keys `json:"symmetricKey"`
	}
	type dev struct {
		DeviceID       string `json:"deviceId"`
		Authentication auth   `json:"authentication"`
	}
	type policy struct {
		KeyName    string `json:"keyName"`
		PrimaryKey string `json:"primaryKey"`
		Rights     string `json:"rights"`
	}
	rnd := rand.NewChaCha8([32]byte{'h', 'u', 'b', 'k', 'i', 't'})
	key := func() string {
		b := make([]byte, 32)
		_, _ = rnd.Read(b)
		return base64.StdEncoding.EncodeToString(b)
	}
	f := struct {
		HostName string   `json:"hostname"`
		Devices  []dev    `json:"devices"`
		Policies []policy `json:"policies"`
	}{HostName: "localhost"}
	for i := range n {
		f.Devices = append(f.Devices, dev{DeviceID: fmt.Sprintf("load-%d", i), Authentication: auth{keys{key()}}})
	}
	f.Policies = []policy{{KeyName: "device", PrimaryKey: key(), Rights: "DeviceConnect"},
		{KeyName: "iothubowner", PrimaryKey: key(), Rights: "RegistryRead, RegistryWrite, ServiceConnect, DeviceConnect"}}
	b, err := json.Marshal(f)
	if err != nil {
		return err
	}
	return os.WriteFile(w.fleet, b, 0o644)
}

// writeLeaf mints the certificate bare mochi and mosquitto present: the
// same CA and kind of leaf (ECDSA P-256, no intermediate) as fakehub mints
// for itself at start.
func (w *workdir) writeLeaf() error {
	ca, err := certs.LoadCA(w.caDir)
	if err != nil {
		return err
	}
	leaf, err := ca.Issue([]string{"localhost", "127.0.0.1", "::1"}, 24*time.Hour, time.Now())
	if err != nil {
		return err
	}
	der, err := x509.MarshalPKCS8PrivateKey(leaf.PrivateKey.(*ecdsa.PrivateKey))
	if err != nil {
		return err
	}
	if err := os.WriteFile(w.cert, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: leaf.Certificate[0]}), 0o644); err != nil {
		return err
	}
	return os.WriteFile(w.key, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), 0o644)
}

var kinds = map[string]kind{
	"fakehub": {name: "fakehub", command: func(w *workdir, port int) (*exec.Cmd, error) {
		// The shipped command with its defaults (log level info included), but for
		// --classic-tls13: the others negotiate TLS 1.3, and fakehub's default for the
		// classic host names is IoT Hub's TLS 1.2.
		cmd := exec.Command(filepath.Join(w.bin, "fakehub"), "--ca", w.caDir, "--devices", w.fleet,
			"--listen", fmt.Sprintf("127.0.0.1:%d", port), "--http", "off", "--classic-tls13")
		cmd.Env = append(os.Environ(), goTLSEnv)
		return cmd, nil
	}},
	"mochi": {name: "mochi", command: func(w *workdir, port int) (*exec.Cmd, error) {
		cmd := exec.Command(filepath.Join(w.bin, "baremochi"), "-listen", fmt.Sprintf("127.0.0.1:%d", port), "-cert", w.cert, "-key", w.key)
		cmd.Env = append(os.Environ(), goTLSEnv)
		return cmd, nil
	}},
	"mosquitto": {name: "mosquitto", command: func(w *workdir, port int) (*exec.Cmd, error) {
		if w.mosquitto == "" {
			return nil, errors.New("mosquitto is not installed (apt-get install mosquitto)")
		}
		conf := filepath.Join(w.dir, fmt.Sprintf("mosquitto-%d.conf", port))
		// Debian's mosquitto does not set TCP_NODELAY: its CONNACK would
		// wait ~40 ms for a delayed ACK. Everything else is the default.
		body := strings.Join([]string{
			fmt.Sprintf("listener %d 127.0.0.1", port),
			"certfile " + w.cert,
			"keyfile " + w.key,
			"allow_anonymous true",
			"set_tcp_nodelay true",
			"persistence false",
			"max_connections -1",
		}, "\n") + "\n"
		if err := os.WriteFile(conf, []byte(body), 0o644); err != nil {
			return nil, err
		}
		return exec.Command(w.mosquitto, "-c", conf), nil
	}},
}

// process is a running server.
type process struct {
	cmd  *exec.Cmd
	port int
	log  *os.File
}

func startServer(ctx context.Context, w *workdir, k kind) (*process, error) {
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	cmd, err := k.command(w, port)
	if err != nil {
		return nil, err
	}
	log, err := os.Create(filepath.Join(w.dir, fmt.Sprintf("%s-%d.log", k.name, port)))
	if err != nil {
		return nil, err
	}
	cmd.Stdout, cmd.Stderr = log, log
	if err := cmd.Start(); err != nil {
		log.Close()
		return nil, fmt.Errorf("%s: %w", k.name, err)
	}
	p := &process{cmd: cmd, port: port, log: log}
	deadline := time.Now().Add(30 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", p.addr(), time.Second)
		if err == nil {
			c.Close()
			return p, nil
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			p.stop()
			return nil, fmt.Errorf("%s did not listen on %s within 30 s (log: %s)", k.name, p.addr(), log.Name())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func (p *process) addr() string { return fmt.Sprintf("127.0.0.1:%d", p.port) }
func (p *process) pid() int     { return p.cmd.Process.Pid }

// stop sends SIGTERM and waits (SIGKILL after 10 s).
func (p *process) stop() {
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	done := make(chan struct{})
	go func() { _ = p.cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		_ = p.cmd.Process.Kill()
		<-done
	}
	p.log.Close()
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}
