//go:build unix

package fakehub_test

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http/httptest"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/hubkit/hubkit/internal/certs"
	"github.com/hubkit/hubkit/internal/mqttraw"
	"github.com/hubkit/hubkit/internal/testutil"
	"github.com/hubkit/hubkit/pkg/fakehub"
	"github.com/hubkit/hubkit/pkg/iothub"
)

// limitedHubEnv, set in the environment of the re-executed test binary,
// makes TestAcceptAtDescriptorLimit run the hub with that open-files limit.
const limitedHubEnv = "HUBKIT_TEST_LIMITED_HUB_NOFILE"

// At its open-files limit the hub refuses new connections at once (the
// client sees the close, it is not left waiting), records and logs why, and
// accepts again once connections close. mochi's own accept loop would end
// for good at the first EMFILE. The hub runs in a re-executed test binary
// whose limit is lowered, so this process keeps its own.
func TestAcceptAtDescriptorLimit(t *testing.T) {
	if v := os.Getenv(limitedHubEnv); v != "" {
		runLimitedHub(t, v)
		return
	}
	const limit = 40
	cmd := exec.Command(os.Args[0], "-test.run=^TestAcceptAtDescriptorLimit$", "-test.count=1")
	cmd.Env = append(os.Environ(), limitedHubEnv+"="+strconv.Itoa(limit))
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var logs fakehub.LogBuffer
	cmd.Stderr = &logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		stdin.Close() // the hub stops when its stdin ends
		if err := cmd.Wait(); err != nil {
			t.Errorf("limited hub: %v\n%s", err, logs.String())
		}
	})
	ready := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			if line, ok := strings.CutPrefix(sc.Text(), "hub ready "); ok {
				ready <- line
			}
		}
		close(ready)
	}()
	var line string
	select {
	case line = <-ready:
	case <-time.After(30 * time.Second):
		t.Fatalf("the limited hub did not start:\n%s", logs.String())
	}
	addr, caFile, _ := strings.Cut(line, " ")
	pool, err := certs.LoadPool(caFile)
	if err != nil {
		t.Fatal(err)
	}
	clientTLS := &tls.Config{RootCAs: pool, ServerName: "localhost"}
	connect := func(i int) (*mqttraw.Conn, error) {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		ack, c, err := mqttraw.ConnectAndWait(ctx, addr, clientTLS, goodConnect(iothub.Identity{DeviceID: "dev-" + strconv.Itoa(i)}, keyDev1A))
		if err != nil {
			return nil, err
		}
		if ack.ReturnCode != 0 {
			c.Close()
			return nil, fmt.Errorf("CONNACK %d", ack.ReturnCode)
		}
		return c, nil
	}

	// Fill the hub up; the connections past its limit are refused, promptly.
	var held []*mqttraw.Conn
	defer func() {
		for _, c := range held {
			c.Close()
		}
	}()
	// A connection left waiting would end in connect's 10 s time-out, not in
	// a close: the hub's CONNECT time-out is a minute (runLimitedHub).
	refused := 0
	for i := 0; i < 2*limit && refused < 3; i++ {
		c, err := connect(i)
		if err == nil {
			held = append(held, c)
			continue
		}
		if !errors.Is(err, io.EOF) && !errors.Is(err, syscall.ECONNRESET) {
			t.Fatalf("connection %d (after %d held): %v; want the hub to close it at once (EOF or reset)\nhub log:\n%s", i, len(held), err, logs.String())
		}
		refused++
	}
	if refused < 3 || len(held) < limit/2 || len(held) >= limit {
		t.Fatalf("held %d connections and saw %d refusals under a limit of %d files; want most of the limit held, then refusals", len(held), refused, limit)
	}
	testutil.Eventually(t, "the refusal logged with its reason", func() bool {
		return strings.Contains(logs.String(), `"reason":"out-of-file-descriptors"`)
	})

	// Free the descriptors: the hub takes connections again.
	for _, c := range held {
		c.Close()
	}
	held = held[:0]
	var err2 error
	testutil.Eventually(t, "a connection accepted once descriptors are free", func() bool {
		var c *mqttraw.Conn
		if c, err2 = connect(0); err2 != nil {
			return false
		}
		held = append(held, c)
		return true
	})
	for i := 1; i < 5; i++ {
		c, err := connect(i)
		if err != nil {
			t.Fatalf("after the descriptors were freed, connection %d: %v", i, err)
		}
		held = append(held, c)
	}
}

// runLimitedHub lowers this process's open-files limit, starts a hub with
// devices dev-0 … dev-199 (key keyDev1A), prints "hub ready ADDR CAFILE"
// and serves until stdin ends.
func runLimitedHub(t *testing.T, limit string) {
	n, err := strconv.ParseUint(limit, 10, 64)
	if err != nil {
		t.Fatal(err)
	}
	var rl syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &rl); err != nil {
		t.Fatal(err)
	}
	rl.Cur = n
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &rl); err != nil {
		t.Fatal(err)
	}
	h := startHub(t, fakehub.Options{ConnectTimeout: time.Minute,
		Logger: slog.New(slog.NewJSONHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))})
	for i := range 200 {
		if _, err := h.AddDevice("dev-"+strconv.Itoa(i), keyDev1A); err != nil {
			t.Fatal(err)
		}
	}
	fmt.Printf("hub ready %s %s\n", h.Addr(), h.CAFile)
	_, _ = io.Copy(io.Discard, os.Stdin)
	if st := h.ListenerStats(); st.Refused == 0 || st.AcceptErrors < st.Refused {
		t.Errorf("ListenerStats = %+v, want refusals counted among the accept errors", st)
	} else {
		rec := httptest.NewRecorder()
		h.MetricsHandler().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
		if want := fmt.Sprintf("hubkit_accept_errors_total %d\n", st.AcceptErrors); !strings.Contains(rec.Body.String(), want) {
			t.Errorf("/metrics lacks %q", want)
		}
	}
}
