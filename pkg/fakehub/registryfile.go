package fakehub

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"

	yamlv3 "go.yaml.in/yaml/v3"
	"sigs.k8s.io/yaml"

	"github.com/hubkit/hubkit/pkg/iothub"
	"github.com/hubkit/hubkit/pkg/sas"
)

// The devices file (YAML or JSON): IoT Hub's own JSON shapes (iothub.Device, with an extra
// "modules" list of module identities, and iothub.AccessPolicy), so that the output of `az iot
// hub device-identity list` loads as is (a bare top-level array is the device list) and
// policies as `az iot hub policy list` prints them.
type registryFile struct {
	HostName string            `json:"hostname"`
	Devices  []json.RawMessage `json:"devices"`
	Policies []json.RawMessage `json:"policies"`
	// Certificates are CA certificates for certificateAuthority identities (a hubkit
	// extension: the real hub keeps them in Azure Resource Manager).
	Certificates []fileCertificate `json:"certificates"`
}

// fileCertificate is a CA certificate entry of the devices file: its name, its PEM text
// (or base64 DER) and whether it is verified (as az's --verified on upload).
type fileCertificate struct {
	Name        string `json:"name"`
	Certificate string `json:"certificate"`
	IsVerified  bool   `json:"isVerified"`
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
	if err := checkFields(data); err != nil {
		return RegistryFile{}, fmt.Errorf("devices file: %w", err)
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
			_ = reg.RemovePolicy(p.KeyName)
		}
	}
	for i, raw := range f.Policies {
		var name struct {
			KeyName string `json:"keyName"`
		}
		_ = json.Unmarshal(raw, &name)
		where := fmt.Sprintf("policies[%d] (keyName %q)", i, name.KeyName)
		var p iothub.AccessPolicy
		if err := strictJSON(raw, &p); err != nil {
			if !strings.HasPrefix(err.Error(), "field ") { // not a type error: the rights did not parse
				err = fmt.Errorf("rights: %w", err)
			}
			return RegistryFile{}, fmt.Errorf("%s: %w", where, err)
		}
		if p.KeyName == "" {
			return RegistryFile{}, fmt.Errorf("policies[%d]: keyName: missing", i)
		}
		if err := checkKeys(p.PrimaryKey, p.SecondaryKey, ""); err != nil {
			return RegistryFile{}, fmt.Errorf("%s: %w", where, err)
		}
		if _, err := reg.SetPolicy(p); err != nil {
			return RegistryFile{}, fmt.Errorf("%s: %w", where, err)
		}
	}
	for i, raw := range f.Devices {
		var d iothub.Device
		var mods struct {
			Modules []json.RawMessage `json:"modules"`
		}
		if err := strictJSON(raw, &d); err != nil {
			return RegistryFile{}, fmt.Errorf("devices[%d]: %w", i, err)
		}
		if err := strictJSON(raw, &mods); err != nil {
			return RegistryFile{}, fmt.Errorf("devices[%d]: %w", i, err)
		}
		where := fmt.Sprintf("devices[%d] (deviceId %q)", i, d.DeviceID)
		if d.DeviceID == "" {
			return RegistryFile{}, fmt.Errorf("devices[%d]: deviceId: missing", i)
		}
		if d.ModuleID != "" {
			return RegistryFile{}, fmt.Errorf("%s: moduleId: a device entry cannot be a module; list modules under the device's modules", where)
		}
		if _, err := iothub.ParseDeviceStatus(string(d.Status)); err != nil {
			return RegistryFile{}, fmt.Errorf("%s: status: %q: want enabled or disabled", where, d.Status)
		}
		if err := checkAuth(d.Authentication); err != nil {
			return RegistryFile{}, fmt.Errorf("%s: %w", where, err)
		}
		if _, err := reg.Add(d); err != nil {
			if errors.Is(err, iothub.ErrDeviceAlreadyExists) {
				return RegistryFile{}, fmt.Errorf("%s: deviceId: duplicate", where)
			}
			return RegistryFile{}, fmt.Errorf("%s: %w", where, err)
		}
		for j, mraw := range mods.Modules {
			var m iothub.Device
			if err := strictJSON(mraw, &m); err != nil {
				return RegistryFile{}, fmt.Errorf("%s: modules[%d]: %w", where, j, err)
			}
			mwhere := fmt.Sprintf("%s: modules[%d] (moduleId %q)", where, j, m.ModuleID)
			if m.ModuleID == "" {
				return RegistryFile{}, fmt.Errorf("%s: modules[%d]: moduleId: missing", where, j)
			}
			if m.DeviceID != "" && m.DeviceID != d.DeviceID {
				return RegistryFile{}, fmt.Errorf("%s: deviceId: %q is not the enclosing device", mwhere, m.DeviceID)
			}
			m.DeviceID = d.DeviceID
			if err := checkAuth(m.Authentication); err != nil {
				return RegistryFile{}, fmt.Errorf("%s: %w", mwhere, err)
			}
			if _, err := reg.Add(m); err != nil {
				if errors.Is(err, iothub.ErrModuleAlreadyExists) {
					return RegistryFile{}, fmt.Errorf("%s: moduleId: duplicate", mwhere)
				}
				return RegistryFile{}, fmt.Errorf("%s: %w", mwhere, err)
			}
		}
	}
	for i, c := range f.Certificates {
		where := fmt.Sprintf("certificates[%d] (name %q)", i, c.Name)
		if c.Name == "" {
			return RegistryFile{}, fmt.Errorf("certificates[%d]: name: missing", i)
		}
		if _, err := reg.Certificate(c.Name); err == nil {
			return RegistryFile{}, fmt.Errorf("%s: name: duplicate", where)
		}
		if _, err := reg.PutCertificate(c.Name, c.Certificate, c.IsVerified, ""); err != nil {
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

func checkAuth(a iothub.Authentication) error {
	t, err := iothub.ParseAuthType(string(a.Type))
	if err != nil {
		return err
	}
	switch {
	case t == iothub.AuthNone:
		return fmt.Errorf("authentication.type: %q is not supported (fakehub does %s, %s and %s)", a.Type, iothub.AuthSAS, iothub.AuthSelfSigned, iothub.AuthCertificateAuthority)
	case a.IsX509():
		for _, f := range []struct{ name, v string }{{"primaryThumbprint", a.X509Thumbprint.PrimaryThumbprint}, {"secondaryThumbprint", a.X509Thumbprint.SecondaryThumbprint}} {
			if f.v == "" {
				continue
			}
			if _, err := iothub.NormalizeThumbprint(f.v); err != nil {
				return fmt.Errorf("authentication.x509Thumbprint.%s: %w", f.name, err)
			}
		}
		return nil
	}
	return checkKeys(a.SymmetricKey.PrimaryKey, a.SymmetricKey.SecondaryKey, "authentication.symmetricKey.")
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

// The fields a devices file may hold: fakehub's own, and every field of IoT
// Hub's device, module and twin JSON (the service REST API's shapes, which
// "az iot hub device-identity list", "module-identity list" and "policy list"
// print), so that their output loads as is while a typo ("primaryKye",
// "statuss") is an error. Objects under the opaque keys (capabilities, tags,
// properties, x509Thumbprint, ...) are not checked.
var (
	fileTopFields    = []string{"hostname", "devices", "policies", "certificates", "dps"}
	fileDeviceFields = []string{"deviceId", "status", "generationId", "authentication", "modules",
		"etag", "deviceEtag", "connectionState", "statusReason", "connectionStateUpdatedTime", "statusUpdatedTime",
		"statusUpdateTime", "lastActivityTime", "cloudToDeviceMessageCount", "capabilities", "deviceScope",
		"parentScopes", "authenticationType", "x509Thumbprint", "modelId", "version", "properties", "tags",
		"configurations", "moduleId", "managedBy"}
	fileModuleFields = []string{"moduleId", "deviceId", "generationId", "authentication", "managedBy",
		"etag", "deviceEtag", "connectionState", "connectionStateUpdatedTime", "lastActivityTime",
		"cloudToDeviceMessageCount", "status", "statusUpdateTime", "authenticationType", "x509Thumbprint",
		"modelId", "version", "properties", "tags"}
	fileAuthFields   = []string{"type", "symmetricKey", "x509Thumbprint"}
	fileKeyFields    = []string{"primaryKey", "secondaryKey"}
	filePolicyFields = []string{"keyName", "primaryKey", "secondaryKey", "rights"}
	fileCertFields   = []string{"name", "certificate", "isVerified"}
)

// checkFields reports the first field of the devices file that is none of
// the known ones, with its line and the known field it most resembles.
func checkFields(data []byte) error {
	var doc yamlv3.Node
	if err := yamlv3.Unmarshal(data, &doc); err != nil || len(doc.Content) == 0 {
		return nil // the decoder reports syntax errors
	}
	root := doc.Content[0]
	if root.Kind == yamlv3.SequenceNode {
		return checkList(root, "devices", checkDevice)
	}
	return checkMapping(root, "", fileTopFields, func(key string, v *yamlv3.Node) error {
		switch key {
		case "devices":
			return checkList(v, "devices", checkDevice)
		case "policies":
			return checkList(v, "policies", func(n *yamlv3.Node, path string) error {
				return checkMapping(n, path, filePolicyFields, nil)
			})
		case "certificates":
			return checkList(v, "certificates", func(n *yamlv3.Node, path string) error {
				return checkMapping(n, path, fileCertFields, nil)
			})
		case "dps":
			return checkMapping(v, "dps", fileDPSFields, nil) // its entries: LoadDPS
		}
		return nil
	})
}

func checkDevice(n *yamlv3.Node, path string) error {
	return checkMapping(n, path, fileDeviceFields, func(key string, v *yamlv3.Node) error {
		switch key {
		case "authentication":
			return checkAuthFields(v, path+".authentication")
		case "modules":
			return checkList(v, path+".modules", checkModule)
		}
		return nil
	})
}

func checkModule(n *yamlv3.Node, path string) error {
	return checkMapping(n, path, fileModuleFields, func(key string, v *yamlv3.Node) error {
		if key == "authentication" {
			return checkAuthFields(v, path+".authentication")
		}
		return nil
	})
}

func checkAuthFields(n *yamlv3.Node, path string) error {
	return checkMapping(n, path, fileAuthFields, func(key string, v *yamlv3.Node) error {
		if key == "symmetricKey" {
			return checkMapping(v, path+".symmetricKey", fileKeyFields, nil)
		}
		return nil
	})
}

func checkList(n *yamlv3.Node, path string, each func(*yamlv3.Node, string) error) error {
	if n.Kind != yamlv3.SequenceNode {
		return nil // a type error the decoder reports
	}
	for i, item := range n.Content {
		if err := each(item, fmt.Sprintf("%s[%d]", path, i)); err != nil {
			return err
		}
	}
	return nil
}

// checkMapping checks the keys of a mapping against known, and calls sub
// for each known key with its value.
func checkMapping(n *yamlv3.Node, path string, known []string, sub func(string, *yamlv3.Node) error) error {
	if n.Kind != yamlv3.MappingNode {
		return nil
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		if !slices.Contains(known, k.Value) {
			where := path
			if where == "" {
				where = "top level"
			}
			msg := fmt.Sprintf("line %d: %s: unknown field %q", k.Line, where, clip(k.Value))
			if s := closestField(k.Value, known); s != "" {
				msg += fmt.Sprintf(" (did you mean %s?)", s)
			} else {
				msg += " (want one of " + strings.Join(known[:min(len(known), 6)], ", ") + ", ...)"
			}
			return errors.New(msg)
		}
		if sub != nil {
			if err := sub(k.Value, v); err != nil {
				return err
			}
		}
	}
	return nil
}

// closestField returns the known field name within two edits of name (or
// equal but for case), the first of equally close ones, or "".
func closestField(name string, known []string) string {
	best, bestD := "", 3
	for _, k := range known {
		if strings.EqualFold(k, name) {
			return k
		}
		if d := editDistance(strings.ToLower(name), strings.ToLower(k)); d < bestD {
			best, bestD = k, d
		}
	}
	return best
}

// editDistance is the Levenshtein distance of two short strings.
func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur := make([]int, len(b)+1)
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev = cur
	}
	return prev[len(b)]
}

// WriteRegistry writes r as a devices file (JSON) that LoadRegistry reads back with the same
// identities, keys, generation IDs, statuses and policies: fakehub's state folder keeps a hub's
// keys across restarts with it. The file holds keys: write it where only its owner can read.
func WriteRegistry(w io.Writer, hostName string, r *Registry) error {
	var out struct {
		HostName string                       `json:"hostname,omitempty"`
		Devices  []map[string]json.RawMessage `json:"devices"`
		Policies []iothub.AccessPolicy        `json:"policies"`
	}
	out.HostName = hostName
	out.Devices = []map[string]json.RawMessage{}
	for _, d := range r.Devices() {
		// iothub.Device has its own MarshalJSON: add "modules" to its object.
		b, err := json.Marshal(stored(d))
		if err != nil {
			return err
		}
		var m map[string]json.RawMessage
		if err := json.Unmarshal(b, &m); err != nil {
			return err
		}
		if ms, _ := r.Modules(d.DeviceID); len(ms) > 0 { // removed meanwhile: none
			if m["modules"], err = json.Marshal(storedAll(ms)); err != nil {
				return err
			}
		}
		out.Devices = append(out.Devices, m)
	}
	out.Policies = r.Policies()
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(out)
}

// stored keeps what the registry keeps (no live fields, no etag: it is derived).
func stored(d iothub.Device) iothub.Device {
	return iothub.Device{DeviceID: d.DeviceID, ModuleID: d.ModuleID, GenerationID: d.GenerationID, Status: d.Status,
		StatusReason: d.StatusReason, ManagedBy: d.ManagedBy, Authentication: d.Authentication, StatusUpdatedTime: d.StatusUpdatedTime}
}

func storedAll(ds []iothub.Device) []iothub.Device {
	out := make([]iothub.Device, 0, len(ds))
	for _, d := range ds {
		out = append(out, stored(d))
	}
	return out
}
