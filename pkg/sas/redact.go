package sas

import (
	"encoding/base64"
	"regexp"
	"strings"
)

// Redact returns s with every shared access signature and key in it replaced
// by "<redacted>", for text a client supplied that is about to be logged or
// recorded (a client ID, a user name, a topic, an error message quoting them).
//
// Secrets are found by their shape, whatever their percent-encoding depth: s
// is percent-decoded again and again (up to 8 times, an invalid escape left
// as it is) and the last form is searched for
//
//   - a named value: sig=, SharedAccessKey=, primaryKey / secondaryKey as
//     JSON members or name=value pairs (names in any case), up to the next
//     '&', ';', ',', quote, whitespace or bracket;
//   - a bare base64 value of 16 to 64 bytes (a key, or a 32-byte HMAC-SHA256
//     signature) that carries '+' or '=' padding, or is 43 characters long
//     with upper- and lower-case letters and digits (an unpadded signature).
//     Device IDs, host names and resource paths have neither shape.
//
// When nothing is found s is returned unchanged. When something is, the
// result is the decoded form with the secrets replaced, so a token that was
// percent-encoded twice is shown once, readably, and without its signature.
func Redact(s string) string {
	if !mayHoldSecret(s) {
		return s
	}
	d := s
	for i := 0; i < 8; i++ {
		n := unescapeLenient(d)
		if n == d {
			break
		}
		d = n
	}
	out := redactPlain(d)
	if out == d {
		return s
	}
	return out
}

// mayHoldSecret is Redact's fast path: text without a secret's name and
// without a run long enough for a bare key holds none.
func mayHoldSecret(s string) bool {
	if l := strings.ToLower(s); strings.Contains(l, "sig") || strings.Contains(l, "key") || strings.Contains(l, "%") {
		return true
	}
	run := 0
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case isBase64Char(c):
			run++
			if run >= minBareSecret {
				return true
			}
		default:
			run = 0
		}
	}
	return false
}

// minBareSecret is the length of the shortest bare secret: 16 bytes of
// unpadded base64.
const minBareSecret = 22

func isBase64Char(c byte) bool {
	return 'A' <= c && c <= 'Z' || 'a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '+' || c == '/' || c == '-' || c == '_' || c == '='
}

// unescapeLenient decodes every valid %XX escape of s and leaves everything
// else, '+' included, as it is.
func unescapeLenient(s string) string {
	if !strings.Contains(s, "%") {
		return s
	}
	var b strings.Builder
	b.Grow(len(s))
	for i := 0; i < len(s); i++ {
		if s[i] == '%' && i+2 < len(s) && isHex(s[i+1]) && isHex(s[i+2]) {
			b.WriteByte(unhex(s[i+1])<<4 | unhex(s[i+2]))
			i += 2
			continue
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// namedSecretRE matches a secret's name and separator (group 1) and its value.
var namedSecretRE = regexp.MustCompile(`(?i)((?:sig|sharedaccesskey|primarykey|secondarykey)"?\s*[=:]\s*"?)[^&;,"'\s<>(){}\[\]]+`)

// bareSecretRE matches runs of one base64 alphabet (standard or URL-safe) with padding.
var bareSecretRE = regexp.MustCompile(`[A-Za-z0-9+/]{22,}={0,2}|[A-Za-z0-9_-]{22,}={0,2}`)

func redactPlain(s string) string {
	s = namedSecretRE.ReplaceAllString(s, "${1}"+redacted)
	return bareSecretRE.ReplaceAllStringFunc(s, func(run string) string {
		if isBareSecret(run) {
			return redacted
		}
		return run
	})
}

// isBareSecret reports whether run has the shape of a key or a signature.
func isBareSecret(run string) bool {
	if strings.Contains(run, redacted) {
		return false
	}
	n := decodedLen(run)
	if n < 16 || n > 64 {
		return false
	}
	if strings.ContainsAny(run, "+=") {
		return true
	}
	if len(run) != 43 { // an unpadded 32-byte signature
		return false
	}
	var upper, lower, digit bool
	for i := 0; i < len(run); i++ {
		c := run[i]
		upper = upper || 'A' <= c && c <= 'Z'
		lower = lower || 'a' <= c && c <= 'z'
		digit = digit || '0' <= c && c <= '9'
	}
	return upper && lower && digit
}

// decodedLen is the length of run decoded as base64 (either alphabet,
// padded or not), or -1 if it is not base64.
func decodedLen(run string) int {
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.RawStdEncoding, base64.URLEncoding, base64.RawURLEncoding} {
		if b, err := enc.DecodeString(run); err == nil {
			return len(b)
		}
	}
	return -1
}
