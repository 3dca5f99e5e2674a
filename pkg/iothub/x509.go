package iothub

import (
	"crypto/sha1"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"strings"
)

// Thumbprints returns the SHA-1 and SHA-256 thumbprints of a DER certificate as az and the
// Azure portal print them: upper-case hex without separators. A self-signed identity may
// register either (docs/iothub-behavior.md §1.23).
func Thumbprints(der []byte) (sha1Hex, sha256Hex string) {
	s1 := sha1.Sum(der)
	s256 := sha256.Sum256(der)
	return strings.ToUpper(hex.EncodeToString(s1[:])), strings.ToUpper(hex.EncodeToString(s256[:]))
}

// NormalizeThumbprint reads a thumbprint as people paste it (upper or lower case, with ':'
// or space separators, as openssl prints "SHA1 Fingerprint=AB:CD:...") and returns it in
// upper-case hex without separators. It must be 40 hex digits (SHA-1) or 64 (SHA-256).
func NormalizeThumbprint(s string) (string, error) {
	t := strings.ToUpper(strings.NewReplacer(":", "", " ", "", "-", "").Replace(strings.TrimSpace(s)))
	if _, err := hex.DecodeString(t); err != nil {
		return "", fmt.Errorf("thumbprint %q: not hexadecimal (want 40 hex digits for SHA-1 or 64 for SHA-256)", clipText(s, 80))
	}
	if len(t) != 40 && len(t) != 64 {
		return "", fmt.Errorf("thumbprint %q: %d hex digits, want 40 (SHA-1) or 64 (SHA-256)", clipText(s, 80), len(t))
	}
	return t, nil
}

func clipText(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}

// X509Auth returns the authentication of a self-signed X.509 identity ("selfSigned"): the
// device presents a certificate whose SHA-1 or SHA-256 thumbprint is primary or secondary.
func X509Auth(primaryThumbprint, secondaryThumbprint string) Authentication {
	return Authentication{Type: AuthSelfSigned, X509Thumbprint: X509Thumbprint{PrimaryThumbprint: primaryThumbprint, SecondaryThumbprint: secondaryThumbprint}}
}

// CAAuth returns the authentication of an identity whose certificate is signed by a CA
// registered (and verified) on the hub ("certificateAuthority"); its common name must be the
// device ID, or "deviceId/moduleId" for a module (docs/iothub-behavior.md §1.24).
func CAAuth() Authentication { return Authentication{Type: AuthCertificateAuthority} }

// ParseAuthType reads an authentication type as the registry JSON spells it, in any case:
// "sas", "selfSigned", "certificateAuthority" or "none". "" is "".
func ParseAuthType(s string) (AuthType, error) {
	for _, t := range []AuthType{AuthSAS, AuthSelfSigned, AuthCertificateAuthority, AuthNone} {
		if strings.EqualFold(s, string(t)) {
			return t, nil
		}
	}
	if s == "" {
		return "", nil
	}
	return "", fmt.Errorf("authentication.type %q: want %s, %s, %s or %s", clipText(s, 40), AuthSAS, AuthSelfSigned, AuthCertificateAuthority, AuthNone)
}

// EffectiveType is the type the hub applies: Type when set, else selfSigned when thumbprints
// are given (the Node service SDK's samples send only x509Thumbprint), else sas.
func (a Authentication) EffectiveType() AuthType {
	if t, err := ParseAuthType(string(a.Type)); err == nil && t != "" {
		return t
	}
	if a.X509Thumbprint.PrimaryThumbprint != "" || a.X509Thumbprint.SecondaryThumbprint != "" {
		return AuthSelfSigned
	}
	return AuthSAS
}

// IsX509 reports whether the identity authenticates with a client certificate.
func (a Authentication) IsX509() bool {
	t := a.EffectiveType()
	return t == AuthSelfSigned || t == AuthCertificateAuthority
}
