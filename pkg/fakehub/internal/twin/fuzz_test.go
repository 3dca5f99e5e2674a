package twin

import (
	"bytes"
	"encoding/json"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// refMerge is RFC 7386 on encoding/json's generic values, as an independent reference.
func refMerge(target, patch any) any {
	p, ok := patch.(map[string]any)
	if !ok {
		return patch
	}
	t, ok := target.(map[string]any)
	if !ok {
		t = map[string]any{}
	}
	for k, v := range p {
		if v == nil {
			delete(t, k)
		} else {
			t[k] = refMerge(t[k], v)
		}
	}
	return t
}

func decodeGeneric(t *testing.T, b []byte) any {
	t.Helper()
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		t.Fatalf("decoding %s: %v", b, err)
	}
	return v
}

// FuzzPatchReported checks that two accepted patches leave the reported properties that a
// reference merge patch computes, that the views stay valid JSON, and that nothing panics.
func FuzzPatchReported(f *testing.F) {
	f.Add([]byte(`{"a":1,"b":{"c":[1,"x",{"d":true}]}}`), []byte(`{"b":{"c":null,"e":1.5},"a":null}`))
	f.Add([]byte(`{"a":{"b":{"c":{}}}}`), []byte(`{"a":{"b":"s"}}`))
	f.Add([]byte(`{"é\u0000":"\ud800"}`), []byte(`[]`))
	f.Fuzz(func(t *testing.T, p1, p2 []byte) {
		s := New(Options{})
		ref := any(map[string]any{})
		for _, p := range [][]byte{p1, p2} {
			if _, err := s.PatchReported(dev1, p); err == nil {
				ref = refMerge(ref, decodeGeneric(t, p))
			}
		}
		got := s.Get(dev1)
		if !json.Valid(got) || !json.Valid(s.ServiceView(dev1).Properties.Reported) {
			t.Fatalf("invalid view JSON: %s", got)
		}
		reported := decodeGeneric(t, got).(map[string]any)["reported"].(map[string]any)
		delete(reported, "$version")
		if diff := cmp.Diff(ref, any(reported)); diff != "" {
			t.Errorf("reported after %s then %s (-reference +store):\n%s", p1, p2, diff)
		}
	})
}
