package sas

import (
	"errors"
	"fmt"
)

// Sentinel errors. Every error returned by this package wraps exactly one of
// them; branch with errors.Is.
var (
	// ErrMalformed means a token could not be parsed (see *ParseError).
	ErrMalformed = errors.New("sas: malformed token")
	// ErrExpired means the token's se is further in the past than the skew allowance.
	ErrExpired = errors.New("sas: token expired")
	// ErrSignature means sig is not the HMAC of the token with any accepted key.
	ErrSignature = errors.New("sas: signature mismatch")
	// ErrScope means the token's sr does not cover the resource being accessed.
	ErrScope = errors.New("sas: token scope does not cover the resource")
	// ErrHost means the host in the token's sr is not the host being accessed.
	ErrHost = errors.New("sas: host mismatch")
	// ErrUnknownIdentity means the device, module or registration does not exist.
	ErrUnknownIdentity = errors.New("sas: unknown identity")
	// ErrDisabled means the identity exists but is disabled.
	ErrDisabled = errors.New("sas: identity disabled")
	// ErrClientID means the MQTT client ID does not match the identity.
	ErrClientID = errors.New("sas: client id mismatch")
	// ErrUserName means the MQTT user name is malformed or names another identity.
	ErrUserName = errors.New("sas: user name rejected")
	// ErrPolicy means the shared access policy is unknown or lacks a permission.
	ErrPolicy = errors.New("sas: policy rejected")
	// ErrNoPassword means the client sent no password (no token).
	ErrNoPassword = errors.New("sas: no password")
	// ErrKey means a key is not usable (for example not standard base64).
	ErrKey = errors.New("sas: bad key")
	// ErrEmptyKey is returned by Token.Verify when given an empty key: an
	// HMAC under an empty key is computable by anyone, so it never
	// authorizes. It wraps ErrKey; it is a configuration error, not a
	// *Rejection of the token.
	ErrEmptyKey = fmt.Errorf("%w: empty key (Verify needs the identity's or the policy's key)", ErrKey)
	// ErrConnectionString means a connection string could not be parsed or is
	// incomplete or contradictory.
	ErrConnectionString = errors.New("sas: bad connection string")
)

// ParseError describes why a token could not be parsed. It wraps ErrMalformed.
// It never contains the signature or the whole token.
type ParseError struct {
	Field   string // "sr", "sig", "se", "skn", the unknown field's name, or "" for the prefix/structure
	Problem string // what is wrong, e.g. "missing", "duplicated", "not a decimal number"
}

// Error returns "sas: malformed token: field <field>: <problem>".
func (e *ParseError) Error() string {
	if e.Field == "" {
		return "sas: malformed token: " + e.Problem
	}
	return fmt.Sprintf("sas: malformed token: field %s: %s", e.Field, e.Problem)
}

// Unwrap returns ErrMalformed.
func (e *ParseError) Unwrap() error { return ErrMalformed }

// Reason is a stable, machine-readable code for why a token or a connection
// was refused. The values are part of the API (printed by sastool and
// fakehub); they never change meaning.
type Reason string

// Reasons. Verify produces the first five; the others are for callers
// (fakehub) that check identities, client IDs, user names and policies, via
// Reject.
const (
	ReasonMalformed         Reason = "malformed"
	ReasonExpired           Reason = "expired"
	ReasonSignatureMismatch Reason = "signature-mismatch"
	ReasonScopeMismatch     Reason = "scope-mismatch"
	ReasonHostMismatch      Reason = "host-mismatch"
	ReasonUnknownIdentity   Reason = "unknown-identity" // device/module not in the registry
	ReasonDisabled          Reason = "identity-disabled"
	ReasonClientIDMismatch  Reason = "client-id-mismatch"
	ReasonUserNameMalformed Reason = "username-malformed"
	ReasonUserNameMismatch  Reason = "username-mismatch"
	ReasonUnknownPolicy     Reason = "unknown-policy"
	ReasonPolicyPermission  Reason = "policy-lacks-permission" // e.g. registryRead has no DeviceConnect
	ReasonNoPassword        Reason = "no-password"
)

// Err returns the sentinel error for r (ErrMalformed for an unknown reason).
func (r Reason) Err() error {
	switch r {
	case ReasonExpired:
		return ErrExpired
	case ReasonSignatureMismatch:
		return ErrSignature
	case ReasonScopeMismatch:
		return ErrScope
	case ReasonHostMismatch:
		return ErrHost
	case ReasonUnknownIdentity:
		return ErrUnknownIdentity
	case ReasonDisabled:
		return ErrDisabled
	case ReasonClientIDMismatch:
		return ErrClientID
	case ReasonUserNameMalformed, ReasonUserNameMismatch:
		return ErrUserName
	case ReasonUnknownPolicy, ReasonPolicyPermission:
		return ErrPolicy
	case ReasonNoPassword:
		return ErrNoPassword
	default:
		return ErrMalformed
	}
}

// Rejection is the verdict on a refused token or connection. Detail and
// Hints are human sentences without secrets.
type Rejection struct {
	Reason Reason
	Detail string   // one human sentence, e.g. "token expired at 2030-01-01T00:00:00Z, 3h0m0s ago (skew allowance 5m0s)"
	Hints  []string // the differential diagnosis, most likely first
}

// Reject builds a Rejection; callers with identity-level reasons (fakehub)
// use it so that every verdict has the same shape.
func Reject(reason Reason, detail string, hints ...string) *Rejection {
	return &Rejection{Reason: reason, Detail: detail, Hints: hints}
}

// Error returns "sas: <reason>: <detail>".
func (r *Rejection) Error() string {
	if r.Detail == "" {
		return "sas: " + string(r.Reason)
	}
	return "sas: " + string(r.Reason) + ": " + r.Detail
}

// Unwrap returns the sentinel for r.Reason (see Reason.Err).
func (r *Rejection) Unwrap() error { return r.Reason.Err() }
