package sas

import (
	"bytes"
	"encoding/base64"
	"errors"
	"strings"
	"testing"
	"time"
)

func TestDecodeKey(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		problem string // "" = valid
	}{
		{"valid-32", "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=", ""},
		{"valid-64", "8isrFI1sGsIlvvFSSFRiMfCNzv21fjbE/+ah/lSh3lF8e2YG1Te7w1KpZhJFFXJrqYKi9yegxkqIChbqOS9Egw==", ""},
		{"empty", "", "empty"},
		{"url-safe", "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8-", "URL-safe alphabet"},
		{"missing-padding", "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8", "missing '=' padding"},
		{"trailing-newline", "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=\n", "whitespace at offset 44"},
		{"inner-space", "AAECAwQFBgcICQoL DA0ODxAREhMUFRYXGBkaGxwdHh8=", "whitespace at offset 16"},
		{"invalid-char", "AAECAwQFBgcICQoL*A0ODxAREhMUFRYXGBkaGxwdHh8=", "a character outside the base64 alphabet at offset 16"},
		{"non-ascii", "AAECAwQFBgcICQoL\xc3A0ODxAREhMUFRYXGBkaGxwdHh8=", "a control or non-ASCII byte at offset 16"},
		{"padding-in-middle", "AAEC=wQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=", "padding in the middle"},
		{"non-canonical", "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh9=", "non-zero bits"},
		{"truncated", "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh=", "not a multiple of 4"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := DecodeKey(tt.in)
			if tt.problem == "" {
				want, _ := base64.StdEncoding.DecodeString(tt.in)
				if err != nil || !bytes.Equal(got, want) {
					t.Fatalf("DecodeKey(%q) = %x, %v, want %x", tt.in, got, err, want)
				}
				return
			}
			if !errors.Is(err, ErrKey) || !strings.Contains(err.Error(), tt.problem) {
				t.Fatalf("DecodeKey(%q) = %v, want ErrKey mentioning %q", tt.in, err, tt.problem)
			}
			if tt.in != "" && !strings.Contains(err.Error(), "not standard base64") && tt.name != "empty" {
				t.Errorf("DecodeKey(%q) = %v, want \"not standard base64\"", tt.in, err)
			}
			if len(tt.in) > 8 && strings.Contains(err.Error(), strings.TrimSpace(tt.in)[:8]) {
				t.Errorf("DecodeKey(%q) error %q echoes the key", tt.in, err)
			}
		})
	}
}

func TestNewKey(t *testing.T) {
	src := bytes.NewReader(bytes.Repeat([]byte{7}, 32))
	k, err := NewKey(src)
	if err != nil {
		t.Fatal(err)
	}
	if want := base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{7}, 32)); k != want {
		t.Errorf("NewKey() = %q, want %q", k, want)
	}
	if _, err := NewKey(bytes.NewReader(make([]byte, 10))); err == nil {
		t.Error("NewKey(short reader) = nil error, want an error")
	}
}

func TestCovers(t *testing.T) {
	tests := []struct {
		name          string
		token, target string
		want          bool
	}{
		{"same-device", "h/devices/dev1", "h/devices/dev1", true},
		{"device-covers-module", "h/devices/dev1", "h/devices/dev1/modules/m", true},
		{"not-by-character", "h/devices/dev1", "h/devices/dev10", false},
		{"module-not-device", "h/devices/dev1/modules/m", "h/devices/dev1", false},
		{"hub-covers-all", "h", "h/devices/dev1", true},
		{"hub-slash-covers-all", "h/", "h/devices/dev1", true},
		{"devices-covers-all", "h/devices", "h/devices/dev1/modules/m", true},
		{"devices-slash", "h/devices/", "h/devices/dev1", true},
		{"devices-slash-covers-devices", "h/devices/", "h/devices", true},
		{"device-slash-covers-device", "h/devices/dev1/", "h/devices/dev1", true},
		{"device-slash-covers-module", "h/devices/dev1/", "h/devices/dev1/modules/m", true},
		{"device-slash-not-by-character", "h/devices/dev1/", "h/devices/dev10", false},
		{"double-slash-covers-nothing", "h//", "h/devices/dev1", false},
		{"device-double-slash", "h/devices/dev1//", "h/devices/dev1", false},
		{"device-double-slash-module", "h/devices/dev1//", "h/devices/dev1/modules/m", false},
		{"host-case-insensitive", "H.Azure-Devices.NET/devices/dev1", "h.azure-devices.net/devices/dev1", true},
		{"id-case-sensitive", "h/devices/Dev1", "h/devices/dev1", false},
		{"other-host", "g/devices/dev1", "h/devices/dev1", false},
		{"host-prefix", "h/devices/dev1", "hh/devices/dev1", false},
		{"target-hub", "h/devices/dev1", "h", false},
		{"dps", "0ne1/registrations/r1", "0NE1/registrations/r1", true},
		{"dps-other-reg", "0ne1/registrations/r1", "0ne1/registrations/r10", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := Covers(tt.token, tt.target); got != tt.want {
				t.Errorf("Covers(%q, %q) = %v, want %v", tt.token, tt.target, got, tt.want)
			}
		})
	}
	if !covers("h/devices/Dev1", "h/devices/dev1/modules/m", true) {
		t.Error("covers(fold) = false for IDs differing in case, want true")
	}
}

func TestHuman(t *testing.T) {
	tests := []struct {
		d    time.Duration
		want string
	}{
		{45 * time.Second, "45s"}, {5*time.Minute + time.Second, "5m1s"}, {5 * time.Minute, "5m"},
		{3 * time.Hour, "3h"}, {90 * time.Minute, "1h30m"}, {12 * 24 * time.Hour, "12 days"},
		{3 * 365 * 24 * time.Hour, "3 years"},
	}
	for _, tt := range tests {
		if got := human(tt.d); got != tt.want {
			t.Errorf("human(%v) = %q, want %q", tt.d, got, tt.want)
		}
	}
}
