package fakehub

import (
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"sync"

	"github.com/hubkit/hubkit/pkg/iothub"
	"github.com/hubkit/hubkit/pkg/sas"
)

// Status is a device's registry status: enabled devices may connect,
// disabled ones are refused (and dropped when disabled while connected).
type Status string

// Device statuses, spelled as IoT Hub's device identity JSON spells them.
const (
	StatusEnabled  Status = "enabled"
	StatusDisabled Status = "disabled"
)

// Keys is a pair of symmetric keys, base64 as in connection strings.
type Keys struct {
	Primary   string `json:"primaryKey"`
	Secondary string `json:"secondaryKey"`
}

// Device is a device identity. Values returned by the registry are copies.
type Device struct {
	ID           string
	Status       Status
	Keys         Keys
	GenerationID string   // iothub-connection-auth-generation-id; generated when empty
	Modules      []Module // sorted by ID
}

// Module is a module identity of a device.
type Module struct {
	DeviceID     string
	ID           string
	Keys         Keys
	GenerationID string
}

// Rights are the permissions of a shared access policy.
type Rights uint8

// Policy rights, as IoT Hub names them.
const (
	RegistryRead Rights = 1 << iota
	RegistryWrite
	ServiceConnect
	DeviceConnect
)

var rightNames = []struct {
	r    Rights
	name string
}{{RegistryRead, "RegistryRead"}, {RegistryWrite, "RegistryWrite"}, {ServiceConnect, "ServiceConnect"}, {DeviceConnect, "DeviceConnect"}}

// String returns the rights the way `az iot hub policy list` prints them:
// "RegistryWrite, ServiceConnect, DeviceConnect".
func (r Rights) String() string {
	var names []string
	for _, n := range rightNames {
		if r&n.r != 0 {
			names = append(names, n.name)
		}
	}
	return strings.Join(names, ", ")
}

// ParseRights parses a comma-separated list of right names (case-insensitive).
func ParseRights(s string) (Rights, error) {
	var r Rights
	for f := range strings.SplitSeq(s, ",") {
		f = strings.TrimSpace(f)
		if f == "" {
			continue
		}
		i := slices.IndexFunc(rightNames, func(n struct {
			r    Rights
			name string
		}) bool {
			return strings.EqualFold(n.name, f)
		})
		if i < 0 {
			return 0, fmt.Errorf("unknown right %q (want RegistryRead, RegistryWrite, ServiceConnect, DeviceConnect)", f)
		}
		r |= rightNames[i].r
	}
	return r, nil
}

// Policy is a shared access policy of the hub.
type Policy struct {
	Name   string
	Keys   Keys
	Rights Rights
}

// BuiltinPolicies are the policies a new IoT hub has (iothub-mqtt.md §2.4).
var builtinPolicies = []Policy{
	{Name: "iothubowner", Rights: RegistryRead | RegistryWrite | ServiceConnect | DeviceConnect},
	{Name: "service", Rights: ServiceConnect},
	{Name: "device", Rights: DeviceConnect},
	{Name: "registryRead", Rights: RegistryRead},
	{Name: "registryReadWrite", Rights: RegistryRead | RegistryWrite},
}

// Registry errors.
var (
	// ErrNotFound means the device, module or policy does not exist.
	ErrNotFound = errors.New("fakehub: not found")
	// ErrExists means the device or module already exists.
	ErrExists = errors.New("fakehub: already exists")
)

// Registry is the hub's identity registry: devices, their modules, and the
// shared access policies. It is safe for concurrent use and may change while
// a Server uses it; disabling or removing a connected identity drops its
// connection.
type Registry struct {
	mu       sync.RWMutex
	rand     io.Reader
	devices  map[string]*Device
	policies map[string]*Policy
	watchers []*func(change) // pointers, so that unwatch can find its own
}

// change tells a watching Server which identities lost the right to stay
// connected ("" ModuleID with device=true: the device and all its modules).
type change struct {
	id     iothub.Identity
	reason sas.Reason
	detail string
}

// NewRegistry returns a registry with the built-in policies (iothubowner,
// service, device, registryRead, registryReadWrite) and keys generated from
// rand (nil: crypto/rand).
func NewRegistry(rnd io.Reader) *Registry {
	if rnd == nil {
		rnd = rand.Reader
	}
	r := &Registry{rand: rnd, devices: map[string]*Device{}, policies: map[string]*Policy{}}
	for _, p := range builtinPolicies {
		if _, err := r.SetPolicy(p); err != nil {
			panic(err) // only a failing random source can get here
		}
	}
	return r
}

func (r *Registry) fillKeys(k *Keys) error {
	for _, s := range []*string{&k.Primary, &k.Secondary} {
		if *s == "" {
			key, err := sas.NewKey(r.rand)
			if err != nil {
				return fmt.Errorf("generating key: %w", err)
			}
			*s = key
			continue
		}
		key, err := sas.DecodeKey(*s)
		if err != nil {
			return err
		}
		if err := sas.ValidateKeyLength(key); err != nil {
			return err // IoT Hub refuses keys under 16 bytes (or over 64)
		}
	}
	return nil
}

func (r *Registry) generationID() (string, error) {
	var b [8]byte
	if _, err := io.ReadFull(r.rand, b[:]); err != nil {
		return "", fmt.Errorf("generating generation id: %w", err)
	}
	// IoT Hub's are 18-digit decimal numbers such as 637388855582764406.
	return strconv.FormatUint(637000000000000000+binary.BigEndian.Uint64(b[:])%999999999999999, 10), nil
}

// AddDevice adds d (Status "" means enabled; missing keys and generation ID
// are generated) with its modules and returns the stored copy.
func (r *Registry) AddDevice(d Device) (Device, error) {
	if err := iothub.ValidateID(d.ID); err != nil {
		return Device{}, fmt.Errorf("device %q: %w", d.ID, err)
	}
	switch Status(strings.ToLower(string(d.Status))) {
	case "", StatusEnabled:
		d.Status = StatusEnabled
	case StatusDisabled:
		d.Status = StatusDisabled
	default:
		return Device{}, fmt.Errorf("device %q: status %q: want enabled or disabled", d.ID, d.Status)
	}
	if err := r.fillKeys(&d.Keys); err != nil {
		return Device{}, fmt.Errorf("device %q: %w", d.ID, err)
	}
	if d.GenerationID == "" {
		g, err := r.generationID()
		if err != nil {
			return Device{}, err
		}
		d.GenerationID = g
	}
	mods := d.Modules
	d.Modules = nil
	seen := map[string]bool{}
	for _, m := range mods {
		if seen[m.ID] {
			return Device{}, fmt.Errorf("device %q: module %q: %w", d.ID, m.ID, ErrExists)
		}
		seen[m.ID] = true
		m.DeviceID = d.ID
		if err := r.prepareModule(&m); err != nil {
			return Device{}, err
		}
		d.Modules = append(d.Modules, m)
	}
	slices.SortFunc(d.Modules, func(a, b Module) int { return strings.Compare(a.ID, b.ID) })
	r.mu.Lock()
	defer r.mu.Unlock()
	if _, ok := r.devices[d.ID]; ok {
		return Device{}, fmt.Errorf("device %q: %w", d.ID, ErrExists)
	}
	r.devices[d.ID] = &d
	return d.clone(), nil
}

func (r *Registry) prepareModule(m *Module) error {
	if err := iothub.ValidateID(m.ID); err != nil {
		return fmt.Errorf("module %q of device %q: %w", m.ID, m.DeviceID, err)
	}
	if err := r.fillKeys(&m.Keys); err != nil {
		return fmt.Errorf("module %q of device %q: %w", m.ID, m.DeviceID, err)
	}
	if m.GenerationID == "" {
		g, err := r.generationID()
		if err != nil {
			return err
		}
		m.GenerationID = g
	}
	return nil
}

// AddModule adds a module to an existing device and returns the stored copy.
func (r *Registry) AddModule(m Module) (Module, error) {
	if err := r.prepareModule(&m); err != nil {
		return Module{}, err
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	d, ok := r.devices[m.DeviceID]
	if !ok {
		return Module{}, fmt.Errorf("device %q: %w", m.DeviceID, ErrNotFound)
	}
	if _, ok := d.module(m.ID); ok {
		return Module{}, fmt.Errorf("module %q of device %q: %w", m.ID, m.DeviceID, ErrExists)
	}
	d.Modules = append(d.Modules, m)
	slices.SortFunc(d.Modules, func(a, b Module) int { return strings.Compare(a.ID, b.ID) })
	return m, nil
}

// RemoveDevice deletes a device and its modules, dropping their connections.
func (r *Registry) RemoveDevice(id string) error {
	r.mu.Lock()
	_, ok := r.devices[id]
	delete(r.devices, id)
	watchers := slices.Clone(r.watchers)
	r.mu.Unlock()
	if !ok {
		return fmt.Errorf("device %q: %w", id, ErrNotFound)
	}
	notify(watchers, change{id: iothub.Identity{DeviceID: id}, reason: sas.ReasonUnknownIdentity, detail: "device " + id + " was removed from the registry"})
	return nil
}

// RemoveModule deletes a module, dropping its connection.
func (r *Registry) RemoveModule(deviceID, moduleID string) error {
	r.mu.Lock()
	d, ok := r.devices[deviceID]
	found := false
	if ok {
		if i := slices.IndexFunc(d.Modules, func(m Module) bool { return m.ID == moduleID }); i >= 0 {
			d.Modules = slices.Delete(d.Modules, i, i+1)
			found = true
		}
	}
	watchers := slices.Clone(r.watchers)
	r.mu.Unlock()
	id := iothub.Identity{DeviceID: deviceID, ModuleID: moduleID}
	if !found {
		return fmt.Errorf("module %s: %w", id, ErrNotFound)
	}
	notify(watchers, change{id: id, reason: sas.ReasonUnknownIdentity, detail: "module " + id.String() + " was removed from the registry"})
	return nil
}

// SetStatus enables or disables a device. Disabling a connected device drops
// its connection and those of its modules (the client sees a plain network
// loss, iothub-mqtt.md 1.21).
func (r *Registry) SetStatus(deviceID string, st Status) error {
	st = Status(strings.ToLower(string(st)))
	if st != StatusEnabled && st != StatusDisabled {
		return fmt.Errorf("status %q: want enabled or disabled", st)
	}
	r.mu.Lock()
	d, ok := r.devices[deviceID]
	if ok {
		d.Status = st
	}
	watchers := slices.Clone(r.watchers)
	r.mu.Unlock()
	if !ok {
		return fmt.Errorf("device %q: %w", deviceID, ErrNotFound)
	}
	if st == StatusDisabled {
		notify(watchers, change{id: iothub.Identity{DeviceID: deviceID}, reason: sas.ReasonDisabled, detail: "device " + deviceID + " was disabled while connected"})
	}
	return nil
}

// SetKeys replaces the keys of a device or module (empty keys are
// generated), like regenerating keys in the portal. Connections already
// open stay open until their token expires (IoT Hub's behaviour here is not
// documented).
func (r *Registry) SetKeys(id iothub.Identity, k Keys) (Keys, error) {
	if err := r.fillKeys(&k); err != nil {
		return Keys{}, fmt.Errorf("%s: %w", id, err)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	d, ok := r.devices[id.DeviceID]
	if !ok {
		return Keys{}, fmt.Errorf("device %q: %w", id.DeviceID, ErrNotFound)
	}
	if !id.IsModule() {
		d.Keys = k
		return k, nil
	}
	i := slices.IndexFunc(d.Modules, func(m Module) bool { return m.ID == id.ModuleID })
	if i < 0 {
		return Keys{}, fmt.Errorf("module %s: %w", id, ErrNotFound)
	}
	d.Modules[i].Keys = k
	return k, nil
}

func notify(ws []*func(change), c change) {
	for _, w := range ws {
		(*w)(c)
	}
}

// watch calls f after each change that drops connections, until the
// returned unwatch is called (a Server calls it on Close: the registry may
// outlive it).
func (r *Registry) watch(f func(change)) (unwatch func()) {
	r.mu.Lock()
	defer r.mu.Unlock()
	w := &f
	r.watchers = append(r.watchers, w)
	return func() {
		r.mu.Lock()
		defer r.mu.Unlock()
		r.watchers = slices.DeleteFunc(r.watchers, func(x *func(change)) bool { return x == w })
	}
}

// Device returns a copy of the device with that ID.
func (r *Registry) Device(id string) (Device, bool) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	d, ok := r.devices[id]
	if !ok {
		return Device{}, false
	}
	return d.clone(), true
}

// Module returns a copy of a module.
func (r *Registry) Module(deviceID, moduleID string) (Module, bool) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	d, ok := r.devices[deviceID]
	if !ok {
		return Module{}, false
	}
	return d.module(moduleID)
}

// Devices returns copies of all devices, sorted by ID.
func (r *Registry) Devices() []Device {
	r.mu.RLock()
	defer r.mu.RUnlock()
	out := make([]Device, 0, len(r.devices))
	for _, d := range r.devices {
		out = append(out, d.clone())
	}
	slices.SortFunc(out, func(a, b Device) int { return strings.Compare(a.ID, b.ID) })
	return out
}

// SetPolicy adds or replaces a shared access policy (missing keys are
// generated) and returns the stored copy.
func (r *Registry) SetPolicy(p Policy) (Policy, error) {
	if p.Name == "" {
		return Policy{}, errors.New("policy: empty keyName")
	}
	if err := r.fillKeys(&p.Keys); err != nil {
		return Policy{}, fmt.Errorf("policy %q: %w", p.Name, err)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.policies[p.Name] = &p
	return p, nil
}

// RemovePolicy deletes a shared access policy.
func (r *Registry) RemovePolicy(name string) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if _, ok := r.policies[name]; !ok {
		return fmt.Errorf("policy %q: %w", name, ErrNotFound)
	}
	delete(r.policies, name)
	return nil
}

// Policy returns a copy of the named policy (names are case-sensitive).
func (r *Registry) Policy(name string) (Policy, bool) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	p, ok := r.policies[name]
	if !ok {
		return Policy{}, false
	}
	return *p, true
}

// Policies returns copies of all policies, sorted by name.
func (r *Registry) Policies() []Policy {
	r.mu.RLock()
	defer r.mu.RUnlock()
	out := make([]Policy, 0, len(r.policies))
	for _, p := range r.policies {
		out = append(out, *p)
	}
	slices.SortFunc(out, func(a, b Policy) int { return strings.Compare(a.Name, b.Name) })
	return out
}

func (d *Device) clone() Device {
	c := *d
	c.Modules = slices.Clone(d.Modules)
	return c
}

func (d *Device) module(id string) (Module, bool) {
	i := slices.IndexFunc(d.Modules, func(m Module) bool { return m.ID == id })
	if i < 0 {
		return Module{}, false
	}
	return d.Modules[i], true
}

// credential is what the authenticator needs about one identity.
type credential struct {
	keys         Keys
	enabled      bool
	generationID string
	deviceKeys   Keys // for a module: its device's keys (AllowDeviceKeyForModule)
}

// lookup returns the credential of id, or false when it is not registered.
func (r *Registry) lookup(id iothub.Identity) (credential, bool) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	d, ok := r.devices[id.DeviceID]
	if !ok {
		return credential{}, false
	}
	c := credential{keys: d.Keys, enabled: d.Status != StatusDisabled, generationID: d.GenerationID}
	if id.IsModule() {
		m, ok := d.module(id.ModuleID)
		if !ok {
			return credential{}, false
		}
		c.deviceKeys = d.Keys
		c.keys, c.generationID = m.Keys, m.GenerationID
	}
	return c, true
}

// testHookSuspects, when set, is called each time a suspect list is built.
var testHookSuspects func()

// suspects returns named keys for the differential diagnosis of a signature
// mismatch on a connection claiming id with a token whose decoded sr is
// plainSR: the identity named by sr first, then policies, then the device of
// a module (or the modules of a device), then other devices in map order, at
// most sas.MaxSuspectKeys. It stops as soon as it has them: the cost does not
// grow with the registry.
func (r *Registry) suspects(id iothub.Identity, plainSR string) []sas.NamedKey {
	if testHookSuspects != nil {
		testHookSuspects()
	}
	r.mu.RLock()
	defer r.mu.RUnlock()
	var out []sas.NamedKey
	seen := map[string]bool{}
	add := func(name string, k Keys) {
		for _, kk := range []struct{ which, key string }{{"primary", k.Primary}, {"secondary", k.Secondary}} {
			n := name + " " + kk.which + " key"
			if seen[n] || len(out) >= sas.MaxSuspectKeys {
				continue
			}
			if b, err := sas.DecodeKey(kk.key); err == nil {
				seen[n] = true
				out = append(out, sas.NamedKey{Name: n, Key: b})
			}
		}
	}
	addIdentity := func(other iothub.Identity) {
		if other == id {
			return
		}
		d, ok := r.devices[other.DeviceID]
		if !ok {
			return
		}
		if !other.IsModule() {
			add("device "+d.ID, d.Keys)
			return
		}
		if m, ok := d.module(other.ModuleID); ok {
			add("module "+other.String(), m.Keys)
		}
	}
	// The identity the token names.
	if named := sas.ParsePlainResource(plainSR); named.DeviceID != "" {
		addIdentity(iothub.Identity{DeviceID: named.DeviceID, ModuleID: named.ModuleID})
	}
	names := make([]string, 0, len(r.policies))
	for n := range r.policies {
		names = append(names, n)
	}
	slices.Sort(names)
	for _, n := range names {
		add("policy "+n, r.policies[n].Keys)
	}
	if id.IsModule() {
		addIdentity(iothub.Identity{DeviceID: id.DeviceID})
	} else if d, ok := r.devices[id.DeviceID]; ok {
		for _, m := range d.Modules {
			if len(out) >= sas.MaxSuspectKeys {
				break
			}
			addIdentity(iothub.Identity{DeviceID: d.ID, ModuleID: m.ID})
		}
	}
	for n := range r.devices {
		if len(out) >= sas.MaxSuspectKeys {
			break
		}
		addIdentity(iothub.Identity{DeviceID: n})
	}
	return out
}
