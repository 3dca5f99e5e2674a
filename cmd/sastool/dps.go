package main

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/hubkit/hubkit/internal/cli"
	"github.com/hubkit/hubkit/pkg/iothub"
	"github.com/hubkit/hubkit/pkg/iothub/dps"
	"github.com/hubkit/hubkit/pkg/sas"
)

type dpsOptions struct {
	idScope, registrationID string
	key, keyFile            string
	groupKey, groupKeyFile  string
	host                    string
	port, httpsPort         int
	ttl                     ttlValue
	expiry, now             timeValue
	ca, format, payload     string
	json                    bool
}

const dpsLong = `Print what a raw client needs to register a device with the Device Provisioning Service
(DPS) with a symmetric key (docs/iothub-behavior.md §7): over MQTT the host, port, client ID
(the registration ID), user name ({idScope}/registrations/{id}/api-version=2019-03-31), the
password (a registration SAS token: sr={idScope}%2Fregistrations%2F{id}, skn=registration), the
filter to subscribe and the topics to publish (register, then poll with the operationId of the
202 answer after retry-after seconds); over HTTPS the two requests and their Authorization
header. DPS has no connection string: the ID scope, registration ID and key are flags.

The key is the device's own (--key, --key-file): an individual enrollment's key, or a group
member's derived key; --group-key derives it from the enrollment group's key
(sas.DeriveDeviceKey, like "sastool derive").

--format:
  text   aligned "name: value" lines (default)
  json   one JSON object
  env    HUBKIT_DPS_*=value lines, shell-quoted, for eval
  curl   ready-to-run curl commands for the HTTPS registration API (register, then poll)

The output contains a live token: treat it as a secret.`

const dpsExample = `  # against fakehub --dps :8884 --dps-http :8444, a device of a group
  sastool dps --id-scope 0ne00000000 --registration-id sensor-1 --group-key-file group.key \
    --host localhost --port 8884 --https-port 8444 --ca testdata/certs/ca.pem

  # register over HTTPS with curl
  sastool dps --id-scope 0ne00000000 --registration-id sensor-1 --key "$DEVICE_KEY" \
    --host localhost --https-port 8444 --ca testdata/certs/ca.pem --format curl`

var dpsFormats = []string{"text", "json", "env", "curl"}

func newDPSCmd(st *streams) *cobra.Command {
	o := &dpsOptions{ttl: ttlValue{d: time.Hour}}
	cmd := &cobra.Command{
		Use:     "dps --id-scope SCOPE --registration-id ID (--key KEY | --group-key KEY) [flags]",
		Short:   "Print DPS registration parameters: MQTT connection and topics, HTTPS requests (text, json, env, curl)",
		Long:    dpsLong,
		Example: dpsExample,
		Args:    noArgs,
		PreRunE: checkFlags(oneOf("id-scope"), oneOf("registration-id"), exclusive("key", "key-file", "group-key", "group-key-file"),
			oneOf("key", "key-file", "group-key", "group-key-file"), exclusive("ttl", "expiry"), exclusive("json", "format")),
		RunE: func(cmd *cobra.Command, _ []string) error { return runDPS(st, cmd, o) },
	}
	fs := cmd.Flags()
	fs.StringVar(&o.idScope, "id-scope", "", "the DPS `ID_SCOPE`, e.g. 0ne00000A0A")
	fs.StringVar(&o.registrationID, "registration-id", "", "the device's registration `ID`")
	fs.StringVar(&o.key, "key", "", "the device's symmetric `KEY` (base64)")
	fs.StringVar(&o.keyFile, "key-file", "", "read the device key from `PATH` (- = stdin)")
	fs.StringVar(&o.groupKey, "group-key", "", "the enrollment group's `KEY`: the device key is derived from it")
	fs.StringVar(&o.groupKeyFile, "group-key-file", "", "read the group key from `PATH` (- = stdin)")
	fs.StringVar(&o.host, "host", iothub.DPSGlobalHost, "the DPS `HOST`")
	fs.IntVar(&o.port, "port", iothub.DefaultPort, "MQTT over TLS port")
	fs.IntVar(&o.httpsPort, "https-port", 443, "HTTPS port")
	fs.Var(&o.ttl, "ttl", "token lifetime (90m, 1h30m, 7d, 3600)")
	fs.Var(&o.expiry, "expiry", "absolute token expiry: Unix seconds or RFC 3339")
	fs.Var(&o.now, "now", "pretend the time is `TIME` (Unix seconds or RFC 3339)")
	fs.StringVar(&o.ca, "ca", "", "PEM `FILE` of the root CA (fakehub: testdata/certs/ca.pem)")
	fs.StringVar(&o.payload, "payload", "", "custom allocation `JSON` for the register request body")
	fs.StringVar(&o.format, "format", "text", "output `FORMAT`: "+strings.Join(dpsFormats, ", "))
	fs.BoolVar(&o.json, "json", false, "the same as --format json")
	sortFlags(fs)
	return cmd
}

// dpsParams is everything a registering client needs.
type dpsParams struct {
	Host        string `json:"host"`
	Port        int    `json:"port"`
	HTTPSPort   int    `json:"httpsPort"`
	CA          string `json:"ca,omitempty"`
	ClientID    string `json:"clientId"`
	UserName    string `json:"userName"`
	Password    string `json:"password"`
	Expiry      string `json:"expiry"`
	Subscribe   string `json:"subscribe"`
	Register    string `json:"publishRegister"`
	Poll        string `json:"publishPoll"`
	Body        string `json:"registerBody"`
	RegisterURL string `json:"registerUrl"`
	PollURL     string `json:"pollUrl"`
}

func runDPS(st *streams, cmd *cobra.Command, o *dpsOptions) error {
	if o.json {
		o.format = "json"
	}
	if !slices.Contains(dpsFormats, o.format) {
		return cli.Usagef("--format %q: want one of %s", o.format, strings.Join(dpsFormats, ", "))
	}
	if err := dps.ValidateIDScope(o.idScope); err != nil {
		return cli.Usagef("--id-scope: %v", err)
	}
	if err := iothub.ValidateRegistrationID(o.registrationID); err != nil {
		return cli.Usagef("--registration-id: %s", trimPkg(err))
	}
	for _, p := range []struct {
		name string
		v    int
	}{{"--port", o.port}, {"--https-port", o.httpsPort}} {
		if p.v <= 0 || p.v > 65535 {
			return cli.Usagef("%s %d: want 1-65535", p.name, p.v)
		}
	}
	if o.payload != "" && !json.Valid([]byte(o.payload)) {
		return cli.Usagef("--payload is not JSON: %q", o.payload)
	}
	f := cmd.Flags()
	var text, source string
	group := false
	switch {
	case f.Changed("key"):
		text, source = o.key, "--key"
	case f.Changed("group-key"):
		text, source, group = o.groupKey, "--group-key", true
	case f.Changed("key-file"), f.Changed("group-key-file"):
		path := o.keyFile
		if f.Changed("group-key-file") {
			path, group = o.groupKeyFile, true
		}
		s, err := st.readFile(path, "key file")
		if err != nil {
			return err
		}
		text, source = s, "--key-file "+path
	}
	key, err := decodeKeyOnly(strings.TrimSpace(text), source, sas.DialectIoTHub)
	if err != nil {
		return err
	}
	if group {
		key = sas.DeriveDeviceKey(key, o.registrationID)
	}
	now := clock(&o.now)
	expiry := now.Add(o.ttl.d)
	if o.expiry.set {
		expiry = o.expiry.t
	}
	tok := sas.Sign(sas.EncodeResource(sas.DPSResource(o.idScope, o.registrationID)), dps.RegistrationKeyName, key, expiry)
	body, _ := json.Marshal(dps.RegistrationRequest{RegistrationID: o.registrationID, Payload: json.RawMessage(o.payload)})
	if o.payload == "" {
		body, _ = json.Marshal(dps.RegistrationRequest{RegistrationID: o.registrationID})
	}
	base := "https://" + o.host
	if o.httpsPort != 443 {
		base += ":" + strconv.Itoa(o.httpsPort)
	}
	base += "/" + url.PathEscape(o.idScope) + "/registrations/" + url.PathEscape(o.registrationID)
	p := dpsParams{
		Host: o.host, Port: o.port, HTTPSPort: o.httpsPort, CA: o.ca, ClientID: o.registrationID,
		UserName: iothub.DPSUserName{IDScope: o.idScope, RegistrationID: o.registrationID, APIVersion: dps.APIVersion}.String(),
		Password: tok.String(), Expiry: utc(tok.ExpiresAt()), Subscribe: iothub.DPSResponseFilter,
		Register:    ridTemplate(iothub.DPSRegisterTopic),
		Poll:        strings.Replace(ridTemplate(func(rid string) string { return iothub.DPSPollTopic(rid, "OPID") }), "operationId=OPID", "operationId={operationId}", 1),
		Body:        string(body),
		RegisterURL: base + "/register?api-version=" + dps.APIVersion,
		PollURL:     base + "/operations/{operationId}?api-version=" + dps.APIVersion,
	}
	if group {
		fmt.Fprintf(st.err, "sastool: the device key derived for %s: %s\n", o.registrationID, base64.StdEncoding.EncodeToString(key))
	}
	switch o.format {
	case "json":
		return writeJSON(st.out, p)
	case "env":
		var b strings.Builder
		for _, kv := range [][2]string{{"HOST", p.Host}, {"PORT", strconv.Itoa(p.Port)}, {"CLIENT_ID", p.ClientID}, {"USERNAME", p.UserName},
			{"PASSWORD", p.Password}, {"EXPIRY", p.Expiry}, {"FILTER_RESPONSE", p.Subscribe}, {"TOPIC_REGISTER", p.Register},
			{"TOPIC_POLL", p.Poll}, {"REGISTER_BODY", p.Body}, {"REGISTER_URL", p.RegisterURL}, {"POLL_URL", p.PollURL}} {
			fmt.Fprintf(&b, "HUBKIT_DPS_%s=%s\n", kv[0], shellQuote(kv[1]))
		}
		_, err := fmt.Fprint(st.out, b.String())
		return err
	case "curl":
		ca := ""
		if p.CA != "" {
			ca = " --cacert " + shellQuote(p.CA)
		}
		hdr := "-H 'Content-Type: application/json; charset=utf-8' -H " + shellQuote("Authorization: "+p.Password)
		var b strings.Builder
		fmt.Fprintf(&b, "# Register %s; the Authorization header is a SAS token that expires at %s.\n", p.ClientID, p.Expiry)
		b.WriteString("# The 202 answer carries an operationId and a retry-after header: wait that long, then poll.\n")
		fmt.Fprintf(&b, "curl -sS -i%s -X PUT %s \\\n  -d %s %s\n", ca, hdr, shellQuote(p.Body), shellQuote(p.RegisterURL))
		b.WriteString("\n# Poll until \"status\" is assigned (200), failed or disabled; 202 means poll again.\n")
		b.WriteString("OPERATION_ID=... # the operationId of the 202 answer\n")
		// Double quotes, so that the shell expands $OPERATION_ID (the rest of the URL is
		// letters, digits and - . _ : /).
		fmt.Fprintf(&b, "curl -sS -i%s %s \\\n  \"%s\"\n", ca, hdr, strings.Replace(p.PollURL, "{operationId}", "$OPERATION_ID", 1))
		_, err := fmt.Fprint(st.out, b.String())
		return err
	}
	return writeFields(st.out, []field{
		{"host", p.Host},
		{"MQTT port", strconv.Itoa(p.Port)},
		{"HTTPS port", strconv.Itoa(p.HTTPSPort)},
		{"transport", "MQTT 3.1.1 over TLS 1.2 (clean session), or HTTPS"},
		{"CA", orNotGiven(p.CA)},
		{"client ID", p.ClientID},
		{"user name", p.UserName},
		{"password", p.Password},
		{"expires", p.Expiry + " (" + relative(tok.ExpiresAt(), now) + ")"},
		{"subscribe responses", p.Subscribe},
		{"publish register", p.Register + "  body " + p.Body},
		{"publish poll", p.Poll},
		{"answers", "$dps/registrations/res/{status}/?$rid={rid}[&retry-after={s}]: 202 assigning, 200 assigned/failed/disabled"},
		{"HTTPS register", "PUT " + p.RegisterURL},
		{"HTTPS poll", "GET " + p.PollURL},
	})
}

func orNotGiven(ca string) string {
	if ca == "" {
		return "(not given: the system trust store; pass --ca for fakehub)"
	}
	return ca
}
