package main

import (
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/hubkit/hubkit/internal/cli"
	"github.com/hubkit/hubkit/pkg/iothub"
	"github.com/hubkit/hubkit/pkg/sas"
)

type connstrOptions struct {
	showSecrets bool
	json        bool
	now         timeValue
}

const connstrLong = `Parse and check a connection string and print its fields, what it identifies (device,
module, policy, servicebus) and the resource a token for it is signed over. Keys and embedded
tokens are printed as <redacted> unless --show-secrets is given. An embedded
SharedAccessSignature is decoded (its scope and expiry are not secret).

The connection string is the one argument ("-" reads it from stdin, which keeps the key out
of shell history). "sastool connstr build" makes one.`

const connstrExample = `  sastool connstr 'HostName=contoso.azure-devices.net;DeviceId=dev1;SharedAccessKey=AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8='

  # from a file, as JSON, with the key
  sastool connstr --json --show-secrets - < dev1.cs`

func newConnstrCmd(st *streams) *cobra.Command {
	o := &connstrOptions{}
	cmd := &cobra.Command{
		Use:     "connstr CONNECTION_STRING|-",
		Short:   "Parse, check and print a connection string (or build one: connstr build)",
		Long:    connstrLong,
		Example: connstrExample,
		Args:    oneArg("a CONNECTION_STRING"),
		RunE:    func(cmd *cobra.Command, args []string) error { return runConnstr(st, o, args[0]) },
	}
	fs := cmd.Flags()
	fs.BoolVar(&o.showSecrets, "show-secrets", false, "print SharedAccessKey and SharedAccessSignature instead of <redacted>")
	fs.Var(&o.now, "now", "pretend the time is `TIME` (for the expiry of an embedded token)")
	fs.BoolVar(&o.json, "json", false, "print one JSON object")
	sortFlags(fs)
	cmd.AddCommand(newConnstrBuildCmd(st))
	return cmd
}

// connstrJSON is connstr --json.
type connstrJSON struct {
	Kind                  string `json:"kind"`
	Dialect               string `json:"dialect"`
	HostName              string `json:"hostName,omitempty"`
	DeviceID              string `json:"deviceId,omitempty"`
	ModuleID              string `json:"moduleId,omitempty"`
	SharedAccessKeyName   string `json:"sharedAccessKeyName,omitempty"`
	SharedAccessKey       string `json:"sharedAccessKey,omitempty"`
	SharedAccessSignature string `json:"sharedAccessSignature,omitempty"`
	GatewayHostName       string `json:"gatewayHostName,omitempty"`
	Endpoint              string `json:"endpoint,omitempty"`
	EntityPath            string `json:"entityPath,omitempty"`
	Resource              string `json:"resource"`
	TokenExpiry           string `json:"tokenExpiry,omitempty"`
	ConnectionString      string `json:"connectionString"`
}

func runConnstr(st *streams, o *connstrOptions, arg string) error {
	s, err := st.readArg(arg, "connection string")
	if err != nil {
		return err
	}
	cs, err := sas.ParseConnectionString(s)
	if err != nil {
		return connStrError(s, err)
	}
	if err := validateIDs(cs); err != nil {
		return err
	}
	secret := func(v string) string {
		if v == "" || o.showSecrets {
			return v
		}
		return "<redacted>"
	}
	full := cs.Redacted()
	if o.showSecrets {
		full = cs.String()
	}
	var tokenExpiry time.Time
	if cs.SharedAccessSignature != "" {
		t, err := sas.Parse(cs.SharedAccessSignature) // already checked by ParseConnectionString
		if err != nil {
			return cleanError{err}
		}
		tokenExpiry = t.ExpiresAt()
	}
	if o.json {
		j := connstrJSON{
			Kind: cs.Kind().String(), Dialect: cs.Dialect.String(),
			HostName: cs.HostName, DeviceID: cs.DeviceID, ModuleID: cs.ModuleID,
			SharedAccessKeyName: cs.SharedAccessKeyName, SharedAccessKey: secret(cs.SharedAccessKey),
			SharedAccessSignature: secret(cs.SharedAccessSignature), GatewayHostName: cs.GatewayHostName,
			Endpoint: cs.Endpoint, EntityPath: cs.EntityPath, Resource: cs.Resource(), ConnectionString: full,
		}
		if !tokenExpiry.IsZero() {
			j.TokenExpiry = utc(tokenExpiry)
		}
		return writeJSON(st.out, j)
	}
	fields := []field{{"kind", cs.Kind().String()}}
	add := func(name, v string) {
		if v != "" {
			fields = append(fields, field{name, v})
		}
	}
	add("Endpoint", cs.Endpoint)
	add("HostName", cs.HostName)
	add("DeviceId", cs.DeviceID)
	add("ModuleId", cs.ModuleID)
	add("SharedAccessKeyName", cs.SharedAccessKeyName)
	add("SharedAccessKey", secret(cs.SharedAccessKey))
	add("SharedAccessSignature", secret(cs.SharedAccessSignature))
	add("GatewayHostName", cs.GatewayHostName)
	add("EntityPath", cs.EntityPath)
	fields = append(fields, field{"resource", cs.Resource()})
	if !tokenExpiry.IsZero() {
		fields = append(fields, field{"token expires", utc(tokenExpiry) + " (" + relative(tokenExpiry, clock(&o.now)) + ")"})
	}
	return writeFields(st.out, fields)
}

// validateIDs checks DeviceId and ModuleId against IoT Hub's alphabet (pkg/sas accepts any
// text; the hub does not).
func validateIDs(cs sas.ConnectionString) error {
	if cs.DeviceID == "" {
		return nil
	}
	if err := (iothub.Identity{DeviceID: cs.DeviceID, ModuleID: cs.ModuleID}).Validate(); err != nil {
		return cleanError{err}
	}
	return nil
}

type connstrBuildOptions struct {
	hub, device, module, policy, gateway string
	keys                                 keyFlags
	withSAS                              bool
	ttl                                  ttlValue
	expiry, now                          timeValue
	json                                 bool
}

const connstrBuildLong = `Build an IoT Hub connection string from its parts and print it (it contains the key:
it is the result, so it goes to stdout).

--device (and --module) make a device (module) connection string; --policy alone makes a
service (policy) one; --device with --policy makes a device connection string signed with a
policy key. --gateway adds GatewayHostName (a device behind IoT Edge).

--with-sas embeds a ready SharedAccessSignature (valid --ttl, default 1h, or until --expiry)
instead of the key: the result can be handed to a device without giving away the key.

The key comes from --key, --key-file (- = stdin) or $` + envKey + `.`

const connstrBuildExample = `  sastool connstr build --hub contoso.azure-devices.net --device dev1 --key-file dev1.key

  # a module connection string carrying a one-day token instead of the key
  sastool connstr build --hub contoso.azure-devices.net --device dev1 --module filter \
    --key-file filter.key --with-sas --ttl 24h`

func newConnstrBuildCmd(st *streams) *cobra.Command {
	o := &connstrBuildOptions{ttl: ttlValue{d: time.Hour}}
	cmd := &cobra.Command{
		Use:     "build --hub HOST (--device ID [--module ID] | --policy NAME) --key KEY [--with-sas]",
		Short:   "Build a device, module or policy connection string",
		Long:    connstrBuildLong,
		Example: connstrBuildExample,
		Args:    noArgs,
		PreRunE: checkFlags(oneOf("hub"), oneOf("device", "policy"), exclusive("ttl", "expiry"), exclusive("module", "policy"), exclusive("key", "key-file")),
		RunE:    func(cmd *cobra.Command, _ []string) error { return runConnstrBuild(st, cmd, o) },
	}
	fs := cmd.Flags()
	fs.StringVar(&o.hub, "hub", "", "hub `HOST` name, e.g. contoso.azure-devices.net")
	fs.StringVar(&o.device, "device", "", "device `ID`")
	fs.StringVar(&o.module, "module", "", "module `ID` (needs --device)")
	fs.StringVar(&o.policy, "policy", "", "shared access policy `NAME` (SharedAccessKeyName)")
	fs.StringVar(&o.gateway, "gateway", "", "GatewayHostName: the IoT Edge `HOST` the device connects through")
	o.keys.register(fs, false)
	fs.BoolVar(&o.withSAS, "with-sas", false, "embed a SharedAccessSignature instead of the key")
	fs.Var(&o.ttl, "ttl", "lifetime of the --with-sas token (90m, 1h30m, 7d, 3600)")
	fs.Var(&o.expiry, "expiry", "absolute expiry of the --with-sas token: Unix seconds or RFC 3339")
	fs.Var(&o.now, "now", "pretend the time is `TIME` (Unix seconds or RFC 3339)")
	fs.BoolVar(&o.json, "json", false, `print {"connectionString":...}`)
	sortFlags(fs)
	return cmd
}

func runConnstrBuild(st *streams, cmd *cobra.Command, o *connstrBuildOptions) error {
	fs := cmd.Flags()
	if o.module != "" && o.device == "" {
		return cli.Usagef("--module needs --device")
	}
	if o.withSAS && o.device == "" {
		return cli.Usagef("--with-sas needs --device: a policy connection string carries its key")
	}
	if !o.withSAS && (fs.Changed("ttl") || fs.Changed("expiry")) {
		return cli.Usagef("--ttl and --expiry only apply with --with-sas")
	}
	text, source, ok, err := o.keys.text(st, true)
	if err != nil {
		return err
	}
	if !ok {
		return cli.Usagef("no key: pass --key or --key-file, or set $%s", envKey)
	}
	if _, err := decodeKeyOnly(text, source, sas.DialectIoTHub); err != nil {
		return err
	}
	cs := sas.ConnectionString{
		HostName: o.hub, DeviceID: o.device, ModuleID: o.module,
		SharedAccessKeyName: o.policy, SharedAccessKey: text, GatewayHostName: o.gateway,
	}
	if err := validateIDs(cs); err != nil {
		return err
	}
	if o.withSAS {
		now := clock(&o.now)
		expiry := now.Add(o.ttl.d)
		if o.expiry.set {
			expiry = o.expiry.t
		}
		t, err := cs.Token(expiry)
		if err != nil {
			return cleanError{err}
		}
		cs.SharedAccessKey, cs.SharedAccessKeyName = "", ""
		cs.SharedAccessSignature = t.String()
		if !expiry.After(now) {
			fmt.Fprintf(st.err, "sastool: hint: the embedded token is already expired (at %s); fine for negative tests\n", utc(expiry))
		}
	}
	// Round-trip through the parser: what we print must be what we accept.
	if _, err := sas.ParseConnectionString(cs.String()); err != nil {
		return cleanError{err}
	}
	if o.json {
		return writeJSON(st.out, struct {
			ConnectionString string `json:"connectionString"`
		}{cs.String()})
	}
	_, err = fmt.Fprintln(st.out, cs.String())
	return err
}
