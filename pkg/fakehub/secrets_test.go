package fakehub_test

import (
	"context"
	"encoding/base64"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/hubkit/hubkit/internal/mqttraw"
	"github.com/hubkit/hubkit/internal/testutil"
	"github.com/hubkit/hubkit/pkg/fakehub"
	"github.com/hubkit/hubkit/pkg/iothub"
	"github.com/hubkit/hubkit/pkg/sas"
)

// secretForms are the ways a token (or its signature) can show up in a log
// line or a record: as text, percent-encoded up to four times, as the
// decimal bytes fmt prints for a []byte (text logs), and as base64 (JSON
// logs encode []byte so).
func secretForms(tok string) map[string]string {
	t, err := sas.Parse(tok)
	if err != nil {
		panic(err)
	}
	forms := map[string]string{}
	for _, s := range []struct{ name, v string }{{"token", tok}, {"signature", t.Signature}} {
		e := s.v
		for i := 0; i < 5; i++ {
			forms[fmt.Sprintf("%s (percent-encoded %d×)", s.name, i)] = e
			e = url.QueryEscape(e)
		}
		forms[s.name+" as decimal bytes"] = strings.Trim(fmt.Sprint([]byte(s.v)), "[]")
		forms[s.name+" as base64"] = base64.StdEncoding.EncodeToString([]byte(s.v))
	}
	return forms
}

// leak names the form of tok that text holds, or "".
func leak(text, tok string) string {
	for name, f := range secretForms(tok) {
		if strings.Contains(text, f) {
			return name
		}
	}
	return ""
}

// Secrets never reach a log at any level: mochi logs a rejected packet whole
// at Debug ("packet rejected", with the CONNECT's password as decimal bytes
// in text logs and base64 in JSON logs). Each CONNECT below carries a valid
// token and is refused by a hook.
func TestNoSecretInDebugLogs(t *testing.T) {
	for _, format := range []string{"text", "json"} {
		t.Run(format, func(t *testing.T) {
			lb := &fakehub.LogBuffer{}
			var hd slog.Handler = slog.NewTextHandler(lb, &slog.HandlerOptions{Level: slog.LevelDebug})
			if format == "json" {
				hd = slog.NewJSONHandler(lb, &slog.HandlerOptions{Level: slog.LevelDebug})
			}
			h := startHub(t, fakehub.Options{Logger: slog.New(hd)})
			good := goodConnect(dev1, keyDev1A)
			tok := *good.Password
			edits := map[string]func(p *mqttraw.ConnectPacket){
				"reserved-flag": func(p *mqttraw.ConnectPacket) { p.ReservedFlag = true },
				"wrong-level":   func(p *mqttraw.ConnectPacket) { p.ProtocolLevel = 3 },
				"wrong-name":    func(p *mqttraw.ConnectPacket) { p.ProtocolName = "MQIsdp" },
			}
			for name, edit := range edits {
				p := good
				edit(&p)
				c := rawDial(t, h)
				if err := c.Connect(p); err != nil {
					t.Fatal(err)
				}
				if err := c.ExpectClosed(5 * time.Second); err != nil {
					t.Errorf("%s: %v", name, err)
				}
			}
			c := rawSession(t, h, good)
			if err := c.Connect(good); err != nil { // a second CONNECT
				t.Fatal(err)
			}
			if err := c.ExpectClosed(5 * time.Second); err != nil {
				t.Error(err)
			}
			testutil.Eventually(t, "the four refusals", func() bool { return len(h.Rejections()) >= 4 })
			testutil.Eventually(t, "mochi's packet rejected line", func() bool { return strings.Contains(lb.String(), "packet rejected") })
			if l := leak(lb.String(), tok); l != "" {
				t.Errorf("the %s log holds the %s:\n%s", format, l, lb.String())
			}
		})
	}
}

// A token percent-encoded twice and sent as the client ID is redacted from
// the WARN line, the rejection record and GET /hubkit/rejections.
func TestEncodedTokenAsClientIDRedacted(t *testing.T) {
	lb := &fakehub.LogBuffer{}
	h := startHub(t, fakehub.Options{ServiceAddr: "127.0.0.1:0", Logger: slog.New(slog.NewTextHandler(lb, &slog.HandlerOptions{Level: slog.LevelDebug}))})
	tok := deviceToken("localhost", dev1, keyDev1A)
	p := goodConnect(dev1, keyDev1A)
	p.ClientID = url.QueryEscape(url.QueryEscape(tok))
	ack, _ := rawConnect(t, h, p)
	if ack.ReturnCode != 5 {
		t.Errorf("CONNACK %d, want 5", ack.ReturnCode)
	}
	r := waitRejection(t, h, 0, sas.ReasonClientIDMismatch)
	if l := leak(fmt.Sprintf("%+v", r), tok); l != "" {
		t.Errorf("the rejection holds the %s: %+v", l, r)
	}
	if !strings.Contains(r.ClientID, "sig=<redacted>") {
		t.Errorf("ClientID = %q, want the decoded token with sig=<redacted>", r.ClientID)
	}
	testutil.Eventually(t, "the WARN line", func() bool { return strings.Contains(lb.String(), "level=WARN") })
	if l := leak(lb.String(), tok); l != "" {
		t.Errorf("the log holds the %s:\n%s", l, lb.String())
	}
	owner, _ := h.Registry().Policy("iothubowner")
	key, _ := sas.DecodeKey(owner.PrimaryKey)
	req, _ := http.NewRequestWithContext(context.Background(), http.MethodGet, h.ServiceURL()+"/hubkit/rejections", nil)
	req.Header.Set("Authorization", sas.Sign("localhost", "iothubowner", key, time.Now().Add(time.Hour)).String())
	resp, err := (&http.Client{Transport: &http.Transport{TLSClientConfig: h.ClientTLS()}}).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 || !strings.Contains(string(body), string(sas.ReasonClientIDMismatch)) {
		t.Fatalf("GET /hubkit/rejections = %d %s", resp.StatusCode, body)
	}
	if l := leak(string(body), tok); l != "" {
		t.Errorf("/hubkit/rejections holds the %s: %s", l, body)
	}
	_ = iothub.Identity{}
}
