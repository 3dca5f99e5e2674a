package fakehub

import (
	"context"
	"github.com/hubkit/hubkit/pkg/iothub"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/hubkit/hubkit/internal/mqttraw"
	"github.com/hubkit/hubkit/pkg/sas"
)

func TestCloseStopsRegistryWatch(t *testing.T) {
	reg := NewRegistry(nil)
	for range 3 {
		s, err := NewServer(Options{InsecureAddr: "127.0.0.1:0", Registry: reg})
		if err != nil {
			t.Fatal(err)
		}
		s.Close()
	}
	reg.mu.RLock()
	n := len(reg.watchers)
	reg.mu.RUnlock()
	if n != 0 {
		t.Errorf("%d watchers left after Close, want 0", n)
	}
}

func TestShortKeysRefused(t *testing.T) {
	reg := NewRegistry(nil)
	for _, k := range []string{"AA==", "AAAAAAAAAAAAAAAAAAAA"} { // 1 and 15 bytes
		_, err := reg.Add(iothub.Device{DeviceID: "d", Authentication: iothub.SASAuth(k, "")})
		if err == nil || !strings.Contains(err.Error(), "bytes") {
			t.Errorf("AddDevice with key %q: %v, want a key-length error", k, err)
		}
		if err != nil && strings.Contains(err.Error(), k) {
			t.Errorf("error echoes the key: %v", err)
		}
		if _, err := reg.SetPolicy(iothub.AccessPolicy{KeyName: "p", PrimaryKey: k}); err == nil {
			t.Errorf("SetPolicy with key %q accepted", k)
		}
	}
}

func TestServiceAPIUnusablePolicyKey(t *testing.T) {
	s, err := NewServer(Options{InsecureAddr: "127.0.0.1:0"})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	reg := s.opts.Registry
	reg.mu.Lock()
	reg.policies["broken"] = &iothub.AccessPolicy{KeyName: "broken", Rights: iothub.ServiceConnect, PrimaryKey: "not base64!", SecondaryKey: "not base64!"}
	reg.mu.Unlock()
	for _, tc := range []struct{ policy, wantReason string }{{"broken", "unknown-policy"}, {"iothubowner", "signature-mismatch"}} {
		tok := sas.Sign(sas.EncodeResource(s.HostName()), tc.policy, testKey, time.Now().Add(time.Hour))
		req := httptest.NewRequest("GET", "/devices?api-version=2021-04-12", nil)
		req.Header.Set("Authorization", tok.String())
		rec := httptest.NewRecorder()
		s.ServiceHandler().ServeHTTP(rec, req)
		if got := rec.Header().Get(iothub.HeaderReason); rec.Code != 401 || got != tc.wantReason {
			t.Errorf("policy %s: %d %q, want 401 %q (a policy whose keys do not decode is unknown)", tc.policy, rec.Code, got, tc.wantReason)
		}
	}
}

func TestRemovedWhileConnectingIsDropped(t *testing.T) {
	for _, tc := range []struct {
		name   string
		change func(r *Registry) error
		reason sas.Reason
	}{
		{"removed", func(r *Registry) error { return r.Delete(iothub.Identity{DeviceID: "d1"}, "") }, sas.ReasonUnknownIdentity},
		{"disabled", func(r *Registry) error { return r.SetStatus("d1", iothub.StatusDisabled) }, sas.ReasonDisabled},
		{"removed-and-added-again", func(r *Registry) error {
			if err := r.Delete(iothub.Identity{DeviceID: "d1"}, ""); err != nil {
				return err
			}
			_, err := r.Add(iothub.Device{DeviceID: "d1", Authentication: iothub.SASAuth(encodeKey(testKey), "")})
			return err
		}, sas.ReasonUnknownIdentity},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := startPlain(t, Options{})
			if _, err := s.AddDevice("d1", testKey); err != nil {
				t.Fatal(err)
			}
			// The change lands after authentication, before the session is visible.
			hook := func(*session) {
				if err := tc.change(s.opts.Registry); err != nil {
					t.Error(err)
				}
			}
			s.lifecycle.beforeTable.Store(&hook)
			c := connectPlain(t, s, "d1")
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			r, err := s.WaitRejection(ctx, func(r iothub.Rejection) bool { return r.Reason == tc.reason })
			if err != nil {
				t.Fatalf("no %s rejection: %v (%+v)", tc.reason, err, s.Rejections())
			}
			if !strings.Contains(r.Detail, "while connecting") {
				t.Errorf("detail %q", r.Detail)
			}
			if _, err := c.ReadPacket(5 * time.Second); err == nil || err == mqttraw.ErrTimeout {
				t.Errorf("connection still open: %v", err)
			}
		})
	}
}
