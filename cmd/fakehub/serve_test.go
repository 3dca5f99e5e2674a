package main

import (
	"bytes"
	"context"
	"crypto/tls"
	"net"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rogpeppe/go-internal/testscript"

	"github.com/hubkit/hubkit/internal/certs"
	"github.com/hubkit/hubkit/internal/mqttraw"
	"github.com/hubkit/hubkit/internal/testutil"
	"github.com/hubkit/hubkit/pkg/sas"
)

// TestServeScripts runs testdata/serve_*.txtar: flag errors, the start
// banner (with the hidden --exit-after-start), devices files. Scripts get
// $CA_DIR (the committed test CA) and the commands "fakehub ARGS" (run
// in-process), "exit N" (the code of the last fakehub run) and "holdport
// VAR" (listen on a free loopback port until the script ends; $VAR is its
// address).
func TestServeScripts(t *testing.T) {
	caDir, err := filepath.Abs("../../testdata/certs")
	if err != nil {
		t.Fatal(err)
	}
	files, _ := filepath.Glob("testdata/serve_*.txtar")
	testscript.Run(t, testscript.Params{
		Files: files,
		Setup: func(env *testscript.Env) error {
			env.Setenv("CA_DIR", caDir)
			return nil
		},
		Cmds: map[string]func(ts *testscript.TestScript, neg bool, args []string){
			"fakehub": func(ts *testscript.TestScript, neg bool, args []string) {
				ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
				defer cancel()
				code := run(ctx, args, strings.NewReader(""), ts.Stdout(), ts.Stderr(), ts.Getenv)
				ts.Setenv("FAKEHUB_EXIT", strconv.Itoa(code))
				if neg != (code != 0) {
					ts.Fatalf("fakehub exited %d", code)
				}
			},
			"holdport": func(ts *testscript.TestScript, neg bool, args []string) {
				if len(args) != 1 || neg {
					ts.Fatalf("usage: holdport VAR")
				}
				ln, err := net.Listen("tcp", "127.0.0.1:0")
				ts.Check(err)
				ts.Defer(func() { ln.Close() })
				ts.Setenv(args[0], ln.Addr().String())
			},
			// samekeys A B: the files (two banners) show the same dev1 key and iothubowner key.
			"samekeys": func(ts *testscript.TestScript, neg bool, args []string) {
				keys := func(name string) string {
					text := ts.ReadFile(name)
					var out []string
					for _, re := range []*regexp.Regexp{regexp.MustCompile(`DeviceId=dev1;SharedAccessKey=(\S+)`), regexp.MustCompile(`SharedAccessKeyName=iothubowner;SharedAccessKey=([^'\s]+)`)} {
						m := re.FindStringSubmatch(text)
						if m == nil {
							ts.Fatalf("%s: no %s", name, re)
						}
						out = append(out, m[1])
					}
					return strings.Join(out, " ")
				}
				if same := keys(args[0]) == keys(args[1]); same == neg {
					ts.Fatalf("keys of %s and %s: same = %v", args[0], args[1], same)
				}
			},
			"exit": func(ts *testscript.TestScript, neg bool, args []string) {
				if len(args) != 1 || neg {
					ts.Fatalf("usage: exit N")
				}
				if got := ts.Getenv("FAKEHUB_EXIT"); got != args[0] {
					ts.Fatalf("exit code %s, want %s", got, args[0])
				}
			},
		},
	})
}

// syncBuffer is a bytes.Buffer safe for a writer and a reader goroutine.
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

// TestServeUntilSignal runs the hub, sends telemetry with a raw client and
// stops it the way SIGINT does (context cancelled): exit 0, telemetry and
// refusals logged on stderr.
func TestServeUntilSignal(t *testing.T) {
	const key = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8="
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var stdout, stderr syncBuffer
	done := make(chan int, 1)
	go func() {
		done <- run(ctx, []string{"--ca", "../../testdata/certs", "--listen", "127.0.0.1:0", "--ws", "127.0.0.1:0", "--http", "off", "--device", "dev1=" + key},
			strings.NewReader(""), &stdout, &stderr, func(string) string { return "" })
	}()
	addr := bannerAddr(t, &stdout, &stderr)
	ca, err := certs.LoadCA("../../testdata/certs")
	if err != nil {
		t.Fatal(err)
	}
	k, _ := sas.DecodeKey(key)
	connect := func(k []byte) (mqttraw.Connack, *mqttraw.Conn) {
		cctx, ccancel := context.WithTimeout(ctx, 5*time.Second)
		defer ccancel()
		ack, c, err := mqttraw.ConnectAndWait(cctx, addr, ca.ClientTLS("localhost"), mqttraw.ConnectPacket{
			ClientID: "dev1", UserName: mqttraw.String("localhost/dev1/?api-version=2021-04-12"), CleanSession: true,
			Password: mqttraw.String(sas.Sign(sas.EncodeResource("localhost/devices/dev1"), "", k, time.Now().Add(time.Hour)).String()),
		})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		return ack, c
	}
	if ack, _ := connect(bytes.Repeat([]byte{9}, 32)); ack.ReturnCode != 5 {
		t.Errorf("wrong key: CONNACK %d", ack.ReturnCode)
	}
	ack, c := connect(k)
	if ack.ReturnCode != 0 {
		t.Fatalf("CONNACK %d; stderr %s", ack.ReturnCode, stderr.String())
	}
	if err := c.Publish(mqttraw.PublishPacket{Topic: "devices/dev1/messages/events/a=b", QoS: 1, PacketID: 1, Payload: []byte("hi")}); err != nil {
		t.Fatal(err)
	}
	if p, err := c.ReadPacket(5 * time.Second); err != nil || p.Type != mqttraw.TypePuback {
		t.Fatalf("got %v %v, want PUBACK", p, err)
	}
	if !testutil.Poll(10*time.Second, func() bool { return strings.Contains(stderr.String(), "msg=telemetry") }) {
		t.Fatalf("telemetry not logged: %s", stderr.String())
	}
	cancel()
	select {
	case code := <-done:
		if code != 0 {
			t.Errorf("exit %d, want 0; stderr %s", code, stderr.String())
		}
	case <-time.After(10 * time.Second):
		t.Fatal("fakehub did not stop")
	}
	log := stderr.String()
	for _, want := range []string{"reason=signature-mismatch", "deviceId=dev1", "properties=map[a:b]"} {
		if !strings.Contains(log, want) {
			t.Errorf("stderr lacks %q:\n%s", want, log)
		}
	}
	if strings.Contains(log, key) {
		t.Error("stderr leaks the device key")
	}
}

// TestCertNames: each name once (TLS errors list them), ports dropped, host names first.
func TestCertNames(t *testing.T) {
	for _, tc := range []struct {
		hosts []string
		want  []string
	}{
		{[]string{"localhost"}, []string{"localhost", "127.0.0.1", "::1"}},
		{[]string{"MyHub.azure-devices.net:8883", "myhub.azure-devices.net", "LOCALHOST"}, []string{"myhub.azure-devices.net", "localhost", "127.0.0.1", "::1"}},
	} {
		if got := certNames(tc.hosts); !slices.Equal(got, tc.want) {
			t.Errorf("certNames(%q) = %q, want %q", tc.hosts, got, tc.want)
		}
	}
}

// bannerAddr waits for the banner of a hub run writes to stdout and returns its MQTT address.
func bannerAddr(t *testing.T, stdout, stderr *syncBuffer) string {
	t.Helper()
	addrRE := regexp.MustCompile(`on (127\.0\.0\.1:[0-9]+) `)
	var addr string
	if !testutil.Poll(10*time.Second, func() bool {
		if m := addrRE.FindStringSubmatch(stdout.String()); m != nil {
			addr = m[1]
		}
		return addr != ""
	}) {
		t.Fatalf("no banner; stdout %q stderr %q", stdout.String(), stderr.String())
	}
	return addr
}

// TestClassicTLS13Flag: the classic host name gets TLS 1.2 by default, as IoT Hub's, and
// TLS 1.3 with --classic-tls13; the flag without --ca is a usage error.
func TestClassicTLS13Flag(t *testing.T) {
	ca, err := certs.LoadCA("../../testdata/certs")
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		flags []string
		want  uint16
	}{{nil, tls.VersionTLS12}, {[]string{"--classic-tls13"}, tls.VersionTLS13}} {
		ctx, cancel := context.WithCancel(context.Background())
		var stdout, stderr syncBuffer
		done := make(chan int, 1)
		go func() {
			done <- run(ctx, append([]string{"--ca", "../../testdata/certs", "--listen", "127.0.0.1:0", "--ws", "off", "--http", "off"}, tt.flags...),
				strings.NewReader(""), &stdout, &stderr, func(string) string { return "" })
		}()
		t.Cleanup(cancel)
		addr := bannerAddr(t, &stdout, &stderr)
		c, err := tls.Dial("tcp", addr, ca.ClientTLS("localhost"))
		if err != nil {
			t.Errorf("%v: %v", tt.flags, err)
		} else {
			if v := c.ConnectionState().Version; v != tt.want {
				t.Errorf("%v: negotiated %s, want %s", tt.flags, tls.VersionName(v), tls.VersionName(tt.want))
			}
			c.Close()
		}
		cancel()
		<-done
	}
	var stdout, stderr syncBuffer
	if code := run(context.Background(), []string{"--classic-tls13", "--insecure-tcp", "127.0.0.1:0"}, strings.NewReader(""), &stdout, &stderr, func(string) string { return "" }); code != 2 || !strings.Contains(stderr.String(), "--classic-tls13 needs --ca") {
		t.Errorf("--classic-tls13 without --ca: exit %d, stderr %q; want 2 and the reason", code, stderr.String())
	}
}
