package iothub

import (
	"fmt"
	"strings"
)

// Rights is a set of shared access policy permissions.
type Rights uint8

// The permissions a shared access policy can grant (docs/iothub-behavior.md §2.4).
const (
	RegistryRead   Rights = 1 << iota // read the identity registry
	RegistryWrite                     // read and write the identity registry (it includes RegistryRead: Grants)
	ServiceConnect                    // cloud-side operations: twins, methods, C2D, telemetry
	DeviceConnect                     // open device connections (token-service pattern)
)

var rightNames = [...]struct {
	r    Rights
	name string
}{{RegistryRead, "RegistryRead"}, {RegistryWrite, "RegistryWrite"}, {ServiceConnect, "ServiceConnect"}, {DeviceConnect, "DeviceConnect"}}

// AllRights lists the right names, as ParseRights accepts them.
const AllRights = "RegistryRead, RegistryWrite, ServiceConnect, DeviceConnect"

// String lists the rights the way `az iot hub policy list` prints them
// ("RegistryWrite, ServiceConnect, DeviceConnect"); the empty set is "none".
func (r Rights) String() string {
	var names []string
	for _, n := range rightNames {
		if r&n.r != 0 {
			names = append(names, n.name)
		}
	}
	if len(names) == 0 {
		return "none"
	}
	return strings.Join(names, ", ")
}

// ParseRights parses a comma-separated list of right names (case-insensitive; "" and "none"
// are the empty set): the inverse of String.
func ParseRights(s string) (Rights, error) {
	var r Rights
	for f := range strings.SplitSeq(s, ",") {
		f = strings.TrimSpace(f)
		if f == "" || (strings.EqualFold(f, "none") && strings.TrimSpace(s) == f) {
			continue
		}
		found := false
		for _, n := range rightNames {
			if strings.EqualFold(n.name, f) {
				r |= n.r
				found = true
			}
		}
		if !found {
			return 0, fmt.Errorf("unknown right %q (want %s)", f, AllRights)
		}
	}
	return r, nil
}

// Grants reports whether a policy holding r may do what needs need. RegistryWrite includes
// RegistryRead: Microsoft documents it as "read and write access to the identity registry",
// the portal ticks Registry Read by itself when Registry Write is chosen, and the built-in
// iothubowner and registryReadWrite policies hold RegistryWrite without RegistryRead
// (docs/iothub-behavior.md §2.4).
func (r Rights) Grants(need Rights) bool {
	if r&RegistryWrite != 0 {
		r |= RegistryRead
	}
	return r&need == need
}

// MarshalText writes String(), so that JSON and YAML carry rights as az prints them.
func (r Rights) MarshalText() ([]byte, error) { return []byte(r.String()), nil }

// UnmarshalText parses a list of right names (ParseRights).
func (r *Rights) UnmarshalText(b []byte) error {
	v, err := ParseRights(string(b))
	if err != nil {
		return err
	}
	*r = v
	return nil
}

// AccessPolicy is a shared access policy of a hub, in the shape `az iot hub policy list`
// prints (IoT Hub's SharedAccessSignatureAuthorizationRule): keys in base64.
type AccessPolicy struct {
	KeyName      string `json:"keyName"`
	PrimaryKey   string `json:"primaryKey"`
	SecondaryKey string `json:"secondaryKey"`
	Rights       Rights `json:"rights"`
}

// BuiltinPolicies returns the policies a new IoT hub has, without keys, with the rights
// `az iot hub policy list` shows for them: iothubowner (RegistryWrite, ServiceConnect,
// DeviceConnect: every right, since RegistryWrite includes RegistryRead), service
// (ServiceConnect), device (DeviceConnect), registryRead (RegistryRead) and registryReadWrite
// (RegistryWrite) (docs/iothub-behavior.md §2.4).
func BuiltinPolicies() []AccessPolicy {
	return []AccessPolicy{
		{KeyName: "iothubowner", Rights: RegistryWrite | ServiceConnect | DeviceConnect},
		{KeyName: "service", Rights: ServiceConnect},
		{KeyName: "device", Rights: DeviceConnect},
		{KeyName: "registryRead", Rights: RegistryRead},
		{KeyName: "registryReadWrite", Rights: RegistryWrite},
	}
}
