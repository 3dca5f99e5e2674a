package twin

import (
	"fmt"
	"testing"
)

// BenchmarkPatchReported measures a small reported patch against a twin of about 2 KB.
func BenchmarkPatchReported(b *testing.B) {
	s := New(Options{})
	for i := range 40 {
		s.PatchReported(dev1, []byte(fmt.Sprintf(`{"p%d":{"value":%d,"unit":"celsius"}}`, i, i)))
	}
	patch := []byte(`{"p7":{"value":42},"status":"ok"}`)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := s.PatchReported(dev1, patch); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkGet measures the device view of the same twin.
func BenchmarkGet(b *testing.B) {
	s := New(Options{})
	for i := range 40 {
		s.PatchReported(dev1, []byte(fmt.Sprintf(`{"p%d":{"value":%d,"unit":"celsius"}}`, i, i)))
	}
	b.ReportAllocs()
	for b.Loop() {
		s.Get(dev1)
	}
}
