package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/spf13/pflag"

	"github.com/hubkit/hubkit/internal/cli"
	"github.com/hubkit/hubkit/pkg/sas"
)

// readArg returns arg, or all of stdin (trimmed) when arg is "-".
func (st *streams) readArg(arg, what string) (string, error) {
	if arg != "-" {
		return strings.TrimSpace(arg), nil
	}
	if st.stdinUsed {
		return "", cli.Usagef("%s: stdin (-) is already used by another flag or argument", what)
	}
	st.stdinUsed = true
	if f, ok := st.in.(*os.File); ok {
		if fi, err := f.Stat(); err == nil && fi.Mode()&os.ModeCharDevice != 0 {
			fmt.Fprintf(st.err, "sastool: reading the %s from the terminal; end it with Ctrl-D\n", what)
		}
	}
	// main catches SIGINT to cancel ctx; without this select, Ctrl-C could not stop a
	// read from the terminal.
	type result struct {
		b   []byte
		err error
	}
	done := make(chan result, 1)
	go func() {
		b, err := io.ReadAll(io.LimitReader(st.in, 1<<20))
		done <- result{b, err}
	}()
	var r result
	select {
	case r = <-done:
	case <-st.ctx.Done():
		return "", fmt.Errorf("reading %s from stdin: interrupted", what)
	}
	if r.err != nil {
		return "", fmt.Errorf("reading %s from stdin: %w", what, r.err)
	}
	s := strings.TrimSpace(string(r.b))
	if s == "" {
		return "", cli.NewError(cli.ExitError, fmt.Errorf("%s: stdin is empty", what))
	}
	return s, nil
}

// readFile returns the trimmed content of path ("-" = stdin).
func (st *streams) readFile(path, what string) (string, error) {
	if path == "-" {
		return st.readArg("-", what)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return "", fmt.Errorf("reading %s: %w", what, err)
	}
	s := strings.TrimSpace(string(b))
	if s == "" {
		return "", fmt.Errorf("%s: file %s is empty", what, path)
	}
	return s, nil
}

// dialectValue is --dialect: how a key's text becomes HMAC key bytes.
type dialectValue struct{ d sas.Dialect }

func (v *dialectValue) Set(s string) error {
	switch strings.ToLower(s) {
	case "iothub", "iot-hub", "dps":
		v.d = sas.DialectIoTHub
	case "servicebus", "service-bus", "eventhubs", "event-hubs":
		v.d = sas.DialectServiceBus
	default:
		return fmt.Errorf("%q: want iothub (key is base64, decoded before signing) or servicebus (Event Hubs/Service Bus: the key text is used as is)", s)
	}
	return nil
}

func (v *dialectValue) String() string {
	if v.d == sas.DialectServiceBus {
		return "servicebus"
	}
	return "iothub"
}

func (v *dialectValue) Type() string { return "dialect" }

// keyFlags are --key, --key-file and --dialect, shared by gen, verify and connstr build.
type keyFlags struct {
	key, keyFile string
	dialect      dialectValue
	fs           *pflag.FlagSet
}

func (k *keyFlags) register(fs *pflag.FlagSet, withDialect bool) {
	k.fs = fs
	fs.StringVar(&k.key, "key", "", "the key (base64 for IoT Hub and DPS; prefer --key-file or $"+envKey+" on shared machines)")
	fs.StringVar(&k.keyFile, "key-file", "", "read the key from `PATH` (- = stdin)")
	if withDialect {
		fs.Var(&k.dialect, "dialect", "iothub (key is base64-decoded) or servicebus (Event Hubs/Service Bus: raw key text)")
	}
}

// text returns the key text and where it came from ("--key", "--key-file k.txt",
// "$HUBKIT_SAS_KEY"); ok is false when no source was given and the variable is unset.
// useEnv is false when another source (a connection string) outranks the variable.
func (k *keyFlags) text(st *streams, useEnv bool) (key, source string, ok bool, err error) {
	switch {
	case k.fs.Changed("key") && k.fs.Changed("key-file"):
		return "", "", false, cli.Usagef("use either --key or --key-file, not both")
	case k.fs.Changed("key"):
		if k.key == "" {
			return "", "", false, cli.Usagef("--key is empty")
		}
		return strings.TrimSpace(k.key), "--key", true, nil
	case k.fs.Changed("key-file"):
		s, err := st.readFile(k.keyFile, "key file")
		return s, "--key-file " + k.keyFile, err == nil, err
	}
	// An empty variable counts as unset (HUBKIT_SAS_KEY= clears it).
	if v := strings.TrimSpace(os.Getenv(envKey)); v != "" && useEnv {
		return v, "$" + envKey, true, nil
	}
	return "", "", false, nil
}

// decodeKey turns key text into HMAC key bytes for dialect, with an error that names the
// source (and, for commands with --dialect, suggests the other dialect).
func decodeKey(text, source string, d sas.Dialect) ([]byte, error) {
	b, err := decodeKeyOnly(text, source, d)
	if err != nil && !errors.Is(err, errKeyLength) {
		return nil, cli.WithHints(err, "an Event Hubs or Service Bus key is used as raw text: add --dialect servicebus")
	}
	return b, err
}

// errKeyLength is wrapped by decodeKeyOnly's error for a key of a length IoT Hub does not allow.
var errKeyLength = errors.New("key length")

// keyLengthError is that error: its text is msg alone.
type keyLengthError struct{ msg string }

func (e keyLengthError) Error() string { return e.msg }
func (e keyLengthError) Unwrap() error { return errKeyLength }

// decodeKeyOnly is decodeKey for commands without --dialect. An IoT Hub key must be strict
// base64 of 16 to 64 bytes, as the hub requires of every key it holds.
func decodeKeyOnly(text, source string, d sas.Dialect) ([]byte, error) {
	if d == sas.DialectServiceBus {
		return []byte(text), nil
	}
	b, err := sas.DecodeKey(text)
	if err != nil {
		return nil, cli.WithHints(fmt.Errorf("%s: %s", source, strings.TrimPrefix(err.Error(), sas.ErrKey.Error()+": ")),
			"IoT Hub and DPS keys are standard base64, as shown in the portal (a 32-byte key is 44 characters ending in '=')")
	}
	if err := sas.ValidateKeyLength(b); err != nil {
		return nil, cli.WithHints(keyLengthError{source + ": " + strings.TrimPrefix(err.Error(), sas.ErrKey.Error()+": ")},
			"the hub holds no such key: copy the identity's key from its connection string, the portal or az iot hub device-identity show")
	}
	return b, nil
}

// trimPkg drops the "sas: " or "iothub: " prefix of library errors: the CLI has its own.
func trimPkg(err error) string {
	s := err.Error()
	for _, p := range []string{"sas: ", "iothub: "} {
		s = strings.TrimPrefix(s, p)
	}
	return s
}

// connStrFlag is -c/--connection-string ("-" = stdin).
type connStrFlag struct {
	s  string
	fs *pflag.FlagSet
}

func (c *connStrFlag) register(fs *pflag.FlagSet, usage string) {
	c.fs = fs
	fs.StringVarP(&c.s, "connection-string", "c", "", usage)
}

func (c *connStrFlag) given() bool { return c.fs.Changed("connection-string") }

// parse reads and parses the connection string; ok is false when -c was not given.
func (c *connStrFlag) parse(st *streams) (cs sas.ConnectionString, ok bool, err error) {
	if !c.given() {
		return cs, false, nil
	}
	s, err := st.readArg(c.s, "connection string")
	if err != nil {
		return cs, false, err
	}
	cs, err = sas.ParseConnectionString(s)
	if err != nil {
		return cs, false, connStrError(s, err)
	}
	return cs, true, nil
}

// connStrError explains a connection string that does not parse.
func connStrError(s string, err error) error {
	var hints []string
	switch {
	case strings.HasPrefix(s, sas.Prefix):
		hints = append(hints, "this is a SAS token, not a connection string: try 'sastool decode'")
	case strings.Count(s, ";") == 0 && strings.Count(s, "=") <= 1:
		hints = append(hints, "a connection string looks like HostName=<hub>.azure-devices.net;DeviceId=<id>;SharedAccessKey=<base64>")
	case strings.Contains(s, "&"):
		hints = append(hints, "connection string fields are separated by ';', not '&'")
	}
	return cli.WithHints(cleanError{err}, hints...)
}

// cleanError shows a library error without its package prefix but keeps it for errors.Is.
type cleanError struct{ err error }

func (e cleanError) Error() string { return trimPkg(e.err) }
func (e cleanError) Unwrap() error { return e.err }
