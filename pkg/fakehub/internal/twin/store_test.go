package twin

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/hubkit/hubkit/pkg/iothub"
)

var (
	dev1 = iothub.Identity{DeviceID: "dev1"}
	t0   = time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
)

func wantError(t *testing.T, err error, code iothub.ErrorCode) {
	t.Helper()
	var e *iothub.Error
	if !errors.As(err, &e) || e.Code != code {
		t.Fatalf("error = %v, want *iothub.Error with code %d", err, code)
	}
}

func TestNewTwin(t *testing.T) {
	s := New(Options{})
	if got, want := string(s.Get(dev1)), `{"desired":{"$version":1},"reported":{"$version":1}}`; got != want {
		t.Errorf("Get(new twin) = %s, want %s", got, want)
	}
	mod := iothub.Identity{DeviceID: "d", ModuleID: "m"}
	fresh := `{"$metadata":{"$lastUpdated":"0001-01-01T00:00:00Z"},"$version":1}`
	want := iothub.Twin{DeviceID: "d", ModuleID: "m", ETag: "AAAAAAAAAAE=", Version: 1,
		Properties: iothub.TwinProperties{Desired: json.RawMessage(fresh), Reported: json.RawMessage(fresh)}}
	if diff := cmp.Diff(want, s.ServiceView(mod)); diff != "" {
		t.Errorf("ServiceView(new module twin) (-want +got):\n%s", diff)
	}
	if v := s.Versions(dev1); v != (Versions{Twin: 1, Desired: 1, Reported: 1, ETag: "AAAAAAAAAAE="}) {
		t.Errorf("Versions(new twin) = %+v", v)
	}
}

func TestReportedVersions(t *testing.T) {
	s := New(Options{})
	for i, want := range []int64{2, 3, 4} {
		v, err := s.PatchReported(dev1, []byte(fmt.Sprintf(`{"n":%d}`, i)))
		if err != nil || v != want {
			t.Fatalf("PatchReported #%d = %d, %v; want %d", i+1, v, err, want)
		}
	}
	if got, want := string(s.Get(dev1)), `{"desired":{"$version":1},"reported":{"n":2,"$version":4}}`; got != want {
		t.Errorf("Get = %s, want %s", got, want)
	}
	if _, err := s.PatchReported(dev1, []byte(`{"bad.key":1}`)); err == nil {
		t.Fatal("invalid patch accepted")
	}
	if v := s.Versions(dev1); v.Reported != 4 || v.Twin != 4 {
		t.Errorf("versions after a refused patch = %+v, want reported 4, twin 4", v)
	}
}

func TestMergePatch(t *testing.T) {
	tests := []struct {
		name    string
		patches []string
		want    string // reported members
	}{
		{"add", []string{`{"a":1}`, `{"b":"x"}`}, `"a":1,"b":"x"`},
		{"overwrite-keeps-position", []string{`{"a":1,"b":2}`, `{"a":3}`}, `"a":3,"b":2`},
		{"delete", []string{`{"a":1,"b":2}`, `{"a":null}`}, `"b":2`},
		{"delete-missing-is-no-op", []string{`{"a":1}`, `{"zz":null}`}, `"a":1`},
		{"nested-merge", []string{`{"c":{"x":1,"y":2}}`, `{"c":{"y":3,"z":4}}`}, `"c":{"x":1,"y":3,"z":4}`},
		{"nested-null-delete", []string{`{"c":{"x":1,"y":{"deep":true}}}`, `{"c":{"y":{"deep":null}}}`}, `"c":{"x":1,"y":{}}`},
		{"nested-delete-subtree", []string{`{"c":{"x":1,"y":{"deep":true}}}`, `{"c":{"y":null}}`}, `"c":{"x":1}`},
		{"object-replaces-scalar", []string{`{"a":1}`, `{"a":{"b":2}}`}, `"a":{"b":2}`},
		{"scalar-replaces-object", []string{`{"a":{"b":2}}`, `{"a":"s"}`}, `"a":"s"`},
		{"arrays-replaced-whole", []string{`{"l":[1,2,3]}`, `{"l":[4]}`}, `"l":[4]`},
		{"nulls-in-new-object-dropped", []string{`{"n":{"a":null,"b":1}}`}, `"n":{"b":1}`},
		{"empty-patch", []string{`{"a":1}`, `{}`}, `"a":1`},
		{"re-added-key-goes-last", []string{`{"a":1,"b":2}`, `{"a":null}`, `{"a":5}`}, `"b":2,"a":5`},
		{"values-kept-verbatim", []string{`{"f":1.50,"e":1e3,"s":"é\"\n<>&","t":true,"u":false}`}, `"f":1.50,"e":1e3,"s":"é\"\n<>&","t":true,"u":false`},
		{"duplicate-key-last-wins", []string{`{"a":1,"b":2,"a":3}`}, `"a":3,"b":2`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := New(Options{})
			for _, p := range tt.patches {
				if _, err := s.PatchReported(dev1, []byte(p)); err != nil {
					t.Fatalf("PatchReported(%s) = %v", p, err)
				}
			}
			want := fmt.Sprintf(`{"desired":{"$version":1},"reported":{%s,"$version":%d}}`, tt.want, len(tt.patches)+1)
			if got := string(s.Get(dev1)); got != want {
				t.Errorf("Get =\n%s\nwant\n%s", got, want)
			}
		})
	}
}

// nested returns {"k1":{"k2":...{"kN":leaf}}}: leaf sits N levels below the root.
func nested(n int, leaf string) string {
	var b strings.Builder
	for i := 1; i <= n; i++ {
		fmt.Fprintf(&b, `{"k%d":`, i)
	}
	b.WriteString(leaf)
	b.WriteString(strings.Repeat("}", n))
	return b.String()
}

// sized returns a JSON object whose compact form is exactly n bytes (n >= 4200), made of string
// properties no longer than MaxStringSize.
func sized(t *testing.T, n int) string {
	t.Helper()
	m := map[string]string{}
	for i := 0; ; i++ {
		b, _ := json.Marshal(m)
		rest := n - len(b) - len(fmt.Sprintf(`,"k%d":""`, i))
		if len(m) == 0 {
			rest++ // no comma before the first member
		}
		if rest <= MaxStringSize {
			m[fmt.Sprintf("k%d", i)] = strings.Repeat("x", rest)
			break
		}
		m[fmt.Sprintf("k%d", i)] = strings.Repeat("x", 4000)
	}
	b, _ := json.Marshal(m)
	if len(b) != n {
		t.Fatalf("sized(%d) built %d bytes", n, len(b))
	}
	return string(b)
}

func TestValidation(t *testing.T) {
	key := func(n int) string { return strings.Repeat("k", n) }
	tests := []struct {
		name  string
		patch string
		ok    bool
	}{
		{"invalid-json", `{"a":`, false},
		{"empty-body", ``, false},
		{"array-not-object", `[1]`, false},
		{"string-not-object", `"x"`, false},
		{"null-not-object", `null`, false},
		{"trailing-data", `{}{}`, false},
		{"empty-object", `{}`, true},

		{"key-1024-bytes", fmt.Sprintf(`{"%s":1}`, key(1024)), true},
		{"key-1025-bytes", fmt.Sprintf(`{"%s":1}`, key(1025)), false},
		{"key-1023-bytes-multibyte", fmt.Sprintf(`{"%s":1}`, strings.Repeat("€", 341)), true},
		{"key-1026-bytes-multibyte", fmt.Sprintf(`{"%s":1}`, strings.Repeat("€", 342)), false},
		{"nested-key-too-long", fmt.Sprintf(`{"a":{"%s":1}}`, key(1025)), false},
		{"key-with-dot", `{"a.b":1}`, false},
		{"key-with-dollar", `{"$a":1}`, false},
		{"key-with-space", `{"a b":1}`, false},
		{"key-with-tab", `{"a\tb":1}`, false},
		{"key-with-c1-control", `{"a\u0085b":1}`, false},
		{"key-with-nbsp", `{"a\u00a0b":1}`, false},
		{"key-with-hash-allowed", `{"a#b":1}`, true},
		{"key-with-dash-underscore-unicode", `{"a-b_c:dé":1}`, true},
		{"nested-key-with-dollar", `{"a":{"$version":1}}`, false},

		{"string-4096-bytes", fmt.Sprintf(`{"s":"%s"}`, key(4096)), true},
		{"string-4097-bytes", fmt.Sprintf(`{"s":"%s"}`, key(4097)), false},
		{"string-4097-bytes-multibyte", fmt.Sprintf(`{"s":"%sé"}`, key(4095)), false},
		{"string-in-array-too-long", fmt.Sprintf(`{"s":["%s"]}`, key(4097)), false},

		{"integer-max", `{"i":4503599627370495}`, true},
		{"integer-above-max", `{"i":4503599627370496}`, false},
		{"integer-min", `{"i":-4503599627370496}`, true},
		{"integer-below-min", `{"i":-4503599627370497}`, false},
		{"integer-beyond-int64", `{"i":99999999999999999999}`, false},
		{"integer-in-array-above-max", `{"i":[4503599627370496]}`, false},
		{"float-large", `{"f":1e300}`, true},
		{"float-with-fraction", `{"f":4503599627370496.5}`, true},

		// The documented example: ten nested objects below the root, the last holding a value.
		{"depth-10-objects", nested(11, `"value"`), true},
		{"depth-11-objects", nested(12, `"value"`), false},
		{"depth-11-empty-object", nested(11, `{}`), false},
		{"depth-10-array", nested(10, `[1]`), true},
		{"depth-11-array", nested(11, `[1]`), false},
		{"depth-10-nested-arrays", nested(9, `[[1]]`), true},
		{"depth-11-nested-arrays", nested(10, `[[1]]`), false},
		{"depth-11-object-in-array", nested(10, `[{}]`), false},

		{"array-with-null", `{"l":[1,null]}`, false},
		{"array-with-object-with-null", `{"l":[{"a":null}]}`, false},
		{"array-with-object-with-nested-null", `{"l":[{"a":{"b":null}}]}`, false},
		{"array-with-objects", `{"l":[{"a":1},{"b":[true,"x"]}]}`, true},
		{"array-with-bad-key", `{"l":[{"a.b":1}]}`, false},
		{"null-deletes", `{"gone":null}`, true},

		{"reported-32768-bytes", sized(t, MaxPropertiesSize), true},
		{"reported-32769-bytes", sized(t, MaxPropertiesSize+1), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := New(Options{})
			v, err := s.PatchReported(dev1, []byte(tt.patch))
			if tt.ok {
				if err != nil || v != 2 {
					t.Errorf("PatchReported = %d, %v; want 2, nil", v, err)
				}
				return
			}
			wantError(t, err, iothub.CodeArgumentInvalid)
			if got := string(s.Get(dev1)); got != `{"desired":{"$version":1},"reported":{"$version":1}}` {
				t.Errorf("refused patch changed the twin: %s", got)
			}
		})
	}
}

func TestValidationOfServiceSide(t *testing.T) {
	tests := []struct {
		name string
		op   func(s *Store) error
		ok   bool
	}{
		{"tags-8192-bytes", func(s *Store) error { _, err := s.UpdateTags(dev1, []byte(sized(t, MaxTagsSize)), ""); return err }, true},
		{"tags-8193-bytes", func(s *Store) error { _, err := s.UpdateTags(dev1, []byte(sized(t, MaxTagsSize+1)), ""); return err }, false},
		{"tags-bad-key", func(s *Store) error { _, err := s.ReplaceTags(dev1, []byte(`{"a.b":1}`), ""); return err }, false},
		{"desired-32768-bytes", func(s *Store) error {
			_, err := s.ReplaceDesired(dev1, []byte(sized(t, MaxPropertiesSize)), "")
			return err
		}, true},
		{"desired-32769-bytes", func(s *Store) error {
			_, err := s.PatchDesired(dev1, []byte(sized(t, MaxPropertiesSize+1)), "")
			return err
		}, false},
		{"desired-bad-value", func(s *Store) error { _, err := s.PatchDesired(dev1, []byte(`{"l":[null]}`), ""); return err }, false},
		{"desired-read-back-with-version-and-metadata", func(s *Store) error {
			_, err := s.ReplaceDesired(dev1, []byte(`{"a":1,"$metadata":{"$lastUpdated":"x"},"$version":7}`), "")
			return err
		}, true},
		{"hash-refused-when-asked", func(*Store) error {
			_, err := New(Options{RejectHashInKeys: true}).PatchReported(dev1, []byte(`{"a#b":1}`))
			return err
		}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.op(New(Options{}))
			if tt.ok && err != nil {
				t.Errorf("error = %v, want nil", err)
			}
			if !tt.ok {
				wantError(t, err, iothub.CodeArgumentInvalid)
			}
		})
	}
}

func TestSizeCountsTheMergedDocument(t *testing.T) {
	s := New(Options{})
	half := sized(t, MaxPropertiesSize/2+1) // two such halves merge into 32769 bytes
	if _, err := s.PatchReported(dev1, []byte(half)); err != nil {
		t.Fatal(err)
	}
	other := strings.ReplaceAll(half, `"k`, `"j`) // same size, other names
	_, err := s.PatchReported(dev1, []byte(other))
	wantError(t, err, iothub.CodeArgumentInvalid)
	if v := s.Versions(dev1).Reported; v != 2 {
		t.Errorf("reported version = %d after the refused patch, want 2", v)
	}
	// Replacing values in place keeps the size: accepted.
	if _, err := s.PatchReported(dev1, []byte(half)); err != nil {
		t.Errorf("re-sending the same properties: %v", err)
	}
}

type note struct {
	id      iothub.Identity
	version int64
	body    string
}

func TestDesiredNotifications(t *testing.T) {
	var notes []note
	var s *Store
	s = New(Options{OnDesiredChange: func(id iothub.Identity, v int64, body []byte) {
		s.Get(id) // reading from the callback must not deadlock
		notes = append(notes, note{id, v, string(body)})
	}})
	steps := []func() (int64, error){
		func() (int64, error) { return s.PatchDesired(dev1, []byte(`{"fw":{"version":"1.2"}}`), "") },
		func() (int64, error) { return s.PatchDesired(dev1, []byte(`{"fw":{"version":null},"rate":5}`), "") },
		func() (int64, error) { return s.PatchDesired(dev1, []byte(`{}`), "") },
		func() (int64, error) { return s.ReplaceDesired(dev1, []byte(`{"only":true,"$version":3}`), "") },
		func() (int64, error) { return s.UpdateTags(dev1, []byte(`{"site":"a"}`), "") }, // no notification
		func() (int64, error) { return s.PatchReported(dev1, []byte(`{"x":1}`)) },       // no notification
	}
	for i, step := range steps {
		if _, err := step(); err != nil {
			t.Fatalf("step %d: %v", i+1, err)
		}
	}
	want := []note{
		{dev1, 2, `{"fw":{"version":"1.2"},"$version":2}`},
		{dev1, 3, `{"fw":{"version":null},"rate":5,"$version":3}`},
		{dev1, 4, `{"$version":4}`},
		{dev1, 5, `{"only":true,"$version":5}`},
	}
	if diff := cmp.Diff(want, notes, cmp.AllowUnexported(note{})); diff != "" {
		t.Errorf("notifications (-want +got):\n%s", diff)
	}
	if got, want := string(s.Get(dev1)), `{"desired":{"only":true,"$version":5},"reported":{"x":1,"$version":2}}`; got != want {
		t.Errorf("Get = %s, want %s", got, want)
	}
	if v := s.Versions(dev1); v.Twin != 7 {
		t.Errorf("twin version = %d, want 7 (1 + six changes)", v.Twin)
	}
}

func TestETag(t *testing.T) {
	s := New(Options{})
	stale := s.Versions(dev1).ETag
	if _, err := s.UpdateTags(dev1, []byte(`{"a":1}`), stale); err != nil {
		t.Fatalf("UpdateTags with the current etag: %v", err)
	}
	current := s.Versions(dev1).ETag
	if current == stale {
		t.Fatalf("etag did not change: %s", current)
	}
	tests := []struct {
		name    string
		ifMatch string
		ok      bool
	}{
		{"stale", stale, false},
		{"garbage", "nope", false},
		{"current", current, true},
		{"current-quoted", `"` + current + `"`, true},
		{"star", "*", true},
		{"none", "", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := New(Options{})
			s.UpdateTags(dev1, []byte(`{"a":1}`), "")
			for _, op := range []func() error{
				func() error { _, err := s.PatchDesired(dev1, []byte(`{}`), tt.ifMatch); return err },
				func() error { _, err := s.ReplaceTags(dev1, []byte(`{}`), tt.ifMatch); return err },
			} {
				err := op()
				if tt.ok && err != nil {
					t.Fatalf("error = %v", err)
				}
				if !tt.ok {
					wantError(t, err, iothub.CodePreconditionFailed)
				}
				if tt.ok { // the etag moved on: use the new one for the next operation
					if tt.ifMatch != "" && tt.ifMatch != "*" {
						tt.ifMatch = s.Versions(dev1).ETag
					}
				}
			}
		})
	}
}

func TestServiceView(t *testing.T) {
	now := t0 // single goroutine: a plain variable is the clock
	s := New(Options{Now: func() time.Time { return now }})
	now = t0.Add(1 * time.Second)
	if _, err := s.UpdateTags(dev1, []byte(`{"building":"43","floor":1}`), ""); err != nil {
		t.Fatal(err)
	}
	now = t0.Add(2 * time.Second)
	if _, err := s.PatchDesired(dev1, []byte(`{"telemetryConfig":{"sendFrequency":"5m"}}`), ""); err != nil {
		t.Fatal(err)
	}
	now = t0.Add(3*time.Second + 250*time.Millisecond)
	if _, err := s.PatchReported(dev1, []byte(`{"telemetryConfig":{"sendFrequency":"5m","status":"success"},"batteryLevel":55}`)); err != nil {
		t.Fatal(err)
	}
	want := iothub.Twin{DeviceID: "dev1", ETag: "AAAAAAAAAAQ=", Version: 4, Tags: json.RawMessage(`{"building":"43","floor":1}`)}
	want.Properties.Desired = json.RawMessage(`{"telemetryConfig":{"sendFrequency":"5m"},` +
		`"$metadata":{"$lastUpdated":"2030-01-01T00:00:02.000Z","$lastUpdatedVersion":2,` +
		`"telemetryConfig":{"$lastUpdated":"2030-01-01T00:00:02.000Z","$lastUpdatedVersion":2,` +
		`"sendFrequency":{"$lastUpdated":"2030-01-01T00:00:02.000Z","$lastUpdatedVersion":2}}},"$version":2}`)
	want.Properties.Reported = json.RawMessage(`{"telemetryConfig":{"sendFrequency":"5m","status":"success"},"batteryLevel":55,` +
		`"$metadata":{"$lastUpdated":"2030-01-01T00:00:03.250Z",` +
		`"telemetryConfig":{"$lastUpdated":"2030-01-01T00:00:03.250Z","sendFrequency":{"$lastUpdated":"2030-01-01T00:00:03.250Z"},` +
		`"status":{"$lastUpdated":"2030-01-01T00:00:03.250Z"}},"batteryLevel":{"$lastUpdated":"2030-01-01T00:00:03.250Z"}},"$version":2}`)
	got := s.ServiceView(dev1)
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("ServiceView (-want +got):\n%s", diff)
	}
	for _, sec := range [][]byte{got.Tags, got.Properties.Desired, got.Properties.Reported} {
		if !json.Valid(sec) {
			t.Errorf("ServiceView section is not valid JSON: %s", sec)
		}
	}

	// A later patch touches only what it sets.
	now = t0.Add(4 * time.Second)
	s.PatchReported(dev1, []byte(`{"batteryLevel":54}`))
	var reported struct {
		Metadata map[string]json.RawMessage `json:"$metadata"`
	}
	if err := json.Unmarshal(s.ServiceView(dev1).Properties.Reported, &reported); err != nil {
		t.Fatal(err)
	}
	meta := reported.Metadata
	for k, want := range map[string]string{
		"$lastUpdated":    `"2030-01-01T00:00:04.000Z"`,
		"batteryLevel":    `{"$lastUpdated":"2030-01-01T00:00:04.000Z"}`,
		"telemetryConfig": `{"$lastUpdated":"2030-01-01T00:00:03.250Z","sendFrequency":{"$lastUpdated":"2030-01-01T00:00:03.250Z"},"status":{"$lastUpdated":"2030-01-01T00:00:03.250Z"}}`,
	} {
		if got := string(meta[k]); got != want {
			t.Errorf("reported $metadata[%q] = %s, want %s", k, got, want)
		}
	}
}

func TestDelete(t *testing.T) {
	s := New(Options{})
	s.PatchReported(dev1, []byte(`{"a":1}`))
	if !s.Delete(dev1) {
		t.Error("Delete(existing) = false")
	}
	if s.Delete(dev1) {
		t.Error("Delete(deleted) = true")
	}
	if got := string(s.Get(dev1)); got != `{"desired":{"$version":1},"reported":{"$version":1}}` {
		t.Errorf("Get after Delete = %s, want a new twin", got)
	}
}

func TestConcurrentUse(t *testing.T) {
	var mu sync.Mutex
	last := map[iothub.Identity]int64{}
	var s *Store
	s = New(Options{OnDesiredChange: func(id iothub.Identity, v int64, _ []byte) {
		s.Get(id) // a callback may read the store while other changes are waiting
		mu.Lock()
		defer mu.Unlock()
		if v <= last[id] {
			t.Errorf("notification for %v: version %d after %d", id, v, last[id])
		}
		last[id] = v
	}})
	var wg sync.WaitGroup
	for d := range 3 {
		id := iothub.Identity{DeviceID: fmt.Sprintf("dev%d", d)}
		for w := range 3 {
			wg.Go(func() {
				for i := range 50 {
					s.PatchDesired(id, []byte(fmt.Sprintf(`{"w%d":%d}`, w, i)), "")
					s.PatchReported(id, []byte(fmt.Sprintf(`{"w%d":%d}`, w, i)))
					s.UpdateTags(id, []byte(`{"t":1}`), "")
					s.Get(id)
					s.ServiceView(id)
				}
			})
		}
	}
	wg.Wait()
	for d := range 3 {
		id := iothub.Identity{DeviceID: fmt.Sprintf("dev%d", d)}
		if v := s.Versions(id); v.Desired != 151 || v.Reported != 151 || v.Twin != 451 {
			t.Errorf("Versions(%v) = %+v, want desired 151, reported 151, twin 451", id, v)
		}
	}
}

func TestUpdateIsOneStep(t *testing.T) {
	var notes []string
	s := New(Options{OnDesiredChange: func(_ iothub.Identity, v int64, body []byte) { notes = append(notes, string(body)) }})
	v, err := s.Update(dev1, []byte(`{"site":"lab"}`), []byte(`{"interval":5}`), false, "")
	if err != nil || v != 2 {
		t.Fatalf("Update(tags, desired) = %d, %v; want twin version 2 (one change)", v, err)
	}
	if got := s.Versions(dev1); got.Twin != 2 || got.Desired != 2 || got.ETag != "AAAAAAAAAAI=" {
		t.Errorf("versions %+v", got)
	}
	if len(notes) != 1 || notes[0] != `{"interval":5,"$version":2}` {
		t.Errorf("notifications %q", notes)
	}
	// An invalid desired section changes nothing, tags included.
	if _, err := s.Update(dev1, []byte(`{"site":"moon"}`), []byte(`{"$bad":1}`), false, ""); err == nil {
		t.Fatal("invalid desired accepted")
	}
	if got := string(s.ServiceView(dev1).Tags); got != `{"site":"lab"}` || s.Versions(dev1).Twin != 2 {
		t.Errorf("after a refused update: tags %s, version %d", got, s.Versions(dev1).Twin)
	}
	// If-Match is checked once, before anything changes.
	wantError(t, func() error { _, err := s.Update(dev1, []byte(`{"a":1}`), nil, false, "AAAAAAAAAAE="); return err }(), iothub.CodePreconditionFailed)
	if v, err := s.Update(dev1, nil, []byte(`{"b":1}`), true, `"AAAAAAAAAAI="`); err != nil || v != 3 {
		t.Errorf("replace with the current quoted etag = %d, %v", v, err)
	}
	if got := string(s.Get(dev1)); got != `{"desired":{"b":1,"$version":3},"reported":{"$version":1}}` {
		t.Errorf("after replace: %s", got)
	}
}

// TestReadsWhileWriting: Get and ServiceView serialize a copy of the twin outside the
// store's lock; with patches to the same twin running at once (under -race), every document
// read is valid JSON of one whole version: nothing is read half-written.
func TestReadsWhileWriting(t *testing.T) {
	s := New(Options{})
	var wg sync.WaitGroup
	const n = 200
	wg.Go(func() {
		for i := range n {
			if _, err := s.PatchReported(dev1, fmt.Appendf(nil, `{"a":{"n":%d,"m":%d},"b":%d}`, i, i, i)); err != nil {
				t.Error(err)
			}
			if _, err := s.PatchDesired(dev1, fmt.Appendf(nil, `{"d":{"n":%d}}`, i), ""); err != nil {
				t.Error(err)
			}
		}
	})
	for range n {
		var got struct {
			Reported struct {
				A struct{ N, M int }
				B int
			}
		}
		if err := json.Unmarshal(s.Get(dev1), &got); err != nil {
			t.Fatalf("Get during patches: %v", err)
		}
		if r := got.Reported; r.A.N != r.A.M || r.A.N != r.B {
			t.Fatalf("Get during patches mixed two versions: %+v", r)
		}
		if v := s.ServiceView(dev1); !json.Valid(v.Properties.Desired) || !json.Valid(v.Properties.Reported) {
			t.Fatalf("ServiceView during patches: %s %s", v.Properties.Desired, v.Properties.Reported)
		}
	}
	wg.Wait()
}

// TestGetKeepsItsAnswerUntilTheTwinChanges: an unchanged twin is answered from the kept
// document (a device flooding twin GETs costs no serialization), a change is seen at once,
// and a caller appending to an answer does not alter the kept one.
func TestGetKeepsItsAnswerUntilTheTwinChanges(t *testing.T) {
	s := New(Options{})
	a, b := s.Get(dev1), s.Get(dev1)
	if &a[0] != &b[0] {
		t.Error("two GETs of an unchanged twin serialized it twice")
	}
	_ = append(a, "garbage"...)
	if got := string(s.Get(dev1)); got != `{"desired":{"$version":1},"reported":{"$version":1}}` {
		t.Errorf("Get after a caller's append = %s", got)
	}
	if _, err := s.PatchReported(dev1, []byte(`{"x":1}`)); err != nil {
		t.Fatal(err)
	}
	if got, want := string(s.Get(dev1)), `{"desired":{"$version":1},"reported":{"x":1,"$version":2}}`; got != want {
		t.Errorf("Get after a reported patch = %s, want %s", got, want)
	}
	if _, err := s.PatchDesired(dev1, []byte(`{"y":2}`), ""); err != nil {
		t.Fatal(err)
	}
	if got, want := string(s.Get(dev1)), `{"desired":{"y":2,"$version":2},"reported":{"x":1,"$version":2}}`; got != want {
		t.Errorf("Get after a desired patch = %s, want %s", got, want)
	}
	s.Reset()
	if got, want := string(s.Get(dev1)), `{"desired":{"$version":1},"reported":{"$version":1}}`; got != want {
		t.Errorf("Get after Reset = %s, want %s", got, want)
	}
}
