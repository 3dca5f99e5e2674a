// Package behaviordoc reads hubkit's behaviour reference, docs/iothub-behavior.md, and the
// citations of it in code, tests and documents ("docs/iothub-behavior.md §2.5, §10.3"), so that
// tests can keep every citation pointing at an item that exists.
//
// An item of the reference is a line that starts with its label: a Markdown heading
// ("### §1.17 Keep-alive"), or a list item or table row whose first bold text is the label
// ("- **§10.1** ...", "| **§3.5** ..."). Its body runs to the next item that is not one of its
// sub-items, so §4 holds §4.1 to §4.5.
//
// A citation is the path docs/iothub-behavior.md followed by one or more references separated
// by ",", "and" or a dash: "§4.2 (Completion), §10.11", "§1.11(a)", "§1.9–§1.12". Words in
// parentheses name a sub-topic that must occur in the item's body. A citation may continue on
// the next line of a "//" or "#" comment.
package behaviordoc

import (
	"fmt"
	"os"
	"regexp"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Path is where the reference lives, relative to the module root, as citations name it.
const Path = "docs/iothub-behavior.md"

// Doc is a parsed reference.
type Doc struct {
	text  string
	items []item // in document order
	index map[string]int
}

type item struct {
	number string // "4.2"
	start  int    // byte offset of its label line
}

// labelLine matches the line an item starts on and captures its number.
var labelLine = regexp.MustCompile(`^(?:#{1,6}[ \t]+|[ \t]*(?:[-*]|\d+\.)[ \t]+\*\*|\|[ \t]*\*\*)§(\d+(?:\.\d+)*)`)

// Parse reads the reference's Markdown. Lines inside ``` fences are not items. Two items with
// the same number are an error.
func Parse(markdown string) (*Doc, error) {
	d := &Doc{text: markdown, index: map[string]int{}}
	inFence := false
	for off := 0; off < len(markdown); {
		end := strings.IndexByte(markdown[off:], '\n')
		if end < 0 {
			end = len(markdown) - off
		}
		line := markdown[off : off+end]
		if strings.HasPrefix(strings.TrimSpace(line), "```") {
			inFence = !inFence
		} else if m := labelLine.FindStringSubmatch(line); m != nil && !inFence {
			n := m[1]
			if _, dup := d.index[n]; dup {
				return nil, fmt.Errorf("behaviordoc: item §%s is defined twice (the second on line %d)", n, strings.Count(markdown[:off], "\n")+1)
			}
			d.index[n] = len(d.items)
			d.items = append(d.items, item{number: n, start: off})
		}
		off += end + 1
	}
	return d, nil
}

// Load reads and parses the reference at path.
func Load(path string) (*Doc, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("behaviordoc: %w", err)
	}
	d, err := Parse(string(b))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return d, nil
}

// Items returns the item numbers ("1", "1.1", ...) in document order.
func (d *Doc) Items() []string {
	out := make([]string, len(d.items))
	for i, it := range d.items {
		out[i] = it.number
	}
	return out
}

// Has reports whether the reference has item n ("4.2", without the "§").
func (d *Doc) Has(n string) bool {
	_, ok := d.index[n]
	return ok
}

// Body returns the text of item n, from its label line to the next item that is not one of its
// sub-items; "" if there is no such item.
func (d *Doc) Body(n string) string {
	i, ok := d.index[n]
	if !ok {
		return ""
	}
	end := len(d.text)
	for _, next := range d.items[i+1:] {
		if !strings.HasPrefix(next.number, n+".") {
			end = next.start
			break
		}
	}
	return d.text[d.items[i].start:end]
}

// Ref is one reference inside a citation.
type Ref struct {
	Item  string // the item number, "4.2"
	Topic string // the words in parentheses after it, "Completion"; "" when none
}

func (r Ref) String() string {
	if r.Topic != "" {
		return "§" + r.Item + " (" + r.Topic + ")"
	}
	return "§" + r.Item
}

// Citation is one mention of the reference's path and the references that follow it.
type Citation struct {
	Offset int   // byte offset of the path in the text searched
	Refs   []Ref // empty when the path is mentioned without a "§"
}

// Citations finds every citation of Path in text.
func Citations(text string) []Citation {
	var out []Citation
	for from := 0; ; {
		i := strings.Index(text[from:], Path)
		if i < 0 {
			return out
		}
		at := from + i
		from = at + len(Path)
		out = append(out, Citation{Offset: at, Refs: refsAt(text, from)})
	}
}

// refsAt reads the references that start at text[i:].
func refsAt(text string, i int) []Ref {
	var refs []Ref
	for {
		j := skipSpace(text, i)
		if !strings.HasPrefix(text[j:], "§") {
			return refs
		}
		j += len("§")
		n := numberAt(text, j)
		if n == "" {
			return refs
		}
		j += len(n)
		r := Ref{Item: n}
		if k := skipSpace(text, j); strings.HasPrefix(text[k:], "(") {
			if end := strings.IndexByte(text[k:], ')'); end > 0 && !strings.ContainsRune(text[k+1:k+end], '(') {
				r.Topic = strings.Join(strings.Fields(uncomment(text[k+1:k+end])), " ")
				j = k + end + 1
			}
		}
		refs = append(refs, r)
		k := skipSpace(text, j)
		sep := ""
		for _, s := range []string{",", "and", "–", "-"} {
			if strings.HasPrefix(text[k:], s) {
				sep = s
				break
			}
		}
		if sep == "" {
			return refs
		}
		if next := skipSpace(text, k+len(sep)); !strings.HasPrefix(text[next:], "§") {
			return refs
		}
		i = k + len(sep)
	}
}

// numberAt returns the item number ("4", "4.2", "2.6.1") at text[i:], or "".
func numberAt(text string, i int) string {
	j := i
	for {
		k := j
		for k < len(text) && text[k] >= '0' && text[k] <= '9' {
			k++
		}
		if k == j {
			break // no digits: a trailing "." is punctuation, not part of the number
		}
		j = k
		if j+1 < len(text) && text[j] == '.' && text[j+1] >= '0' && text[j+1] <= '9' {
			j++
			continue
		}
		break
	}
	return text[i:j]
}

// skipSpace skips blanks, and a line break followed by a "//" or "#" comment marker, so that a
// citation may continue on the next comment line.
func skipSpace(text string, i int) int {
	for i < len(text) {
		switch c := text[i]; {
		case c == ' ' || c == '\t':
			i++
		case c == '\n' || c == '\r':
			i++
			for i < len(text) && (text[i] == ' ' || text[i] == '\t') {
				i++
			}
			switch {
			case strings.HasPrefix(text[i:], "//"):
				i += 2
			case strings.HasPrefix(text[i:], "#"):
				i++
			}
		default:
			return i
		}
	}
	return i
}

var commentMarker = regexp.MustCompile(`\n[ \t]*(?://|#)?`)

func uncomment(s string) string { return commentMarker.ReplaceAllString(s, " ") }

// Check reports whether r resolves: the item exists and each comma- or semicolon-separated part
// of its topic occurs in the item's body (compared without regard to case, backquotes, quotes,
// asterisks and line breaks).
func (d *Doc) Check(r Ref) error {
	if !d.Has(r.Item) {
		return fmt.Errorf("%s: %s has no item §%s", r, Path, r.Item)
	}
	if r.Topic == "" {
		return nil
	}
	body := normalize(d.Body(r.Item))
	for _, part := range strings.FieldsFunc(r.Topic, func(c rune) bool { return c == ',' || c == ';' }) {
		if p := normalize(part); p != "" && !strings.Contains(body, p) {
			return fmt.Errorf("%s: %q does not occur in §%s of %s", r, strings.TrimSpace(part), r.Item, Path)
		}
	}
	return nil
}

// normalize lower-cases s, drops Markdown emphasis and quoting, and collapses white space.
func normalize(s string) string {
	var b strings.Builder
	space := false
	for len(s) > 0 {
		c, size := utf8.DecodeRuneInString(s)
		s = s[size:]
		switch {
		case c == '`' || c == '*' || c == '\'' || c == '"':
			continue
		case unicode.IsSpace(c):
			space = b.Len() > 0
			continue
		}
		if space {
			b.WriteByte(' ')
			space = false
		}
		b.WriteRune(unicode.ToLower(c))
	}
	return b.String()
}
