package fakehub

import (
	"fmt"
	"reflect"
	"strings"

	"github.com/hubkit/hubkit/pkg/iothub"
	"github.com/hubkit/hubkit/pkg/sas"
)

// Profile is a named set of Quirks for the rules on which the anchors disagree
// (docs/iothub-behavior.md §14.4).
type Profile string

// The profiles.
const (
	// ProfileAzure (the default, also "") is what IoT Hub accepts: the zero Quirks.
	ProfileAzure Profile = "azure"
	// ProfileEdgeHub follows IoT Edge hub's exact rules: the token's host compared
	// ordinally (case-sensitive), an api-version required in the user name, and connections
	// re-authenticated when their identity's keys change (dropped if their token no longer
	// verifies).
	ProfileEdgeHub Profile = "edgehub"
	// ProfileStrict accepts what azure accepts, and records a warning (a Rejection with
	// Warning set, logged at WARN) for each thing Microsoft's documentation calls wrong.
	ProfileStrict Profile = "strict"
)

// Profiles lists the profiles.
func Profiles() []Profile { return []Profile{ProfileAzure, ProfileEdgeHub, ProfileStrict} }

// ParseProfile reads a profile name ("azure", "edgehub", "strict"; "" is azure).
func ParseProfile(s string) (Profile, error) {
	p := Profile(strings.ToLower(strings.TrimSpace(s)))
	if p == "" {
		return ProfileAzure, nil
	}
	for _, k := range Profiles() {
		if k == p {
			return p, nil
		}
	}
	return "", fmt.Errorf("unknown profile %q: want azure, edgehub or strict", s)
}

// Quirks returns the quirks the profile consists of. To run a profile without one of them,
// start from these, change the field, and pass them as Options.Quirks with no Profile.
func (p Profile) Quirks() Quirks {
	switch p {
	case ProfileEdgeHub:
		return Quirks{
			CaseSensitiveHostInSR: true, // DeviceScopeTokenAuthenticator.ValidateAudience: iothubHostName.Equals(hostName)
			RequireAPIVersion:     true, // MqttUsernameParser: api-version must not be empty (docs/iothub-behavior.md §1.12)
			DropOnKeyChange:       true, // ConnectionReauthenticator.HandleServiceIdentityUpdate
			ExactDeviceKeyScope:   true, // DeviceScopeTokenAuthenticator.ValidateAudience: {host}/devices/{id}[/modules/{mid}] exactly
		}
	case ProfileStrict:
		return Quirks{WarnDocumentedMistakes: true}
	}
	return Quirks{}
}

// applyProfile adds the profile's quirks to o.Quirks: a switch on in either is on, a
// number set in o.Quirks wins over the profile's.
func (o *Options) applyProfile() error {
	p, err := ParseProfile(string(o.Profile))
	if err != nil {
		return fmt.Errorf("fakehub: Options.Profile: %w", err)
	}
	o.Profile = p
	mergeQuirks(&o.Quirks, p.Quirks())
	return nil
}

// mergeQuirks adds the profile's quirks pq to q: a switch on in either is on; a number
// (a code, a duration) set in q wins over the profile's. Every field of Quirks is a bool or
// a number, so a new quirk joins the profiles without a line here.
func mergeQuirks(q *Quirks, pq Quirks) {
	dst, src := reflect.ValueOf(q).Elem(), reflect.ValueOf(pq)
	for i := range dst.NumField() {
		f := dst.Field(i)
		switch f.Kind() {
		case reflect.Bool:
			f.SetBool(f.Bool() || src.Field(i).Bool())
		case reflect.Int, reflect.Int64, reflect.Uint8:
			if f.IsZero() {
				f.Set(src.Field(i))
			}
		default:
			panic("fakehub: Quirks." + dst.Type().Field(i).Name + " is neither a switch nor a number")
		}
	}
}

// Profile returns the hub's profile.
func (s *Server) Profile() Profile { return s.opts.Profile }

// Reasons of the strict profile's warnings: things the hub accepts but Microsoft's
// documentation calls wrong. Each is recorded with Warning set; nothing is refused.
const (
	// WarnSRLowerCaseEscapes: sr written with lower-case escapes ("%2f"). RFC 3986 §2.1 asks
	// producers for upper-case hex digits, the MQTT page and every SDK write %2F; only the
	// SAS page's table asks for lower case, so tools that compare sr as text disagree.
	WarnSRLowerCaseEscapes sas.Reason = "lint-sr-lowercase-escapes"
	// WarnSRNotEncoded: sr sent without percent-encoding ("host/devices/dev"); the SAS page
	// calls for the URL-encoded resource URI.
	WarnSRNotEncoded sas.Reason = "lint-sr-not-encoded"
	// WarnSRHubScoped: a device connected with a token whose sr is the hub or {host}/devices;
	// the SAS page: "SAS tokens granted to devices must be scoped to an individual device".
	WarnSRHubScoped sas.Reason = "lint-sr-hub-scoped"
	// WarnNoAPIVersion: a user name without api-version; the MQTT page warns that leaving it
	// out "could cause unexpected behaviors".
	WarnNoAPIVersion sas.Reason = "lint-no-api-version"
	// WarnLegacyUserName: the old user name without '?' before api-version.
	WarnLegacyUserName sas.Reason = "lint-legacy-username"
)

// lint returns the strict profile's warnings for an accepted CONNECT.
func lint(un iothub.UserName, tok sas.Token, res sas.Resource) []iothub.Rejection {
	var out []iothub.Rejection
	add := func(r sas.Reason, detail string) {
		out = append(out, iothub.Rejection{Reason: r, Detail: detail, Warning: true})
	}
	raw := tok.Resource
	switch {
	case !strings.Contains(raw, "%") && strings.Contains(raw, "/"):
		add(WarnSRNotEncoded, fmt.Sprintf("sr %q is not percent-encoded; the SAS page asks for the URL-encoded resource URI (%s)", raw, sas.EncodeResource(res.Plain)))
	case strings.Contains(raw, "%2f"):
		add(WarnSRLowerCaseEscapes, fmt.Sprintf("sr %q uses lower-case %%2f escapes; RFC 3986 §2.1 and every Azure SDK write %%2F (the hub accepts both, text comparisons do not)", raw))
	}
	if res.Kind == sas.ResourceHub || res.Kind == sas.ResourceDevices {
		add(WarnSRHubScoped, fmt.Sprintf("the device connected with a token for %q; the SAS page says tokens granted to devices must be scoped to an individual device", res.Plain))
	}
	switch {
	case un.APIVersion == "":
		add(WarnNoAPIVersion, "the user name has no api-version; the MQTT page warns that leaving it out could cause unexpected behaviors (e.g. a reported PATCH answered 400)")
	case un.Form == iothub.FormLegacyNoQuestionMark:
		add(WarnLegacyUserName, "the user name has no '?' before api-version (an old form); write {host}/{deviceId}/?api-version=2021-04-12")
	}
	return out
}

// reasonKeysChanged tells registryChanged that an identity's keys changed (not a reason
// for closing by itself: see keysChanged).
const reasonKeysChanged sas.Reason = "keys-changed"

// keysChanged handles a key rotation of id: with Quirks.DropOnKeyChange the live
// connection whose token no longer verifies under the new keys is closed (401003); without
// it, it stays until its token expires (docs/iothub-behavior.md §14.3).
func (s *Server) keysChanged(id iothub.Identity) {
	ss := s.sessions.lookup(id)
	if ss == nil || ss.cl.Closed() {
		return
	}
	if ss.token.KeyName != "" {
		return // signed with a policy key, which did not change
	}
	if !s.opts.Quirks.DropOnKeyChange {
		s.log.Info("keys changed; the live connection stays until its token expires", append(idAttrs(id), "tokenExpiry", ss.expiry.UTC().Format("2006-01-02T15:04:05Z"))...)
		return
	}
	cred, ok := s.opts.Registry.lookup(id)
	if ok && verify(ss.token, cred.keys, s.opts.Now(), []sas.VerifyOption{sas.WithSkew(s.opts.TokenExpiryGrace), sas.WithoutDiagnosis()}) == nil {
		return // still signed with one of the keys (e.g. the one that was kept)
	}
	s.hubCloseCode(ss, ReasonKeyRotated, iothub.CodeIotHubUnauthorized,
		"the identity's keys changed and the connection's token no longer verifies (Quirks.DropOnKeyChange, IoT Edge hub's re-authentication); reconnect with a token signed by a current key")
}
