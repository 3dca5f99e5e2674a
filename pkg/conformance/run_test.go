package conformance

import (
	"net"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/hubkit/hubkit/internal/mqttraw"
)

// silentTarget accepts TCP connections and never answers: a hung hub.
type silentTarget struct{ addr string }

func (s silentTarget) Endpoint() Endpoint { return Endpoint{Addr: s.addr, HostName: "silent.example"} }
func (silentTarget) NewDevice(testing.TB) DeviceIdentity {
	return DeviceIdentity{DeviceID: "dev1", PrimaryKey: "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8="}
}

const hungEnv = "HUBKIT_CONFORMANCE_HUNG_CHILD"

// TestHungHubChild runs a case that blocks for a minute on a hub that never
// answers; its 300 ms deadline must fail it and close its connection.
func TestHungHubChild(t *testing.T) {
	if os.Getenv(hungEnv) == "" {
		t.Skip("runs only as the child process of TestDeadlineClosesHungCase")
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			defer c.Close()
		}
	}()
	c := Case{ID: "test/hung", Timeout: 300 * time.Millisecond, run: func(e *env) {
		nc, err := net.Dial("tcp", e.ep.Addr)
		if err != nil {
			e.Fatalf("dial: %v", err)
		}
		conn := mqttraw.NewConn(nc)
		e.onClose(func() { _ = conn.Close() })
		start := time.Now()
		_, err = conn.ReadPacket(time.Minute)
		e.Logf("read returned after %v: %v", time.Since(start).Round(100*time.Millisecond), err)
	}}
	c.Run(t, silentTarget{addr: ln.Addr().String()})
}

func TestDeadlineClosesHungCase(t *testing.T) {
	t.Parallel()
	if os.Getenv(hungEnv) != "" {
		t.Skip("child process")
	}
	start := time.Now()
	cmd := exec.Command(os.Args[0], "-test.run=^TestHungHubChild$", "-test.v", "-test.count=1", "-test.timeout=30s")
	cmd.Env = append(os.Environ(), hungEnv+"=1", "GORACE=atexit_sleep_ms=0")
	out, err := cmd.CombinedOutput()
	took := time.Since(start)
	if err == nil {
		t.Errorf("a case blocked on a silent hub passed, want it to fail at its deadline\n%s", out)
	}
	if !strings.Contains(string(out), "test/hung: no result within 300ms") {
		t.Errorf("the child's output lacks the deadline failure %q:\n%s", "test/hung: no result within 300ms", out)
	}
	if took > 15*time.Second {
		t.Errorf("the hung case took %v to end, want about its 300 ms deadline (connections closed)", took)
	}
}

func TestCaseSkipsWithoutCapability(t *testing.T) {
	c := Case{ID: "test/needs", Needs: []string{NeedCloudToDevice, NeedTwin}}
	why := c.missing(silentTarget{})
	if !strings.Contains(why, "conformance.CloudToDevice") {
		t.Errorf("missing() = %q, want it to name CloudToDevice", why)
	}
	c = Case{ID: "test/needs-nothing"}
	if why := c.missing(silentTarget{}); why != "" {
		t.Errorf("missing() = %q for a case with no needs, want \"\"", why)
	}
}
