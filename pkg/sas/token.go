package sas

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"log/slog"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// Prefix starts every token.
const Prefix = "SharedAccessSignature"

// DefaultSkew is the clock-skew allowance Verify applies unless WithSkew is
// given: a token is expired only when se + DefaultSkew < now, as in the Azure
// SDKs and IoT Edge hub (SharedAccessSignatureConstants.MaxClockSkew).
const DefaultSkew = 5 * time.Minute

// Token is a parsed shared access signature.
type Token struct {
	Resource  string // sr exactly as on the wire (still percent-encoded)
	Signature string // sig, base64, URL-decoded (QueryUnescape: an unescaped '+' becomes ' ', as the hub does)
	Expiry    int64  // se, seconds since the Unix epoch
	KeyName   string // skn; empty for device/module keys
}

// Sign returns a token for resource, which must be the wire form (already
// percent-encoded, see EncodeResource), signed with key (the decoded key
// bytes for IoT Hub and DPS, the raw key text for Service Bus) and expiring at
// expiry (truncated to whole seconds). keyName is the policy name (skn), or
// "" for device and module keys.
func Sign(resource, keyName string, key []byte, expiry time.Time) Token {
	t := Token{Resource: resource, Expiry: expiry.Unix(), KeyName: keyName}
	t.Signature = base64.StdEncoding.EncodeToString(t.mac(key))
	return t
}

// StringToSign returns the string the signature is computed over: sr exactly
// as on the wire, a newline, and se in decimal.
func (t Token) StringToSign() string { return stringToSign(t.Resource, t.Expiry) }

func stringToSign(resource string, expiry int64) string {
	return resource + "\n" + strconv.FormatInt(expiry, 10)
}

// mac returns HMAC-SHA256(key, t.StringToSign()) without building the string.
// The string to sign's buffer then holds the sum: one allocation for both.
func (t Token) mac(key []byte) []byte {
	return t.macTo(key, make([]byte, 0, max(len(t.Resource)+21, sha256.Size)))
}

// macTo is mac building the string to sign, and then the MAC, in buf.
func (t Token) macTo(key, buf []byte) []byte {
	buf = append(buf, t.Resource...)
	buf = append(buf, '\n')
	buf = strconv.AppendInt(buf, t.Expiry, 10)
	h := hmac.New(sha256.New, key)
	h.Write(buf)
	return h.Sum(buf[:0])
}

func mac(key []byte, msg string) []byte {
	h := hmac.New(sha256.New, key)
	h.Write([]byte(msg))
	return h.Sum(nil)
}

// String returns the token in wire form with fields in the order sr, sig, se,
// skn (as the C and Python SDKs write them); sig and skn are percent-encoded
// with url.QueryEscape. Parse(t.String()) == t.
//
// The result contains the signature, a bearer credential until se: treat it
// as a secret. Use Redacted for errors and logs (slog uses LogValue, which
// redacts, but fmt's %v and %s call String).
func (t Token) String() string { return t.format(false) }

// Redacted is String with sig=<redacted>: the resource, expiry and policy
// name stay visible, so it is safe for errors and logs. It does not parse.
func (t Token) Redacted() string { return t.format(true) }

// LogValue makes slog log a Token as a group of sr, se (RFC 3339 UTC) and
// skn, without the signature.
func (t Token) LogValue() slog.Value {
	attrs := []slog.Attr{slog.String("sr", t.Resource), slog.String("se", t.ExpiresAt().Format(time.RFC3339))}
	if t.KeyName != "" {
		attrs = append(attrs, slog.String("skn", t.KeyName))
	}
	attrs = append(attrs, slog.String("sig", redacted))
	return slog.GroupValue(attrs...)
}

const redacted = "<redacted>"

func (t Token) format(redact bool) string {
	var b strings.Builder
	b.Grow(len(Prefix) + len(t.Resource) + len(t.Signature) + len(t.KeyName) + 48)
	b.WriteString(Prefix)
	b.WriteString(" sr=")
	b.WriteString(t.Resource)
	b.WriteString("&sig=")
	if redact {
		b.WriteString(redacted)
	} else {
		b.WriteString(url.QueryEscape(t.Signature))
	}
	b.WriteString("&se=")
	b.WriteString(strconv.FormatInt(t.Expiry, 10))
	if t.KeyName != "" {
		b.WriteString("&skn=")
		b.WriteString(url.QueryEscape(t.KeyName))
	}
	return b.String()
}

// ExpiresAt returns se as a UTC time.
func (t Token) ExpiresAt() time.Time { return time.Unix(t.Expiry, 0).UTC() }

// ExpiryInMilliseconds reports whether se looks like milliseconds since the
// epoch (a common mistake: JavaScript's Date.now()): above 10^11, which in
// seconds is the year 5138.
func (t Token) ExpiryInMilliseconds() bool { return t.Expiry > 1e11 }

// PlainResource returns sr percent-decoded. A '+' stays a '+' (device IDs may
// contain '+', never a space). The error wraps ErrMalformed.
func (t Token) PlainResource() (string, error) {
	if p, ok := pathUnescape(t.Resource); ok {
		return p, nil
	}
	_, err := url.PathUnescape(t.Resource) // the same verdict, with its description
	return "", &ParseError{Field: "sr", Problem: "bad percent-encoding: " + escapeProblem(err)}
}

// pathUnescape decodes %XX escapes as url.PathUnescape does ('+' stays '+'),
// in one pass and one allocation (none without '%'): every CONNECT and every
// service request decodes an sr. ok is false for a bad escape.
func pathUnescape(s string) (string, bool) {
	i := strings.IndexByte(s, '%')
	if i < 0 {
		return s, true
	}
	var b strings.Builder
	b.Grow(len(s))
	b.WriteString(s[:i])
	for ; i < len(s); i++ {
		c := s[i]
		if c != '%' {
			b.WriteByte(c)
			continue
		}
		if i+2 >= len(s) || !isHex(s[i+1]) || !isHex(s[i+2]) {
			return "", false
		}
		b.WriteByte(unhex(s[i+1])<<4 | unhex(s[i+2]))
		i += 2
	}
	return b.String(), true
}

func unhex(c byte) byte {
	switch {
	case c <= '9':
		return c - '0'
	case c >= 'a':
		return c - 'a' + 10
	}
	return c - 'A' + 10
}

// Parse parses a token in wire form. The prefix "SharedAccessSignature" is
// case-sensitive and must be followed by exactly one space (or tab) and one
// whitespace-free part of "&"-separated name=value fields. Field names are
// case-insensitive; fields may come in any order; empty fields (as in a
// trailing "&") are ignored, like IoT Edge hub does; unknown fields and
// duplicated fields are errors. sr is kept raw (its
// percent-encoding is checked); sig and skn are URL-decoded with
// url.QueryUnescape; se must be a non-negative decimal number without
// leading zeros (the string to sign uses se exactly as written, so a
// non-canonical se could never be re-signed identically).
//
// Errors are *ParseError values wrapping ErrMalformed; they never contain the
// signature.
func Parse(s string) (Token, error) {
	rest, ok := strings.CutPrefix(s, Prefix)
	if !ok {
		return Token{}, prefixError(s)
	}
	if rest == "" {
		return Token{}, &ParseError{Problem: "nothing after " + strconv.Quote(Prefix) + ": want \"" + Prefix + " sr=...&sig=...&se=...\""}
	}
	if rest[0] != ' ' && rest[0] != '\t' {
		return Token{}, &ParseError{Problem: "want exactly one space after " + strconv.Quote(Prefix)}
	}
	rest = rest[1:]
	if rest == "" {
		return Token{}, &ParseError{Problem: "no fields after " + strconv.Quote(Prefix+" ")}
	}
	if i := strings.IndexAny(rest, " \t\r\n\v\f"); i >= 0 {
		if i == 0 {
			return Token{}, &ParseError{Problem: "want exactly one space after " + strconv.Quote(Prefix)}
		}
		return Token{}, &ParseError{Problem: "whitespace inside the fields (at byte " + strconv.Itoa(len(Prefix)+1+i) + "); the token must be one space-free part after the prefix"}
	}

	var t Token
	var seen [4]bool // sr, sig, se, skn
	for field := range strings.SplitSeq(rest, "&") {
		if field == "" {
			continue
		}
		name, value, ok := strings.Cut(field, "=")
		if !ok {
			return Token{}, &ParseError{Field: safeName(field), Problem: "no '=' (want name=value)"}
		}
		var idx int
		switch strings.ToLower(name) {
		case "sr":
			idx = 0
		case "sig":
			idx = 1
		case "se":
			idx = 2
		case "skn":
			idx = 3
		case "":
			return Token{}, &ParseError{Problem: "field with an empty name (\"=...\")"}
		default:
			return Token{}, &ParseError{Field: safeName(name), Problem: "unknown field (want sr, sig, se and optionally skn)"}
		}
		fname := fieldNames[idx]
		if seen[idx] {
			return Token{}, &ParseError{Field: fname, Problem: "duplicated"}
		}
		seen[idx] = true
		if value == "" {
			return Token{}, &ParseError{Field: fname, Problem: "empty"}
		}
		switch idx {
		case 0:
			if bad := badEscape(value); bad != "" {
				return Token{}, &ParseError{Field: fname, Problem: "bad percent-encoding: invalid escape " + strconv.Quote(bad)}
			}
			t.Resource = value
		case 1:
			v, err := url.QueryUnescape(value)
			if err != nil {
				return Token{}, &ParseError{Field: fname, Problem: "bad percent-encoding: " + escapeProblem(err)}
			}
			t.Signature = v
		case 2:
			se, problem := parseExpiry(value)
			if problem != "" {
				return Token{}, &ParseError{Field: fname, Problem: problem}
			}
			t.Expiry = se
		case 3:
			v, err := url.QueryUnescape(value)
			if err != nil {
				return Token{}, &ParseError{Field: fname, Problem: "bad percent-encoding: " + escapeProblem(err)}
			}
			if v == "" {
				return Token{}, &ParseError{Field: fname, Problem: "empty"}
			}
			t.KeyName = v
		}
	}
	for i, ok := range seen[:3] {
		if !ok {
			return Token{}, &ParseError{Field: fieldNames[i], Problem: "missing"}
		}
	}
	if t.Signature == "" {
		return Token{}, &ParseError{Field: "sig", Problem: "empty"}
	}
	return t, nil
}

var fieldNames = [4]string{"sr", "sig", "se", "skn"}

func prefixError(s string) error {
	first, _, _ := strings.Cut(s, " ")
	switch {
	case s == "":
		return &ParseError{Problem: "empty token (want \"" + Prefix + " sr=...&sig=...&se=...\")"}
	case strings.EqualFold(first, Prefix):
		return &ParseError{Problem: "wrong prefix " + strconv.Quote(first) + ": the prefix " + strconv.Quote(Prefix) + " is case-sensitive"}
	case strings.HasPrefix(strings.ToLower(s), "sr=") || strings.HasPrefix(strings.ToLower(s), "sig=") ||
		strings.HasPrefix(strings.ToLower(s), "se=") || strings.HasPrefix(strings.ToLower(s), "skn="):
		return &ParseError{Problem: "wrong prefix: the token starts with its fields; want \"" + Prefix + " \" before them"}
	default:
		return &ParseError{Problem: "wrong prefix: want \"" + Prefix + " sr=...&sig=...&se=...\""}
	}
}

// safeName returns a field name fit for an error: short alphabetic names are
// quoted, anything else (perhaps a pasted signature) is not echoed.
func safeName(s string) string {
	if !looksLikeName(s, 16) {
		return "(" + strconv.Itoa(len(s)) + " bytes, not shown)"
	}
	return strconv.Quote(s)
}

func parseExpiry(v string) (int64, string) {
	if v[0] == '-' {
		return 0, "negative (" + strconv.Quote(v) + "); want seconds since 1970-01-01T00:00:00Z"
	}
	for i := 0; i < len(v); i++ {
		if v[i] < '0' || v[i] > '9' {
			if len(v) > 24 {
				v = v[:24] + "..."
			}
			return 0, "not a decimal number (" + strconv.Quote(v) + "); want seconds since 1970-01-01T00:00:00Z"
		}
	}
	if len(v) > 1 && v[0] == '0' {
		return 0, "leading zeros (" + strconv.Quote(v) + "); the string to sign uses se as written, want plain decimal"
	}
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil {
		return 0, "out of range (" + strconv.Quote(v) + ")"
	}
	return n, ""
}

// escapeProblem turns a url.EscapeError into a short phrase.
func escapeProblem(err error) string {
	if e, ok := err.(url.EscapeError); ok {
		return "invalid escape " + strconv.Quote(string(e))
	}
	return err.Error()
}

// badEscape returns the first '%' sequence in s that is not '%' and two hex
// digits (what url.PathUnescape rejects), or "".
func badEscape(s string) string {
	for i := 0; i < len(s); i++ {
		if s[i] != '%' {
			continue
		}
		if i+2 >= len(s) || !isHex(s[i+1]) || !isHex(s[i+2]) {
			return s[i:min(i+3, len(s))]
		}
		i += 2
	}
	return ""
}

func isHex(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}
