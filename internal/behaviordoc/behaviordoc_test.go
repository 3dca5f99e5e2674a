package behaviordoc_test

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/hubkit/hubkit/internal/behaviordoc"
)

const sample = "# Title\n" +
	"\n" +
	"## §1 Connection\n" +
	"### §1.1 Transport\n" +
	"TLS on 8883.\n" +
	"### §1.2 Keep-alive\n" +
	"Any inbound traffic resets the timer; the `+` in the device segment.\n" +
	"```\n" +
	"## §9 not an item: inside a fence\n" +
	"```\n" +
	"## §3 CONNACK\n" +
	"| **§3.5** `0x05` | Not authorized |\n" +
	"## §10 Top\n" +
	"- **§10.1** [C] first\n" +
	"1. **§10.2** second, with **Completion** in it\n" +
	"### §10.2.1 a sub-item\n" +
	"## §11 Open\n"

func TestParse(t *testing.T) {
	d, err := behaviordoc.Parse(sample)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"1", "1.1", "1.2", "3", "3.5", "10", "10.1", "10.2", "10.2.1", "11"}
	if diff := cmp.Diff(want, d.Items()); diff != "" {
		t.Errorf("Items() mismatch (-want +got):\n%s", diff)
	}
	for _, tc := range []struct {
		item            string
		contains, lacks string
	}{
		{"1", "Keep-alive", "CONNACK"}, // §1 holds its sub-items
		{"1.1", "8883", "Keep-alive"},  // and a sub-item stops at its sibling
		{"10.2", "a sub-item", "§11"},  // a list item holds its own sub-items
		{"10", "second", "Open"},
	} {
		body := d.Body(tc.item)
		if !strings.Contains(body, tc.contains) || strings.Contains(body, tc.lacks) {
			t.Errorf("Body(%q) = %q, want it to contain %q and not %q", tc.item, body, tc.contains, tc.lacks)
		}
	}
	if d.Has("9") {
		t.Errorf("Has(\"9\") = true for a heading inside a code fence, want false")
	}
}

func TestParseDuplicate(t *testing.T) {
	_, err := behaviordoc.Parse("## §1 A\n## §1 B\n")
	if err == nil || !strings.Contains(err.Error(), "§1 is defined twice") {
		t.Errorf("Parse(duplicate §1) = %v, want an error naming §1", err)
	}
}

func TestCitations(t *testing.T) {
	p := behaviordoc.Path
	for _, tc := range []struct {
		name string
		text string
		want [][]behaviordoc.Ref
	}{
		{"one", "see " + p + " §2.5.", [][]behaviordoc.Ref{{{Item: "2.5"}}}},
		{"list-and-other-spec", `"` + p + ` §1.6, §3; MQTT 3.1.1 §3.1.2.1"`,
			[][]behaviordoc.Ref{{{Item: "1.6"}, {Item: "3"}}}},
		{"topics", p + " §4.2 (Completion), §10.11; x", [][]behaviordoc.Ref{{{Item: "4.2", Topic: "Completion"}, {Item: "10.11"}}}},
		{"letter", p + " §1.11(a), §10.1", [][]behaviordoc.Ref{{{Item: "1.11", Topic: "a"}, {Item: "10.1"}}}},
		{"range-and", p + " §1.9–§1.12 and §4", [][]behaviordoc.Ref{{{Item: "1.9"}, {Item: "1.12"}, {Item: "4"}}}},
		{"sub-sub-item", p + " §2.6.1: the vector", [][]behaviordoc.Ref{{{Item: "2.6.1"}}}},
		{"go-comment-continues", "// the cap (" + p + "\n\t// §1.17 (any inbound\n\t// traffic)).", [][]behaviordoc.Ref{{{Item: "1.17", Topic: "any inbound traffic"}}}},
		{"hash-comment-continues", "# vector (" + p + "\n# §2.6)", [][]behaviordoc.Ref{{{Item: "2.6"}}}},
		{"no-section", "the reference (" + p + ") and " + p + " §N.M", [][]behaviordoc.Ref{{}, {}}},
		{"prose-after-comma", p + " §4.5, observed", [][]behaviordoc.Ref{{{Item: "4.5"}}}},
		{"two-citations", p + " §1; " + p + " §2", [][]behaviordoc.Ref{{{Item: "1"}}, {{Item: "2"}}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var got [][]behaviordoc.Ref
			for _, c := range behaviordoc.Citations(tc.text) {
				got = append(got, c.Refs)
			}
			if diff := cmp.Diff(tc.want, got, cmpopts.EquateEmpty()); diff != "" {
				t.Errorf("Citations(%q) mismatch (-want +got):\n%s", tc.text, diff)
			}
		})
	}
}

func TestCheck(t *testing.T) {
	d, err := behaviordoc.Parse(sample)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		ref     behaviordoc.Ref
		wantErr string // "" = resolves
	}{
		{behaviordoc.Ref{Item: "1.2"}, ""},
		{behaviordoc.Ref{Item: "1.2", Topic: "any inbound traffic resets the timer"}, ""},
		{behaviordoc.Ref{Item: "1.2", Topic: "'+' in the device segment"}, ""}, // quotes and backquotes ignored
		{behaviordoc.Ref{Item: "1", Topic: "Transport, Keep-alive"}, ""},       // every part is looked for
		{behaviordoc.Ref{Item: "10.2", Topic: "completion"}, ""},               // case ignored
		{behaviordoc.Ref{Item: "1.3"}, behaviordoc.Path + " has no item §1.3"},
		{behaviordoc.Ref{Item: "9"}, "has no item §9"}, // only in a fence
		{behaviordoc.Ref{Item: "1.1", Topic: "Keep-alive"}, `"Keep-alive" does not occur in §1.1`},
		{behaviordoc.Ref{Item: "1", Topic: "Transport; Will"}, `"Will" does not occur in §1`},
	} {
		err := d.Check(tc.ref)
		switch {
		case tc.wantErr == "" && err != nil:
			t.Errorf("Check(%v) = %v, want nil", tc.ref, err)
		case tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)):
			t.Errorf("Check(%v) = %v, want an error containing %q", tc.ref, err, tc.wantErr)
		}
	}
}
