package main

import (
	"errors"
	"fmt"
	"net/url"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/hubkit/hubkit/internal/cli"
	"github.com/hubkit/hubkit/pkg/sas"
)

type verifyOptions struct {
	uri          string
	cs           connStrFlag
	keys         keyFlags
	secondaryKey string
	suspects     []string
	now          timeValue
	skew         time.Duration
	json         bool
	exactScope   bool
}

const verifyLong = `Check a SAS token the way fakehub (and IoT Hub) does: the host and scope of sr against
the resource being accessed (--uri), the signature with the primary key and then the
secondary key, then the expiry with a clock-skew allowance (--skew, default 5m).

sr may cover the resource by whole path segments, as on IoT Hub: contoso.azure-devices.net
or contoso.azure-devices.net/devices covers contoso.azure-devices.net/devices/dev1, for a
policy token (with skn) and for a token signed with the device's own key alike (the key
binds it to that device). --exact-scope applies IoT Edge hub's rule instead: a token
without skn must name exactly the device's (or module's) resource.

When the signature does not match, verify tries the usual mistakes and names the one that
explains the token: sr re-cased or re-encoded after signing, a '+' left unescaped in sig,
the raw key text used as the HMAC key (the Event Hubs rule), milliseconds in se, a policy key
without skn, and any --suspect keys you name (another device's key, the hub's policy keys).
Name a policy's key "policy NAME" (--suspect 'policy iothubowner=KEY') and a token signed with
it but lacking skn=NAME is reported as such.

The key comes from --key, --key-file (- = stdin) or -c, else from $` + envKey + `.
-c CONNECTION_STRING also sets the expected resource (override it with --uri).
The token is the one argument ("-" = stdin).

Output: a valid token prints nothing on stdout and "sastool: valid: ..." on stderr.
A rejected token prints "sastool: rejected: <reason>: <detail>" and "sastool: hint: ..."
lines on stderr. Reasons are stable codes shared with fakehub: expired, signature-mismatch,
scope-mismatch, host-mismatch, malformed. --json adds the verdict as one object on stdout:
{"valid":false,"reason":"...","detail":"...","hints":[...]}, or {"valid":true,...}; a
malformed token gets {"valid":false,"reason":"malformed",...} and exit 1.

Exit codes: 0 valid, 1 malformed token or bad key, 2 usage, 3 rejected.`

const verifyExample = `  # is this token good for dev1 right now?
  sastool verify --key-file dev1.key --uri contoso.azure-devices.net/devices/dev1 "$TOKEN"

  # the same with the device's connection string; accept the secondary key too
  sastool verify -c "$DEV1_CS" --secondary-key-file dev1-secondary.key "$TOKEN"

  # was it signed with another device's key?
  sastool verify -c "$DEV1_CS" --suspect "device dev2=$DEV2_KEY" --suspect "policy iothubowner=$OWNER_KEY" "$TOKEN"

  # machine-readable verdict, fixed clock
  sastool verify --json --now 2030-01-01T00:00:00Z --key "$KEY" "$TOKEN"`

func newVerifyCmd(st *streams) *cobra.Command {
	o := &verifyOptions{}
	var secondaryFile string
	cmd := &cobra.Command{
		Use:     "verify [flags] TOKEN|-",
		Short:   "Check a SAS token against a key and explain a rejection (exit 3)",
		Long:    verifyLong,
		Example: verifyExample,
		Args:    oneArg("a TOKEN"),
		PreRunE: checkFlags(exclusive("key", "key-file"), exclusive("secondary-key", "secondary-key-file")),
		RunE: func(cmd *cobra.Command, args []string) error {
			if cmd.Flags().Changed("secondary-key-file") {
				s, err := st.readFile(secondaryFile, "secondary key file")
				if err != nil {
					return err
				}
				o.secondaryKey = s
			}
			return runVerify(st, o, args[0])
		},
	}
	fs := cmd.Flags()
	o.keys.register(fs, true)
	fs.StringVar(&o.secondaryKey, "secondary-key", "", "the identity's secondary `KEY`: a token signed with either key is valid")
	fs.StringVar(&secondaryFile, "secondary-key-file", "", "read the secondary key from `PATH`")
	o.cs.register(fs, "take the key and the expected resource from a `CONNECTION_STRING` (- = stdin)")
	fs.StringVar(&o.uri, "uri", "", "the plain `RESOURCE` being accessed, e.g. myhub.azure-devices.net/devices/dev1")
	fs.StringArrayVar(&o.suspects, "suspect", nil, "a `NAME=KEY` tried only to explain a mismatch (repeatable)")
	fs.Var(&o.now, "now", "pretend the time is `TIME` (Unix seconds or RFC 3339)")
	fs.DurationVar(&o.skew, "skew", sas.DefaultSkew, "clock-skew allowance after se")
	fs.BoolVar(&o.json, "json", false, "print the verdict as one JSON object on stdout")
	fs.BoolVar(&o.exactScope, "exact-scope", false, "a token without skn must name exactly the resource (IoT Edge hub's rule; IoT Hub accepts a prefix)")
	sortFlags(fs)
	return cmd
}

// verdictJSON is verify --json.
type verdictJSON struct {
	Valid    bool     `json:"valid"`
	Reason   string   `json:"reason,omitempty"`
	Detail   string   `json:"detail,omitempty"`
	Hints    []string `json:"hints,omitempty"`
	Resource string   `json:"resource,omitempty"`
	KeyName  string   `json:"keyName,omitempty"`
	Expiry   string   `json:"expiry,omitempty"`
	SignedBy string   `json:"signedBy,omitempty"` // "primary" or "secondary"
}

func runVerify(st *streams, o *verifyOptions, arg string) error {
	// Usage and key problems first: they are errors whatever the token says.
	cs, haveCS, err := o.cs.parse(st)
	if err != nil {
		return err
	}
	dialect := o.keys.dialect.d
	if haveCS && !o.cs.fs.Changed("dialect") {
		dialect = cs.Dialect
	}
	key, err := verifyKey(st, o, cs, haveCS, dialect)
	if err != nil {
		return err
	}
	var secondary []byte
	if o.secondaryKey != "" {
		if secondary, err = decodeKey(strings.TrimSpace(o.secondaryKey), "--secondary-key", dialect); err != nil {
			return err
		}
	}
	suspects, err := parseSuspects(o.suspects, dialect)
	if err != nil {
		return err
	}
	audience := ""
	switch {
	case o.uri != "":
		audience = o.uri
		if looksEncoded(audience) {
			if audience, err = url.PathUnescape(o.uri); err != nil {
				return cli.Usagef("--uri: bad percent-encoding")
			}
			fmt.Fprintf(st.err, "sastool: hint: --uri looks percent-encoded; comparing with the decoded %s\n", audience)
		}
	case haveCS:
		audience = cs.Resource()
	}

	t, err := st.parseToken(arg)
	if err != nil {
		if o.json && errors.Is(err, sas.ErrMalformed) {
			v := verdictJSON{Reason: string(sas.ReasonMalformed), Detail: trimPkg(err)}
			v.Hints = cli.Hints(err)
			if werr := writeJSON(st.out, v); werr != nil {
				return werr
			}
		}
		return err
	}

	now := clock(&o.now)
	opts := []sas.VerifyOption{sas.WithSkew(o.skew)}
	if audience != "" && t.KeyName == "" && o.exactScope {
		opts = append(opts, sas.WithExactAudience(audience)) // IoT Edge hub: a device or module key names exactly its identity
	} else if audience != "" {
		opts = append(opts, sas.WithAudience(audience)) // IoT Hub: sr may cover the resource by prefix
	}
	if len(suspects) > 0 {
		opts = append(opts, sas.WithSuspectKeys(suspects...))
	}
	all := opts
	if secondary != nil {
		all = append(append([]sas.VerifyOption(nil), opts...), sas.WithSecondaryKey(secondary))
	}
	verr := t.Verify(key, now, all...)
	if verr != nil {
		rej, ok := errors.AsType[*sas.Rejection](verr)
		if !ok {
			return verr
		}
		if o.json {
			if err := writeJSON(st.out, verdictJSON{Reason: string(rej.Reason), Detail: rej.Detail, Hints: rej.Hints}); err != nil {
				return err
			}
		}
		if rej.Reason == sas.ReasonMalformed {
			return cli.WithHints(fmt.Errorf("%s: %s", rej.Reason, rej.Detail), rej.Hints...)
		}
		return &rejectedError{rej: rej}
	}

	signedBy := "primary"
	if secondary != nil && t.Verify(key, now, append(opts, sas.WithoutDiagnosis())...) != nil {
		signedBy = "secondary"
	}
	ri, _ := sas.ParseResource(t.Resource) // Verify has accepted its encoding
	plain := ri.Plain
	exp := t.ExpiresAt()
	msg := fmt.Sprintf("sastool: valid: %s, signed with the %s key", describe(ri), signedBy)
	if t.KeyName != "" {
		msg += " of policy " + t.KeyName
	}
	msg += fmt.Sprintf(", %s (%s)", relative(exp, now), utc(exp))
	if now.After(exp) {
		msg += fmt.Sprintf(", accepted within the %s skew allowance", formatTTL(o.skew))
	}
	fmt.Fprintln(st.err, msg)
	if audience != "" && t.KeyName == "" && !o.exactScope && !sas.Covers(audience, plain) {
		fmt.Fprintf(st.err, "sastool: hint: sr %s is broader than %s: IoT Hub accepts that from the identity's own key, IoT Edge hub does not (--exact-scope)\n", plain, audience)
	}
	if o.json {
		return writeJSON(st.out, verdictJSON{Valid: true, Resource: plain, KeyName: t.KeyName, Expiry: utc(exp), SignedBy: signedBy})
	}
	return nil
}

func verifyKey(st *streams, o *verifyOptions, cs sas.ConnectionString, haveCS bool, d sas.Dialect) ([]byte, error) {
	text, source, ok, err := o.keys.text(st, !haveCS)
	if err != nil {
		return nil, err
	}
	if ok {
		return decodeKey(text, source, d)
	}
	if haveCS {
		if cs.SharedAccessKey == "" {
			return nil, cli.WithHints(fmt.Errorf("the connection string carries a SharedAccessSignature, not a key: there is nothing to verify with"),
				"pass the identity's key with --key-file (the token to check is the argument)")
		}
		return cs.Key()
	}
	return nil, cli.Usagef("no key: pass --key, --key-file or -c, or set $%s", envKey)
}

// parseSuspects reads --suspect NAME=KEY values. The name ends at the first '=' (base64 keys
// end in '=').
func parseSuspects(vals []string, d sas.Dialect) ([]sas.NamedKey, error) {
	var out []sas.NamedKey
	for _, v := range vals {
		name, text, ok := strings.Cut(v, "=")
		if !ok || name == "" || text == "" {
			return nil, cli.Usagef("--suspect wants NAME=KEY, e.g. --suspect dev2=$DEV2_KEY")
		}
		k, err := decodeKey(strings.TrimSpace(text), "--suspect "+name, d)
		if err != nil {
			return nil, err
		}
		out = append(out, sas.NamedKey{Name: name, Key: k})
	}
	if len(out) > sas.MaxSuspectKeys {
		return nil, cli.Usagef("at most %d --suspect keys", sas.MaxSuspectKeys)
	}
	return out, nil
}
