package dps

import (
	"fmt"
	"strings"
)

// Rights is a set of DPS shared access policy permissions (Microsoft Learn, "Control access
// to Azure IoT Hub Device Provisioning Service": Device Provisioning Service permissions).
type Rights uint8

// The permissions a DPS shared access policy can grant.
const (
	ServiceConfig           Rights = 1 << iota // change the service configuration
	EnrollmentRead                             // read individual enrollments and enrollment groups
	EnrollmentWrite                            // write them
	RegistrationStatusRead                     // read device registration records
	RegistrationStatusWrite                    // delete them
	DeviceConnect                              // (listed by az; the device API is authorized by attestation)
)

// AllRights is every permission: what provisioningserviceowner has.
const AllRights = ServiceConfig | EnrollmentRead | EnrollmentWrite | RegistrationStatusRead | RegistrationStatusWrite | DeviceConnect

var rightNames = [...]string{"ServiceConfig", "EnrollmentRead", "EnrollmentWrite", "RegistrationStatusRead", "RegistrationStatusWrite", "DeviceConnect"}

// String lists the rights as `az iot dps policy list` prints them; the empty set is "none".
func (r Rights) String() string {
	var names []string
	for i, n := range rightNames {
		if r&(1<<i) != 0 {
			names = append(names, n)
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
		if f == "" || strings.EqualFold(f, "none") {
			continue
		}
		i := indexFold(f)
		if i < 0 {
			return 0, fmt.Errorf("unknown DPS right %q (want %s)", f, AllRights)
		}
		r |= 1 << i
	}
	return r, nil
}

func indexFold(name string) int {
	for i, n := range rightNames {
		if strings.EqualFold(n, name) {
			return i
		}
	}
	return -1
}

// MarshalText writes String().
func (r Rights) MarshalText() ([]byte, error) { return []byte(r.String()), nil }

// UnmarshalText parses a list of right names (ParseRights).
func (r *Rights) UnmarshalText(b []byte) error {
	v, err := ParseRights(string(b))
	*r = v
	return err
}

// AccessPolicy is a DPS shared access policy, in the shape `az iot dps policy list` prints.
type AccessPolicy struct {
	KeyName      string `json:"keyName"`
	PrimaryKey   string `json:"primaryKey"`
	SecondaryKey string `json:"secondaryKey"`
	Rights       Rights `json:"rights"`
}

// OwnerPolicy is the name of the policy a new DPS has, with every permission.
const OwnerPolicy = "provisioningserviceowner"
