package fakehub

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"

	"sigs.k8s.io/yaml"

	"github.com/hubkit/hubkit/pkg/sas"
)

// The devices file (YAML or JSON): IoT Hub's own JSON shapes, so that the
// output of `az iot hub device-identity list` loads as is (a bare top-level
// array is the device list) and policies as `az iot hub policy list` prints
// them.
type registryFile struct {
	HostName string       `json:"hostname"`
	Devices  []fileDevice `json:"devices"`
	Policies []filePolicy `json:"policies"`
}

type fileAuth struct {
	Type         string `json:"type"`
	SymmetricKey *Keys  `json:"symmetricKey"`
}

type fileDevice struct {
	DeviceID       string       `json:"deviceId"`
	Status         string       `json:"status"`
	GenerationID   string       `json:"generationId"`
	Authentication fileAuth     `json:"authentication"`
	Modules        []fileModule `json:"modules"`
}

type fileModule struct {
	ModuleID       string   `json:"moduleId"`
	DeviceID       string   `json:"deviceId"`
	GenerationID   string   `json:"generationId"`
	Authentication fileAuth `json:"authentication"`
}

type filePolicy struct {
	KeyName      string `json:"keyName"`
	PrimaryKey   string `json:"primaryKey"`
	SecondaryKey string `json:"secondaryKey"`
	Rights       string `json:"rights"`
}

// RegistryFile is the content of a devices file.
type RegistryFile struct {
	HostName string // "" when the file has no hostname
	Registry *Registry
}

// LoadRegistry reads a devices file (YAML or JSON) with the top-level keys
// hostname, devices and policies (or a bare array of devices). Missing keys
// are generated from rnd (nil: crypto/rand). When the file lists policies,
// they replace the built-in ones. Errors name the entry and the field, e.g.
// `devices[2] (deviceId "dev3"): authentication.symmetricKey.primaryKey: ...`.
func LoadRegistry(r io.Reader, rnd io.Reader) (RegistryFile, error) {
	data, err := io.ReadAll(r)
	if err != nil {
		return RegistryFile{}, err
	}
	// JSON is YAML, but converting a large JSON file through YAML's node
	// tree cost ~4 KiB of garbage per device (a 10,000-device file left the
	// hub at 55 MiB of RSS): JSON is decoded as it is.
	js := data
	if !json.Valid(data) {
		if js, err = yaml.YAMLToJSON(data); err != nil {
			return RegistryFile{}, fmt.Errorf("devices file: %w", err)
		}
	}
	var f registryFile
	trimmed := bytes.TrimSpace(js)
	switch {
	case bytes.HasPrefix(trimmed, []byte("[")):
		err = strictJSON(js, &f.Devices)
	case bytes.Equal(trimmed, []byte("null")):
	default:
		err = strictJSON(js, &f)
	}
	if err != nil {
		return RegistryFile{}, fmt.Errorf("devices file: %w", err)
	}
	reg := NewRegistry(rnd)
	if len(f.Policies) > 0 {
		for _, p := range reg.Policies() {
			_ = reg.RemovePolicy(p.Name)
		}
	}
	for i, p := range f.Policies {
		where := fmt.Sprintf("policies[%d] (keyName %q)", i, p.KeyName)
		if p.KeyName == "" {
			return RegistryFile{}, fmt.Errorf("policies[%d]: keyName: missing", i)
		}
		rights, err := ParseRights(p.Rights)
		if err != nil {
			return RegistryFile{}, fmt.Errorf("%s: rights: %w", where, err)
		}
		if err := checkKeys(p.PrimaryKey, p.SecondaryKey, ""); err != nil {
			return RegistryFile{}, fmt.Errorf("%s: %w", where, err)
		}
		if _, err := reg.SetPolicy(Policy{Name: p.KeyName, Rights: rights, Keys: Keys{p.PrimaryKey, p.SecondaryKey}}); err != nil {
			return RegistryFile{}, fmt.Errorf("%s: %w", where, err)
		}
	}
	for i, fd := range f.Devices {
		where := fmt.Sprintf("devices[%d] (deviceId %q)", i, fd.DeviceID)
		if fd.DeviceID == "" {
			return RegistryFile{}, fmt.Errorf("devices[%d]: deviceId: missing", i)
		}
		d := Device{ID: fd.DeviceID, Status: Status(fd.Status), GenerationID: fd.GenerationID}
		keys, err := fileKeys(fd.Authentication)
		if err != nil {
			return RegistryFile{}, fmt.Errorf("%s: %w", where, err)
		}
		d.Keys = keys
		switch strings.ToLower(fd.Status) {
		case "", "enabled", "disabled":
		default:
			return RegistryFile{}, fmt.Errorf("%s: status: %q: want enabled or disabled", where, fd.Status)
		}
		for j, fm := range fd.Modules {
			mwhere := fmt.Sprintf("%s: modules[%d] (moduleId %q)", where, j, fm.ModuleID)
			if fm.ModuleID == "" {
				return RegistryFile{}, fmt.Errorf("%s: modules[%d]: moduleId: missing", where, j)
			}
			if fm.DeviceID != "" && fm.DeviceID != fd.DeviceID {
				return RegistryFile{}, fmt.Errorf("%s: deviceId: %q is not the enclosing device", mwhere, fm.DeviceID)
			}
			mk, err := fileKeys(fm.Authentication)
			if err != nil {
				return RegistryFile{}, fmt.Errorf("%s: %w", mwhere, err)
			}
			d.Modules = append(d.Modules, Module{ID: fm.ModuleID, Keys: mk, GenerationID: fm.GenerationID})
		}
		if _, err := reg.AddDevice(d); err != nil {
			if errors.Is(err, ErrExists) {
				return RegistryFile{}, fmt.Errorf("%s: deviceId: duplicate (or duplicate moduleId): %w", where, err)
			}
			return RegistryFile{}, fmt.Errorf("%s: %w", where, err)
		}
	}
	return RegistryFile{HostName: f.HostName, Registry: reg}, nil
}

// strictJSON decodes like json.Unmarshal (unknown fields ignored, as az
// output has many) but reports the byte offset of type errors.
func strictJSON(data []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(data))
	if err := dec.Decode(v); err != nil {
		var te *json.UnmarshalTypeError
		if errors.As(err, &te) {
			msg := fmt.Sprintf("field %s: got a %s, want a %s", te.Field, te.Value, te.Type)
			if te.Value == "bool" || te.Value == "number" {
				msg += " (quote the value: YAML reads yes/no/on/off/true as booleans and digits as numbers)"
			}
			return errors.New(msg)
		}
		return err
	}
	return nil
}

func fileKeys(a fileAuth) (Keys, error) {
	if t := strings.ToLower(a.Type); t != "" && t != "sas" {
		return Keys{}, fmt.Errorf("authentication.type: %q is not supported (fakehub does symmetric keys only)", a.Type)
	}
	if a.SymmetricKey == nil {
		return Keys{}, nil
	}
	k := *a.SymmetricKey
	return k, checkKeys(k.Primary, k.Secondary, "authentication.symmetricKey.")
}

func checkKeys(primary, secondary, prefix string) error {
	for _, f := range []struct{ name, v string }{{"primaryKey", primary}, {"secondaryKey", secondary}} {
		if f.v == "" {
			continue
		}
		if _, err := sas.DecodeKey(f.v); err != nil {
			return fmt.Errorf("%s%s: %w", prefix, f.name, err)
		}
	}
	return nil
}
