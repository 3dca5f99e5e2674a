package fakehub

import (
	"encoding/json"
	"fmt"
	"io"

	"sigs.k8s.io/yaml"

	"github.com/hubkit/hubkit/pkg/iothub/dps"
)

// dpsFile is the "dps" section of a devices file: the service API's own JSON shapes
// (dps.Enrollment, dps.EnrollmentGroup, dps.AccessPolicy), so that `az iot dps enrollment
// list` output pastes in as is.
type dpsFile struct {
	IDScope          string            `json:"idScope"`
	HostName         string            `json:"hostname"`
	Enrollments      []json.RawMessage `json:"enrollments"`
	EnrollmentGroups []json.RawMessage `json:"enrollmentGroups"`
	Policies         []json.RawMessage `json:"policies"`
}

// fileDPSFields are the keys of a devices file's "dps" section.
var fileDPSFields = []string{"idScope", "hostname", "enrollments", "enrollmentGroups", "policies"}

// LoadDPS reads the "dps" section of a devices file (YAML or JSON) into DPSOptions: idScope,
// hostname, enrollments, enrollmentGroups and policies. It returns nil when the file has no
// such section. Errors name the entry and the field, e.g. `dps.enrollments[1]
// (registrationId "dev-2"): field attestation.type: ...`; enrollments are validated when
// the Server starts.
func LoadDPS(r io.Reader) (*DPSOptions, error) {
	data, err := io.ReadAll(r)
	if err != nil {
		return nil, err
	}
	js, err := yaml.YAMLToJSON(data)
	if err != nil {
		return nil, fmt.Errorf("devices file: %w", err)
	}
	var top map[string]json.RawMessage
	if json.Unmarshal(js, &top) != nil { // a bare device list, or null: no DPS
		return nil, nil
	}
	raw, ok := top["dps"]
	if !ok || string(raw) == "null" {
		return nil, nil
	}
	var f dpsFile
	if err := strictJSON(raw, &f); err != nil {
		return nil, fmt.Errorf("devices file: dps: %w", err)
	}
	o := &DPSOptions{IDScope: f.IDScope, HostName: f.HostName}
	if o.IDScope != "" {
		if err := dps.ValidateIDScope(o.IDScope); err != nil {
			return nil, fmt.Errorf("devices file: dps.idScope: %w", err)
		}
	}
	for i, b := range f.Enrollments {
		var en dps.Enrollment
		if err := strictJSON(b, &en); err != nil {
			return nil, fmt.Errorf("devices file: dps.enrollments[%d]: %w", i, err)
		}
		if en.RegistrationID == "" {
			return nil, fmt.Errorf("devices file: dps.enrollments[%d]: registrationId: missing", i)
		}
		o.Enrollments = append(o.Enrollments, en)
	}
	for i, b := range f.EnrollmentGroups {
		var g dps.EnrollmentGroup
		if err := strictJSON(b, &g); err != nil {
			return nil, fmt.Errorf("devices file: dps.enrollmentGroups[%d]: %w", i, err)
		}
		if g.EnrollmentGroupID == "" {
			return nil, fmt.Errorf("devices file: dps.enrollmentGroups[%d]: enrollmentGroupId: missing", i)
		}
		o.Groups = append(o.Groups, g)
	}
	for i, b := range f.Policies {
		var p dps.AccessPolicy
		if err := strictJSON(b, &p); err != nil {
			return nil, fmt.Errorf("devices file: dps.policies[%d]: %w", i, err)
		}
		if p.KeyName == "" {
			return nil, fmt.Errorf("devices file: dps.policies[%d]: keyName: missing", i)
		}
		o.Policies = append(o.Policies, p)
	}
	return o, nil
}
