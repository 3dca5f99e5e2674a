package main

import (
	"bytes"
	"context"
	"io"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/hubkit/hubkit/internal/cli"
	"github.com/hubkit/hubkit/pkg/sas"
)

func TestParseTime(t *testing.T) {
	tests := []struct {
		in      string
		want    time.Time
		wantErr string
	}{
		{in: "1893456000", want: time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)},
		{in: " 1893456000\n", want: time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)},
		{in: "0", want: time.Unix(0, 0).UTC()},
		{in: "-60", want: time.Unix(-60, 0).UTC()},
		{in: "2030-01-01T00:00:00Z", want: time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)},
		{in: "2030-01-01T01:00:00+01:00", want: time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)},
		{in: "", wantErr: "empty time"},
		{in: "tomorrow", wantErr: `"tomorrow" is neither Unix seconds`},
		{in: "2030-01-01", wantErr: "neither Unix seconds"},
		{in: "1893456000000000000000", wantErr: "out of range"},
		{in: "-", wantErr: "neither Unix seconds"},
	}
	for _, tt := range tests {
		got, err := parseTime(tt.in)
		if tt.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("parseTime(%q) = %v, %v, want error containing %q", tt.in, got, err, tt.wantErr)
			}
			continue
		}
		if err != nil || !got.Equal(tt.want) {
			t.Errorf("parseTime(%q) = %v, %v, want %v", tt.in, got, err, tt.want)
		}
	}
}

func TestParseTTL(t *testing.T) {
	tests := []struct {
		in      string
		want    time.Duration
		wantErr string
	}{
		{in: "1h", want: time.Hour},
		{in: "90m", want: 90 * time.Minute},
		{in: "1h30m", want: 90 * time.Minute},
		{in: "3600", want: time.Hour},
		{in: "7d", want: 7 * 24 * time.Hour},
		{in: "365d", want: 365 * 24 * time.Hour},
		{in: "-2h", want: -2 * time.Hour},
		{in: "-1d", want: -24 * time.Hour},
		{in: "0", want: 0},
		{in: "", wantErr: "empty duration"},
		{in: "1week", wantErr: `"1week" is not a duration`},
		{in: "d", wantErr: "not a duration"},
		{in: "1.5d", wantErr: "not a duration"},
		{in: "99999999999d", wantErr: "too long"},
		{in: "99999999999999", wantErr: "too long"},
	}
	for _, tt := range tests {
		got, err := parseTTL(tt.in)
		if tt.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("parseTTL(%q) = %v, %v, want error containing %q", tt.in, got, err, tt.wantErr)
			}
			continue
		}
		if err != nil || got != tt.want {
			t.Errorf("parseTTL(%q) = %v, %v, want %v", tt.in, got, err, tt.want)
		}
	}
}

func TestRelative(t *testing.T) {
	now := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	tests := []struct {
		d    time.Duration
		want string
	}{
		{59*time.Minute + 59*time.Second, "expires in 59m"},
		{time.Hour, "expires in 1h"},
		{2*time.Hour + 30*time.Minute, "expires in 2h30m"},
		{47 * time.Hour, "expires in 47h"},
		{76 * time.Hour, "expires in 3d4h"},
		{30 * 24 * time.Hour, "expires in 30d"},
		{45 * time.Second, "expires in 45s"},
		{0, "expires now"},
		{-3 * time.Hour, "expired 3h ago"},
		{-90 * time.Second, "expired 1m ago"},
	}
	for _, tt := range tests {
		if got := relative(now.Add(tt.d), now); got != tt.want {
			t.Errorf("relative(now%+v, now) = %q, want %q", tt.d, got, tt.want)
		}
	}
}

func TestFormatTTL(t *testing.T) {
	for d, want := range map[time.Duration]string{
		time.Hour: "1h", 90 * time.Minute: "1h30m", 5 * time.Minute: "5m", 90 * time.Second: "1m30s", 0: "0s",
	} {
		if got := formatTTL(d); got != want {
			t.Errorf("formatTTL(%v) = %q, want %q", d, got, want)
		}
	}
}

func TestShellQuote(t *testing.T) {
	tests := []struct{ in, want string }{
		{"", "''"},
		{"contoso.azure-devices.net", "contoso.azure-devices.net"},
		{"8883", "8883"},
		{"devices/d/messages/events/", "devices/d/messages/events/"},
		{"a b", "'a b'"},
		{"sr=x&sig=y", "'sr=x&sig=y'"},
		{"$iothub/twin/res/#", "'$iothub/twin/res/#'"},
		{"it's", `'it'\''s'`},
		{"h/d/?api-version=1", "'h/d/?api-version=1'"},
	}
	for _, tt := range tests {
		if got := shellQuote(tt.in); got != tt.want {
			t.Errorf("shellQuote(%q) = %s, want %s", tt.in, got, tt.want)
		}
	}
}

// TestShellQuoteRoundTrip feeds quoted strings to sh and reads them back.
func TestShellQuoteRoundTrip(t *testing.T) {
	sh, err := exec.LookPath("sh")
	if err != nil {
		t.Skip("no sh")
	}
	in := []string{"plain", "it's", `back\slash`, "$HOME", "`id`", "a\nb", "&;|<>()*?[]{}!#~", " lead"}
	var script strings.Builder
	for _, s := range in {
		script.WriteString("printf '%s\\0' " + shellQuote(s) + "\n")
	}
	out, err := exec.Command(sh, "-c", script.String()).Output()
	if err != nil {
		t.Fatalf("sh: %v", err)
	}
	got := strings.Split(strings.TrimSuffix(string(out), "\x00"), "\x00")
	if diff := cmp.Diff(in, got); diff != "" {
		t.Errorf("sh read back (-want +got):\n%s", diff)
	}
}

// TestDescribe pins the human names of scopes and shape problems (the parsing itself is
// sas.ParseResource's, tested in pkg/sas).
func TestDescribe(t *testing.T) {
	tests := []struct{ in, want string }{
		{"h.azure-devices.net/devices/d1", "device d1 on hub h.azure-devices.net"},
		{"h:8883/devices/d1", "device d1 on hub h:8883"},
		{"h/devices/d1/modules/m", "module m of device d1 on hub h"},
		{"h/devices/d1/modules", "every module of device d1 on hub h"},
		{"h/devices/", "every device on hub h"},
		{"h", "the whole hub h"},
		{"0ne0/registrations/r1", "DPS registration r1 in ID scope 0ne0"},
		{"https://ns.servicebus.windows.net/eh", "Event Hubs/Service Bus entity on ns.servicebus.windows.net"},
		{"h/devices/d1/module/m", `unrecognised resource: "/module/" should be "/modules/"`},
		{"h/device/d1", `unrecognised resource: "/device/" should be "/devices/"`},
		{"h/things/x", "unrecognised resource"},
		{"h/devices//", "unrecognised resource"},
		{"", "unrecognised resource: empty host"},
	}
	for _, tt := range tests {
		if got := describe(sas.ParsePlainResource(tt.in)); got != tt.want {
			t.Errorf("describe(ParsePlainResource(%q)) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestLooksEncoded(t *testing.T) {
	for in, want := range map[string]bool{
		"h/devices/d":               false,
		"h%2Fdevices%2Fd":           true,
		"h%2fdevices%2fd":           true,
		"https%3A%2F%2Fns":          true,
		"h/devices/100%25":          false,
		"h/devices/with%20space":    false,
		"0ne0%2fregistrations%2fr1": true,
	} {
		if got := looksEncoded(in); got != want {
			t.Errorf("looksEncoded(%q) = %v, want %v", in, got, want)
		}
	}
}

// TestRunExitCodes drives run in-process: the exit code contract without a subprocess.
func TestRunExitCodes(t *testing.T) {
	const key = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8="
	const tok = "SharedAccessSignature sr=contoso.azure-devices.net%2Fdevices%2FMyDevice01&sig=dpCx63CkFH4MIH%2BL%2Bfb5N6i6du%2B8r74HUI3%2B7Gfg1Wc%3D&se=1893456000"
	tests := []struct {
		name       string
		args       []string
		stdin      string
		want       int
		wantStdout string
		wantStderr string
	}{
		{"gen-ok", []string{"gen", "--uri", "contoso.azure-devices.net/devices/MyDevice01", "--key", key, "--expiry", "1893456000"}, "", cli.ExitOK, tok + "\n", ""},
		{"gen-stdin-key", []string{"gen", "--uri", "contoso.azure-devices.net/devices/MyDevice01", "--key-file", "-", "--expiry", "1893456000"}, key + "\n", cli.ExitOK, tok + "\n", ""},
		{"gen-bad-key", []string{"gen", "--uri", "h/devices/d", "--key", "x"}, "", cli.ExitError, "", "sastool: error: --key: not standard base64"},
		{"gen-unknown-flag", []string{"gen", "--nope"}, "", cli.ExitUsage, "", "sastool: error: unknown flag: --nope\n"},
		{"unknown-verb", []string{"nope"}, "", cli.ExitUsage, "", `sastool: error: unknown command "nope" for "sastool"`},
		{"verify-valid", []string{"verify", "--key", key, "--now", "1893452400", tok}, "", cli.ExitOK, "", "sastool: valid: device MyDevice01"},
		{"verify-expired", []string{"verify", "--key", key, "--now", "1893466800", tok}, "", exitRejected, "", "sastool: rejected: expired: "},
		{"verify-malformed", []string{"verify", "--key", key, "SharedAccessSignature sr=x"}, "", cli.ExitError, "", "sastool: error: malformed token: field sig: missing\n"},
		{"stdin-twice", []string{"verify", "--key-file", "-", "-"}, key, cli.ExitUsage, "", "sastool: error: token: stdin (-) is already used"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			got := run(t.Context(), tt.args, strings.NewReader(tt.stdin), &stdout, &stderr)
			if got != tt.want {
				t.Errorf("run(%q) = %d, want %d (stderr %q)", tt.args, got, tt.want, stderr.String())
			}
			if stdout.String() != tt.wantStdout {
				t.Errorf("run(%q) stdout = %q, want %q", tt.args, stdout.String(), tt.wantStdout)
			}
			if !strings.HasPrefix(stderr.String(), tt.wantStderr) {
				t.Errorf("run(%q) stderr = %q, want prefix %q", tt.args, stderr.String(), tt.wantStderr)
			}
		})
	}
}

// FuzzParseTime: parseTime never panics, and what it accepts it reads back the same from
// the RFC 3339 form it prints.
func FuzzParseTime(f *testing.F) {
	for _, s := range []string{"1893456000", "0", "-1", "2030-01-01T00:00:00Z", "2030-01-01T01:00:00+01:00", "", "x", "9999999999999999999"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		got, err := parseTime(s)
		if err != nil || got.Year() < 0 || got.Year() > 9999 {
			return
		}
		again, err := parseTime(got.UTC().Format(time.RFC3339))
		if err != nil || !again.Equal(got.Truncate(time.Second)) {
			t.Errorf("parseTime(%q) = %v, but its RFC 3339 form reads back as %v, %v", s, got, again, err)
		}
	})
}

// FuzzParseTTL: parseTTL never panics and never returns an error together with a value.
func FuzzParseTTL(f *testing.F) {
	for _, s := range []string{"1h", "90m", "7d", "-1d", "3600", "", "d", "1.5h", "99999999999d"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		d, err := parseTTL(s)
		if err != nil && d != 0 {
			t.Errorf("parseTTL(%q) = %v, %v: a value with an error", s, d, err)
		}
	})
}

// TestStdinInterrupted: main turns SIGINT into a canceled context; a read of "-" from a
// stdin that never ends must then give up instead of ignoring Ctrl-C.
func TestStdinInterrupted(t *testing.T) {
	pr, pw := io.Pipe()
	defer pw.Close()
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	var stdout, stderr bytes.Buffer
	if got := run(ctx, []string{"decode", "-"}, pr, &stdout, &stderr); got != cli.ExitError {
		t.Errorf("run(decode -) after interrupt = %d, want %d", got, cli.ExitError)
	}
	if want := "sastool: error: reading token from stdin: interrupted\n"; stderr.String() != want {
		t.Errorf("stderr = %q, want %q", stderr.String(), want)
	}
}
