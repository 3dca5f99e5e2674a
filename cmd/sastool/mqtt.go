package main

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
	"text/template"
	"time"

	"github.com/spf13/cobra"

	"github.com/hubkit/hubkit/internal/certs"
	"github.com/hubkit/hubkit/internal/cli"
	"github.com/hubkit/hubkit/pkg/iothub"
	"github.com/hubkit/hubkit/pkg/sas"
)

type mqttOptions struct {
	cs          connStrFlag
	ttl         ttlValue
	expiry, now timeValue
	port        int
	apiVersion  string
	modelID     string
	ca          string
	format      string
	json        bool
}

const mqttLong = `Print everything a raw MQTT 3.1.1 client needs to connect to IoT Hub (or fakehub) as the
device or module of a connection string: host, port, client ID, user name, password (a fresh
SAS token, valid --ttl), and the topics to publish (telemetry, twin GET, twin reported PATCH,
method response) and the filters to subscribe (cloud-to-device, twin responses, desired
properties, methods). Topic and user-name grammar come from pkg/iothub, the same code fakehub
checks them with.

With GatewayHostName in the connection string (a device behind IoT Edge) the client connects
to the gateway; the user name still starts with HostName. A connection string that carries a
SharedAccessSignature instead of a key uses that token as the password as is.

--format:
  text         aligned "name: value" lines (default)
  json         one JSON object
  env          HUBKIT_MQTT_*=value lines, shell-quoted, for eval "$(sastool mqtt ... --format env)"
  mosquitto    ready-to-run mosquitto_pub (one telemetry message) and mosquitto_sub (C2D)
               commands, single-quoted; --cafile is --ca or a placeholder that says to set it
  paho-python  a complete Python 3 script for python3-paho-mqtt 1.6 (v1 callback API) that
               connects with TLS, subscribes to C2D, publishes one telemetry message and
               prints the C2D messages it receives; without --ca it trusts the system store

The output contains a live token: treat it as a secret.`

const mqttExample = `  sastool mqtt -c "$DEVICE_CS"

  # against a local fakehub, as mosquitto commands
  sastool mqtt -c "$DEVICE_CS" --ca testdata/certs/ca.pem --format mosquitto

  # a Python client, valid for a day
  sastool mqtt -c - --ttl 24h --format paho-python < dev1.cs > dev1.py && python3 dev1.py

  # into the current shell
  eval "$(sastool mqtt -c "$DEVICE_CS" --format env)"; echo "$HUBKIT_MQTT_USERNAME"`

var mqttFormats = []string{"text", "json", "env", "mosquitto", "paho-python"}

func newMQTTCmd(st *streams) *cobra.Command {
	o := &mqttOptions{ttl: ttlValue{d: time.Hour}}
	cmd := &cobra.Command{
		Use:     "mqtt -c CONNECTION_STRING [flags]",
		Short:   "Print MQTT connection parameters and topics (text, json, env, mosquitto, paho-python)",
		Long:    mqttLong,
		Example: mqttExample,
		Args:    noArgs,
		PreRunE: checkFlags(oneOf("connection-string"), exclusive("ttl", "expiry"), exclusive("json", "format")),
		RunE:    func(cmd *cobra.Command, _ []string) error { return runMQTT(st, cmd, o) },
	}
	fs := cmd.Flags()
	o.cs.register(fs, "device or module `CONNECTION_STRING` (- = stdin)")
	fs.Var(&o.ttl, "ttl", "password (token) lifetime (90m, 1h30m, 7d, 3600)")
	fs.Var(&o.expiry, "expiry", "absolute password expiry: Unix seconds or RFC 3339")
	fs.Var(&o.now, "now", "pretend the time is `TIME` (Unix seconds or RFC 3339)")
	fs.IntVar(&o.port, "port", iothub.DefaultPort, "MQTT over TLS port")
	fs.StringVar(&o.apiVersion, "api-version", iothub.DefaultAPIVersion, "api-version in the user name")
	fs.StringVar(&o.modelID, "model-id", "", "IoT Plug and Play model `ID` for the user name, e.g. dtmi:com:example:Thermostat;1")
	fs.StringVar(&o.ca, "ca", "", cli.CAFlagUsage+"; default: the system trust store")
	fs.StringVar(&o.format, "format", "text", "output `FORMAT`: "+strings.Join(mqttFormats, ", "))
	fs.BoolVar(&o.json, "json", false, "the same as --format json (as on the other verbs)")
	sortFlags(fs)
	return cmd
}

// topicRef is one topic or filter with its names in each output format.
type topicRef struct {
	label   string // text
	jsonKey string
	envName string
	topic   string
}

// mqttParams is everything a client needs; each format prints it differently.
type mqttParams struct {
	Host      string
	Port      int
	CA        string // "" = not given
	ClientID  string
	UserName  string
	Password  string
	Expiry    time.Time
	Identity  iothub.Identity
	Publish   []topicRef
	Subscribe []topicRef
}

func runMQTT(st *streams, cmd *cobra.Command, o *mqttOptions) error {
	if o.json {
		o.format = "json"
	}
	if !slices.Contains(mqttFormats, o.format) {
		return cli.Usagef("--format %q: want one of %s", o.format, strings.Join(mqttFormats, ", "))
	}
	if o.port <= 0 || o.port > 65535 {
		return cli.Usagef("--port %d: want 1-65535", o.port)
	}
	if err := iothub.ValidateAPIVersion(o.apiVersion); err != nil {
		return cli.Usagef("--api-version: %s", trimPkg(err))
	}
	cs, _, err := o.cs.parse(st)
	if err != nil {
		return err
	}
	switch cs.Kind() {
	case sas.KindPolicy:
		return cli.WithHints(fmt.Errorf("a policy (service) connection string cannot connect as a device: want HostName=HOST;DeviceId=ID;SharedAccessKey=KEY"),
			"to act as a device with a policy key, add DeviceId=<id> to the connection string")
	case sas.KindServiceBus:
		return fmt.Errorf("an Event Hubs/Service Bus connection string cannot connect to IoT Hub over MQTT")
	}
	if cs.X509 {
		return cli.WithHints(errX509NoKey, x509Hint)
	}
	id := iothub.Identity{DeviceID: cs.DeviceID, ModuleID: cs.ModuleID}
	if err := validateIDs(cs); err != nil {
		return err
	}
	now := clock(&o.now)
	expiry := now.Add(o.ttl.d)
	if o.expiry.set {
		expiry = o.expiry.t
	}
	if cs.SharedAccessSignature != "" && (cmd.Flags().Changed("ttl") || o.expiry.set) {
		return cli.Usagef("the connection string carries a ready SharedAccessSignature: --ttl and --expiry do not apply")
	}
	tok, err := cs.Token(expiry)
	if err != nil {
		return cleanError{err}
	}
	if !tok.ExpiresAt().After(now) {
		fmt.Fprintf(st.err, "sastool: hint: the password (token) is already expired (at %s); the hub will refuse it\n", utc(tok.ExpiresAt()))
	}
	caFile := ""
	if o.ca != "" {
		if caFile, err = certs.CAFile(o.ca); err != nil {
			return fmt.Errorf("--ca: %w", err)
		}
	}
	host := cs.HostName
	if cs.GatewayHostName != "" {
		host = cs.GatewayHostName
	}
	user := iothub.UserName{Host: cs.HostName, Identity: id, APIVersion: o.apiVersion, ModelID: o.modelID, Form: iothub.FormQuery}
	p := mqttParams{
		Host: host, Port: o.port, CA: caFile, ClientID: id.ClientID(), UserName: user.String(),
		Password: tok.String(), Expiry: tok.ExpiresAt(), Identity: id,
		Publish: []topicRef{
			{"telemetry", "telemetry", "TELEMETRY", iothub.TelemetryTopic(id, nil)},
			{"twin GET", "twinGet", "TWIN_GET", ridTemplate(iothub.TwinGetTopic)},
			{"twin reported PATCH", "twinPatchReported", "TWIN_PATCH_REPORTED", ridTemplate(iothub.TwinPatchReportedTopic)},
			{"method response", "methodResponse", "METHOD_RESPONSE", methodResponseTemplate()},
		},
		Subscribe: []topicRef{
			{"C2D", "c2d", "C2D", iothub.C2DFilter(id)},
			{"twin responses", "twinResponse", "TWIN_RESPONSE", iothub.TwinResponseFilter},
			{"twin desired", "twinDesired", "TWIN_DESIRED", iothub.TwinDesiredFilter},
			{"methods", "methods", "METHODS", iothub.MethodsFilter},
		},
	}
	switch o.format {
	case "json":
		return writeJSON(st.out, p.json())
	case "env":
		return p.writeEnv(st)
	case "mosquitto":
		return p.writeMosquitto(st)
	case "paho-python":
		return p.writePaho(st)
	}
	return p.writeText(st, now)
}

// ridTemplate shows a $rid topic with a {rid} placeholder. The builder percent-encodes its
// argument, so it is called with a plain sentinel that is then replaced.
func ridTemplate(build func(rid string) string) string {
	return strings.Replace(build("RID"), "$rid=RID", "$rid={rid}", 1)
}

func methodResponseTemplate() string {
	t := ridTemplate(func(rid string) string { return iothub.MethodResponseTopic(999, rid) })
	return strings.Replace(t, "/999/", "/{status}/", 1)
}

func (p mqttParams) caText() string {
	if p.CA != "" {
		return p.CA
	}
	return "(not given: the system trust store; pass --ca for fakehub)"
}

func (p mqttParams) writeText(st *streams, now time.Time) error {
	fields := []field{
		{"host", p.Host},
		{"port", strconv.Itoa(p.Port)},
		{"transport", "MQTT 3.1.1 over TLS 1.2"},
		{"CA", p.caText()},
		{"client ID", p.ClientID},
		{"user name", p.UserName},
		{"password", p.Password},
		{"expires", utc(p.Expiry) + " (" + relative(p.Expiry, now) + ")"},
	}
	for _, t := range p.Publish {
		fields = append(fields, field{"publish " + t.label, t.topic})
	}
	for _, t := range p.Subscribe {
		fields = append(fields, field{"subscribe " + t.label, t.topic})
	}
	return writeFields(st.out, fields)
}

// mqttJSON is mqtt --format json.
type mqttJSON struct {
	Host      string            `json:"host"`
	Port      int               `json:"port"`
	CA        string            `json:"ca,omitempty"`
	ClientID  string            `json:"clientId"`
	UserName  string            `json:"userName"`
	Password  string            `json:"password"`
	Expiry    string            `json:"expiry"`
	Publish   map[string]string `json:"publish"`
	Subscribe map[string]string `json:"subscribe"`
}

func (p mqttParams) json() mqttJSON {
	j := mqttJSON{Host: p.Host, Port: p.Port, CA: p.CA, ClientID: p.ClientID, UserName: p.UserName,
		Password: p.Password, Expiry: utc(p.Expiry), Publish: map[string]string{}, Subscribe: map[string]string{}}
	for _, t := range p.Publish {
		j.Publish[t.jsonKey] = t.topic
	}
	for _, t := range p.Subscribe {
		j.Subscribe[t.jsonKey] = t.topic
	}
	return j
}

func (p mqttParams) writeEnv(st *streams) error {
	var b strings.Builder
	line := func(name, v string) { fmt.Fprintf(&b, "HUBKIT_MQTT_%s=%s\n", name, shellQuote(v)) }
	line("HOST", p.Host)
	line("PORT", strconv.Itoa(p.Port))
	if p.CA != "" {
		line("CA", p.CA)
	}
	line("CLIENT_ID", p.ClientID)
	line("USERNAME", p.UserName)
	line("PASSWORD", p.Password)
	line("EXPIRY", utc(p.Expiry))
	for _, t := range p.Publish {
		line("TOPIC_"+t.envName, t.topic)
	}
	for _, t := range p.Subscribe {
		line("FILTER_"+t.envName, t.topic)
	}
	_, err := fmt.Fprint(st.out, b.String())
	return err
}

// caPlaceholder stands in for --cafile when --ca was not given; mosquitto fails on it with
// "file not found", which is the point.
const caPlaceholder = "SET-ME-root-ca.pem (pass --ca to sastool mqtt)"

func (p mqttParams) writeMosquitto(st *streams) error {
	ca := p.CA
	if ca == "" {
		ca = caPlaceholder
	}
	conn := fmt.Sprintf("-h %s -p %d --cafile %s -V mqttv311 \\\n  -i %s -u %s \\\n  -P %s",
		shellQuote(p.Host), p.Port, shellQuote(ca), shellQuote(p.ClientID), shellQuote(p.UserName), shellQuote(p.Password))
	var b strings.Builder
	fmt.Fprintf(&b, "# %s; the password (-P) is a SAS token that expires at %s.\n", identityText(p), utc(p.Expiry))
	if p.CA == "" {
		b.WriteString("# Set --cafile to the hub's root CA: fakehub's ca.pem (testdata/certs/ca.pem),\n")
		b.WriteString("# or for Azure the DigiCert Global Root G2 (or use --capath /etc/ssl/certs).\n")
	}
	b.WriteString("# IoT Hub allows one connection per identity: running mosquitto_pub disconnects a running mosquitto_sub.\n")
	b.WriteString("\n# Send one telemetry message (device-to-cloud):\n")
	fmt.Fprintf(&b, "mosquitto_pub %s \\\n  -q 1 -t %s -m %s\n", conn, shellQuote(p.Publish[0].topic), shellQuote(`{"hello":"from mosquitto_pub"}`))
	b.WriteString("\n# Receive cloud-to-device messages (-v prints the topic with the message properties):\n")
	fmt.Fprintf(&b, "mosquitto_sub %s \\\n  -q 1 -t %s -v\n", conn, shellQuote(p.Subscribe[0].topic))
	_, err := fmt.Fprint(st.out, b.String())
	return err
}

func identityText(p mqttParams) string {
	if p.Identity.IsModule() {
		return fmt.Sprintf("Module %s of device %s on %s", p.Identity.ModuleID, p.Identity.DeviceID, p.Host)
	}
	return fmt.Sprintf("Device %s on %s", p.Identity.DeviceID, p.Host)
}

var pahoTemplate = template.Must(template.New("paho").Funcs(template.FuncMap{"py": strconv.Quote}).Parse(`#!/usr/bin/env python3
"""{{.Who}}: connect over MQTT 3.1.1 with TLS, subscribe to
cloud-to-device messages, send one telemetry message and print what arrives.

Generated by sastool. The password is a SAS token that expires at {{.Expiry}}.
Needs python3-paho-mqtt 1.6 (Debian/Ubuntu package; the v1 callback API).
Stop with Ctrl-C.
"""
import ssl
import sys

import paho.mqtt.client as mqtt

HOST = {{py .Host}}
PORT = {{.Port}}
# None: the system trust store (real Azure IoT Hub). For fakehub, the path of its ca.pem.
CA_FILE = {{if .CA}}{{py .CA}}{{else}}None{{end}}
CLIENT_ID = {{py .ClientID}}
USERNAME = {{py .UserName}}
PASSWORD = {{py .Password}}
TELEMETRY_TOPIC = {{py .Telemetry}}
C2D_FILTER = {{py .C2D}}


def on_connect(client, userdata, flags, rc):
    if rc != 0:
        # IoT Hub answers 5 (not authorized) for every authentication failure;
        # "sastool verify" explains a refused token.
        print("connect refused: %d %s" % (rc, mqtt.connack_string(rc)), file=sys.stderr)
        client.disconnect()
        return
    print("connected as %s" % CLIENT_ID, file=sys.stderr)
    client.subscribe(C2D_FILTER, qos=1)
    client.publish(TELEMETRY_TOPIC, payload='{"hello": "from paho-python"}', qos=1)


def on_publish(client, userdata, mid):
    print("telemetry message %d acknowledged" % mid, file=sys.stderr)


def on_message(client, userdata, msg):
    print("C2D %s %s" % (msg.topic, msg.payload.decode("utf-8", "replace")))
    sys.stdout.flush()


def on_disconnect(client, userdata, rc):
    if rc != 0:
        print("disconnected: %d (an expired token or a second connection for %s?)" % (rc, CLIENT_ID), file=sys.stderr)


client = mqtt.Client(client_id=CLIENT_ID, clean_session=True, protocol=mqtt.MQTTv311)
client.username_pw_set(USERNAME, PASSWORD)
client.tls_set(ca_certs=CA_FILE, cert_reqs=ssl.CERT_REQUIRED, tls_version=ssl.PROTOCOL_TLS_CLIENT)
client.on_connect = on_connect
client.on_publish = on_publish
client.on_message = on_message
client.on_disconnect = on_disconnect
client.connect(HOST, PORT, keepalive=60)
try:
    client.loop_forever()
except KeyboardInterrupt:
    client.disconnect()
`))

func (p mqttParams) writePaho(st *streams) error {
	return pahoTemplate.Execute(st.out, map[string]any{
		"Who": identityText(p), "Expiry": utc(p.Expiry), "Host": p.Host, "Port": p.Port, "CA": p.CA,
		"ClientID": p.ClientID, "UserName": p.UserName, "Password": p.Password,
		"Telemetry": p.Publish[0].topic, "C2D": p.Subscribe[0].topic,
	})
}
