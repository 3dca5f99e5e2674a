package fakehub

import (
	"strings"
	"testing"
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
		_, err := reg.AddDevice(Device{ID: "d", Keys: Keys{Primary: k}})
		if err == nil || !strings.Contains(err.Error(), "bytes") {
			t.Errorf("AddDevice with key %q: %v, want a key-length error", k, err)
		}
		if err != nil && strings.Contains(err.Error(), k) {
			t.Errorf("error echoes the key: %v", err)
		}
		if _, err := reg.SetPolicy(Policy{Name: "p", Keys: Keys{Primary: k}}); err == nil {
			t.Errorf("SetPolicy with key %q accepted", k)
		}
	}
}

func TestServiceBackendUnusablePolicyKey(t *testing.T) {
	s, err := NewServer(Options{InsecureAddr: "127.0.0.1:0"})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	reg := s.opts.Registry
	reg.mu.Lock()
	reg.policies["broken"] = &Policy{Name: "broken", Rights: ServiceConnect, Keys: Keys{Primary: "not base64!", Secondary: "not base64!"}}
	reg.mu.Unlock()
	if p, ok := (serviceBackend{s}).Policy("broken"); ok {
		t.Errorf("Policy(broken) = %+v, true; want unknown", p)
	}
	if _, ok := (serviceBackend{s}).Policy("iothubowner"); !ok {
		t.Error("Policy(iothubowner) unknown")
	}
}
