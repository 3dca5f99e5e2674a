//go:build unix

package readmetour

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/hubkit/hubkit/internal/testutil"
)

const (
	childEnv = "HUBKIT_README_TOUR_CHILD" // "1" in the test binary re-run inside the namespace
	binEnv   = "HUBKIT_README_TOUR_BIN"   // the GOBIN the parent installed the tools into
)

// expectation is what one command line of the tour must do.
type expectation struct {
	exit   int      // its exit status; -1: any status but 0
	output []string // each in what it prints (stdout and stderr together)
	claims []string // each in the README's comment on the line and in what it prints
}

// tourLines are the tour's command lines (as the README has them, without their comments) and
// what each must do. A line the README has and this table lacks fails the test, and so does
// the reverse: a change to the tour comes with a change here.
var tourLines = map[string]expectation{
	`sastool mqtt -c "$DEVICE_CS" --ca testdata/certs --format mosquitto`: {output: []string{
		"mosquitto_pub -h localhost -p 8883 --cafile testdata/certs/ca.pem",
		"mosquitto_sub -h localhost -p 8883 --cafile testdata/certs/ca.pem",
		"-u 'localhost/demo-device/?api-version=",
	}},
	`devicesim send -c "$DEVICE_CS" --ca testdata/certs '{"temperature":21.5}'`:                                           {output: []string{"sent 1/1"}},
	`export HUBKIT_SERVICE_CONNECTION_STRING="$SERVICE_CS"`:                                                               {},
	`fakehub events --device demo-device --ca testdata/certs`:                                                             {output: []string{`Z demo-device {"temperature":21.5}`}},
	`fakehub send demo-device '{"led":"on"}' --ca testdata/certs`:                                                         {},
	`devicesim listen -c "$DEVICE_CS" --ca testdata/certs --count 1`:                                                      {output: []string{"connected as demo-device", `payload: {"led":"on"}`}},
	`OLD_TOKEN=$(sastool gen -c "$DEVICE_CS" --expiry 2020-01-01T00:00:00Z)`:                                              {output: []string{"already expired"}},
	`sastool verify -c "$DEVICE_CS" "$OLD_TOKEN"; echo "exit $?"`:                                                         {output: []string{"sastool: hint:"}, claims: []string{"rejected: expired", "exit 3"}},
	`WRONG_KEY_CS='HostName=localhost;DeviceId=demo-device;SharedAccessKey=AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8='`: {},
	`devicesim send -c "$WRONG_KEY_CS" --ca testdata/certs hello`:                                                         {exit: -1, output: []string{"devicesim: hint:", "fakehub rejections"}, claims: []string{"CONNACK 5", "not authorized"}},
	`fakehub rejections --ca testdata/certs`:                                                                              {output: []string{"Z demo-device signature-mismatch: "}, claims: []string{"signature-mismatch"}},
	`go test ./pkg/conformance`:                                                                                           {output: []string{"ok  \tgithub.com/hubkit/hubkit/pkg/conformance"}},
}

// startLine is the tour's first command: it runs until the tour is over.
const startLine = "make run"

// bannerClaims are what the tour says the banner prints, each in the tour's text and in the banner.
var bannerClaims = []string{"--format mosquitto", "iothubowner"}

// placeholder is a line that tells the reader to copy a connection string from the banner:
// NAME='prefix...'.
var placeholder = regexp.MustCompile(`^([A-Z_]+)='([^']*)\.\.\.'$`)

// tourLine is one command line of the tour's shell block.
type tourLine struct {
	n       int    // line number in README.md
	text    string // the line as written
	command string // text without its comment
	comment string // the comment after it, "" if none
}

func TestReadmeTour(t *testing.T) {
	if os.Getenv(childEnv) == "1" {
		if err := loopbackUp(); err != nil {
			t.Fatalf("bringing up the namespace's loopback: %v", err)
		}
		runTour(t, os.Getenv(binEnv))
		return
	}
	root := moduleRoot(t)
	readTour(t, root) // a README that no longer matches the table fails here, before any build
	testutil.GoTool(t)
	testutil.LookTool(t, "make", "make")
	testutil.LookTool(t, "bash", "bash")

	bin := t.TempDir()
	install(t, root, bin)

	ctx, cancel := context.WithTimeout(context.Background(), 8*time.Minute)
	defer cancel()
	child := exec.CommandContext(ctx, os.Args[0], "-test.run=^TestReadmeTour$", "-test.v", "-test.count=1", "-test.timeout=7m")
	child.Env = append(os.Environ(), childEnv+"=1", binEnv+"="+bin)
	inNamespace(child)
	out, err := child.CombinedOutput()
	if child.ProcessState == nil { // it never started: the kernel allows no such namespace here
		t.Logf("no private network namespace (%v): running the tour on this machine's loopback", err)
		for _, port := range []string{"8883", "8443"} {
			l, err := net.Listen("tcp", ":"+port)
			if err != nil {
				testutil.MissingTool(t, "the tour needs port %s (fakehub's default) and no network namespace can be made: %v", port, err)
			}
			l.Close()
		}
		runTour(t, bin)
		return
	}
	if err != nil {
		t.Fatalf("the tour failed (run in a private network namespace): %v\n%s", err, redact(string(out)))
	}
	if !bytes.Contains(out, []byte("--- PASS: TestReadmeTour")) {
		t.Fatalf("the tour's run in its namespace did not report a pass:\n%s", redact(string(out)))
	}
}

func moduleRoot(t *testing.T) string {
	t.Helper()
	root, err := filepath.Abs(filepath.Join("..", ".."))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(root, "go.mod")); err != nil {
		t.Fatalf("module root: %v", err)
	}
	return root
}

// install runs the README's Install line `make install` with GOBIN=bin.
func install(t *testing.T, root, bin string) {
	t.Helper()
	readme := readFile(t, filepath.Join(root, "README.md"))
	block := shellBlock(t, readme, "## Install")
	var line string
	for _, l := range block {
		if strings.HasPrefix(l.command, "make install") {
			line = l.command
		}
	}
	if line == "" {
		t.Fatalf("README.md's Install section has no `make install` line")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "bash", "--noprofile", "--norc", "-c", line)
	cmd.Dir = root
	cmd.Env = append(tourEnv(bin), "GOBIN="+bin)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("%s: %v\n%s", line, err, out)
	}
	for _, tool := range []string{"sastool", "fakehub", "devicesim"} {
		if _, err := os.Stat(filepath.Join(bin, tool)); err != nil {
			t.Fatalf("%s did not install %s: %v", line, tool, err)
		}
	}
}

// runTour runs the tour from the module root with the tools in bin.
func runTour(t *testing.T, bin string) {
	root := moduleRoot(t)
	lines, text := readTour(t, root)

	banner := startHub(t, root, bin, lines[0])
	for _, c := range bannerClaims {
		if !strings.Contains(text, c) || !strings.Contains(banner, c) {
			t.Errorf("the tour says the banner prints %q; in the tour: %v, in the banner: %v", c, strings.Contains(text, c), strings.Contains(banner, c))
		}
	}

	// One bash runs the rest, so variables and exports carry from line to line as in the
	// reader's shell; markers around each line separate what it printed and its status.
	var script strings.Builder
	for i, l := range lines[1:] {
		line := l.text
		if m := placeholder.FindStringSubmatch(l.command); m != nil {
			cs := fromBanner(t, banner, m[2])
			line = m[1] + "='" + cs + "'"
		}
		fmt.Fprintf(&script, "printf '\\n@@@tour %d\\n'\n%s\nprintf '\\n@@@tour %d exit %%d\\n' $?\n", i, line, i)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "bash", "--noprofile", "--norc", "-s")
	cmd.Dir = root
	cmd.Env = tourEnv(bin)
	cmd.Stdin = strings.NewReader(script.String())
	groupKill(cmd)
	out, err := cmd.CombinedOutput()
	transcript := string(out)
	if err != nil {
		t.Fatalf("the tour's shell: %v\n%s", err, redact(transcript))
	}

	for i, l := range lines[1:] {
		if placeholder.MatchString(l.command) {
			continue
		}
		printed, exit, ok := section(transcript, i)
		if !ok {
			t.Errorf("README.md:%d %s: no output markers (did the shell stop?)", l.n, l.command)
			continue
		}
		want := tourLines[l.command]
		switch {
		case want.exit == -1 && exit == 0:
			t.Errorf("README.md:%d %s: exit 0, want a failure\n%s", l.n, l.command, redact(printed))
		case want.exit != -1 && exit != want.exit:
			t.Errorf("README.md:%d %s: exit %d, want %d\n%s", l.n, l.command, exit, want.exit, redact(printed))
		}
		for _, s := range want.output {
			if !strings.Contains(printed, s) {
				t.Errorf("README.md:%d %s: output lacks %q:\n%s", l.n, l.command, s, redact(printed))
			}
		}
		for _, s := range want.claims {
			if !strings.Contains(l.comment, s) {
				t.Errorf("README.md:%d: the comment %q no longer says %q (update the test's table)", l.n, l.comment, s)
			}
			if !strings.Contains(printed, s) {
				t.Errorf("README.md:%d %s: the README says %q; the output:\n%s", l.n, l.command, s, redact(printed))
			}
		}
	}
	if t.Failed() {
		t.Logf("the whole transcript:\n%s", redact(transcript))
	}
}

// startHub runs the tour's first line (make run) in its own process group, waits for the
// banner, and stops the hub with Ctrl-C's SIGINT when the test ends.
func startHub(t *testing.T, root, bin string, l tourLine) string {
	t.Helper()
	if l.command != startLine {
		t.Fatalf("README.md:%d: the tour starts with %q, want %q", l.n, l.command, startLine)
	}
	var out lockedBuffer
	cmd := exec.Command("bash", "--noprofile", "--norc", "-c", l.command)
	cmd.Dir = root
	cmd.Env = tourEnv(bin)
	cmd.Stdout, cmd.Stderr = &out, &out
	ownGroup(cmd)
	if err := cmd.Start(); err != nil {
		t.Fatalf("%s: %v", l.command, err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	t.Cleanup(func() {
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGINT) // what Ctrl-C in the reader's shell sends
		select {
		case <-done:
		case <-time.After(30 * time.Second):
			_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
			<-done
			t.Errorf("%s did not stop within 30s of SIGINT:\n%s", l.command, redact(out.String()))
		}
	})
	ready := func() bool {
		s := out.String()
		return strings.Contains(s, "SharedAccessKeyName=iothubowner;") && strings.Contains(s, "--format mosquitto")
	}
	exited := false
	// go run compiles fakehub first: minutes on a loaded 2-core machine, not seconds.
	testutil.Poll(3*time.Minute, func() bool {
		select {
		case err := <-done:
			done <- err
			exited = true
			return true
		default:
			return ready()
		}
	})
	if exited || !ready() {
		t.Fatalf("%s printed no banner (exited: %v):\n%s", l.command, exited, redact(out.String()))
	}
	return out.String()
}

// fromBanner returns the one connection string in the banner that starts with prefix.
func fromBanner(t *testing.T, banner, prefix string) string {
	t.Helper()
	seen := map[string]bool{}
	for _, cs := range regexp.MustCompile(`HostName=[^\s']+`).FindAllString(banner, -1) {
		if strings.HasPrefix(cs, prefix) {
			seen[cs] = true
		}
	}
	if len(seen) != 1 {
		t.Fatalf("the tour says to copy %q... from the banner; the banner has %d such connection strings:\n%s", prefix, len(seen), redact(banner))
	}
	for cs := range seen {
		return cs
	}
	return ""
}

// section returns what the script's line i printed and its exit status.
func section(transcript string, i int) (string, int, bool) {
	begin := fmt.Sprintf("\n@@@tour %d\n", i)
	b := strings.Index(transcript, begin)
	if b < 0 {
		return "", 0, false
	}
	rest := transcript[b+len(begin):]
	m := regexp.MustCompile(fmt.Sprintf(`\n@@@tour %d exit (\d+)\n`, i)).FindStringSubmatchIndex(rest)
	if m == nil {
		return rest, 0, false
	}
	exit, _ := strconv.Atoi(rest[m[2]:m[3]])
	return rest[:m[0]], exit, true
}

// readTour returns the command lines of the README's tour block and the block's whole text,
// and fails t if they and tourLines disagree.
func readTour(t *testing.T, root string) ([]tourLine, string) {
	t.Helper()
	readme := readFile(t, filepath.Join(root, "README.md"))
	lines := shellBlock(t, readme, "## Five-minute tour")
	var text strings.Builder
	known := map[string]bool{}
	for _, l := range lines {
		text.WriteString(l.text + "\n")
		known[l.command] = true
		if l.command == startLine || placeholder.MatchString(l.command) {
			continue
		}
		if _, ok := tourLines[l.command]; !ok {
			t.Errorf("README.md:%d: the tour runs %q, which this test has no expectation for: add it to tourLines", l.n, l.command)
		}
	}
	for c := range tourLines {
		if !known[c] {
			t.Errorf("the tour no longer runs %q: remove it from tourLines (or restore the README)", c)
		}
	}
	if len(lines) == 0 || t.Failed() {
		t.FailNow()
	}
	return lines, text.String()
}

// shellBlock returns the command lines of the first ```sh block after the heading.
func shellBlock(t *testing.T, readme, heading string) []tourLine {
	t.Helper()
	all := strings.Split(readme, "\n")
	i := 0
	for i < len(all) && strings.TrimSpace(all[i]) != heading {
		i++
	}
	for i < len(all) && strings.TrimSpace(all[i]) != "```sh" {
		i++
	}
	if i == len(all) {
		t.Fatalf("README.md has no ```sh block under %q", heading)
	}
	var lines []tourLine
	for i++; i < len(all) && strings.TrimSpace(all[i]) != "```"; i++ {
		s := strings.TrimSpace(all[i])
		if s == "" || strings.HasPrefix(s, "#") {
			continue
		}
		command, comment := splitComment(s)
		lines = append(lines, tourLine{n: i + 1, text: s, command: command, comment: comment})
	}
	return lines
}

// splitComment splits a shell line at the first # that starts a comment (after blank space,
// outside quotes).
func splitComment(s string) (command, comment string) {
	var quote rune
	for i, r := range s {
		switch {
		case quote != 0:
			if r == quote {
				quote = 0
			}
		case r == '\'' || r == '"':
			quote = r
		case r == '#' && i > 0 && (s[i-1] == ' ' || s[i-1] == '\t'):
			return strings.TrimSpace(s[:i]), strings.TrimSpace(s[i+1:])
		}
	}
	return s, ""
}

// tourEnv is the environment of a reader who installed the tools: GOBIN first in PATH, and
// none of hubkit's variables (the tour sets what it needs).
func tourEnv(bin string) []string {
	var env []string
	for _, kv := range os.Environ() {
		if strings.HasPrefix(kv, "HUBKIT_") || strings.HasPrefix(kv, "PATH=") {
			continue
		}
		env = append(env, kv)
	}
	return append(env, "PATH="+bin+string(os.PathListSeparator)+os.Getenv("PATH"))
}

// ownGroup runs cmd in its own process group, so a signal to the group reaches go run's and
// make's children too.
func ownGroup(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
}

// groupKill runs cmd (made by exec.CommandContext) in its own process group and makes its
// context's end kill the whole group.
func groupKill(cmd *exec.Cmd) {
	ownGroup(cmd)
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = 10 * time.Second
}

var secrets = regexp.MustCompile(`(SharedAccessKey=|sig=|token=)[^;&'"\s]+`)

// redact hides keys, signatures and login tokens in what the test prints.
func redact(s string) string { return secrets.ReplaceAllString(s, "${1}<redacted>") }

func readFile(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// lockedBuffer is a bytes.Buffer a process writes while the test reads it.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}
