package fakehub

import (
	"github.com/hubkit/hubkit/pkg/iothub"
	"strings"
	"testing"
)

func TestRejectionLogByteBound(t *testing.T) {
	var l rejectionLog
	big := strings.Repeat("x", 64<<10)
	n := 2 * maxRejectionBytes / len(big)
	for range n {
		l.add(iothub.Rejection{Detail: big})
	}
	if l.bytes > maxRejectionBytes {
		t.Errorf("log holds %d bytes, want at most %d", l.bytes, maxRejectionBytes)
	}
	if l.dropped == 0 || l.dropped+len(l.list) != n {
		t.Errorf("dropped %d, kept %d, of %d", l.dropped, len(l.list), n)
	}
}

func TestClip(t *testing.T) {
	long := strings.Repeat("é", 200) // 400 bytes
	got := clip(long)
	if want := "…(400 bytes)"; !strings.HasSuffix(got, want) {
		t.Errorf("clip = %q, want suffix %q", got, want)
	}
	if !strings.HasPrefix(got, strings.Repeat("é", 128)) {
		t.Errorf("clip cut inside a rune: %q", got)
	}
	if got := clip("short"); got != "short" {
		t.Errorf("clip(short) = %q", got)
	}
}

func TestCleanRedacts(t *testing.T) {
	tests := []struct{ in, want string }{
		{"SharedAccessSignature sr=h%2Fdevices%2Fd&sig=ab%2Bc%3D&se=1", "SharedAccessSignature sr=h/devices/d&sig=<redacted>&se=1"},
		{"SharedAccessSignature%20sr%3Dh%26sig%3Dab%252Bc%26se%3D1", "SharedAccessSignature sr=h&sig=<redacted>&se=1"},
		{"HostName=h;DeviceId=d;SharedAccessKey=AAAA==", "HostName=h;DeviceId=d;SharedAccessKey=<redacted>"},
		{`user name "x sig=abc"`, `user name "x sig=<redacted>"`},
		{"dev1", "dev1"},
	}
	for _, tt := range tests {
		if got := clean(tt.in); got != tt.want {
			t.Errorf("clean(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}
