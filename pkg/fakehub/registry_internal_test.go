package fakehub

import "testing"

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
