package fakehub_test

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hubkit/hubkit/internal/certs"
	"github.com/hubkit/hubkit/internal/mqttraw"
	"github.com/hubkit/hubkit/internal/testutil"
	"github.com/hubkit/hubkit/pkg/fakehub"
	"github.com/hubkit/hubkit/pkg/fakehub/fakehubtest"
	"github.com/hubkit/hubkit/pkg/grade"
	"github.com/hubkit/hubkit/pkg/iothub"
)

// serverLeaf dials the hub with cfg and returns the leaf it presented, or the handshake's
// error.
func serverLeaf(t *testing.T, h *fakehubtest.Hub, cfg *tls.Config) (*x509.Certificate, error) {
	t.Helper()
	c, err := tls.Dial("tcp", h.Addr(), cfg)
	if err != nil {
		return nil, err
	}
	defer c.Close()
	return c.ConnectionState().PeerCertificates[0], nil
}

// insecure accepts any certificate, to look at what the hub presents.
func insecure(h *fakehubtest.Hub) *tls.Config {
	return &tls.Config{InsecureSkipVerify: true, ServerName: h.HostName(), MinVersion: tls.VersionTLS12}
}

// TestPresentTLSDrill: while a drill is presented new handshakes see its chain (wrong-san:
// a leaf that does not name the hub, refused by a verifying client; root-change: the new
// root's chain, accepted only by a client trusting it), a connection opened before is
// untouched, and restore brings the hub's own chain back.
func TestPresentTLSDrill(t *testing.T) {
	t.Parallel()
	h := startHub(t, fakehub.Options{})
	before := rawSession(t, h, goodConnect(iothub.Identity{DeviceID: "dev2"}, keyDev2A))

	restore, err := h.PresentTLSDrill("wrong-san")
	if err != nil {
		t.Fatal(err)
	}
	if got := h.PresentedTLSDrill(); got != "wrong-san" {
		t.Errorf("PresentedTLSDrill() = %q, want wrong-san", got)
	}
	var host x509.HostnameError
	if _, err := serverLeaf(t, h, h.ClientTLS()); !errors.As(err, &host) {
		t.Errorf("handshake trusting the hub's CA during wrong-san = %v, want a host name error", err)
	}
	if leaf, err := serverLeaf(t, h, insecure(h)); err != nil || slices.Contains(leaf.DNSNames, h.HostName()) {
		t.Errorf("wrong-san leaf: err %v, names %v; want a leaf not naming %s", err, leaf.DNSNames, h.HostName())
	}
	if err := before.Pingreq(); err != nil {
		t.Fatalf("PINGREQ on the connection opened before the drill: %v", err)
	}
	if p, err := before.ReadPacket(5 * time.Second); err != nil || p.Type != mqttraw.TypePingresp {
		t.Errorf("the connection opened before the drill: %v, %v; want a PINGRESP", p.Type, err)
	}
	if !h.Connected(iothub.Identity{DeviceID: "dev2"}) {
		t.Error("dev2 was disconnected by the drill")
	}
	if got := h.GradeHub().ConnectedFrom("127.0.0.1"); !slices.Equal(got, []iothub.Identity{{DeviceID: "dev2"}}) {
		t.Errorf("ConnectedFrom(127.0.0.1) = %v, want [dev2]", got)
	}
	if got := h.GradeHub().ConnectedFrom("192.0.2.1"); len(got) != 0 {
		t.Errorf("ConnectedFrom(192.0.2.1) = %v, want none", got)
	}

	restore()
	if got := h.PresentedTLSDrill(); got != "" {
		t.Errorf("PresentedTLSDrill() after restore = %q, want none", got)
	}
	if _, err := serverLeaf(t, h, h.ClientTLS()); err != nil {
		t.Errorf("handshake after restore: %v", err)
	}

	restore, err = h.PresentTLSDrill("root-change")
	if err != nil {
		t.Fatal(err)
	}
	defer restore()
	var unknown x509.UnknownAuthorityError
	if _, err := serverLeaf(t, h, h.ClientTLS()); !errors.As(err, &unknown) {
		t.Errorf("handshake trusting only the hub's CA during root-change = %v, want an unknown-authority error", err)
	}
	leaf, err := serverLeaf(t, h, h.DrillTLS())
	if err != nil {
		t.Fatalf("handshake trusting the drill trust file during root-change: %v", err)
	}
	if !strings.Contains(leaf.Issuer.CommonName, "Microsoft Azure RSA TLS Issuing CA 04") {
		t.Errorf("root-change leaf issued by %q, want the G2-shaped issuing CA (the new root's chain)", leaf.Issuer.CommonName)
	}
	if _, err := h.PresentTLSDrill("no-such-drill"); err == nil || !strings.Contains(err.Error(), "no-such-drill") {
		t.Errorf("PresentTLSDrill(no-such-drill) = %v, want an error naming it", err)
	}
	if got := h.PresentedTLSDrill(); got != "root-change" {
		t.Errorf("a failed PresentTLSDrill changed the drill to %q", got)
	}
}

// TestPresentTLSDrillWithout: a hub given no drill chains (the caller's TLS
// configuration) says so, and the grader is told it lacks the drills.
func TestPresentTLSDrillWithout(t *testing.T) {
	t.Parallel()
	now := time.Now()
	ca, err := certs.NewCA("no-drills CA", time.Hour, now, nil)
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := ca.ServerTLS([]string{"localhost", "127.0.0.1"}, time.Hour, now)
	if err != nil {
		t.Fatal(err)
	}
	h := fakehubtest.Start(t, fakehub.Options{TLS: cfg})
	if _, err := h.PresentTLSDrill("wrong-san"); !errors.Is(err, fakehub.ErrNoTLSDrills) {
		t.Errorf("PresentTLSDrill without Options.TLSDrills = %v, want ErrNoTLSDrills", err)
	}
	if why := h.GradeHub().Lacks(grade.CapTLSDrills); !strings.Contains(why, "TLS drill") {
		t.Errorf("Lacks(%s) = %q on a hub without drills, want why", grade.CapTLSDrills, why)
	}
	if why := startHub(t, fakehub.Options{}).GradeHub().Lacks(grade.CapTLSDrills); why != "" {
		t.Errorf("Lacks(%s) = %q on a hub with drills, want \"\"", grade.CapTLSDrills, why)
	}
}

// TestObserveHandshakes: the packet observers see each TLS handshake's end with its
// remote address: completed, or refused by the client (its alert), and the drill presented.
func TestObserveHandshakes(t *testing.T) {
	t.Parallel()
	h := startHub(t, fakehub.Options{})
	var mu sync.Mutex
	var got []iothub.Packet
	stop := h.ObservePackets(func(p iothub.Packet) {
		if p.Type == iothub.PacketHandshake || p.Type == iothub.PacketClose {
			mu.Lock()
			got = append(got, p)
			mu.Unlock()
		}
	})
	defer stop()
	find := func(local string) (iothub.Packet, bool) {
		mu.Lock()
		defer mu.Unlock()
		for _, p := range got {
			if p.RemoteAddr == local && p.Type == iothub.PacketHandshake {
				return p, true
			}
		}
		return iothub.Packet{}, false
	}
	closed := func(conn uint64) bool {
		mu.Lock()
		defer mu.Unlock()
		for _, p := range got {
			if p.Type == iothub.PacketClose && p.Conn == conn {
				return true
			}
		}
		return false
	}
	dial := func(cfg *tls.Config) (string, error) {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		c, err := (&tls.Dialer{Config: cfg}).DialContext(ctx, "tcp", h.Addr())
		if err != nil {
			return "", err
		}
		local := c.LocalAddr().String()
		_ = c.Close()
		return local, nil
	}

	local, err := dial(h.ClientTLS())
	if err != nil {
		t.Fatal(err)
	}
	var ok iothub.Packet
	testutil.Eventually(t, "the completed handshake is observed", func() bool { var f bool; ok, f = find(local); return f })
	if ok.TLSError != "" || ok.TLSDrill != "" || !ok.FromDevice || ok.Conn == 0 {
		t.Errorf("completed handshake observed as %+v, want no error, no drill, a connection number", ok)
	}
	// The client closed without a CONNECT (as one that checks the certificate after the
	// handshake does when it refuses): mochi never saw a client, the listener reports the end.
	testutil.Eventually(t, "the close of the connection without a CONNECT is observed", func() bool { return closed(ok.Conn) })

	restore, err := h.PresentTLSDrill("wrong-san")
	if err != nil {
		t.Fatal(err)
	}
	defer restore()
	// A verifying client refuses; its address is read from the hub's record of the
	// handshake (the dial fails, so the client's own address is not known here).
	if _, err := dial(h.ClientTLS()); err == nil {
		t.Fatal("a verifying client accepted the wrong-san certificate")
	}
	var refused iothub.Packet
	testutil.Eventually(t, "the refused handshake is observed", func() bool {
		mu.Lock()
		defer mu.Unlock()
		for _, p := range got {
			if p.TLSError != "" {
				refused = p
				return true
			}
		}
		return false
	})
	if !strings.Contains(refused.TLSError, "bad certificate") || refused.TLSDrill != "wrong-san" || !strings.HasPrefix(refused.RemoteAddr, "127.0.0.1:") {
		t.Errorf("refused handshake observed as %+v, want a bad-certificate alert over wrong-san from 127.0.0.1", refused)
	}
	local, err = dial(insecure(h))
	if err != nil {
		t.Fatal(err)
	}
	var over iothub.Packet
	testutil.Eventually(t, "the handshake over the drill is observed", func() bool { var f bool; over, f = find(local); return f })
	if over.TLSError != "" || over.TLSDrill != "wrong-san" {
		t.Errorf("handshake over the drill observed as %+v, want completed over wrong-san", over)
	}
}
