package fakehubtest_test

import (
	"context"
	"flag"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hubkit/hubkit/internal/mqttraw"
	"github.com/hubkit/hubkit/pkg/fakehub"
	"github.com/hubkit/hubkit/pkg/fakehub/fakehubtest"
)

// captureTB records what the hub's log sends to t.Log.
type captureTB struct {
	testing.TB
	mu    sync.Mutex
	lines []string
}

func (c *captureTB) Log(args ...any) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.lines = append(c.lines, fmt.Sprint(args...))
}

func (c *captureTB) text() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return strings.Join(c.lines, "\n")
}

// Under -v a tiny test's log has the hub's story (INFO and WARN), not mochi's packet dumps.
func TestVerboseLogHasNoDebugLines(t *testing.T) {
	if !testing.Verbose() {
		if err := flag.Set("test.v", "true"); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = flag.Set("test.v", "false") })
	}
	tb := &captureTB{TB: t}
	var h *fakehubtest.Hub
	t.Run("hub", func(t *testing.T) {
		tb.TB = t
		h = fakehubtest.Start(tb, fakehub.Options{})
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		ack, c, err := mqttraw.ConnectAndWait(ctx, h.Addr(), h.ClientTLS(), mqttraw.ConnectPacket{ClientID: "nobody", CleanSession: true,
			UserName: mqttraw.String("localhost/nobody/?api-version=2021-04-12"), Password: mqttraw.String("SharedAccessSignature sr=localhost&sig=x&se=1")})
		if err != nil {
			t.Fatal(err)
		}
		c.Close()
		if ack.ReturnCode != 5 {
			t.Errorf("CONNACK %d, want 5", ack.ReturnCode)
		}
		if _, err := h.WaitRejection(ctx, nil); err != nil {
			t.Fatal(err)
		}
	})
	got := tb.text()
	if !strings.Contains(got, "level=WARN msg=refused") {
		t.Errorf("the log lacks the refusal:\n%s", got)
	}
	if strings.Contains(got, "level=DEBUG") {
		t.Errorf("the log has DEBUG lines at the default fakehubtest.LogLevel:\n%s", got)
	}
}
