package sas

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"hash"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// The differential diagnosis: after a signature mismatch, recompute the HMAC
// under the mistakes people make when minting tokens and report the one that
// reproduces the signature. It runs only after the real check failed, and the
// work is bounded: up to 3 key forms (as given, base64 text, base64-decoded)
// of each of the 2+MaxSuspectKeys keys over the canonical string to sign, plus
// each key over at most ~31 variants of the string to sign: about 70 HMACs
// with no suspects, at most about 610 with 16 (well under a millisecond).

// sigForm is one way to read the token's sig.
type sigForm struct {
	mac  []byte
	note string // "" for the sig as decoded by the hub
}

type keyForm struct {
	key  []byte
	note string // "" for the key as given
}

type msgForm struct {
	msg  string
	note string
}

func (t Token) signatureRejection(key []byte, now time.Time, c *verifyConfig) *Rejection {
	r := Reject(ReasonSignatureMismatch, "sig is not the HMAC-SHA256 of the token's sr and se under the "+keyPhrase(c)+" for "+quoteRes(t.Resource))
	if c.noDiagnosis {
		return r
	}
	sigs, sigProblem := t.sigForms()
	if sigProblem != "" {
		r.Hints = append(r.Hints, sigProblem)
	}
	if len(sigs) > 0 {
		if h := t.explain(sigs, key, c); h != "" {
			r.Hints = append(r.Hints, h)
		} else {
			if t.KeyName != "" {
				r.Hints = append(r.Hints, fmt.Sprintf("the token names a policy (skn=%s): check it against that policy's key, not a device key", t.KeyName))
			}
			r.Hints = append(r.Hints, "no known mistake reproduces the signature: check that the key belongs to this identity and was not regenerated")
		}
	}
	if t.ExpiryInMilliseconds() {
		r.Hints = append(r.Hints, msHint(t.Expiry))
	}
	if now.After(t.ExpiresAt().Add(c.skew)) {
		r.Hints = append(r.Hints, fmt.Sprintf("the token is also expired (at %s)", t.ExpiresAt().Format(time.RFC3339)))
	}
	return r
}

func keyPhrase(c *verifyConfig) string {
	if c.secondary != nil {
		return "primary or secondary key"
	}
	return "key"
}

func quoteRes(s string) string {
	if len(s) > 200 {
		s = s[:200] + "..."
	}
	return strconv.Quote(s)
}

func msHint(se int64) string {
	return fmt.Sprintf("se=%d looks like milliseconds since the epoch (that is %s); se is in seconds",
		se, time.UnixMilli(se).UTC().Format(time.RFC3339))
}

// sigForms returns the readings of sig to compare against, most faithful
// first, or a problem if none is a 32-byte value.
func (t Token) sigForms() ([]sigForm, string) {
	s := t.Signature
	var forms []sigForm
	add := func(b []byte, note string) {
		if len(b) == sha256.Size {
			forms = append(forms, sigForm{b, note})
		}
	}
	if b, err := base64.StdEncoding.Strict().DecodeString(s); err == nil && !strings.ContainsAny(s, "\r\n") {
		add(b, "")
	} else if b, err := base64.StdEncoding.DecodeString(s); err == nil {
		add(b, "sig is not canonical base64 (line breaks or non-zero trailing bits); send it exactly as encoded")
	}
	if strings.Contains(s, " ") {
		if b, err := base64.StdEncoding.DecodeString(strings.ReplaceAll(s, " ", "+")); err == nil {
			add(b, "'+' in the base64 signature was not percent-encoded as %2B, so the hub decoded it as a space; percent-encode sig (url.QueryEscape)")
		}
	}
	if strings.Contains(s, "%") {
		if u, err := url.PathUnescape(s); err == nil {
			if b, err := base64.StdEncoding.DecodeString(u); err == nil {
				add(b, "sig was percent-encoded twice; encode it once")
			}
		}
	}
	if b, err := base64.RawStdEncoding.DecodeString(strings.TrimRight(s, "=")); err == nil && !strings.HasSuffix(s, "=") {
		add(b, "sig lacks its '=' padding; send standard padded base64")
	}
	if strings.ContainsAny(s, "-_") {
		if b, err := base64.URLEncoding.DecodeString(s); err == nil {
			add(b, "sig uses the URL-safe base64 alphabet ('-', '_'); use standard base64 ('+', '/') and percent-encode it")
		} else if b, err := base64.RawURLEncoding.DecodeString(s); err == nil {
			add(b, "sig uses unpadded URL-safe base64; use standard padded base64 and percent-encode it")
		}
	}
	if len(forms) > 0 {
		return forms, ""
	}
	if b, err := base64.StdEncoding.DecodeString(s); err == nil {
		return nil, fmt.Sprintf("sig decodes to %d bytes; an HMAC-SHA256 signature is 32 bytes (44 base64 characters)", len(b))
	}
	if strings.Contains(s, " ") {
		return nil, "sig contains spaces after URL-decoding and is not base64: was '+' left unescaped?"
	}
	return nil, "sig is not standard base64"
}

// explain returns the hint for the first mistake that reproduces the
// signature, or "".
func (t Token) explain(sigs []sigForm, key []byte, c *verifyConfig) string {
	base := []keyForm{{key: key}}
	if c.secondary != nil {
		base = append(base, keyForm{key: c.secondary, note: "it was signed with the secondary key"})
	}
	suspects := c.suspects
	if len(suspects) > MaxSuspectKeys {
		suspects = suspects[:MaxSuspectKeys]
	}
	for _, s := range suspects {
		base = append(base, keyForm{key: s.Key, note: t.suspectNote(s.Name)})
	}
	canonical := t.StringToSign()

	// Phase A: every key form over the canonical string to sign.
	forms := append([]keyForm(nil), base...)
	for _, k := range base {
		forms = append(forms, keyForm{key: []byte(base64.StdEncoding.EncodeToString(k.key)),
			note: join(k.note, "the key's base64 text was used as the HMAC key (the Event Hubs/Service Bus rule); IoT Hub and DPS keys must be base64-decoded first")})
		if d, err := base64.StdEncoding.Strict().DecodeString(string(k.key)); err == nil && len(k.key) > 0 {
			forms = append(forms, keyForm{key: d,
				note: join(k.note, "the key was base64-decoded before signing, but this key is used as raw text (Event Hubs/Service Bus rule)")})
		}
	}
	for _, k := range forms {
		if h := matchSig(sigs, mac(k.key, canonical), k.note); h != "" {
			return h
		}
	}

	// Phase B: the identity's and suspects' keys over the known variants.
	variants := t.variants()
	for _, k := range base {
		h := hmac.New(sha256.New, k.key)
		for _, v := range variants {
			if hint := matchSig(sigs, sum(h, v.msg), join(k.note, v.note)); hint != "" {
				return hint
			}
		}
	}
	return ""
}

func sum(h hash.Hash, msg string) []byte {
	h.Reset()
	h.Write([]byte(msg))
	return h.Sum(nil)
}

func matchSig(sigs []sigForm, want []byte, note string) string {
	for _, s := range sigs {
		if hmac.Equal(s.mac, want) {
			return join(note, s.note)
		}
	}
	return ""
}

func join(a, b string) string {
	switch {
	case a == "":
		return b
	case b == "":
		return a
	}
	return a + "; and " + b
}

func (t Token) suspectNote(name string) string {
	note := "it was signed with " + name + ", not with this identity's key"
	if rest, ok := cutPrefixFold(name, "policy "); ok && t.KeyName == "" {
		// "policy iothubowner" or "policy iothubowner primary key"
		if f := strings.Fields(rest); len(f) > 0 {
			note += fmt.Sprintf(" (a token signed with a policy key must carry skn=%s)", f[0])
		}
	}
	return note
}

// variants returns strings to sign that differ from the canonical one by a
// known mistake, deduplicated, in order of likelihood.
func (t Token) variants() []msgForm {
	x := t.Resource
	se := strconv.FormatInt(t.Expiry, 10)
	seen := map[string]bool{t.StringToSign(): true}
	var out []msgForm
	addMsg := func(msg, note string) {
		if !seen[msg] {
			seen[msg] = true
			out = append(out, msgForm{msg, note})
		}
	}
	add := func(sr, note string) {
		addMsg(sr+"\n"+se, note)
	}
	wire := func(desc string) string {
		return fmt.Sprintf("the signature was computed over %s, but the token carries sr=%s: sign exactly the sr you send", desc, x)
	}

	// re-casing after signing
	if up := recaseEscapes(x, true); up != x {
		add(up, wire("sr with upper-case escapes "+quoteRes(up)))
	}
	if lo := recaseEscapes(x, false); lo != x {
		add(lo, wire("sr with lower-case escapes "+quoteRes(lo)))
	}
	add(strings.ToLower(x), wire("the lower-cased sr "+quoteRes(strings.ToLower(x))))

	// encoding differences
	plain, err := url.PathUnescape(x)
	if err == nil {
		add(plain, wire("the plain, unencoded resource "+quoteRes(plain)))
		enc := EncodeResource(plain)
		add(enc, wire("the url.QueryEscape form "+quoteRes(enc)))
		add(strings.ReplaceAll(enc, "+", "%20"), wire(quoteRes(strings.ReplaceAll(enc, "+", "%20"))+" (space as %20)"))
		add(strings.ToLower(enc), wire("the lower-cased encoding "+quoteRes(strings.ToLower(enc))))
		add(EncodeResource(strings.ToLower(plain)), wire("the encoding of the lower-cased resource "+quoteRes(EncodeResource(strings.ToLower(plain)))))
		add(strings.ToLower(EncodeResource(strings.ToLower(plain))), wire(quoteRes(strings.ToLower(EncodeResource(strings.ToLower(plain))))+" (lower-cased resource and escapes, as the docs describe)"))
		add(encodeURIComponent(plain), wire("the JavaScript encodeURIComponent form "+quoteRes(encodeURIComponent(plain))))
	}
	dbl := EncodeResource(x)
	add(dbl, wire("the double-encoded "+quoteRes(dbl)+" (the resource was encoded twice)"))
	add(strings.ToLower(dbl), wire("the double-encoded, lower-cased "+quoteRes(strings.ToLower(dbl))))
	if strings.Contains(x, "+") {
		add(strings.ReplaceAll(x, "+", "%20"), wire("sr with spaces as %20 instead of '+'"))
	}
	if strings.Contains(x, "%20") {
		add(strings.ReplaceAll(x, "%20", "+"), wire("sr with spaces as '+' instead of %20"))
	}

	// shape differences: trailing slash, port, host
	sep := firstSep(x)
	if strings.HasSuffix(x, "/") || strings.HasSuffix(strings.ToUpper(x), "%2F") {
		trimmed := strings.TrimSuffix(x, "/")
		if len(trimmed) == len(x) {
			trimmed = x[:len(x)-3]
		}
		add(trimmed, wire("sr without the trailing slash"))
	} else {
		add(x+"/", wire("sr with a trailing slash"))
		if sep != "" && sep != "/" {
			add(x+sep, wire("sr with a trailing "+sep))
		}
	}
	if sep != "" {
		host, rest := x[:strings.Index(x, sep)], x[strings.Index(x, sep):]
		if i := strings.LastIndex(host, ":"); i > 0 {
			add(host[:i]+rest, wire("sr without the port"))
		} else if i := strings.Index(strings.ToUpper(host), "%3A"); i > 0 {
			add(host[:i]+rest, wire("sr without the port"))
		} else {
			for _, port := range []string{"8883", "443"} {
				add(host+":"+port+rest, wire("sr with the port ("+host+":"+port+")"))
				add(host+"%3A"+port+rest, wire("sr with the port ("+host+"%3A"+port+")"))
			}
		}
		path := rest[len(sep):]
		add(path, wire("sr without the host ("+quoteRes(path)+")"))
		if err == nil {
			if _, p, ok := strings.Cut(plain, "/"); ok {
				add(p, wire("sr without the host, unencoded ("+quoteRes(p)+")"))
			}
		}
	}

	// expiry differences
	if !t.ExpiryInMilliseconds() {
		addMsg(x+"\n"+strconv.FormatInt(t.Expiry*1000, 10), fmt.Sprintf("se was signed in milliseconds (%d) but the token carries seconds: use one value", t.Expiry*1000))
	} else {
		addMsg(x+"\n"+strconv.FormatInt(t.Expiry/1000, 10), fmt.Sprintf("se was signed in seconds (%d) but the token carries milliseconds: send seconds", t.Expiry/1000))
	}
	for _, d := range []int64{-1, 1} {
		if t.Expiry+d >= 0 {
			addMsg(x+"\n"+strconv.FormatInt(t.Expiry+d, 10), fmt.Sprintf("se was %d when signing but %d in the token: compute se once and use it for both", t.Expiry+d, t.Expiry))
		}
	}
	addMsg(x+se, "the string to sign lacks the newline between sr and se")
	addMsg(x+"\r\n"+se, "the string to sign uses \\r\\n between sr and se; use a single \\n")
	addMsg(x+"\n"+se+"\n", "the string to sign has a trailing newline")
	return out
}

// firstSep returns the first path separator in an sr: "/", "%2F" or "%2f".
func firstSep(x string) string {
	best, sep := -1, ""
	for _, s := range []string{"/", "%2F", "%2f"} {
		if i := strings.Index(x, s); i >= 0 && (best < 0 || i < best) {
			best, sep = i, s
		}
	}
	return sep
}

// recaseEscapes upper- or lower-cases the hex digits of every %XX escape.
func recaseEscapes(s string, upper bool) string {
	b := []byte(s)
	for i := 0; i+2 < len(b); i++ {
		if b[i] != '%' {
			continue
		}
		for j := i + 1; j <= i+2; j++ {
			c := b[j]
			if upper && c >= 'a' && c <= 'f' {
				b[j] = c - 'a' + 'A'
			} else if !upper && c >= 'A' && c <= 'F' {
				b[j] = c - 'A' + 'a'
			}
		}
		i += 2
	}
	return string(b)
}

// encodeURIComponent mimics JavaScript's encodeURIComponent, which leaves
// A-Z a-z 0-9 - _ . ! ~ * ' ( ) unescaped.
func encodeURIComponent(s string) string {
	e := url.QueryEscape(s)
	e = strings.ReplaceAll(e, "+", "%20")
	r := strings.NewReplacer("%21", "!", "%27", "'", "%28", "(", "%29", ")", "%2A", "*")
	return r.Replace(e)
}

const year2000 = 946684800

func expiryHints(t Token, now time.Time) []string {
	var hints []string
	since := now.Sub(t.ExpiresAt())
	ago := human(since)
	if t.Expiry < year2000 {
		hints = append(hints, fmt.Sprintf("expired %s ago; se=%d is %s, near the Unix epoch: if the device has no RTC/NTP its clock may be wrong (set the clock before minting tokens)",
			ago, t.Expiry, t.ExpiresAt().Format(time.RFC3339)))
	} else if since > 365*24*time.Hour {
		hints = append(hints, fmt.Sprintf("expired %s ago; if the device has no RTC/NTP its clock may be wrong", ago))
	}
	hints = append(hints, "mint a new token and reconnect: MQTT cannot refresh a token in-band (SDKs renew at about 85% of the lifetime)")
	return hints
}

func scopeHints(tokenPlain, audience string) []string {
	var hints []string
	tr, ar := ParsePlainResource(tokenPlain), ParsePlainResource(audience)
	th, ah := tr.Authority(), ar.Authority()
	if tr.Port != "" && ar.Port == "" {
		hints = append(hints, fmt.Sprintf("sr includes a port (%s); use the host name only (%s)", th, tr.Host))
		th = tr.Host
	}
	if !strings.EqualFold(th, ah) {
		if strings.HasPrefix(strings.ToLower(ah), strings.ToLower(th)+".") {
			hints = append(hints, fmt.Sprintf("sr host %q looks like the hub name without its domain; use the full host name %q", th, ah))
		}
		if tr.Kind == ResourceDPS && ar.Kind != ResourceDPS {
			hints = append(hints, "sr is a DPS resource (idScope/registrations/id) but this is an IoT Hub connection")
		}
	}
	if tr.TrailingSlash {
		hints = append(hints, "sr ends with '/'; remove the trailing slash")
	}
	if tr.Typo != (Typo{}) {
		hints = append(hints, fmt.Sprintf("sr contains %q; the path segment is %q", tr.Typo.Got, tr.Typo.Want))
	}
	// Case is the cause only when the exact text does not cover the identity: a hub-scoped
	// device-key token refused under the exact rule covers it by prefix, case and all.
	if strings.EqualFold(th, ah) && covers(strings.ToLower(tokenPlain), strings.ToLower(audience), false) && !covers(tokenPlain, audience, false) {
		hints = append(hints, "the IDs differ only in case: device and module IDs are case-sensitive")
	}
	if tr.ModuleID != "" && tr.Typo == (Typo{}) && ar.ModuleID == "" {
		hints = append(hints, "a module token cannot open a device connection; sign over the device resource, or connect as the module")
	}
	return hints
}

// human formats a positive duration briefly: "45s", "5m1s", "3h", "1h30m",
// "12 days", "54 years".
func human(d time.Duration) string {
	d = d.Round(time.Second)
	const day = 24 * time.Hour
	switch {
	case d >= 2*365*day:
		return strconv.FormatInt(int64(d/(365*day)), 10) + " years"
	case d >= 2*day:
		return strconv.FormatInt(int64(d/day), 10) + " days"
	}
	s := d.String()
	if strings.HasSuffix(s, "m0s") {
		s = strings.TrimSuffix(s, "0s")
	}
	if strings.HasSuffix(s, "h0m") {
		s = strings.TrimSuffix(s, "0m")
	}
	return s
}

func cutPrefixFold(s, prefix string) (string, bool) {
	if len(s) >= len(prefix) && strings.EqualFold(s[:len(prefix)], prefix) {
		return s[len(prefix):], true
	}
	return s, false
}
