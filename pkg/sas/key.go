package sas

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"io"
	"strings"
)

// Key lengths IoT Hub and DPS accept for symmetric keys, in decoded bytes
// (the portal and NewKey make 32; DPS enrollments default to 64).
const (
	MinKeyLength = 16
	MaxKeyLength = 64
)

// ValidateKeyLength returns nil if key (decoded) is MinKeyLength to
// MaxKeyLength bytes long, as IoT Hub and DPS require of device, module,
// enrollment and policy keys, else an error wrapping ErrKey that gives the
// length (never the key). DecodeKey does not check the length, so that it
// also serves other uses; registries call both.
func ValidateKeyLength(key []byte) error {
	if n := len(key); n < MinKeyLength || n > MaxKeyLength {
		return fmt.Errorf("%w: %d bytes; IoT Hub and DPS keys are %d to %d bytes (NewKey makes %d)", ErrKey, n, MinKeyLength, MaxKeyLength, newKeyLength)
	}
	return nil
}

// DecodeKey decodes an IoT Hub or DPS key: strict, padded, standard-alphabet
// base64. The error wraps ErrKey and names the problem (URL-safe alphabet,
// missing padding, whitespace, an invalid character) and its offset without
// echoing any character of the key. It accepts any length; see
// ValidateKeyLength.
func DecodeKey(s string) ([]byte, error) {
	if s == "" {
		return nil, fmt.Errorf("%w: empty", ErrKey)
	}
	// encoding/base64 skips '\r' and '\n'; a strict key has no whitespace at all.
	b, err := base64.StdEncoding.Strict().DecodeString(s)
	if err == nil && !strings.ContainsAny(s, "\r\n") {
		return b, nil
	}
	return nil, fmt.Errorf("%w: not standard base64: %s", ErrKey, keyProblem(s, err))
}

func keyProblem(s string, err error) string {
	if i := strings.IndexAny(s, " \t\r\n"); i >= 0 {
		return fmt.Sprintf("whitespace at offset %d (trim the key; key files often end with a newline)", i)
	}
	if i := strings.IndexAny(s, "-_"); i >= 0 {
		return fmt.Sprintf("URL-safe base64 character at offset %d: the key uses the URL-safe alphabet ('-', '_'), want '+' and '/'", i)
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '+' || c == '/' || c == '=') {
			if c < 0x20 || c >= 0x7f {
				return fmt.Sprintf("a control or non-ASCII byte at offset %d", i)
			}
			return fmt.Sprintf("a character outside the base64 alphabet at offset %d", i)
		}
	}
	if len(s)%4 != 0 && !strings.Contains(s, "=") {
		return fmt.Sprintf("missing '=' padding (length %d is not a multiple of 4)", len(s))
	}
	if len(s)%4 != 0 {
		return fmt.Sprintf("length %d is not a multiple of 4 (truncated or padded wrongly?)", len(s))
	}
	if i := strings.Index(s, "="); i >= 0 && strings.TrimRight(s[i:], "=") != "" {
		return fmt.Sprintf("'=' padding in the middle (offset %d)", i)
	}
	if _, err2 := base64.StdEncoding.DecodeString(s); err2 == nil {
		return "non-zero bits in the last character (not canonical base64)"
	}
	var ce base64.CorruptInputError
	if e, ok := err.(base64.CorruptInputError); ok {
		ce = e
		return fmt.Sprintf("invalid input at offset %d", int64(ce))
	}
	return "invalid input"
}

const newKeyLength = 32

// NewKey returns 32 bytes from rand, base64-encoded: a fresh device or policy
// key in the form the Azure portal shows.
func NewKey(rand io.Reader) (string, error) {
	b := make([]byte, newKeyLength)
	if _, err := io.ReadFull(rand, b); err != nil {
		return "", fmt.Errorf("sas: reading random bytes for a key: %w", err)
	}
	return base64.StdEncoding.EncodeToString(b), nil
}

// DeriveDeviceKey returns the raw device key DPS derives for a group
// enrollment: HMAC-SHA256(groupKey, registrationID), with groupKey already
// base64-decoded. Callers base64-encode the result to get the device key
// (az iot dps enrollment-group compute-device-key).
func DeriveDeviceKey(groupKey []byte, registrationID string) []byte {
	h := hmac.New(sha256.New, groupKey)
	h.Write([]byte(registrationID))
	return h.Sum(nil)
}
