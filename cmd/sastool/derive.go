package main

import (
	"encoding/base64"
	"fmt"
	"strings"

	"github.com/spf13/cobra"

	"github.com/hubkit/hubkit/internal/cli"
	"github.com/hubkit/hubkit/pkg/sas"
)

type deriveOptions struct {
	groupKey, groupKeyFile string
	registrationID         string
	json                   bool
}

const deriveLong = `Print the device key that the Device Provisioning Service (DPS) derives for a device in a
symmetric-key group enrollment: base64(HMAC-SHA256(base64decode(groupKey), registrationId)),
the same as "az iot dps enrollment-group compute-device-key". The device signs its DPS
registration token (and, once assigned, its IoT Hub tokens) with this key.

The group key comes from --group-key or --group-key-file (- = stdin); prefer the file on a
shared machine.`

const deriveExample = `  # the documented DPS example
  sastool derive --group-key 8isrFI1sGsIlvvFSSFRiMfCNzv21fjbE/+ah/lSh3lF8e2YG1Te7w1KpZhJFFXJrqYKi9yegxkqIChbqOS9Egw== \
    --registration-id sn-007-888-abc-mac-a1-b2-c3-d4-e5-f6

  # then sign a registration token with it
  sastool derive --group-key-file group.key --registration-id sn-42 > sn-42.key
  sastool gen --uri 0ne00000000/registrations/sn-42 --policy registration --key-file sn-42.key`

func newDeriveCmd(st *streams) *cobra.Command {
	o := &deriveOptions{}
	cmd := &cobra.Command{
		Use:     "derive --group-key KEY --registration-id ID",
		Short:   "Print the DPS device key derived from a group enrollment key",
		Long:    deriveLong,
		Example: deriveExample,
		Args:    noArgs,
		PreRunE: checkFlags(exclusive("group-key", "group-key-file"), oneOf("group-key", "group-key-file"), oneOf("registration-id")),
		RunE:    func(cmd *cobra.Command, _ []string) error { return runDerive(st, cmd, o) },
	}
	fs := cmd.Flags()
	fs.StringVar(&o.groupKey, "group-key", "", "the enrollment group's symmetric `KEY` (base64)")
	fs.StringVar(&o.groupKeyFile, "group-key-file", "", "read the group key from `PATH` (- = stdin)")
	fs.StringVar(&o.registrationID, "registration-id", "", "the device's registration `ID`")
	fs.BoolVar(&o.json, "json", false, `print {"registrationId":...,"deviceKey":...}`)
	sortFlags(fs)
	return cmd
}

func runDerive(st *streams, cmd *cobra.Command, o *deriveOptions) error {
	text, source := strings.TrimSpace(o.groupKey), "--group-key"
	if cmd.Flags().Changed("group-key-file") {
		s, err := st.readFile(o.groupKeyFile, "group key file")
		if err != nil {
			return err
		}
		text, source = s, "--group-key-file "+o.groupKeyFile
	}
	if o.registrationID == "" {
		return cli.Usagef("--registration-id is empty")
	}
	group, err := decodeKeyOnly(text, source, sas.DialectIoTHub)
	if err != nil {
		return err
	}
	if strings.TrimSpace(o.registrationID) != o.registrationID {
		fmt.Fprintln(st.err, "sastool: hint: --registration-id has leading or trailing spaces; they are part of the derived key")
	}
	dk := base64.StdEncoding.EncodeToString(sas.DeriveDeviceKey(group, o.registrationID))
	if o.json {
		return writeJSON(st.out, struct {
			RegistrationID string `json:"registrationId"`
			DeviceKey      string `json:"deviceKey"`
		}{o.registrationID, dk})
	}
	_, err = fmt.Fprintln(st.out, dk)
	return err
}
