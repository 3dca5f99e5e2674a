package sas

import (
	"bufio"
	"encoding/base64"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// vector is one block of a testdata/*.txt file: "field: value" lines,
// blocks separated by blank lines, "#" comment lines naming the source.
type vector map[string]string

func readVectors(t *testing.T, path string) []vector {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []vector
	cur := vector{}
	var source []string
	flush := func() {
		if len(cur) > 0 {
			cur["source"] = strings.Join(source, " ")
			out = append(out, cur)
		}
		cur, source = vector{}, nil
	}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := sc.Text()
		switch {
		case strings.TrimSpace(line) == "":
			flush()
		case strings.HasPrefix(line, "#"):
			source = append(source, strings.TrimSpace(strings.TrimPrefix(line, "#")))
		default:
			k, v, ok := strings.Cut(line, ": ")
			if !ok {
				t.Fatalf("%s: bad line %q", path, line)
			}
			cur[k] = v
		}
	}
	flush()
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	var named []vector
	for _, v := range out {
		if v["name"] != "" {
			named = append(named, v)
		}
	}
	if len(named) == 0 {
		t.Fatalf("%s: no vectors", path)
	}
	return named
}

func (v vector) se(t *testing.T) int64 {
	t.Helper()
	n, err := strconv.ParseInt(v["se"], 10, 64)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func (v vector) key(t *testing.T) []byte {
	t.Helper()
	if raw, ok := v["rawkey"]; ok {
		return []byte(raw)
	}
	k, err := DecodeKey(v["key"])
	if err != nil {
		t.Fatalf("%s: DecodeKey: %v", v["name"], err)
	}
	return k
}

func TestKnownAnswerTokens(t *testing.T) {
	for _, v := range readVectors(t, "testdata/tokens.txt") {
		t.Run(v["name"], func(t *testing.T) {
			key := v.key(t)
			got := Sign(v["sr"], v["skn"], key, time.Unix(v.se(t), 0))
			want := Token{Resource: v["sr"], Signature: v["sig"], Expiry: v.se(t), KeyName: v["skn"]}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Fatalf("Sign(%q) mismatch (-want +got), source: %s\n%s", v["sr"], v["source"], diff)
			}
			if err := got.Verify(key, time.Unix(v.se(t), 0)); err != nil {
				t.Errorf("Verify(own signature) = %v, want nil", err)
			}
			if tok, ok := v["token"]; ok {
				parsed, err := Parse(tok)
				if err != nil {
					t.Fatalf("Parse(%q) = %v, want nil error", tok, err)
				}
				if diff := cmp.Diff(want, parsed); diff != "" {
					t.Errorf("Parse(%q) mismatch (-want +got):\n%s", tok, diff)
				}
				if err := parsed.Verify(key, time.Unix(v.se(t), 0)); err != nil {
					t.Errorf("Parse(%q).Verify = %v, want nil", tok, err)
				}
			}
		})
	}
}

func TestKnownAnswerStringToSign(t *testing.T) {
	for _, v := range readVectors(t, "testdata/stringtosign.txt") {
		t.Run(v["name"], func(t *testing.T) {
			tok := Token{Resource: v["sr"], Signature: v["sig"], Expiry: v.se(t), KeyName: v["skn"]}
			wantSTS := strings.ReplaceAll(v["tosign"], `\n`, "\n")
			if got := tok.StringToSign(); got != wantSTS {
				t.Errorf("StringToSign() = %q, want %q", got, wantSTS)
			}
			if got := tok.String(); got != v["token"] {
				t.Errorf("String() = %q, want %q", got, v["token"])
			}
			parsed, err := Parse(v["token"])
			if err != nil {
				t.Fatalf("Parse(%q) = %v", v["token"], err)
			}
			if diff := cmp.Diff(tok, parsed); diff != "" {
				t.Errorf("Parse(%q) mismatch (-want +got):\n%s", v["token"], diff)
			}
			if plain, ok := v["plain"]; ok {
				if got := EncodeResource(plain); got != v["sr"] {
					t.Errorf("EncodeResource(%q) = %q, want %q", plain, got, v["sr"])
				}
			}
		})
	}
}

func TestKnownAnswerDeriveDeviceKey(t *testing.T) {
	for _, v := range readVectors(t, "testdata/derive.txt") {
		t.Run(v["name"], func(t *testing.T) {
			group, err := DecodeKey(v["groupkey"])
			if err != nil {
				t.Fatal(err)
			}
			got := base64.StdEncoding.EncodeToString(DeriveDeviceKey(group, v["regid"]))
			if got != v["derived"] {
				t.Errorf("DeriveDeviceKey(_, %q) = %s, want %s (source: %s)", v["regid"], got, v["derived"], v["source"])
			}
		})
	}
}

// The builders must produce what the C SDK signs (checked through
// stringtosign.txt "plain"); here the shapes themselves.
func TestResourceBuilders(t *testing.T) {
	tests := []struct{ name, got, want string }{
		{"device", DeviceResource("h.azure-devices.net", "dev1"), "h.azure-devices.net/devices/dev1"},
		{"module", ModuleResource("h.azure-devices.net", "dev1", "m"), "h.azure-devices.net/devices/dev1/modules/m"},
		{"hub", HubResource("h.azure-devices.net"), "h.azure-devices.net"},
		{"dps", DPSResource("0ne00000001", "reg-1"), "0ne00000001/registrations/reg-1"},
		{"encode-space-and-plus", EncodeResource("h/devices/a b+c"), "h%2Fdevices%2Fa%20b%2Bc"},
		{"encode-upper-hex", EncodeResource("h/devices/d$#"), "h%2Fdevices%2Fd%24%23"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.got != tt.want {
				t.Errorf("got %q, want %q", tt.got, tt.want)
			}
		})
	}
}
