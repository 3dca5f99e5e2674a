package main

import (
	"encoding/base64"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/hubkit/hubkit/internal/cli"
	"github.com/hubkit/hubkit/pkg/sas"
)

type decodeOptions struct {
	now  timeValue
	json bool
}

const decodeLong = `Show what a SAS token says, without a key: its resource (decoded, and what kind of
identity it scopes: device, module, every device, whole hub, DPS registration), the policy
(skn), the expiry in UTC and in local time (TZ), and how long until (or since) it expires,
relative to --now. Oddities that make the hub refuse a token are listed as notes: a '+' left
unescaped in sig, "/module/" for "/modules/", a signature that is not an HMAC-SHA256.

The token is the one argument ("-" reads it from stdin: tokens are secrets, keep them out of
shell history). decode does not check the signature: use "sastool verify" with the key.`

const decodeExample = `  sastool decode 'SharedAccessSignature sr=contoso.azure-devices.net%2Fdevices%2FMyDevice01&sig=dpCx63CkFH4MIH%2BL%2Bfb5N6i6du%2B8r74HUI3%2B7Gfg1Wc%3D&se=1893456000'

  # the same as JSON, from stdin
  echo "$TOKEN" | sastool decode --json -`

func newDecodeCmd(st *streams) *cobra.Command {
	o := &decodeOptions{}
	cmd := &cobra.Command{
		Use:     "decode TOKEN|-",
		Short:   "Show the fields, scope and expiry of a SAS token (no key needed)",
		Long:    decodeLong,
		Example: decodeExample,
		Args:    oneArg("a TOKEN"),
		RunE:    func(cmd *cobra.Command, args []string) error { return runDecode(st, o, args[0]) },
	}
	fs := cmd.Flags()
	fs.Var(&o.now, "now", "pretend the time is `TIME` (Unix seconds or RFC 3339)")
	fs.BoolVar(&o.json, "json", false, "print one JSON object")
	sortFlags(fs)
	return cmd
}

// decodeJSON is decode --json.
type decodeJSON struct {
	SR             string   `json:"sr"`
	Resource       string   `json:"resource"`
	Kind           string   `json:"kind"`
	Host           string   `json:"host,omitempty"`
	DeviceID       string   `json:"deviceId,omitempty"`
	ModuleID       string   `json:"moduleId,omitempty"`
	IDScope        string   `json:"idScope,omitempty"`
	RegistrationID string   `json:"registrationId,omitempty"`
	KeyName        string   `json:"keyName"`
	Signature      string   `json:"signature"`
	SE             int64    `json:"se"`
	Expiry         string   `json:"expiry"`
	Expired        bool     `json:"expired"`
	ExpiresIn      int64    `json:"expiresInSeconds"` // negative once expired
	Notes          []string `json:"notes"`
}

// parseToken reads a token argument ("-" = stdin) and parses it, turning parse errors into
// exit-1 errors with hints.
func (st *streams) parseToken(arg string) (sas.Token, error) {
	s, err := st.readArg(arg, "token")
	if err != nil {
		return sas.Token{}, err
	}
	s = strings.Trim(s, `"'`)
	t, err := sas.Parse(s)
	if err != nil {
		return t, cli.WithHints(cleanError{err}, tokenHints(s)...)
	}
	return t, nil
}

func tokenHints(s string) []string {
	l := strings.ToLower(s)
	switch {
	case strings.HasPrefix(l, "hostname=") || strings.HasPrefix(l, "endpoint="):
		return []string{"this is a connection string, not a token: try 'sastool connstr' (or 'sastool gen -c' to make a token from it)"}
	case strings.Contains(s, "SharedAccessSignature=SharedAccessSignature "):
		return []string{"this looks like a connection string with an embedded token: pass only the part after SharedAccessSignature="}
	case strings.Contains(s, "%20") && strings.HasPrefix(s, "SharedAccessSignature%20"):
		return []string{"the whole token was percent-encoded: the space after SharedAccessSignature must stay a space"}
	case strings.HasPrefix(l, "sharedaccesssignature") && strings.Count(s, " ") > 1:
		return []string{"quote the token: the shell split it, or it contains a space (a '+' in sig must be sent as %2B)"}
	}
	return nil
}

func runDecode(st *streams, o *decodeOptions, arg string) error {
	t, err := st.parseToken(arg)
	if err != nil {
		return err
	}
	now := clock(&o.now)
	ri, err := sas.ParseResource(t.Resource)
	if err != nil {
		return cleanError{err}
	}
	plain := ri.Plain
	host := ri.Authority() // with the port, as written
	if ri.Kind == sas.ResourceDPS {
		host = "" // the first segment is the ID scope
	}
	exp := t.ExpiresAt()
	notes := tokenNotes(t, ri, now)

	if o.json {
		return writeJSON(st.out, decodeJSON{
			SR: t.Resource, Resource: plain, Kind: string(ri.Kind), Host: host,
			DeviceID: ri.DeviceID, ModuleID: ri.ModuleID, IDScope: ri.IDScope, RegistrationID: ri.RegistrationID,
			KeyName: t.KeyName, Signature: t.Signature, SE: t.Expiry, Expiry: utc(exp),
			Expired: !exp.After(now), ExpiresIn: int64(exp.Sub(now) / time.Second), Notes: notes,
		})
	}
	skn := t.KeyName
	if skn == "" {
		skn = "(none: signed with the device's or module's own key)"
	}
	fields := []field{
		{"resource", plain},
		{"scope", describe(ri)},
		{"sr", t.Resource},
		{"sr encoding", srEncoding(t.Resource)},
		{"skn", skn},
		{"se", strconv.FormatInt(t.Expiry, 10)},
		{"expires", utc(exp) + " (local " + local(exp) + ")"},
		{"status", relative(exp, now) + " (now " + utc(now) + ")"},
		{"sig", t.Signature},
	}
	for _, n := range notes {
		fields = append(fields, field{"note", n})
	}
	return writeFields(st.out, fields)
}

// tokenNotes lists what is odd about a token, without a key.
func tokenNotes(t sas.Token, ri sas.Resource, now time.Time) []string {
	notes := []string{}
	if strings.Contains(t.Signature, " ") {
		notes = append(notes, "sig contains a space: a '+' in the base64 signature was not percent-encoded as %2B; the hub decodes it to a space and rejects the token")
	} else if b, err := base64.StdEncoding.DecodeString(t.Signature); err != nil {
		notes = append(notes, "sig is not standard base64")
	} else if len(b) != 32 {
		notes = append(notes, fmt.Sprintf("sig decodes to %d bytes, an HMAC-SHA256 has 32", len(b)))
	}
	if p := resourceProblem(ri); p != "" {
		notes = append(notes, "resource: "+p)
	}
	switch {
	case (ri.Kind == sas.ResourceHub || ri.Kind == sas.ResourceDevices) && t.KeyName == "":
		notes = append(notes, "a token for "+describe(ri)+" without skn is checked against a device's own key: it opens only that device (IoT Edge hub refuses this scope); a policy token names its policy in skn")
	case ri.Kind == sas.ResourceDPS && t.KeyName != "registration":
		notes = append(notes, "DPS expects skn=registration")
	}
	if t.ExpiryInMilliseconds() {
		notes = append(notes, "se looks like milliseconds; it must be seconds since 1970")
	}
	exp := t.ExpiresAt()
	if d := now.Sub(exp); d > 0 && d <= sas.DefaultSkew {
		notes = append(notes, fmt.Sprintf("expired, but within the %s clock-skew allowance: still accepted for %s", humanDuration(sas.DefaultSkew), humanDuration(sas.DefaultSkew-d)))
	}
	return notes
}
