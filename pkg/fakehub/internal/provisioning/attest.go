package provisioning

import (
	"crypto/x509"
	"encoding/base64"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/hubkit/hubkit/pkg/iothub"
	"github.com/hubkit/hubkit/pkg/iothub/dps"
	"github.com/hubkit/hubkit/pkg/sas"
)

// Reasons of DPS refusals beyond the pkg/sas verdicts (which cover the token itself:
// malformed, expired, signature-mismatch, scope-mismatch, unknown-policy, no-password,
// unknown-identity for a registration ID no enrollment admits). pkg/fakehub exports them.
const (
	// ReasonEnrollmentDisabled: the enrollment (or group) admitting the device is disabled;
	// the registration ends with status "disabled".
	ReasonEnrollmentDisabled sas.Reason = "enrollment-disabled"
	// ReasonAttestationMismatch: the device presented another kind of credential than its
	// enrollment's attestation (a SAS token for an X.509 or TPM enrollment).
	ReasonAttestationMismatch sas.Reason = "attestation-mismatch"
	// ReasonTPMUnsupported: TPM attestation, which fakehub does not implement (and DPS does
	// not offer over MQTT, docs/iothub-behavior.md §7.7).
	ReasonTPMUnsupported sas.Reason = "tpm-unsupported"
	// ReasonX509Unsupported: an X.509 attestation shape fakehub's DPS does not offer
	// (caReferences: ErrX509CAReferences).
	ReasonX509Unsupported sas.Reason = "x509-unsupported"
	// ReasonBadRequest: a register or poll request DPS cannot parse or validate (400).
	ReasonBadRequest sas.Reason = "dps-bad-request"
	// ReasonThrottled: over DPS's rate limits (429, with retry-after).
	ReasonThrottled sas.Reason = "dps-throttled"
)

// Errors for the attestation kinds fakehub refuses, wrapped by the service API's and the
// registration's refusals.
var (
	ErrTPMUnsupported = errors.New("fakehub: TPM attestation is not supported (DPS does not offer it over MQTT either)")
)

// Credential is what a registering device presented.
type Credential struct {
	RegistrationID string
	// Token is the SAS token of a symmetric-key device (MQTT password, HTTPS Authorization).
	Token *sas.Token
	// Certificates is the TLS client certificate chain (leaf first) of an X.509 device,
	// judged when no Token is given (x509.go).
	Certificates []*x509.Certificate
	// TPM is set when the request carried a TPM attestation.
	TPM bool
}

// Attested is a successful attestation: the enrollment that admits the device and what its
// hub device authenticates with.
type Attested struct {
	RegistrationID string // as the device sent it
	Type           dps.AttestationType
	Enrollment     *dps.Enrollment      // an individual enrollment (a copy), or
	Group          *dps.EnrollmentGroup // the group (a copy)
	Keys           iothub.SymmetricKey  // symmetric key: the enrollment's keys, or the derived ones
	// X.509: the device's certificate; for an individual enrollment the SHA-256 thumbprints
	// of its enrolled certificates, for a group the signing certificate the chain leads to.
	Certificate *x509.Certificate
	Thumbprints iothub.X509Thumbprint
	SigningCA   *x509.Certificate
}

// Disabled reports whether the admitting enrollment is disabled.
func (a *Attested) Disabled() bool {
	if a.Enrollment != nil {
		return a.Enrollment.ProvisioningStatus == dps.ProvisioningDisabled
	}
	return a.Group.ProvisioningStatus == dps.ProvisioningDisabled
}

// DeviceID is the device ID the hub device gets: the individual enrollment's deviceId, else
// the registration ID.
func (a *Attested) DeviceID() string {
	if a.Enrollment != nil && a.Enrollment.DeviceID != "" {
		return a.Enrollment.DeviceID
	}
	return a.RegistrationID
}

// Refusal is a failed attestation or request: a pkg/sas style verdict and the DPS error the
// device is answered with.
type Refusal struct {
	Reason sas.Reason
	Detail string
	Hints  []string
	Code   dps.ErrorCode
}

func (r *Refusal) Error() string { return string(r.Reason) + ": " + r.Detail }

// DPSError is the answer the device gets: real DPS says only "Unauthorized" for a refused
// credential; hubkit adds its diagnosis in info and headers.
func (r *Refusal) DPSError() *dps.Error {
	msg := r.Detail
	if r.Code == dps.CodeUnauthorized {
		msg = "Unauthorized; hubkit: " + r.Detail
	}
	return &dps.Error{Code: r.Code, Message: msg, Reason: string(r.Reason), Hints: r.Hints}
}

func refuse(code dps.ErrorCode, reason sas.Reason, detail string, hints ...string) *Refusal {
	return &Refusal{Code: code, Reason: reason, Detail: detail, Hints: hints}
}

func unauthorized(reason sas.Reason, detail string, hints ...string) *Refusal {
	return refuse(dps.CodeUnauthorized, reason, detail, hints...)
}

// Attest checks what the device presented against the enrollments, in DPS's order: an
// individual enrollment for the registration ID first, then the enrollment groups
// (docs/iothub-behavior.md §7.3).
func (e *Engine) Attest(c Credential) (*Attested, *Refusal) {
	switch {
	case c.TPM:
		return nil, refuse(dps.CodeBadRequest, ReasonTPMUnsupported, "the request carries a TPM attestation: "+ErrTPMUnsupported.Error(),
			"use a symmetric-key enrollment (individual or group)")
	case c.Token == nil && len(c.Certificates) > 0:
		enr, groups := e.snapshot(c.RegistrationID)
		return e.attestX509(c, enr, groups)
	case c.Token == nil:
		return nil, unauthorized(sas.ReasonNoPassword, "no SAS token: a symmetric-key device signs SharedAccessSignature sr={idScope}%2Fregistrations%2F{registrationId}&sig=...&se=...&skn=registration",
			"mint one with: sastool gen --uri "+sas.DPSResource(e.opts.IDScope, c.RegistrationID)+" --key KEY --policy registration")
	}
	tok := *c.Token
	res, err := sas.ParseResource(tok.Resource)
	if err != nil {
		return nil, unauthorized(sas.ReasonMalformed, err.Error())
	}
	want := sas.DPSResource(e.opts.IDScope, c.RegistrationID)
	if res.Kind != sas.ResourceDPS {
		hints := []string{"a DPS token's resource is " + want + " (ID scope, /registrations/, registration ID)"}
		if res.Host != "" {
			hints = append(hints, "it names host "+res.Host+": an IoT Hub resource; DPS tokens name the ID scope, not a host")
		}
		return nil, unauthorized(sas.ReasonScopeMismatch, fmt.Sprintf("token is for %q, not a DPS registration resource", res.Plain), hints...)
	}
	if !strings.EqualFold(res.IDScope, e.opts.IDScope) {
		return nil, unauthorized(sas.ReasonScopeMismatch, fmt.Sprintf("token is for ID scope %q but this DPS is %q", res.IDScope, e.opts.IDScope),
			"the ID scope is on the DPS overview page (fakehub: --dps-id-scope); sign "+want)
	}
	if !strings.EqualFold(res.RegistrationID, c.RegistrationID) {
		return nil, unauthorized(sas.ReasonScopeMismatch, fmt.Sprintf("token is for registration %q but the request is for %q", res.RegistrationID, c.RegistrationID))
	}
	if tok.KeyName != dps.RegistrationKeyName {
		detail := fmt.Sprintf("token has skn=%q; a device registration token has skn=%s", tok.KeyName, dps.RegistrationKeyName)
		if tok.KeyName == "" {
			detail = "token has no skn; a device registration token has skn=" + dps.RegistrationKeyName
		}
		return nil, unauthorized(sas.ReasonUnknownPolicy, detail, "sign with --policy registration (the SDKs' SymmetricKeySecurityClient does)")
	}

	enr, groups := e.snapshot(c.RegistrationID)

	base := []sas.VerifyOption{sas.WithSkew(e.opts.Skew), sas.WithExactAudience(want), sas.WithCaseInsensitiveIDs()}
	if enr != nil {
		switch enr.Attestation.Type {
		case dps.AttestationSymmetricKey:
		case dps.AttestationTPM:
			return nil, refuse(dps.CodeUnauthorized, ReasonTPMUnsupported, "individual enrollment "+enr.RegistrationID+" uses TPM attestation: "+ErrTPMUnsupported.Error())
		default:
			return nil, unauthorized(ReasonAttestationMismatch, fmt.Sprintf("individual enrollment %s uses %s attestation, but the device presented a SAS token", enr.RegistrationID, enr.Attestation.Type),
				"a SAS token attests a symmetricKey enrollment; an X.509 device sends its certificate in the TLS handshake and no password")
		}
		keys := *enr.Attestation.SymmetricKey
		if err := verifyKeys(tok, keys, e.opts.Now(), append(base, sas.WithoutDiagnosis())); err != nil {
			if errors.Is(err, sas.ErrSignature) {
				err = verifyKeys(tok, keys, e.opts.Now(), append(base, sas.WithSuspectKeys(groupSuspects(groups, c.RegistrationID)...)))
			}
			reason, detail, hints := verdict(err)
			return nil, unauthorized(reason, "individual enrollment "+enr.RegistrationID+": "+detail, hints...)
		}
		return &Attested{RegistrationID: c.RegistrationID, Type: dps.AttestationSymmetricKey, Enrollment: enr, Keys: keys}, nil
	}
	var expired *Refusal
	for _, g := range groups {
		if g.Attestation.Type != dps.AttestationSymmetricKey {
			continue
		}
		keys, ok := derivedKeys(*g.Attestation.SymmetricKey, c.RegistrationID)
		if !ok {
			continue
		}
		err := verifyKeys(tok, keys, e.opts.Now(), append(base, sas.WithoutDiagnosis()))
		switch {
		case err == nil:
			return &Attested{RegistrationID: c.RegistrationID, Type: dps.AttestationSymmetricKey, Group: g, Keys: keys}, nil
		case errors.Is(err, sas.ErrExpired):
			reason, detail, hints := verdict(err)
			expired = unauthorized(reason, "enrollment group "+g.EnrollmentGroupID+": "+detail, hints...)
		}
	}
	if expired != nil {
		return nil, expired
	}
	hints := diagnoseUnknown(tok, groups, c.RegistrationID)
	return nil, unauthorized(sas.ReasonUnknownIdentity,
		fmt.Sprintf("no individual enrollment for registration ID %q, and no symmetric-key enrollment group's derived key signs the token (%d groups tried)", c.RegistrationID, countSymmetric(groups)),
		hints...)
}

// snapshot returns copies of the individual enrollment for registrationID (nil if none)
// and of the groups, sorted by ID.
func (e *Engine) snapshot(registrationID string) (*dps.Enrollment, []*dps.EnrollmentGroup) {
	e.mu.Lock()
	enr := copyEnrollment(e.enrollments[regKey(registrationID)])
	groups := make([]*dps.EnrollmentGroup, 0, len(e.groups))
	for _, g := range e.groups {
		groups = append(groups, copyGroup(g))
	}
	e.mu.Unlock()
	slices.SortFunc(groups, func(a, b *dps.EnrollmentGroup) int { return strings.Compare(a.EnrollmentGroupID, b.EnrollmentGroupID) })
	return enr, groups
}

// verifyKeys checks tok against a key pair.
func verifyKeys(tok sas.Token, k iothub.SymmetricKey, now time.Time, opts []sas.VerifyOption) error {
	primary, err := sas.DecodeKey(k.PrimaryKey)
	if err != nil {
		return sas.Reject(sas.ReasonSignatureMismatch, "the enrollment has no usable symmetric key")
	}
	opts = slices.Clip(opts)
	if sec, err := sas.DecodeKey(k.SecondaryKey); err == nil {
		opts = append(opts, sas.WithSecondaryKey(sec))
	}
	return tok.Verify(primary, now, opts...)
}

func verdict(err error) (sas.Reason, string, []string) {
	var rj *sas.Rejection
	if errors.As(err, &rj) {
		return rj.Reason, rj.Detail, rj.Hints
	}
	return sas.ReasonMalformed, err.Error(), nil
}

// derivedKeys returns a group member's device keys: the group keys, each derived for
// registrationID (docs/iothub-behavior.md §7.3).
func derivedKeys(group iothub.SymmetricKey, registrationID string) (iothub.SymmetricKey, bool) {
	p, err := sas.DecodeKey(group.PrimaryKey)
	if err != nil {
		return iothub.SymmetricKey{}, false
	}
	out := iothub.SymmetricKey{PrimaryKey: encodeKey(sas.DeriveDeviceKey(p, registrationID))}
	if s, err := sas.DecodeKey(group.SecondaryKey); err == nil {
		out.SecondaryKey = encodeKey(sas.DeriveDeviceKey(s, registrationID))
	}
	return out, true
}

func encodeKey(b []byte) string { return base64.StdEncoding.EncodeToString(b) }

func countSymmetric(groups []*dps.EnrollmentGroup) int {
	n := 0
	for _, g := range groups {
		if g.Attestation.Type == dps.AttestationSymmetricKey {
			n++
		}
	}
	return n
}

// groupSuspects are the keys a device of a group might have signed with by mistake: the
// group keys themselves, and the keys derived for the registration ID in another case.
func groupSuspects(groups []*dps.EnrollmentGroup, registrationID string) []sas.NamedKey {
	var out []sas.NamedKey
	for _, g := range groups {
		if g.Attestation.Type != dps.AttestationSymmetricKey {
			continue
		}
		for i, k := range []string{g.Attestation.SymmetricKey.PrimaryKey, g.Attestation.SymmetricKey.SecondaryKey} {
			which := [2]string{"primary", "secondary"}[i]
			b, err := sas.DecodeKey(k)
			if err != nil {
				continue
			}
			out = append(out, sas.NamedKey{Name: fmt.Sprintf("enrollment group %s %s key itself (a device signs with the key derived from it: sastool derive)", g.EnrollmentGroupID, which), Key: b})
			for _, other := range []string{strings.ToLower(registrationID), strings.ToUpper(registrationID)} {
				if other != registrationID {
					out = append(out, sas.NamedKey{Name: fmt.Sprintf("key of group %s derived for %q (derive for the registration ID exactly as the device sends it)", g.EnrollmentGroupID, other),
						Key: sas.DeriveDeviceKey(b, other)})
				}
			}
		}
	}
	if len(out) > sas.MaxSuspectKeys {
		out = out[:sas.MaxSuspectKeys]
	}
	return out
}

// diagnoseUnknown explains a token no enrollment admits.
func diagnoseUnknown(tok sas.Token, groups []*dps.EnrollmentGroup, registrationID string) []string {
	for _, s := range groupSuspects(groups, registrationID) {
		if tok.Verify(s.Key, tok.ExpiresAt(), sas.WithoutDiagnosis()) == nil { // the signature alone
			return []string{"the token was signed with the " + s.Name}
		}
	}
	hints := []string{"create an individual enrollment for " + registrationID + " or an enrollment group whose key the device's key is derived from (fakehub dps enrollments add / groups add)"}
	if countSymmetric(groups) > 0 {
		hints = append(hints, "a group device's key is base64(HMAC-SHA256(group key, registration ID)): sastool derive --group-key KEY --registration-id "+registrationID)
	}
	return hints
}
