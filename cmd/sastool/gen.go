package main

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/hubkit/hubkit/internal/cli"
	"github.com/hubkit/hubkit/pkg/iothub"
	"github.com/hubkit/hubkit/pkg/sas"
)

type genOptions struct {
	uri                 string
	hub, device, module string
	policy              string
	cs                  connStrFlag
	keys                keyFlags
	ttl                 ttlValue
	expiry, now         timeValue
	json                bool
	secondary           bool
}

const genLong = `Print a SAS token for a resource, signed with a key. The token alone goes to stdout.

The resource (the token's sr) comes from, first to last:
  --uri RESOURCE                 the plain resource, e.g. myhub.azure-devices.net/devices/dev1;
                                 it is percent-encoded as the Azure SDKs do (upper-case %2F).
                                 An already encoded value (containing %2F) is used unchanged,
                                 with a hint: sastool never encodes twice
  --hub/--device/--module        builds HOST/devices/ID[/modules/MODULE]; --hub defaults to the
                                 HostName of -c (a policy connection string plus --device makes
                                 a device-scoped policy token)
  -c CONNECTION_STRING           the device, module or policy the connection string names

The key comes from --key, --key-file (- = stdin) or -c, else from $` + envKey + `.
--key or --key-file override the key of -c: a connection string carries one key, so to sign
with the secondary key, give it with --key-file. A key file may also hold the JSON that
'az iot hub device-identity show' (module-identity, policy show) prints: its primaryKey is
used, or its secondaryKey with --secondary. IoT Hub and DPS keys are base64 and decoded
before signing; --dialect servicebus signs with the raw key text (Event Hubs, Service Bus).

--policy sets skn (the shared access policy the key belongs to); it defaults to the
SharedAccessKeyName of -c. Device and module keys have no policy.

The token expires --ttl after now (default 1h; 90m, 7d and 3600 work) or at --expiry
(Unix seconds or RFC 3339). --now fixes "now" for reproducible output. An expiry in the past
is allowed (for negative tests) and noted on stderr.`

const genExample = `  # the known-answer vector of docs/iothub-behavior.md §2.6.1
  sastool gen --uri contoso.azure-devices.net/devices/MyDevice01 \
    --key AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8= --expiry 1893456000

  # a one-day token from a device connection string read from stdin
  sastool gen -c - --ttl 24h < device.cs

  # the same device, signed with its secondary key (a connection string carries only one)
  sastool gen -c - --key-file dev1-secondary.key < device.cs

  # signed with the secondary key of a device identity the Azure CLI printed
  az iot hub device-identity show -n myhub -d dev1 > dev1.json
  sastool gen --hub myhub.azure-devices.net --device dev1 --key-file dev1.json --secondary

  # a module token, key from a file
  sastool gen --hub contoso.azure-devices.net --device dev1 --module filter --key-file module.key

  # a device-scoped token signed with the "device" policy key
  sastool gen -c "HostName=contoso.azure-devices.net;SharedAccessKeyName=device;SharedAccessKey=$KEY" --device dev1

  # a DPS registration token (group key derived first)
  sastool gen --uri 0ne00000000/registrations/sn-42 --policy registration --key "$(sastool derive --group-key-file group.key --registration-id sn-42)"`

func newGenCmd(st *streams) *cobra.Command {
	o := &genOptions{ttl: ttlValue{d: time.Hour}}
	cmd := &cobra.Command{
		Use:     "gen [flags]",
		Short:   "Print a SAS token for a device, module, policy or DPS registration",
		Long:    genLong,
		Example: genExample,
		Args:    noArgs,
		PreRunE: checkFlags(exclusive("ttl", "expiry"), exclusive("uri", "hub"), exclusive("uri", "device"), exclusive("uri", "module")),
		RunE:    func(cmd *cobra.Command, _ []string) error { return runGen(st, o) },
	}
	fs := cmd.Flags()
	fs.StringVar(&o.uri, "uri", "", "plain `RESOURCE` to sign, e.g. myhub.azure-devices.net/devices/dev1")
	fs.StringVar(&o.hub, "hub", "", "hub `HOST` name (builds the resource with --device/--module)")
	fs.StringVar(&o.device, "device", "", "device `ID`")
	fs.StringVar(&o.module, "module", "", "module `ID` (needs --device)")
	o.cs.register(fs, "derive resource, key and policy from a `CONNECTION_STRING` (- = stdin)")
	o.keys.register(fs, true)
	fs.StringVar(&o.policy, "policy", "", "shared access policy `NAME` (skn), e.g. device, iothubowner, registration")
	fs.Var(&o.ttl, "ttl", "token lifetime from now (90m, 1h30m, 7d, 3600)")
	fs.Var(&o.expiry, "expiry", "absolute expiry: Unix seconds or RFC 3339")
	fs.Var(&o.now, "now", "pretend the time is `TIME` (Unix seconds or RFC 3339)")
	fs.BoolVar(&o.json, "json", false, "print one JSON object: token, sr, resource, expiry, keyName")
	fs.BoolVar(&o.secondary, "secondary", false, "sign with the secondaryKey of a key file holding identity or policy JSON")
	sortFlags(fs)
	return cmd
}

// genJSON is gen --json.
type genJSON struct {
	Token    string `json:"token"`
	SR       string `json:"sr"`
	Resource string `json:"resource"`
	Expiry   string `json:"expiry"`
	KeyName  string `json:"keyName"`
}

func runGen(st *streams, o *genOptions) error {
	cs, haveCS, err := o.cs.parse(st)
	if err != nil {
		return err
	}
	key, err := o.signingKey(st, cs, haveCS)
	if err != nil {
		return err
	}
	sr, plain, err := o.resource(st, cs, haveCS)
	if err != nil {
		return err
	}
	keyName := o.policy
	if haveCS && !o.cs.fs.Changed("policy") {
		keyName = cs.SharedAccessKeyName
	}
	now := clock(&o.now)
	expiry := now.Add(o.ttl.d)
	if o.expiry.set {
		expiry = o.expiry.t
	}
	tok := sas.Sign(sr, keyName, key, expiry)

	ri := sas.ParsePlainResource(plain)
	st.genHints(ri, keyName, tok.ExpiresAt(), now)

	if o.json {
		return writeJSON(st.out, genJSON{Token: tok.String(), SR: sr, Resource: plain, Expiry: utc(tok.ExpiresAt()), KeyName: keyName})
	}
	_, err = fmt.Fprintln(st.out, tok.String())
	return err
}

// signingKey picks the key: --key/--key-file, then -c, then $HUBKIT_SAS_KEY.
func (o *genOptions) signingKey(st *streams, cs sas.ConnectionString, haveCS bool) ([]byte, error) {
	dialect := o.keys.dialect.d
	if haveCS && !o.keys.fs.Changed("dialect") {
		dialect = cs.Dialect
	}
	text, source, ok, err := o.keys.text(st, !haveCS)
	if err != nil {
		return nil, err
	}
	if ok {
		if text, source, err = pickKey(text, source, o.secondary); err != nil {
			return nil, err
		}
		return decodeKey(text, source, dialect)
	}
	if o.secondary {
		return nil, cli.Usagef("--secondary needs --key-file with identity or policy JSON (a connection string carries one key)")
	}
	if haveCS {
		if cs.X509 {
			return nil, cli.WithHints(errX509NoKey, x509Hint)
		}
		if cs.SharedAccessKey == "" {
			return nil, cli.WithHints(fmt.Errorf("the connection string has a SharedAccessSignature, not a key: there is nothing to sign with"),
				"pass the device key with --key-file to sign a new token, or inspect the embedded one with 'sastool decode'")
		}
		return cs.Key()
	}
	return nil, cli.Usagef("no key: pass --key, --key-file or -c, or set $%s", envKey)
}

// resource returns the wire sr and the plain resource it encodes.
func (o *genOptions) resource(st *streams, cs sas.ConnectionString, haveCS bool) (sr, plain string, err error) {
	switch {
	case o.uri != "":
		if looksEncoded(o.uri) {
			fmt.Fprintf(st.err, "sastool: hint: --uri %s looks percent-encoded already; using it as sr unchanged (give the plain resource to let sastool encode it)\n", o.uri)
			r, err := sas.ParseResource(o.uri)
			if err != nil {
				return "", "", cli.Usage(fmt.Errorf("--uri: %s", trimPkg(err)))
			}
			return o.uri, r.Plain, nil
		}
		return sas.EncodeResource(o.uri), o.uri, nil
	case o.hub != "" || o.device != "" || o.module != "":
		host, device := o.hub, o.device
		if host == "" && haveCS {
			host = cs.HostName
		}
		if device == "" && o.module != "" && haveCS {
			device = cs.DeviceID // -c DEVICE_CS --module m: a module of that device
		}
		switch {
		case host == "":
			return "", "", cli.Usagef("--device and --module need --hub (or -c for the host name)")
		case o.module != "" && device == "":
			return "", "", cli.Usagef("--module needs --device")
		case o.module != "":
			plain = sas.ModuleResource(host, device, o.module)
		case device != "":
			plain = sas.DeviceResource(host, device)
		default:
			plain = sas.HubResource(host)
		}
		return sas.EncodeResource(plain), plain, nil
	case haveCS:
		plain = cs.Resource()
		return sas.EncodeResource(plain), plain, nil
	}
	return "", "", cli.Usagef("no resource: pass --uri, --hub with --device/--module, or -c")
}

// genHints warns, on stderr, about tokens that will not work as probably intended.
// errX509NoKey: an x509=true identity has no key and sends no token.
var errX509NoKey = fmt.Errorf("the connection string says x509=true: an X.509 identity has no key, it authenticates with its certificate and an empty password")

const x509Hint = "connect with the device certificate and key instead (mosquitto --cert/--key, devicesim --cert/--key); sastool cert makes test certificates"

func (st *streams) genHints(ri sas.Resource, keyName string, expiry, now time.Time) {
	hint := func(format string, args ...any) { fmt.Fprintf(st.err, "sastool: hint: "+format+"\n", args...) }
	if p := resourceProblem(ri); p != "" {
		hint("the resource looks wrong: %s", p)
	}
	for _, id := range []struct{ what, v string }{{"device", ri.DeviceID}, {"module", ri.ModuleID}} {
		if bad := badIDChars(id.v); len(bad) > 0 {
			hint("the %s ID %q holds %s, which IoT Hub does not allow in IDs (allowed: %s): no %s can have this ID",
				id.what, id.v, strings.Join(bad, ", "), iothub.AllowedIDCharacters(), id.what)
		}
	}
	switch {
	case (ri.Kind == sas.ResourceHub || ri.Kind == sas.ResourceDevices) && keyName == "":
		hint("without --policy the token for %s has no skn: the hub checks it against a device's (or module's) own key, so it opens only that identity's connection (IoT Hub accepts this scope from a device key; IoT Edge hub does not); a service API token needs --policy NAME", describe(ri))
	case ri.Kind == sas.ResourceDPS && keyName != "registration":
		hint("DPS tokens carry skn=registration (add --policy registration)")
	}
	if !expiry.After(now) {
		hint("this token is already expired (at %s, %s ago); fine for negative tests", utc(expiry), humanDuration(now.Sub(expiry)))
	}
}

// badIDChars lists the characters of id, each once, that IoT Hub does not allow in a device
// or module ID (iothub.ValidateID decides), quoted: '+', ' ' (U+0020).
func badIDChars(id string) []string {
	var bad []string
	for _, r := range id {
		q := strconv.QuoteRune(r)
		if r <= ' ' || r > '~' {
			q += fmt.Sprintf(" (U+%04X)", r)
		}
		if iothub.ValidateID(string(r)) != nil && !slices.Contains(bad, q) {
			bad = append(bad, q)
		}
	}
	return bad
}
