package behaviordoc_test

import (
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/hubkit/hubkit/internal/behaviordoc"
)

// root is the module root, seen from this package's directory.
const root = "../.."

func loadReference(t *testing.T) *behaviordoc.Doc {
	t.Helper()
	d, err := behaviordoc.Load(filepath.Join(root, behaviordoc.Path))
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// TestReferenceStructure pins the numbering the repository cites: the sections and items of
// the design notes the reference was written from (so their citations map one to one), and a
// parent for every sub-item.
func TestReferenceStructure(t *testing.T) {
	d := loadReference(t)
	var want []string
	for s, n := range map[string]int{"1": 22, "2": 6, "4": 5, "9": 7, "10": 15, "11": 14} {
		want = append(want, s)
		for i := 1; i <= n; i++ {
			want = append(want, s+"."+strconv.Itoa(i))
		}
	}
	want = append(want, "3", "3.5", "5", "6", "7", "8", "12", "13")
	for _, n := range want {
		if !d.Has(n) {
			t.Errorf("%s has no item §%s", behaviordoc.Path, n)
		}
	}
	for _, n := range d.Items() {
		if i := strings.LastIndexByte(n, '.'); i >= 0 && !d.Has(n[:i]) {
			t.Errorf("§%s has no parent §%s", n, n[:i])
		}
		if len(strings.TrimSpace(d.Body(n))) < 20 {
			t.Errorf("§%s is empty: %q", n, d.Body(n))
		}
	}
}

// TestRepositoryCitationsResolve reads every Go, Markdown, txtar and text file of the module and
// fails for each citation of the reference that names an item or a sub-topic it lacks.
func TestRepositoryCitationsResolve(t *testing.T) {
	d := loadReference(t)
	if _, err := os.Stat(filepath.Join(root, "go.mod")); err != nil {
		t.Fatalf("module root not found: %v", err)
	}
	refs := 0
	err := filepath.WalkDir(root, func(path string, e fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if e.IsDir() {
			if path != root && (strings.HasPrefix(e.Name(), ".") || e.Name() == "vendor" || e.Name() == "node_modules") {
				return filepath.SkipDir
			}
			return nil
		}
		if !slices.Contains([]string{".go", ".md", ".txtar", ".txt"}, filepath.Ext(path)) {
			return nil
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		text := string(b)
		rel, _ := filepath.Rel(root, path)
		for _, c := range behaviordoc.Citations(text) {
			for _, r := range c.Refs {
				refs++
				if err := d.Check(r); err != nil {
					t.Errorf("%s:%d: %v", filepath.ToSlash(rel), strings.Count(text[:c.Offset], "\n")+1, err)
				}
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	// The code cites the reference about a hundred times; finding few citations means the
	// search is broken, not that everything resolves.
	if refs < 100 {
		t.Errorf("found %d references to %s in the module, want at least 100", refs, behaviordoc.Path)
	}
}
