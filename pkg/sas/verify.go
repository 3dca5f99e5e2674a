package sas

import (
	"crypto/hmac"
	"encoding/base64"
	"fmt"
	"strings"
	"sync"
	"time"
)

// VerifyOption configures Token.Verify.
type VerifyOption func(*verifyConfig)

type verifyConfig struct {
	skew        time.Duration
	secondary   []byte
	audience    string
	hasAudience bool
	exact       bool
	suspects    []NamedKey
	foldIDs     bool
	noDiagnosis bool
}

// NamedKey is a key tried only for diagnosis, with a name for the hint.
type NamedKey struct {
	Name string // e.g. "device dev2 primary key", "policy iothubowner"
	Key  []byte // decoded key bytes (raw key text for Service Bus)
}

// WithSkew sets the clock-skew allowance (default DefaultSkew): the token is
// expired when se < now - d. Negative values count as 0.
func WithSkew(d time.Duration) VerifyOption {
	return func(c *verifyConfig) { c.skew = max(d, 0) }
}

// WithSecondaryKey adds the identity's secondary key: a token signed with
// either key is valid. An empty (or nil) key means "no secondary key": no
// token ever verifies under an empty key.
func WithSecondaryKey(key []byte) VerifyOption {
	return func(c *verifyConfig) { c.secondary = key }
}

// WithAudience requires the token's sr to cover plainResource (see Covers),
// for example DeviceResource(host, deviceID) for an MQTT connection. Covering
// is by path prefix: a token may be scoped to the whole hub ("{host}"), to
// all devices ("{host}/devices") or to the identity. This is IoT Hub's rule
// for policy tokens (skn) and for tokens signed with a device's or module's
// own key alike: a token with sr={host} signed with dev2's key is accepted
// for dev2, and for no other device, since its signature is dev2's
// (github.com/amenzhinsky/iothub signs such tokens). For IoT Edge hub's
// stricter rule for identity keys use WithExactAudience.
func WithAudience(plainResource string) VerifyOption {
	return func(c *verifyConfig) { c.audience, c.hasAudience, c.exact = plainResource, true, false }
}

// WithExactAudience requires the token's sr to BE plainResource, not merely
// cover it: the host (or DPS ID scope) is compared case-insensitively, the
// rest exactly (case-sensitively unless WithCaseInsensitiveIDs), and a
// trailing slash makes it a different resource. This is IoT Edge hub's rule
// (its ValidateAudience) for a token signed with an identity's own key (no
// skn for a device or module; skn=registration for DPS), which it lets name
// only that identity: sr="{host}/devices/{id}" for a device key,
// "{host}/devices/{d}/modules/{m}" for a module key (docs/iothub-behavior.md
// §2.4). IoT Hub itself applies the prefix rule of WithAudience to such
// tokens. A broader sr is refused with ReasonScopeMismatch. The last of
// WithAudience and WithExactAudience wins.
func WithExactAudience(plainResource string) VerifyOption {
	return func(c *verifyConfig) { c.audience, c.hasAudience, c.exact = plainResource, true, true }
}

// WithSuspectKeys adds keys that are never accepted but are tried, after a
// signature mismatch, to explain it ("signed with policy iothubowner").
// At most MaxSuspectKeys are used.
func WithSuspectKeys(keys ...NamedKey) VerifyOption {
	return func(c *verifyConfig) { c.suspects = append(c.suspects, keys...) }
}

// WithCaseInsensitiveIDs compares device and module IDs in sr without regard
// to case, as IoT Edge hub does. The default is an exact comparison.
func WithCaseInsensitiveIDs() VerifyOption {
	return func(c *verifyConfig) { c.foldIDs = true }
}

// WithoutDiagnosis skips the differential diagnosis after a signature
// mismatch: no HMAC beyond the one or two real checks, and the Rejection has
// no signature hints (its Reason and Detail are the same). A valid token never
// pays for the diagnosis, but every mismatched token does (about 70 HMACs,
// up to about 610 with MaxSuspectKeys suspects): a server facing untrusted
// clients can verify with WithoutDiagnosis first and call Verify again
// without it only for the mismatches it will report.
func WithoutDiagnosis() VerifyOption {
	return func(c *verifyConfig) { c.noDiagnosis = true }
}

// MaxSuspectKeys bounds the suspect keys tried by the diagnosis.
const MaxSuspectKeys = 16

// Verify checks t at time now with key (the decoded primary key; the raw
// key text for Service Bus). It returns nil or a *Rejection, checking in
// this order:
//
//  1. with WithAudience or WithExactAudience: the host (ReasonHostMismatch),
//     then the path (ReasonScopeMismatch) of sr against the audience;
//  2. the signature with key, then with the WithSecondaryKey key, compared
//     in constant time (ReasonSignatureMismatch, with the differential
//     diagnosis in Hints unless WithoutDiagnosis);
//  3. the expiry, allowing the skew (ReasonExpired).
//
// A token whose sr is not valid percent-encoding is ReasonMalformed. An
// empty key is not a verdict on the token: Verify returns ErrEmptyKey
// (wrapping ErrKey), never nil.
//
// Which audience option to use: WithAudience is IoT Hub's rule for every
// token (a prefix of the identity's resource); WithExactAudience is IoT Edge
// hub's for a token signed with a device's or module's own key (exactly its
// resource). Verify cannot tell a policy token from an identity's by itself
// (a DPS token has skn=registration and a device key), so the caller, which
// knows whose key it passes, chooses.
func (t Token) Verify(key []byte, now time.Time, opts ...VerifyOption) error {
	if len(key) == 0 {
		return ErrEmptyKey
	}
	// The options write into the configuration through a pointer, so it
	// would escape to the heap on every call: it is pooled instead, with the
	// buffer for the string to sign and the MAC, and wiped on return (it
	// holds keys and a MAC).
	st := verifyStates.Get().(*verifyState)
	defer st.release()
	c := &st.c
	*c = verifyConfig{skew: DefaultSkew}
	for _, o := range opts {
		o(c)
	}
	if len(c.secondary) == 0 {
		c.secondary = nil
	}
	if c.hasAudience {
		if r := t.checkAudience(c); r != nil {
			return r
		}
	}
	if !t.signedWithBuf(key, st.buf[:0]) && (c.secondary == nil || !t.signedWithBuf(c.secondary, st.buf[:0])) {
		return t.signatureRejection(key, now, c)
	}
	if r := t.checkExpiry(now, c); r != nil {
		return r
	}
	return nil
}

// verifyState is Verify's scratch space.
type verifyState struct {
	c   verifyConfig
	buf [160]byte // the string to sign of a usual sr, then its MAC
}

var verifyStates = sync.Pool{New: func() any { return new(verifyState) }}

func (st *verifyState) release() {
	st.c = verifyConfig{}
	clear(st.buf[:])
	verifyStates.Put(st)
}

// signedWithBuf reports whether t.Signature is the HMAC of t under key,
// computed in buf (grown if sr is long). Like IoT Edge hub, it compares the
// base64 text (constant time), so only the canonical, padded standard
// encoding is accepted.
func (t Token) signedWithBuf(key, buf []byte) bool {
	var sig [44]byte
	base64.StdEncoding.Encode(sig[:], t.macTo(key, buf))
	return hmac.Equal([]byte(t.Signature), sig[:])
}

func (t Token) checkExpiry(now time.Time, c *verifyConfig) *Rejection {
	deadline := t.ExpiresAt().Add(c.skew)
	if !now.After(deadline) {
		return nil
	}
	ago := human(now.Sub(t.ExpiresAt()))
	r := Reject(ReasonExpired, fmt.Sprintf("token expired at %s, %s ago (skew allowance %s)",
		t.ExpiresAt().Format(time.RFC3339), ago, c.skew))
	r.Hints = expiryHints(t, now)
	return r
}

func (t Token) checkAudience(c *verifyConfig) *Rejection {
	if encodesExactly(t.Resource, c.audience) {
		return nil // the common case, decided without decoding
	}
	plain, err := t.PlainResource()
	if err != nil {
		return Reject(ReasonMalformed, err.Error())
	}
	if c.exact && sameResource(plain, c.audience, c.foldIDs) || !c.exact && covers(plain, c.audience, c.foldIDs) {
		return nil
	}
	th, ah := ParsePlainResource(plain).Authority(), ParsePlainResource(c.audience).Authority()
	if !strings.EqualFold(th, ah) {
		r := Reject(ReasonHostMismatch, fmt.Sprintf("token is for host %s but the connection is for host %s", th, ah))
		r.Hints = scopeHints(plain, c.audience)
		return r
	}
	if c.exact && covers(plain, c.audience, c.foldIDs) {
		kind, several := identityKind(c.audience)
		r := Reject(ReasonScopeMismatch, fmt.Sprintf("a token signed with a %s must be scoped exactly to %s, not %s (IoT Edge hub's rule: only shared access policy tokens, with skn, may cover %s)",
			kind, c.audience, plain, several))
		r.Hints = append(scopeHints(plain, c.audience),
			fmt.Sprintf("sign over exactly %s (percent-encoded: %s), or sign with a policy key that has DeviceConnect and send its name as skn", c.audience, EncodeResource(c.audience)))
		return r
	}
	r := Reject(ReasonScopeMismatch, fmt.Sprintf("token is for %s but the connection is for %s", pathOf(plain), pathOf(c.audience)))
	r.Hints = scopeHints(plain, c.audience)
	return r
}

// encodesExactly reports whether the wire resource enc decodes to exactly
// plain in the spelling SDKs use: each '/' as %2F, %2f or '/', every other
// byte of plain unreserved and written as is. false means "not cheaply
// decided", not "different".
func encodesExactly(enc, plain string) bool {
	j := 0
	for i := 0; i < len(plain); i++ {
		switch c := plain[i]; {
		case c == '/':
			switch {
			case len(enc)-j >= 3 && enc[j] == '%' && enc[j+1] == '2' && (enc[j+2] == 'F' || enc[j+2] == 'f'):
				j += 3
			case j < len(enc) && enc[j] == '/':
				j++
			default:
				return false
			}
		case unreserved(c) && j < len(enc) && enc[j] == c:
			j++
		default:
			return false
		}
	}
	return j == len(enc)
}

func unreserved(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '.' || c == '_' || c == '~'
}

// identityKind names the key a token for audience is signed with, and what
// only policy tokens may cover, for the scope-mismatch detail.
func identityKind(audience string) (kind, several string) {
	switch ParsePlainResource(audience).Kind {
	case ResourceModule:
		return "module key", "several identities"
	case ResourceDevice:
		return "device key", "several devices"
	case ResourceDPS:
		return "device's own key", "several registrations"
	}
	return "identity's own key", "several identities"
}

// pathOf drops the host: "h/devices/d" -> "devices/d"; a bare host stays.
func pathOf(plain string) string {
	if _, p, ok := strings.Cut(plain, "/"); ok && p != "" {
		return p
	}
	return plain
}

// Warnings returns advice about a token that is well formed (and may verify)
// but is unusual: se in milliseconds, a lifetime over a year at now, an sr
// that is not percent-encoded or uses lower-case escapes, an sr with a port
// or a trailing slash. Each is one sentence without secrets; nil if none.
func (t Token) Warnings(now time.Time) []string {
	var w []string
	if t.ExpiryInMilliseconds() {
		w = append(w, msHint(t.Expiry))
	} else if left := t.ExpiresAt().Sub(now); left > 366*24*time.Hour {
		w = append(w, fmt.Sprintf("the token is valid for %s more; prefer short-lived tokens (SDKs use about 1 hour)", human(left)))
	}
	x := t.Resource
	switch {
	case strings.Contains(x, "/"):
		w = append(w, "sr is not percent-encoded; the hub accepts it, but the SDKs send it encoded (%2F)")
	case recaseEscapes(x, true) != x:
		w = append(w, "sr uses lower-case escapes (%2f); the hub accepts them if the signature was computed over the same text, the SDKs send upper-case %2F")
	}
	if r, err := ParseResource(t.Resource); err == nil {
		if r.Port != "" {
			w = append(w, "sr includes a port ("+r.Authority()+"); IoT Hub resources use the host name only")
		}
		if r.TrailingSlash {
			w = append(w, "sr ends with '/'")
		}
	}
	return w
}
