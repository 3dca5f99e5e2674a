package iothub_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/hubkit/hubkit/pkg/iothub"
)

func TestParseClientID(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		want    iothub.Identity
		wantErr string // substring of the error; "" = no error
	}{
		{name: "device", in: "dev1", want: iothub.Identity{DeviceID: "dev1"}},
		{name: "module", in: "dev1/mod1", want: iothub.Identity{DeviceID: "dev1", ModuleID: "mod1"}},
		{name: "all-punctuation", in: "a-.%_*?!(),:=@$'z", want: iothub.Identity{DeviceID: "a-.%_*?!(),:=@$'z"}},
		{name: "case-kept", in: "MyDevice01", want: iothub.Identity{DeviceID: "MyDevice01"}},
		{name: "max-length", in: strings.Repeat("a", 128), want: iothub.Identity{DeviceID: strings.Repeat("a", 128)}},
		{name: "empty", in: "", wantErr: "device ID \"\": must not be empty"},
		{name: "too-long", in: strings.Repeat("a", 129), wantErr: "129 characters long, the limit is 128"},
		{name: "plus", in: "dev+1", wantErr: "character '+' at position 4"},
		{name: "hash", in: "#dev", wantErr: "character '#' at position 1"},
		{name: "space", in: "my dev", wantErr: "character ' ' (U+0020) at position 3"},
		{name: "non-ascii", in: "devé", wantErr: "character 'é' (U+00E9) at position 4"},
		{name: "two-slashes", in: "a/b/c", wantErr: "more than one '/'"},
		{name: "empty-module", in: "dev/", wantErr: "module ID after '/' is empty"},
		{name: "empty-device", in: "/mod", wantErr: "device ID \"\": must not be empty"},
		{name: "bad-module", in: "dev/m#", wantErr: "module ID \"m#\": character '#' at position 2"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := iothub.ParseClientID(tt.in)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("ParseClientID(%q) error = %v, want it to contain %q", tt.in, err, tt.wantErr)
				}
				if !errors.Is(err, iothub.ErrClientID) {
					t.Errorf("ParseClientID(%q) error %v does not wrap ErrClientID", tt.in, err)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Fatalf("ParseClientID(%q) = %+v, %v, want %+v", tt.in, got, err, tt.want)
			}
			if s := got.ClientID(); s != tt.in {
				t.Errorf("ParseClientID(%q).ClientID() = %q, want the input back", tt.in, s)
			}
			if s := got.String(); s != tt.in {
				t.Errorf("String() = %q, want %q", s, tt.in)
			}
			if got.IsModule() != strings.Contains(tt.in, "/") {
				t.Errorf("IsModule() = %v for %q", got.IsModule(), tt.in)
			}
		})
	}
}

func TestValidateID(t *testing.T) {
	// Every printable ASCII character: exactly the documented alphabet passes.
	allowed := "-.%_*?!(),:=@$'"
	for c := byte(0x20); c < 0x7F; c++ {
		err := iothub.ValidateID("a" + string(c))
		want := 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || strings.IndexByte(allowed, c) >= 0
		if (err == nil) != want {
			t.Errorf("ValidateID(%q) = %v, want ok=%v", "a"+string(c), err, want)
		}
		if err != nil && !strings.Contains(err.Error(), "position 2") {
			t.Errorf("ValidateID(%q) = %v, want the position named", "a"+string(c), err)
		}
	}
}
