package conformance_test

import (
	"testing"

	"github.com/hubkit/hubkit/internal/behaviordoc"
	"github.com/hubkit/hubkit/pkg/conformance"
)

// TestCasesCiteResolvableSections: every case's Section cites the behaviour reference
// (docs/iothub-behavior.md §…), and each item and sub-topic it names exists there, so a
// reviewer can check the Requirement against the text it comes from.
func TestCasesCiteResolvableSections(t *testing.T) {
	doc, err := behaviordoc.Load("../../" + behaviordoc.Path)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range conformance.Cases() {
		var refs []behaviordoc.Ref
		for _, cit := range behaviordoc.Citations(c.Section) {
			refs = append(refs, cit.Refs...)
		}
		if len(refs) == 0 {
			t.Errorf("case %s: Section %q, want a citation of %s §...", c.ID, c.Section, behaviordoc.Path)
		}
		for _, r := range refs {
			if err := doc.Check(r); err != nil {
				t.Errorf("case %s: Section %q: %v", c.ID, c.Section, err)
			}
		}
	}
}
