package testutil

import (
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

func TestPoll(t *testing.T) {
	var n atomic.Int32
	if !Poll(DefaultTimeout, func() bool { return n.Add(1) >= 3 }) {
		t.Fatal("Poll = false for a condition that holds on the third call")
	}
	if got := n.Load(); got != 3 {
		t.Errorf("cond called %d times, want 3 (Poll stops as soon as it holds)", got)
	}
	if Poll(20*time.Millisecond, func() bool { return false }) {
		t.Error("Poll = true for a condition that never holds")
	}
}

// recorder is a testing.TB that records Fatalf and Skipf instead of stopping the test.
type recorder struct {
	testing.TB
	fatal, skip string
}

func (r *recorder) Helper()                        {}
func (r *recorder) Fatalf(format string, a ...any) { r.fatal = fmt.Sprintf(format, a...) }
func (r *recorder) Skipf(format string, a ...any)  { r.skip = fmt.Sprintf(format, a...) }

func TestEventuallyFailsNamingWhat(t *testing.T) {
	if testing.Short() {
		t.Skip("waits DefaultTimeout")
	}
	r := &recorder{TB: t}
	Eventually(r, "the moon", func() bool { return false })
	if want := "timed out after 5s waiting for the moon"; r.fatal != want {
		t.Errorf("Eventually failed with %q, want %q", r.fatal, want)
	}
	r = &recorder{TB: t}
	Eventually(r, "now", func() bool { return true })
	if r.fatal != "" {
		t.Errorf("Eventually failed with %q for a condition that holds", r.fatal)
	}
}

func TestClock(t *testing.T) {
	t0 := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	c := NewClock(t0)
	if got := c.Now(); !got.Equal(t0) {
		t.Fatalf("Now() = %s, want %s", got, t0)
	}
	if got := c.Now(); !got.Equal(t0) {
		t.Errorf("second Now() = %s, want %s: the clock moves only when told", got, t0)
	}
	c.Advance(90 * time.Second)
	if got, want := c.Now(), t0.Add(90*time.Second); !got.Equal(want) {
		t.Errorf("after Advance(90s): Now() = %s, want %s", got, want)
	}
	c.Set(t0)
	if got := c.Now(); !got.Equal(t0) {
		t.Errorf("after Set: Now() = %s, want %s", got, t0)
	}
	c.SetStep(time.Minute)
	if a, b := c.Now(), c.Now(); !a.Equal(t0.Add(time.Minute)) || b.Sub(a) != time.Minute {
		t.Errorf("with step 1m: Now() = %s then %s, want %s then a minute later", a, b, t0.Add(time.Minute))
	}
}

// TestClockConcurrent is for the race detector: readers and writers at once.
func TestClockConcurrent(t *testing.T) {
	c := NewClock(time.Unix(0, 0))
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			for range 1000 {
				c.Advance(time.Second)
				_ = c.Now()
			}
		})
	}
	wg.Wait()
	if got := c.Now().Unix(); got != 4000 {
		t.Errorf("after 4000 Advance(1s): Now().Unix() = %d, want 4000 (no lost update)", got)
	}
}

func TestMissingTool(t *testing.T) {
	t.Setenv(RequireInteropEnv, "")
	r := &recorder{TB: t}
	MissingTool(r, "mosquitto_pub is not installed")
	if r.fatal != "" || !strings.HasPrefix(r.skip, "mosquitto_pub is not installed (set HUBKIT_REQUIRE_INTEROP=1") {
		t.Errorf("without %s: skip %q, fatal %q; want a skip", RequireInteropEnv, r.skip, r.fatal)
	}
	t.Setenv(RequireInteropEnv, "1")
	r = &recorder{TB: t}
	MissingTool(r, "mosquitto_pub is not installed")
	if r.skip != "" || !strings.HasPrefix(r.fatal, "mosquitto_pub is not installed (HUBKIT_REQUIRE_INTEROP=1") {
		t.Errorf("with %s=1: skip %q, fatal %q; want a failure", RequireInteropEnv, r.skip, r.fatal)
	}
}

func TestLookTool(t *testing.T) {
	t.Setenv(RequireInteropEnv, "1")
	r := &recorder{TB: t}
	LookTool(r, "hubkit-no-such-tool", "hubkit-no-such-package")
	if !strings.Contains(r.fatal, "hubkit-no-such-tool is not installed (apt-get install hubkit-no-such-package)") {
		t.Errorf("LookTool(missing) failed with %q, want the tool and its package named", r.fatal)
	}
	r = &recorder{TB: t}
	if p := LookTool(r, "go", "golang"); p == "" || r.fatal != "" {
		t.Errorf("LookTool(go) = %q (fatal %q), want its path", p, r.fatal)
	}
}

func TestListPackages(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the go command")
	}
	pkgs := ListPackages(t, "github.com/hubkit/hubkit/internal/testutil", "net/http")
	if len(pkgs) != 2 {
		t.Fatalf("ListPackages = %d packages, want 2", len(pkgs))
	}
	self, std := pkgs[0], pkgs[1]
	if self.ImportPath != "github.com/hubkit/hubkit/internal/testutil" || self.Standard || self.Name != "testutil" {
		t.Errorf("first package = %+v, want this package, not standard", self)
	}
	if !std.Standard || !slices.Contains(std.Deps, "net/url") {
		t.Errorf("net/http: Standard %v, net/url in Deps %v; want true, true", std.Standard, slices.Contains(std.Deps, "net/url"))
	}
	if !slices.Contains(self.GoFiles, "deps.go") || slices.Contains(self.GoFiles, "testutil_test.go") {
		t.Errorf("GoFiles = %v, want the non-test files only", self.GoFiles)
	}
	if bad := self.ForbiddenDeps(IsStandard); len(bad) != 0 {
		t.Errorf("testutil depends on %v outside the standard library", bad)
	}
	if bad := std.ForbiddenDeps(func(d string) bool { return d != "net/url" }); !slices.Equal(bad, []string{"net/url"}) {
		t.Errorf("ForbiddenDeps(not net/url) = %v, want [net/url]", bad)
	}
}

func TestIsStandardAndHasPathPrefix(t *testing.T) {
	for path, want := range map[string]bool{"fmt": true, "net/http": true, "C": false,
		"github.com/hubkit/hubkit/pkg/sas": false, "golang.org/x/tools": false} {
		if got := IsStandard(path); got != want {
			t.Errorf("IsStandard(%q) = %v, want %v", path, got, want)
		}
	}
	for _, tt := range []struct {
		path, prefix string
		want         bool
	}{{"a/b", "a", true}, {"a", "a", true}, {"ab", "a", false}, {"a/b/c", "a/b", true}, {"a/bc", "a/b", false}} {
		if got := HasPathPrefix(tt.path, tt.prefix); got != tt.want {
			t.Errorf("HasPathPrefix(%q, %q) = %v, want %v", tt.path, tt.prefix, got, tt.want)
		}
	}
}

func TestForeignTypesInAPI(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the go command")
	}
	// net/http's exported API names crypto/tls types (Server.TLSConfig, Request.TLS,
	// Transport.TLSClientConfig), and net/url's names none from crypto/tls.
	found := ForeignTypesInAPI(LoadTypes(t, "net/http")[0], func(p string) bool { return p == "crypto/tls" })
	for _, want := range []string{"Server.TLSConfig: crypto/tls.Config", "Request.TLS: crypto/tls.ConnectionState", "Transport.TLSClientConfig: crypto/tls.Config"} {
		if !slices.Contains(found, want) {
			t.Errorf("ForeignTypesInAPI(net/http, crypto/tls) lacks %q; found:\n%s", want, strings.Join(found, "\n"))
		}
	}
	// text/template.Template embeds *parse.Tree: the field, and the methods it promotes.
	found = ForeignTypesInAPI(LoadTypes(t, "text/template")[0], func(p string) bool { return p == "text/template/parse" })
	for _, want := range []string{"Template.Tree: text/template/parse.Tree", "Template.Copy: method promoted from text/template/parse",
		"Template.AddParseTree: text/template/parse.Tree"} {
		if !slices.Contains(found, want) {
			t.Errorf("ForeignTypesInAPI(text/template, parse) lacks %q; found:\n%s", want, strings.Join(found, "\n"))
		}
	}
	if found := ForeignTypesInAPI(LoadTypes(t, "net/url")[0], func(p string) bool { return p == "crypto/tls" }); len(found) != 0 {
		t.Errorf("ForeignTypesInAPI(net/url, crypto/tls) = %v, want none", found)
	}
}
