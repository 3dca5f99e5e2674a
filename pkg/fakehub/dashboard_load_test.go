package fakehub_test

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"os"
	"os/exec"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hubkit/hubkit/internal/mqttraw"
	"github.com/hubkit/hubkit/pkg/fakehub"
	"github.com/hubkit/hubkit/pkg/iothub"
	"github.com/hubkit/hubkit/pkg/sas"
)

// The dashboard under load (make bench-dashboard): a hub in a child
// process (each process gets its own descriptor limit) with 10,000
// connected devices, the page load times, and the hub's telemetry
// throughput with and without open dashboards, interleaved. It reports; it
// asserts nothing about time.
const (
	loadEnv    = "HUBKIT_DASHBOARD_LOAD"     // devices to connect (make bench-dashboard sets 10000)
	loadHubEnv = "HUBKIT_DASHBOARD_LOAD_HUB" // set in the child: run the hub
)

func TestDashboardLoadHub(t *testing.T) {
	n, _ := strconv.Atoi(os.Getenv(loadHubEnv))
	if n == 0 {
		t.Skip("the hub of TestDashboardLoad, run in a child process")
	}
	s, err := fakehub.NewServer(fakehub.Options{InsecureAddr: "127.0.0.1:0", ServiceAddr: "127.0.0.1:0", InsecureService: true})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	for i := range n {
		if _, err := s.AddDevice(fmt.Sprintf("dev-%05d", i), keyDev1A); err != nil {
			t.Fatal(err)
		}
	}
	fmt.Printf("mqtt %s\nlogin %s\n", s.InsecureAddr(), s.DashboardLoginURL())
	_, _ = io.Copy(io.Discard, os.Stdin) // until the parent closes it
}

func TestDashboardLoad(t *testing.T) {
	n, _ := strconv.Atoi(os.Getenv(loadEnv))
	if n == 0 {
		t.Skip("set " + loadEnv + "=10000 (make bench-dashboard)")
	}
	child := exec.Command(os.Args[0], "-test.run=^TestDashboardLoadHub$", "-test.v=false")
	child.Env = append(os.Environ(), loadHubEnv+"="+strconv.Itoa(n), loadEnv+"=")
	stdin, _ := child.StdinPipe()
	out, _ := child.StdoutPipe()
	child.Stderr = os.Stderr
	if err := child.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { stdin.Close(); _ = child.Wait() })
	rd := bufio.NewReader(out)
	var mqttAddr, login string
	for mqttAddr == "" || login == "" {
		line, err := rd.ReadString('\n')
		if err != nil {
			t.Fatalf("hub child: %v", err)
		}
		if a, ok := strings.CutPrefix(strings.TrimSpace(line), "mqtt "); ok {
			mqttAddr = a
		}
		if a, ok := strings.CutPrefix(strings.TrimSpace(line), "login "); ok {
			login = a
		}
	}
	go func() { _, _ = io.Copy(io.Discard, rd) }()
	base := login[:strings.Index(login, "/ui/")]

	// Connect the fleet, 64 at a time.
	start := time.Now()
	conns := make([]*mqttraw.Conn, n)
	var wg sync.WaitGroup
	sem := make(chan struct{}, 64)
	var failed sync.Map
	for i := range n {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			id := iothub.Identity{DeviceID: fmt.Sprintf("dev-%05d", i)}
			p := mqttraw.ConnectPacket{ClientID: id.DeviceID, UserName: mqttraw.String(userName("localhost", id)),
				Password:     mqttraw.String(sas.Sign(sas.EncodeResource(sas.DeviceResource("localhost", id.DeviceID)), "", keyDev1A, time.Now().Add(2*time.Hour)).String()),
				CleanSession: true, KeepAlive: 600}
			ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
			defer cancel()
			ack, c, err := mqttraw.ConnectAndWait(ctx, mqttAddr, nil, p)
			if err != nil || ack.ReturnCode != 0 {
				failed.Store(i, fmt.Sprint(err, ack.ReturnCode))
				return
			}
			conns[i] = c
		}()
	}
	wg.Wait()
	t.Cleanup(func() {
		for _, c := range conns {
			if c != nil {
				_ = c.Close()
			}
		}
	})
	failed.Range(func(k, v any) bool { t.Fatalf("device %v: %v", k, v); return false })
	t.Logf("%d devices connected in %s", n, time.Since(start).Round(time.Millisecond))

	jar, _ := cookiejar.New(nil)
	hc := &http.Client{Jar: jar, Timeout: 30 * time.Second}
	if resp, err := hc.Get(login); err != nil || resp.StatusCode != 200 {
		t.Fatalf("login: %v %v", err, resp)
	}
	if got := scrapeCounter(t, hc, base, "hubkit_connected_devices"); got != float64(n) {
		t.Fatalf("hubkit_connected_devices = %v, want %d", got, n)
	}

	// Page loads with the whole fleet connected: median and worst of 9.
	for _, path := range []string{"/", "/ui/devices", "/ui/devices?page=100", "/ui/devices?q=dev-0999", "/ui/devices?state=connected&page=150",
		"/ui/devices/dev-05000", "/ui/telemetry", "/ui/rejections", "/metrics"} {
		var ds []time.Duration
		for range 9 {
			t0 := time.Now()
			resp, err := hc.Get(base + path)
			if err != nil {
				t.Fatal(err)
			}
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode != 200 {
				t.Fatalf("GET %s = %d", path, resp.StatusCode)
			}
			ds = append(ds, time.Since(t0))
		}
		slices.Sort(ds)
		t.Logf("page %-40s median %7s  worst %7s", path, ds[4].Round(100*time.Microsecond), ds[8].Round(100*time.Microsecond))
	}

	// Telemetry throughput: 20 devices publish QoS 0 as fast as they can;
	// the hub's own counter says when it has taken them all.
	const publishers, perDevice = 20, 5000
	payload := []byte(`{"temperature":21.5,"humidity":40,"seq":123456,"status":"ok"}`)
	pid := child.Process.Pid
	round := func() (rate, cpuPerMsg float64) {
		before := scrapeCounter(t, hc, base, `hubkit_messages_total{kind="telemetry",result="accepted"}`)
		cpu0 := cpuSeconds(t, pid)
		t0 := time.Now()
		var wg sync.WaitGroup
		for p := range publishers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				c := conns[p*(n/publishers)]
				topic := fmt.Sprintf("devices/dev-%05d/messages/events/", p*(n/publishers))
				for range perDevice {
					if err := c.Publish(mqttraw.PublishPacket{Topic: topic, Payload: payload}); err != nil {
						t.Error(err)
						return
					}
				}
			}()
		}
		wg.Wait()
		want := before + publishers*perDevice
		for scrapeCounter(t, hc, base, `hubkit_messages_total{kind="telemetry",result="accepted"}`) < want {
			time.Sleep(10 * time.Millisecond)
		}
		el := time.Since(t0).Seconds()
		return publishers * perDevice / el, (cpuSeconds(t, pid) - cpu0) / (publishers * perDevice)
	}
	openDashboards := func() func() {
		ctx, cancel := context.WithCancel(context.Background())
		var wg sync.WaitGroup
		for _, path := range []string{"/ui/events/telemetry", "/ui/events/home", "/ui/events/devices", "/ui/events/telemetry?device=dev-00000"} {
			req, _ := http.NewRequestWithContext(ctx, "GET", base+path, nil)
			resp, err := hc.Do(req)
			if err != nil || resp.StatusCode != 200 {
				t.Fatalf("SSE %s: %v", path, err)
			}
			wg.Add(1)
			go func() { defer wg.Done(); _, _ = io.Copy(io.Discard, resp.Body); resp.Body.Close() }()
		}
		return func() { cancel(); wg.Wait() }
	}
	round() // warm-up
	var without, with, cpuWithout, cpuWith []float64
	for range 5 {
		r, c := round()
		without, cpuWithout = append(without, r), append(cpuWithout, c*1e6)
		closeAll := openDashboards()
		r, c = round()
		with, cpuWith = append(with, r), append(cpuWith, c*1e6)
		closeAll()
	}
	med := func(xs []float64) float64 { s := slices.Clone(xs); slices.Sort(s); return s[len(s)/2] }
	t.Logf("telemetry msg/s without dashboard: %.0f (rounds %.0f)", med(without), without)
	t.Logf("telemetry msg/s with 4 live views:  %.0f (rounds %.0f)", med(with), with)
	t.Logf("throughput ratio with/without: %.3f", med(with)/med(without))
	t.Logf("hub CPU µs per message without: %.2f (rounds %.2f)", med(cpuWithout), cpuWithout)
	t.Logf("hub CPU µs per message with:    %.2f (rounds %.2f)", med(cpuWith), cpuWith)
	t.Logf("CPU per message ratio with/without: %.3f", med(cpuWith)/med(cpuWithout))
}

// cpuSeconds is the user+system CPU time of process pid (/proc/PID/stat,
// clock ticks of 1/100 s).
func cpuSeconds(t *testing.T, pid int) float64 {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		t.Fatal(err)
	}
	f := strings.Fields(string(b[strings.LastIndexByte(string(b), ')')+2:]))
	u, _ := strconv.ParseFloat(f[11], 64)
	s, _ := strconv.ParseFloat(f[12], 64)
	return (u + s) / 100
}

var counterLine = regexp.MustCompile(`(?m)^(\S+) (\S+)$`)

// scrapeCounter reads one series from /metrics.
func scrapeCounter(t *testing.T, hc *http.Client, base, series string) float64 {
	t.Helper()
	resp, err := hc.Get(base + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, m := range counterLine.FindAllStringSubmatch(string(b), -1) {
		if m[1] == series {
			v, _ := strconv.ParseFloat(m[2], 64)
			return v
		}
	}
	return 0
}
