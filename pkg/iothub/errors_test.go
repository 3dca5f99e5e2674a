package iothub_test

import (
	"errors"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/hubkit/hubkit/pkg/iothub"
)

const tokenText = "SharedAccessSignature sr=contoso.azure-devices.net%2Fdevices%2Fdev1&sig=dpCx63CkFH4MIH%2BL%2Bfb5N6i6du%2B8r74HUI3%2B7Gfg1Wc%3D&se=1893456000"

// secretParts are pieces of tokenText and of a key that no error may echo.
var secretParts = []string{"sig=", "dpCx63Ck", "Gfg1Wc", "SharedAccess", "AAECAwQFBgcI"}

func wantNoSecretParts(t *testing.T, call string, err error) {
	t.Helper()
	if err == nil {
		t.Fatalf("%s = nil error, want an error", call)
	}
	for _, s := range secretParts {
		if strings.Contains(err.Error(), s) {
			t.Errorf("%s error %q contains %q", call, err, s)
		}
	}
}

// TestErrorsHideMisplacedSecrets: a client that swaps the MQTT user name and password (or
// sends a connection string as its client ID) must not get the token echoed in errors,
// which servers log.
func TestErrorsHideMisplacedSecrets(t *testing.T) {
	cs := "HostName=contoso.azure-devices.net;DeviceId=dev1;SharedAccessKey=AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8="
	tests := []struct {
		name string
		call func() error
		want error
	}{
		{"token-as-user-name", func() error { _, err := iothub.ParseUserName(tokenText); return err }, iothub.ErrUserName},
		{"lower-case-token-as-user-name", func() error { _, err := iothub.ParseUserName(strings.ToLower(tokenText)); return err }, iothub.ErrUserName},
		{"token-fields-as-user-name", func() error {
			_, err := iothub.ParseUserName(strings.TrimPrefix(tokenText, "SharedAccessSignature "))
			return err
		}, iothub.ErrUserName},
		{"token-after-host-in-user-name", func() error {
			_, err := iothub.ParseUserName("contoso.azure-devices.net/dev1/" + tokenText)
			return err
		}, iothub.ErrUserName},
		{"connection-string-as-user-name", func() error { _, err := iothub.ParseUserName(cs); return err }, iothub.ErrUserName},
		{"token-as-client-id", func() error { _, err := iothub.ParseClientID(tokenText); return err }, iothub.ErrClientID},
		{"connection-string-as-client-id", func() error { _, err := iothub.ParseClientID(cs); return err }, iothub.ErrClientID},
		{"token-as-dps-user-name", func() error { _, err := iothub.ParseDPSUserName(tokenText); return err }, iothub.ErrUserName},
		{"token-in-topic", func() error {
			_, err := iothub.ClassifyPublish(iothub.Identity{DeviceID: "dev1"}, "devices/dev1/"+tokenText)
			return err
		}, iothub.ErrTopic},
		{"token-in-filter", func() error {
			_, err := iothub.ClassifySubscribe(iothub.Identity{DeviceID: "dev1"}, tokenText+"/#")
			return err
		}, iothub.ErrTopic},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.call()
			if !errors.Is(err, tt.want) {
				t.Fatalf("error = %v, want %v", err, tt.want)
			}
			wantNoSecretParts(t, tt.name, err)
			if !strings.Contains(err.Error(), "<redacted: looks like a SAS token") {
				t.Errorf("error = %q, want it to say the input was redacted", err)
			}
		})
	}
	// The input stays available to the caller.
	_, err := iothub.ParseUserName(tokenText)
	if pe, ok := errors.AsType[*iothub.ParseError](err); !ok || pe.Input != tokenText {
		t.Errorf("ParseUserName(token) = %#v, want a *ParseError keeping Input", err)
	}
}

// TestErrorsTruncateLongInput: a long input is quoted up to MaxEchoBytes, then its length.
func TestErrorsTruncateLongInput(t *testing.T) {
	long := "contoso.azure-devices.net/" + strings.Repeat("d", 300) + "/?api-version=2021-04-12"
	_, err := iothub.ParseUserName(long)
	if err == nil {
		t.Fatalf("ParseUserName(%d bytes) = nil error, want one", len(long))
	}
	if strings.Contains(err.Error(), long[:iothub.MaxEchoBytes+1]) || !strings.Contains(err.Error(), `"…(350 bytes)`) {
		t.Errorf("ParseUserName(%d bytes) error = %q, want the input cut at %d bytes and followed by …(350 bytes)", len(long), err, iothub.MaxEchoBytes)
	}
	if !strings.Contains(err.Error(), long[:iothub.MaxEchoBytes]) {
		t.Errorf("ParseUserName(%d bytes) error = %q, want the first %d bytes", len(long), err, iothub.MaxEchoBytes)
	}

	// A cut never splits a UTF-8 sequence.
	multi := strings.Repeat("é", 100) // 200 bytes
	err = (&iothub.ParseError{What: "client ID", Input: multi, Problem: "bad", Err: iothub.ErrClientID})
	if msg := err.Error(); !utf8.ValidString(msg) || strings.Contains(msg, `\x`) || !strings.Contains(msg, "…(200 bytes)") {
		t.Errorf("Error() = %q, want valid UTF-8 cut on a rune boundary, then …(200 bytes)", msg)
	}

	topic := "devices/dev1/messages/events/" + strings.Repeat("k=v&", 50) + "#"
	_, err = iothub.ClassifyPublish(iothub.Identity{DeviceID: "dev1"}, topic)
	if err == nil || !strings.Contains(err.Error(), "…(230 bytes)") || strings.Contains(err.Error(), topic) {
		t.Errorf("ClassifyPublish(%d-byte topic) error = %v, want the topic cut and …(230 bytes)", len(topic), err)
	}
	if te, ok := errors.AsType[*iothub.TopicError](err); !ok || te.Topic != topic {
		t.Errorf("ClassifyPublish() = %#v, want a *TopicError keeping the whole Topic", err)
	}

	// Short inputs are quoted whole, as before.
	short := (&iothub.TopicError{Topic: "devices/dev2/messages/events/", Problem: "another device's topic"}).Error()
	if want := `topic "devices/dev2/messages/events/": another device's topic`; short != want {
		t.Errorf("Error() = %q, want %q", short, want)
	}
}

// TestErrorsHideDecodedSecrets: a problem that decodes the input may spell "sig=" even when
// the input does not (percent-encoded); it is hidden too.
func TestErrorsHideDecodedSecrets(t *testing.T) {
	e := &iothub.ParseError{What: "property bag", Input: "a=si%67%3Dabc", Problem: `property "a" is "sig=abc"`, Err: iothub.ErrProperties}
	if strings.Contains(e.Error(), "sig=") || !strings.Contains(e.Error(), "<redacted") {
		t.Errorf("Error() = %q, want it redacted", e.Error())
	}
}
