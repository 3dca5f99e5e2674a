package main

import (
	"context"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/hubkit/hubkit/internal/certs"
	"github.com/hubkit/hubkit/internal/cli"
	"github.com/hubkit/hubkit/pkg/device"
	"github.com/hubkit/hubkit/pkg/iothub"
	"github.com/hubkit/hubkit/pkg/iothub/dps"
)

const provisionExample = `  # a device of a symmetric-key enrollment group, against fakehub --dps :8884
  devicesim provision --global-endpoint localhost --endpoint localhost:8884 --ca testdata/certs \
    --id-scope 0ne00000000 --registration-id sensor-1 --key "$(sastool derive --group-key "$GROUP_KEY" --registration-id sensor-1)"

  # the same, deriving the device key from the group key here (tests and factory tools only)
  devicesim provision --global-endpoint localhost --endpoint localhost:8884 --ca testdata/certs \
    --id-scope 0ne00000000 --registration-id sensor-1 --group-key-file group.key

  # an X.509 device (individual enrollment, or a group whose CA signed it): the certificate
  # (leaf first, then intermediates) and its PEM key; the registration ID is the leaf's CN
  devicesim provision --global-endpoint localhost --endpoint localhost:8884 --ca testdata/certs \
    --id-scope 0ne00000000 --cert cam-1.pem --key cam-1-key.pem

  # a real DPS over HTTPS, then send with the printed connection string
  export HUBKIT_DEVICE_CONNECTION_STRING="$(devicesim provision --id-scope 0ne00A1B2C3 \
    --registration-id sensor-1 --key-file sensor-1.key --transport https)"
  devicesim send '{"hello":"hub"}'`

type provisionFlags struct {
	globalEndpoint, endpoint, idScope, regID string
	key, keyFile, groupKey, groupKeyFile     string
	transport, payload, ca, hubEndpoint      string
	certFile                                 string
	timeout                                  time.Duration
	noConnect, asJSON, verbose               bool
}

func newProvisionCmd(st *streams) *cobra.Command {
	var f provisionFlags
	cmd := &cobra.Command{
		Use:   "provision --id-scope SCOPE --registration-id ID (--key KEY | --group-key KEY | --cert FILE --key FILE)",
		Short: "Register with the Device Provisioning Service, then connect to the assigned hub",
		Long: `Register the device with DPS (MQTT, or the HTTPS API with --transport https) the way
the Azure SDKs do: register, poll every retry-after seconds until the registration is
assigned, failed or disabled. Then connect to the assigned hub with the device's key
(proving its CONNECT works; --no-connect skips this) and print the device connection
string on stdout (--json: the assignment as JSON).

The key is the device's own: an individual enrollment's key, or a group member's key
derived from the group key (sastool derive). --group-key derives it here; keep group keys
off production devices. Keys may come from a file (--key-file, --group-key-file; "-" is
stdin), which keeps them out of the process list.

An X.509 device gives --cert FILE (its certificate, leaf first, then any intermediates) and
--key FILE (the PEM private key, as in the other verbs) instead: it attests in the TLS
handshake with no token, its registration ID is the leaf's common name (--registration-id
may be left out), and it connects to the assigned hub with the same certificate (the
connection string ends in ;x509=true).`,
		Example: provisionExample,
		Args:    noArgs,
		RunE:    func(cmd *cobra.Command, _ []string) error { return provision(cmd.Context(), st, &f) },
	}
	fs := cmd.Flags()
	fs.SortFlags = false
	fs.StringVar(&f.idScope, "id-scope", "", "the DPS `ID_SCOPE` (required)")
	fs.StringVar(&f.regID, "registration-id", "", "the device's registration `ID` (required)")
	fs.StringVar(&f.key, "key", "", "the device's symmetric `KEY` (base64); with --cert, the PEM file of the certificate's private key")
	fs.StringVar(&f.keyFile, "key-file", "", "read the device key from `PATH` (- = stdin)")
	fs.StringVar(&f.groupKey, "group-key", "", "the enrollment group's `KEY`: the device key is derived from it")
	fs.StringVar(&f.groupKeyFile, "group-key-file", "", "read the group key from `PATH` (- = stdin)")
	fs.StringVar(&f.certFile, "cert", "", "PEM `FILE` of an X.509 device certificate (leaf first, then intermediates); with --key FILE, instead of a symmetric key")
	fs.StringVar(&f.globalEndpoint, "global-endpoint", iothub.DPSGlobalHost, "the DPS host `NAME` (TLS server name)")
	fs.StringVar(&f.endpoint, "endpoint", "", "address to dial, `HOST:PORT`, when it differs from the global endpoint")
	fs.StringVar(&f.transport, "transport", "mqtt", "`mqtt` (port 8883) or https (port 443)")
	fs.StringVar(&f.payload, "payload", "", "custom allocation `JSON` sent with the registration")
	fs.StringVar(&f.ca, "ca", "", "PEM file of the CA to trust (DPS and hub); a directory means DIR/ca.pem")
	fs.StringVar(&f.hubEndpoint, "hub-endpoint", "", "address to dial for the assigned hub, `HOST:PORT` (default its host name, port 8883)")
	fs.BoolVar(&f.noConnect, "no-connect", false, "provision only; do not connect to the assigned hub")
	fs.BoolVar(&f.asJSON, "json", false, `print {"assignedHub","deviceId","registrationId","substatus","payload","connectionString"}`)
	fs.DurationVar(&f.timeout, "timeout", time.Minute, "give up after this long (registration and connection)")
	fs.BoolVarP(&f.verbose, "verbose", "v", false, "log the protocol steps on stderr")
	return cmd
}

// readKey returns the flag's value or the file's content (trimmed).
func readKey(st *streams, value, file, name string) (string, error) {
	if file == "" {
		return value, nil
	}
	if value != "" {
		return "", cli.Usagef("--%s and --%s-file: give one", name, name)
	}
	var b []byte
	var err error
	if file == "-" {
		b, err = io.ReadAll(st.in)
	} else {
		b, err = os.ReadFile(file)
	}
	if err != nil {
		return "", fmt.Errorf("reading the %s: %w", strings.ReplaceAll(name, "-", " "), err)
	}
	return strings.TrimSpace(string(b)), nil
}

func provision(ctx context.Context, st *streams, f *provisionFlags) error {
	if f.certFile != "" {
		return provisionX509(ctx, st, f)
	}
	if f.idScope == "" || f.regID == "" {
		return cli.Usagef("provision needs --id-scope and --registration-id")
	}
	key, err := readKey(st, f.key, f.keyFile, "key")
	if err != nil {
		return err
	}
	groupKey, err := readKey(st, f.groupKey, f.groupKeyFile, "group-key")
	if err != nil {
		return err
	}
	if (key == "") == (groupKey == "") {
		return cli.Usagef("give the device key (--key, --key-file), the group key (--group-key, --group-key-file) or an X.509 certificate (--cert FILE --key FILE), one of them")
	}
	return runProvision(ctx, st, f, device.ProvisionConfig{SymmetricKey: key, GroupKey: groupKey})
}

// provisionX509 provisions with --cert and --key (the PEM key file).
func provisionX509(ctx context.Context, st *streams, f *provisionFlags) error {
	switch {
	case f.key == "":
		return cli.Usagef("--cert needs --key FILE: the PEM file of the certificate's private key")
	case f.keyFile != "" || f.groupKey != "" || f.groupKeyFile != "":
		return cli.Usagef("--cert and --key FILE attest an X.509 device: drop --key-file, --group-key and --group-key-file")
	case f.idScope == "":
		return cli.Usagef("provision needs --id-scope")
	}
	cert, err := device.LoadCertificate(f.certFile, f.key)
	if err != nil {
		return err
	}
	leaf, err := x509.ParseCertificate(cert.Certificate[0])
	if err != nil {
		return fmt.Errorf("reading the device certificate %s: %w", f.certFile, err)
	}
	cn := leaf.Subject.CommonName
	switch {
	case f.regID == "":
		f.regID = cn
	case f.regID != cn:
		return cli.Usagef("--registration-id %q but the certificate's common name is %q: an X.509 device registers as its CN (leave --registration-id out)", f.regID, cn)
	}
	return runProvision(ctx, st, f, device.ProvisionConfig{Certificate: &cert})
}

// runProvision registers cfg's credential, connects (unless --no-connect) and prints.
func runProvision(ctx context.Context, st *streams, f *provisionFlags, cfg device.ProvisionConfig) error {
	if f.payload != "" && !json.Valid([]byte(f.payload)) {
		return cli.Usagef("--payload is not JSON: %q", f.payload)
	}
	level := slog.LevelWarn
	if f.verbose {
		level = slog.LevelDebug
	}
	log := slog.New(slog.NewTextHandler(st.err, &slog.HandlerOptions{Level: level}))
	cfg.GlobalEndpoint, cfg.Endpoint, cfg.IDScope, cfg.RegistrationID = f.globalEndpoint, f.endpoint, f.idScope, f.regID
	cfg.Transport, cfg.ConnectTimeout, cfg.Logger = device.ProvisionTransport(f.transport), f.timeout, log
	if f.payload != "" {
		cfg.Payload = json.RawMessage(f.payload)
	}
	if f.transport != string(device.ProvisionMQTT) && f.transport != string(device.ProvisionHTTPS) {
		return cli.Usagef("--transport %q: want mqtt or https", f.transport)
	}
	if f.ca != "" {
		pool, err := certs.LoadPool(f.ca)
		if err != nil {
			return fmt.Errorf("reading the CA: %w", err)
		}
		cfg.RootCAs = pool
	}
	ctx, cancel := context.WithTimeout(ctx, f.timeout)
	defer cancel()
	p, err := device.Provision(ctx, cfg)
	if err != nil {
		return provisionError(err, cfg.Certificate != nil)
	}
	fmt.Fprintf(st.err, "devicesim: provisioned %s: assigned to %s as %s (%s)\n", f.regID, p.AssignedHub, p.DeviceID, p.Substatus)
	if !f.noConnect {
		hc := p.Config()
		hc.RootCAs, hc.Endpoint, hc.ConnectTimeout, hc.Logger = cfg.RootCAs, f.hubEndpoint, f.timeout, log
		c, err := device.New(hc)
		if err != nil {
			return err
		}
		if err := c.Connect(ctx); err != nil {
			_ = c.Close(context.Background())
			return fmt.Errorf("connecting to the assigned hub %s as %s: %w", p.AssignedHub, p.DeviceID, err)
		}
		fmt.Fprintf(st.err, "devicesim: connected as %s to %s\n", p.DeviceID, p.AssignedHub)
		closeClient(c)
	}
	if f.asJSON {
		out := map[string]any{"assignedHub": p.AssignedHub, "deviceId": p.DeviceID, "registrationId": p.RegistrationID,
			"substatus": p.Substatus, "connectionString": p.ConnectionString()}
		if len(p.Payload) > 0 {
			out["payload"] = p.Payload
		}
		b, _ := json.Marshal(out)
		_, err := fmt.Fprintln(st.out, string(b))
		return err
	}
	_, err = fmt.Fprintln(st.out, p.ConnectionString())
	return err
}

// provisionError adds hints to a failed provisioning (isX509: with --cert).
func provisionError(err error, isX509 bool) error {
	check := "check --id-scope, --registration-id and the key (a group device's key is derived: sastool derive)"
	if isX509 {
		check = "check --id-scope and the certificate: an individual enrollment holds this certificate, or a group's signingCertificates hold the CA that signed it (send the intermediates after the leaf in --cert)"
	}
	var pe *device.ProvisionError
	var de *dps.Error
	var ce *device.ConnectError
	switch {
	case errors.As(err, &pe) && pe.Status == dps.StatusDisabled:
		return cli.WithHints(err, "the enrollment (or its group) is disabled: enable it (provisioningStatus enabled)")
	case errors.As(err, &de) && de.Status() == 401:
		hints := append([]string{}, de.Hints...)
		if de.Reason != "" {
			hints = append([]string{"DPS says: " + de.Reason}, hints...)
		}
		return cli.WithHints(err, append(hints, check)...)
	case errors.As(err, &ce):
		// Not wrapped: the hub's CONNACK hints (hintsFor) do not apply to DPS.
		return cli.WithHints(fmt.Errorf("DPS refused the connection: CONNACK %d from %s", ce.Code, ce.Addr), "DPS refused the CONNECT: "+check,
			"fakehub tells why: fakehub rejections, or its log")
	}
	return err
}
