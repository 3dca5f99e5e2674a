package certs

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rsa"
	"crypto/x509"
	"fmt"
	"io"
	"strings"
)

// KeyType is the algorithm and size of a generated key.
type KeyType string

// Key types. ECDSA P-256 is the default everywhere: small and fast, and every TLS stack of
// the Azure SDKs accepts it. RSA is what IoT Hub's own server certificates use.
const (
	ECDSAP256 KeyType = "ecdsa-p256"
	ECDSAP384 KeyType = "ecdsa-p384"
	RSA2048   KeyType = "rsa-2048"
	RSA4096   KeyType = "rsa-4096"
)

// KeyTypes lists the key types ParseKeyType accepts, in the order help texts show them.
var KeyTypes = []KeyType{ECDSAP256, ECDSAP384, RSA2048, RSA4096}

// ParseKeyType reads a key type: one of KeyTypes, or the short forms "ecdsa" (P-256) and
// "rsa" (2048 bits), in any case. "" is ECDSAP256.
func ParseKeyType(s string) (KeyType, error) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "", "ecdsa", "ec", string(ECDSAP256), "p256", "p-256":
		return ECDSAP256, nil
	case string(ECDSAP384), "p384", "p-384":
		return ECDSAP384, nil
	case "rsa", string(RSA2048):
		return RSA2048, nil
	case string(RSA4096):
		return RSA4096, nil
	}
	names := make([]string, len(KeyTypes))
	for i, k := range KeyTypes {
		names[i] = string(k)
	}
	return "", fmt.Errorf("key type %q: want %s (or ecdsa, rsa)", s, strings.Join(names, ", "))
}

// NewKey generates a key of type t ("" is ECDSAP256). rand is used for RSA only; nil means
// crypto/rand (since Go 1.26 ECDSA key generation always uses a secure source).
func NewKey(t KeyType, rand io.Reader) (crypto.Signer, error) {
	rand = orCryptoRand(rand)
	var k crypto.Signer
	var err error
	switch t {
	case "", ECDSAP256:
		k, err = ecdsa.GenerateKey(elliptic.P256(), rand)
	case ECDSAP384:
		k, err = ecdsa.GenerateKey(elliptic.P384(), rand)
	case RSA2048:
		k, err = rsa.GenerateKey(rand, 2048)
	case RSA4096:
		k, err = rsa.GenerateKey(rand, 4096)
	default:
		return nil, fmt.Errorf("certs: unknown key type %q", t)
	}
	if err != nil {
		return nil, fmt.Errorf("certs: generating %s key: %w", t, err)
	}
	return k, nil
}

// KeyPEM encodes a private key as PEM "PRIVATE KEY" (PKCS #8), the form openssl, mosquitto,
// Python's ssl and Node's tls all read.
func KeyPEM(k crypto.Signer) ([]byte, error) {
	der, err := x509.MarshalPKCS8PrivateKey(k)
	if err != nil {
		return nil, fmt.Errorf("certs: encoding key: %w", err)
	}
	return encodePEM("PRIVATE KEY", der), nil
}

// ParseKey reads a PEM private key: PKCS #8, SEC 1 ("EC PRIVATE KEY") or PKCS #1 ("RSA
// PRIVATE KEY"). Errors wrap ErrNotPEM or ErrBadKey.
func ParseKey(data []byte) (crypto.Signer, error) { return parseKey(data) }
