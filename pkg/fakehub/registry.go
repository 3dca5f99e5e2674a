package fakehub

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hubkit/hubkit/pkg/iothub"
	"github.com/hubkit/hubkit/pkg/sas"
)

// Registry is the hub's identity registry: devices, their modules, and the shared access
// policies, as IoT Hub's registry JSON describes them (iothub.Device, iothub.AccessPolicy).
// It is safe for concurrent use and may change while a Server uses it; disabling or removing
// a connected identity drops its connection. Values it returns are copies.
//
// The registry keeps what IoT Hub's registry keeps: identity, generation ID, etag, status and
// keys. The live fields of a record (connection state, last activity, C2D queue depth) are
// the Server's to fill (Server.Device).
//
// Errors are *iothub.Error where IoT Hub has a code for them: iothub.ErrDeviceNotFound,
// iothub.ErrModuleNotFound, iothub.ErrDeviceAlreadyExists, iothub.ErrModuleAlreadyExists,
// iothub.ErrPreconditionFailed, iothub.ErrInvalidArgument (a bad ID, status or key), and
// iothub.ErrNotFound for an unknown policy.
type Registry struct {
	mu       sync.RWMutex
	rand     io.Reader
	devices  map[string]*entry
	policies map[string]*iothub.AccessPolicy
	cas      map[string]*caEntry // CA certificates for certificateAuthority identities (certificates.go)
	watchers []*func(change)     // pointers, so that unwatch can find its own

	suspectLists atomic.Int64 // suspect key lists built (for tests: they must stay rare)

	now atomic.Pointer[func() time.Time] // stamps statusUpdatedTime; a Server sets its Options.Now
}

// entry is a device and its modules.
type entry struct {
	dev     iothub.Device
	modules map[string]*iothub.Device
}

// change tells a watching Server which identities lost the right to stay connected (a
// device: with all its modules).
type change struct {
	id     iothub.Identity
	reason sas.Reason
	detail string
}

// NewRegistry returns a registry with IoT Hub's built-in policies (iothubowner, service,
// device, registryRead, registryReadWrite) and keys generated from rand (nil: crypto/rand).
func NewRegistry(rnd io.Reader) *Registry {
	if rnd == nil {
		rnd = rand.Reader
	}
	r := &Registry{rand: rnd, devices: map[string]*entry{}, policies: map[string]*iothub.AccessPolicy{}, cas: map[string]*caEntry{}}
	r.useClock(time.Now)
	for _, p := range iothub.BuiltinPolicies() {
		if _, err := r.SetPolicy(p); err != nil {
			panic(err) // only a failing random source can get here
		}
	}
	return r
}

// useClock sets the clock that stamps status changes (a Server passes its Options.Now).
func (r *Registry) useClock(now func() time.Time) { r.now.Store(&now) }

// fillKeys generates the empty keys and checks the others: standard base64 of 16 to 64
// bytes, as IoT Hub requires. Errors name the key as prefix+"primaryKey".
func (r *Registry) fillKeys(prefix string, primary, secondary *string) error {
	for i, s := range []*string{primary, secondary} {
		name := prefix + [2]string{"primaryKey", "secondaryKey"}[i]
		if *s == "" {
			key, err := sas.NewKey(r.rand)
			if err != nil {
				return fmt.Errorf("generating key: %w", err)
			}
			*s = key
			continue
		}
		key, err := sas.DecodeKey(*s)
		if err == nil {
			err = sas.ValidateKeyLength(key)
		}
		if err != nil {
			return &iothub.Error{Code: iothub.CodeArgumentInvalid, Message: name + ": " + err.Error(), Err: err}
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

// etagOf derives an identity's etag from what it keeps, so that it changes when they change.
func etagOf(d *iothub.Device) string {
	h := sha256.New()
	a := d.Authentication
	fmt.Fprintf(h, "%s\x00%s\x00%s\x00%s\x00%s\x00%s\x00%s", d.DeviceID, d.ModuleID, d.GenerationID, d.Status,
		d.StatusReason, a.SymmetricKey.PrimaryKey, a.SymmetricKey.SecondaryKey)
	if a.Type != iothub.AuthSAS { // X.509: the etag of a SAS identity stays what it was
		fmt.Fprintf(h, "\x00%s\x00%s\x00%s", a.Type, a.X509Thumbprint.PrimaryThumbprint, a.X509Thumbprint.SecondaryThumbprint)
	}
	return base64.StdEncoding.EncodeToString(h.Sum(nil)[:9])
}

// prepare validates d for storing, generates its missing keys and generation ID, and sets
// its etag. Only the fields the registry keeps survive.
func (r *Registry) prepare(d iothub.Device) (iothub.Device, error) {
	id := d.Identity()
	if err := iothub.ValidateID(id.DeviceID); err != nil {
		return iothub.Device{}, &iothub.Error{Code: iothub.CodeArgumentInvalid, Message: fmt.Sprintf("device %q: %v", id.DeviceID, err), Err: err}
	}
	if id.IsModule() {
		if err := iothub.ValidateID(id.ModuleID); err != nil {
			return iothub.Device{}, &iothub.Error{Code: iothub.CodeArgumentInvalid, Message: fmt.Sprintf("module %q of device %q: %v", id.ModuleID, id.DeviceID, err), Err: err}
		}
	}
	out := iothub.Device{DeviceID: d.DeviceID, ModuleID: d.ModuleID, ManagedBy: d.ManagedBy, GenerationID: d.GenerationID,
		StatusUpdatedTime: d.StatusUpdatedTime}
	if !id.IsModule() {
		st, err := iothub.ParseDeviceStatus(string(d.Status))
		if err != nil {
			return iothub.Device{}, iothub.Errorf(iothub.CodeArgumentInvalid, "%s: %v", describe(id), err)
		}
		out.Status, out.StatusReason = st, d.StatusReason
	}
	if d.Capabilities.IoTEdge {
		return iothub.Device{}, iothub.Errorf(iothub.CodeArgumentInvalid, "%s: fakehub does not support IoT Edge devices (capabilities.iotEdge)", describe(id))
	}
	auth, err := r.prepareAuth(d.Authentication)
	if err != nil {
		return iothub.Device{}, prefixError(describe(id), err)
	}
	out.Authentication = auth
	if out.GenerationID == "" {
		g, err := r.generationID()
		if err != nil {
			return iothub.Device{}, err
		}
		out.GenerationID = g
	}
	out.ETag = etagOf(&out)
	return out, nil
}

// prepareAuth checks an identity's authentication and returns what the registry keeps:
// symmetric keys (missing ones generated), or normalized X.509 thumbprints (selfSigned), or
// nothing (certificateAuthority: the CA registry and the certificate's CN decide).
func (r *Registry) prepareAuth(a iothub.Authentication) (iothub.Authentication, error) {
	if _, err := iothub.ParseAuthType(string(a.Type)); err != nil {
		return iothub.Authentication{}, iothub.Errorf(iothub.CodeArgumentInvalid, "%v", err)
	}
	k, tp := a.SymmetricKey, a.X509Thumbprint
	switch t := a.EffectiveType(); t {
	case iothub.AuthSAS:
		if tp.PrimaryThumbprint != "" || tp.SecondaryThumbprint != "" {
			return iothub.Authentication{}, iothub.Errorf(iothub.CodeArgumentInvalid,
				"authentication.x509Thumbprint is set but authentication.type is %q: use type %q for thumbprint authentication", iothub.AuthSAS, iothub.AuthSelfSigned)
		}
		out := iothub.SASAuth(k.PrimaryKey, k.SecondaryKey)
		if err := r.fillKeys("authentication.symmetricKey.", &out.SymmetricKey.PrimaryKey, &out.SymmetricKey.SecondaryKey); err != nil {
			return iothub.Authentication{}, err
		}
		return out, nil
	case iothub.AuthSelfSigned, iothub.AuthCertificateAuthority:
		if k.PrimaryKey != "" || k.SecondaryKey != "" {
			return iothub.Authentication{}, iothub.Errorf(iothub.CodeArgumentInvalid,
				"authentication.symmetricKey is set but authentication.type is %q: an X.509 identity has no keys", t)
		}
		if t == iothub.AuthCertificateAuthority {
			if tp.PrimaryThumbprint != "" || tp.SecondaryThumbprint != "" {
				return iothub.Authentication{}, iothub.Errorf(iothub.CodeArgumentInvalid,
					"authentication.x509Thumbprint is set but authentication.type is %q: a CA-signed identity is authenticated by its CA and common name, not by thumbprints (use type %q)", t, iothub.AuthSelfSigned)
			}
			return iothub.CAAuth(), nil
		}
		if tp.PrimaryThumbprint == "" && tp.SecondaryThumbprint == "" {
			return iothub.Authentication{}, iothub.Errorf(iothub.CodeArgumentInvalid,
				"authentication.x509Thumbprint: a %q identity needs a primaryThumbprint or secondaryThumbprint (SHA-1 or SHA-256 of its certificate, hex)", t)
		}
		for i, f := range []*string{&tp.PrimaryThumbprint, &tp.SecondaryThumbprint} {
			if *f == "" {
				continue
			}
			n, err := iothub.NormalizeThumbprint(*f)
			if err != nil {
				return iothub.Authentication{}, iothub.Errorf(iothub.CodeArgumentInvalid, "authentication.x509Thumbprint.%s: %v", [2]string{"primaryThumbprint", "secondaryThumbprint"}[i], err)
			}
			*f = n
		}
		return iothub.X509Auth(tp.PrimaryThumbprint, tp.SecondaryThumbprint), nil
	default:
		return iothub.Authentication{}, iothub.Errorf(iothub.CodeArgumentInvalid,
			"authentication type %q is not supported (fakehub does %q, %q and %q)", t, iothub.AuthSAS, iothub.AuthSelfSigned, iothub.AuthCertificateAuthority)
	}
}

// describe names an identity in messages: `device "d"`, `module "d/m"`.
func describe(id iothub.Identity) string {
	if id.IsModule() {
		return fmt.Sprintf("module %q", id.String())
	}
	return fmt.Sprintf("device %q", id.DeviceID)
}

func kindOf(id iothub.Identity) string {
	if id.IsModule() {
		return "module"
	}
	return "device"
}

// prefixError adds context to an error's message, keeping an *iothub.Error's code.
func prefixError(prefix string, err error) error {
	var e *iothub.Error
	if errors.As(err, &e) {
		return &iothub.Error{Code: e.Code, Message: prefix + ": " + e.Message, Err: e.Err}
	}
	return fmt.Errorf("%s: %w", prefix, err)
}

func notFound(id iothub.Identity, what string) error {
	if id.IsModule() {
		return iothub.Errorf(iothub.CodeModuleNotFound, "module %q %s", id.String(), what)
	}
	return iothub.Errorf(iothub.CodeDeviceNotFound, "device %q %s", id.DeviceID, what)
}

// Add adds an identity: a device when d.ModuleID is empty (status "" means enabled), else a
// module of the existing device d.DeviceID. Missing keys and generation ID are generated.
// It returns the stored record.
func (r *Registry) Add(d iothub.Device) (iothub.Device, error) {
	stored, _, err := r.Put(d, "")
	return stored, err
}

// Put creates or updates an identity following IoT Hub's If-Match rules (Create Or Update
// Identity):
//
//	ifMatch ""   create; ErrDeviceAlreadyExists (ErrModuleAlreadyExists) if it exists;
//	ifMatch "*"  create or update;
//	otherwise    update only if the stored etag equals ifMatch (quotes and W/ accepted);
//	             ErrPreconditionFailed if not, ErrDeviceNotFound if there is none.
//
// An update keeps the generation ID, and the stored keys where d gives none. Disabling a
// connected device drops its connections. created reports whether the identity is new.
func (r *Registry) Put(d iothub.Device, ifMatch string) (stored iothub.Device, created bool, err error) {
	ifMatch = iothub.UnquoteETag(ifMatch)
	id := d.Identity()
	r.mu.Lock()
	e := r.devices[id.DeviceID]
	old := copyOf(current(e, id))
	switch {
	case id.IsModule() && e == nil:
		r.mu.Unlock()
		return iothub.Device{}, false, notFound(iothub.Identity{DeviceID: id.DeviceID}, "is not in the registry: add the device before its modules")
	case old != nil && ifMatch == "":
		r.mu.Unlock()
		if id.IsModule() {
			return iothub.Device{}, false, iothub.Errorf(iothub.CodeModuleAlreadyExistsOnDevice, "module %q already exists", id.String())
		}
		return iothub.Device{}, false, iothub.Errorf(iothub.CodeDeviceAlreadyExists, "device %q already exists", id.DeviceID)
	case old == nil && ifMatch != "" && ifMatch != "*":
		r.mu.Unlock()
		return iothub.Device{}, false, notFound(id, "is not in the registry (If-Match names an etag, so it must exist)")
	case old != nil && ifMatch != "*" && ifMatch != old.ETag:
		r.mu.Unlock()
		return iothub.Device{}, false, iothub.Errorf(iothub.CodePreconditionFailed, "etag %q does not match %s's %q", ifMatch, describe(id), old.ETag)
	}
	d.StatusUpdatedTime = time.Time{} // the hub's to set: zero until the status changes
	if old != nil {                   // an update: keep what the caller did not give
		d.GenerationID = old.GenerationID
		d.StatusUpdatedTime = old.StatusUpdatedTime
		if st, err := iothub.ParseDeviceStatus(string(d.Status)); err == nil && st != old.Status && !id.IsModule() {
			d.StatusUpdatedTime = (*r.now.Load())().UTC()
		}
		if newType, oldType := d.Authentication.EffectiveType(), old.Authentication.EffectiveType(); newType == oldType {
			switch newType {
			case iothub.AuthSAS:
				k, ok := &d.Authentication.SymmetricKey, old.Authentication.SymmetricKey
				k.PrimaryKey = cmpOr(k.PrimaryKey, ok.PrimaryKey)
				k.SecondaryKey = cmpOr(k.SecondaryKey, ok.SecondaryKey)
			case iothub.AuthSelfSigned:
				if tp := &d.Authentication.X509Thumbprint; tp.PrimaryThumbprint == "" && tp.SecondaryThumbprint == "" {
					*tp = old.Authentication.X509Thumbprint
				}
			}
		}
	}
	r.mu.Unlock()
	// prepare may read the random source: do it unlocked, then check again.
	p, err := r.prepare(d)
	if err != nil {
		return iothub.Device{}, false, err
	}
	r.mu.Lock()
	e = r.devices[id.DeviceID]
	now := current(e, id)
	if (now == nil) != (old == nil) || (now != nil && now.ETag != old.ETag) || (id.IsModule() && e == nil) {
		r.mu.Unlock()
		return iothub.Device{}, false, iothub.Errorf(iothub.CodePreconditionFailed, "%s changed during the update; read it again", describe(id))
	}
	disabled := !id.IsModule() && p.Status == iothub.StatusDisabled && (old == nil || old.Status != iothub.StatusDisabled)
	switch {
	case id.IsModule():
		e.modules[id.ModuleID] = &p
	case e == nil:
		r.devices[id.DeviceID] = &entry{dev: p, modules: map[string]*iothub.Device{}}
	default:
		e.dev = p
	}
	watchers := slices.Clone(r.watchers)
	r.mu.Unlock()
	if disabled && old != nil {
		notify(watchers, change{id: iothub.Identity{DeviceID: id.DeviceID}, reason: sas.ReasonDisabled, detail: "device " + id.DeviceID + " was disabled while connected"})
	}
	if old != nil && old.Authentication.SymmetricKey != p.Authentication.SymmetricKey {
		notify(watchers, change{id: id, reason: reasonKeysChanged, detail: describe(id) + "'s keys changed"})
	}
	return p, old == nil, nil
}

// current returns the stored record of id in e (nil: none).
func current(e *entry, id iothub.Identity) *iothub.Device {
	switch {
	case e == nil:
		return nil
	case id.IsModule():
		return e.modules[id.ModuleID]
	}
	return &e.dev
}

func copyOf(d *iothub.Device) *iothub.Device {
	if d == nil {
		return nil
	}
	c := *d
	return &c
}

func cmpOr(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

// Delete removes an identity (a device: with its modules) and drops its connections. ifMatch
// follows Put's rule ("" or "*": unconditional).
func (r *Registry) Delete(id iothub.Identity, ifMatch string) error {
	ifMatch = iothub.UnquoteETag(ifMatch)
	r.mu.Lock()
	e := r.devices[id.DeviceID]
	cur := current(e, id)
	if cur == nil {
		r.mu.Unlock()
		return notFound(id, "is not in the registry")
	}
	if ifMatch != "" && ifMatch != "*" && ifMatch != cur.ETag {
		r.mu.Unlock()
		return iothub.Errorf(iothub.CodePreconditionFailed, "etag %q does not match %s's %q", ifMatch, describe(id), cur.ETag)
	}
	if id.IsModule() {
		delete(e.modules, id.ModuleID)
	} else {
		delete(r.devices, id.DeviceID)
	}
	watchers := slices.Clone(r.watchers)
	r.mu.Unlock()
	notify(watchers, change{id: id, reason: sas.ReasonUnknownIdentity, detail: kindOf(id) + " " + id.String() + " was removed from the registry"})
	return nil
}

// SetStatus enables or disables a device. Disabling a connected device drops its connection
// and those of its modules (the client sees a plain network loss, docs/iothub-behavior.md
// §1.21).
func (r *Registry) SetStatus(deviceID string, st iothub.DeviceStatus) error {
	st, err := iothub.ParseDeviceStatus(string(st))
	if err != nil {
		return iothub.Errorf(iothub.CodeArgumentInvalid, "%v", err)
	}
	d, ok := r.Get(iothub.Identity{DeviceID: deviceID})
	if !ok {
		return notFound(iothub.Identity{DeviceID: deviceID}, "is not in the registry")
	}
	d.Status = st
	_, _, err = r.Put(d, d.ETag)
	return err
}

// SetKeys replaces the keys of a device or module (empty keys are generated), like
// regenerating keys in the portal, and returns the new ones. Connections already open stay
// open until their token expires (IoT Hub's behaviour here is not documented).
func (r *Registry) SetKeys(id iothub.Identity, k iothub.SymmetricKey) (iothub.SymmetricKey, error) {
	d, ok := r.Get(id)
	if !ok {
		return iothub.SymmetricKey{}, notFound(id, "is not in the registry")
	}
	if t := d.Authentication.EffectiveType(); t != iothub.AuthSAS {
		return iothub.SymmetricKey{}, iothub.Errorf(iothub.CodeArgumentInvalid, "%s authenticates with X.509 (%s): it has no keys to replace", describe(id), t)
	}
	if k.PrimaryKey == "" || k.SecondaryKey == "" { // generate the missing ones rather than keep them
		if err := r.fillKeys("", &k.PrimaryKey, &k.SecondaryKey); err != nil {
			return iothub.SymmetricKey{}, prefixError(describe(id), err)
		}
	}
	d.Authentication.SymmetricKey = k
	stored, _, err := r.Put(d, d.ETag)
	return stored.Authentication.SymmetricKey, err
}

func notify(ws []*func(change), c change) {
	for _, w := range ws {
		(*w)(c)
	}
}

// watch calls f after each change that drops connections, until the returned unwatch is
// called (a Server calls it on Close: the registry may outlive it).
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

// Get returns the record of a device or module.
func (r *Registry) Get(id iothub.Identity) (iothub.Device, bool) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	e, ok := r.devices[id.DeviceID]
	if !ok {
		return iothub.Device{}, false
	}
	if !id.IsModule() {
		return e.dev, true
	}
	m, ok := e.modules[id.ModuleID]
	if !ok {
		return iothub.Device{}, false
	}
	return *m, true
}

// Exists returns nil if id is in the registry, else iothub.ErrDeviceNotFound or
// iothub.ErrModuleNotFound (wrapped with the identity).
func (r *Registry) Exists(id iothub.Identity) error {
	r.mu.RLock()
	e, ok := r.devices[id.DeviceID]
	if ok && id.IsModule() {
		_, ok = e.modules[id.ModuleID]
	}
	r.mu.RUnlock()
	switch {
	case ok:
		return nil
	case id.IsModule() && r.Exists(iothub.Identity{DeviceID: id.DeviceID}) != nil:
		return notFound(iothub.Identity{DeviceID: id.DeviceID}, "is not in the registry")
	}
	return notFound(id, "is not in the registry")
}

// Devices returns the device records (modules excluded), sorted by ID.
func (r *Registry) Devices() []iothub.Device {
	r.mu.RLock()
	defer r.mu.RUnlock()
	out := make([]iothub.Device, 0, len(r.devices))
	for _, e := range r.devices {
		out = append(out, e.dev)
	}
	slices.SortFunc(out, func(a, b iothub.Device) int { return strings.Compare(a.DeviceID, b.DeviceID) })
	return out
}

// Modules returns the module records of a device, sorted by ID (iothub.ErrDeviceNotFound if
// there is no such device).
func (r *Registry) Modules(deviceID string) ([]iothub.Device, error) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	e, ok := r.devices[deviceID]
	if !ok {
		return nil, notFound(iothub.Identity{DeviceID: deviceID}, "is not in the registry")
	}
	out := make([]iothub.Device, 0, len(e.modules))
	for _, m := range e.modules {
		out = append(out, *m)
	}
	slices.SortFunc(out, func(a, b iothub.Device) int { return strings.Compare(a.ModuleID, b.ModuleID) })
	return out, nil
}

// SetPolicy adds or replaces a shared access policy (missing keys are generated) and returns
// the stored copy.
func (r *Registry) SetPolicy(p iothub.AccessPolicy) (iothub.AccessPolicy, error) {
	if p.KeyName == "" {
		return iothub.AccessPolicy{}, iothub.Errorf(iothub.CodeArgumentInvalid, "policy: empty keyName")
	}
	if err := r.fillKeys("", &p.PrimaryKey, &p.SecondaryKey); err != nil {
		return iothub.AccessPolicy{}, prefixError(fmt.Sprintf("policy %q", p.KeyName), err)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.policies[p.KeyName] = &p
	return p, nil
}

// RemovePolicy deletes a shared access policy (iothub.ErrNotFound if there is none).
func (r *Registry) RemovePolicy(name string) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if _, ok := r.policies[name]; !ok {
		return iothub.Errorf(iothub.CodeGenericNotFound, "no shared access policy named %q", name)
	}
	delete(r.policies, name)
	return nil
}

// Policy returns the named policy (names are case-sensitive).
func (r *Registry) Policy(name string) (iothub.AccessPolicy, bool) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	p, ok := r.policies[name]
	if !ok {
		return iothub.AccessPolicy{}, false
	}
	return *p, true
}

// Policies returns all policies, sorted by name.
func (r *Registry) Policies() []iothub.AccessPolicy {
	r.mu.RLock()
	defer r.mu.RUnlock()
	out := make([]iothub.AccessPolicy, 0, len(r.policies))
	for _, p := range r.policies {
		out = append(out, *p)
	}
	slices.SortFunc(out, func(a, b iothub.AccessPolicy) int { return strings.Compare(a.KeyName, b.KeyName) })
	return out
}

// credential is what the authenticator needs about one identity.
type credential struct {
	auth         iothub.Authentication // the identity's own (its type says SAS or X.509)
	keys         iothub.SymmetricKey
	enabled      bool
	generationID string
	deviceKeys   iothub.SymmetricKey // for a module: its device's keys (AllowDeviceKeyForModule)
}

// lookup returns the credential of id, or false when it is not registered.
func (r *Registry) lookup(id iothub.Identity) (credential, bool) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	e, ok := r.devices[id.DeviceID]
	if !ok {
		return credential{}, false
	}
	d := &e.dev
	c := credential{auth: d.Authentication, keys: d.Authentication.SymmetricKey, enabled: d.Status != iothub.StatusDisabled, generationID: d.GenerationID}
	if id.IsModule() {
		m, ok := e.modules[id.ModuleID]
		if !ok {
			return credential{}, false
		}
		c.deviceKeys = c.keys
		c.auth, c.keys, c.generationID = m.Authentication, m.Authentication.SymmetricKey, m.GenerationID
	}
	return c, true
}

// suspects returns named keys for the differential diagnosis of a signature mismatch on a
// connection claiming id with a token whose decoded sr is plainSR: the identity named by sr
// first, then policies, then the device of a module (or the modules of a device), then other
// devices in map order, at most sas.MaxSuspectKeys. It stops as soon as it has them: the
// cost does not grow with the registry.
func (r *Registry) suspects(id iothub.Identity, plainSR string) []sas.NamedKey {
	r.suspectLists.Add(1)
	r.mu.RLock()
	defer r.mu.RUnlock()
	var out []sas.NamedKey
	seen := map[string]bool{}
	add := func(name string, k iothub.SymmetricKey) {
		for _, kk := range []struct{ which, key string }{{"primary", k.PrimaryKey}, {"secondary", k.SecondaryKey}} {
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
		e, ok := r.devices[other.DeviceID]
		if !ok {
			return
		}
		if !other.IsModule() {
			add("device "+e.dev.DeviceID, e.dev.Authentication.SymmetricKey)
			return
		}
		if m, ok := e.modules[other.ModuleID]; ok {
			add("module "+other.String(), m.Authentication.SymmetricKey)
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
		p := r.policies[n]
		add("policy "+n, iothub.SymmetricKey{PrimaryKey: p.PrimaryKey, SecondaryKey: p.SecondaryKey})
	}
	if id.IsModule() {
		addIdentity(iothub.Identity{DeviceID: id.DeviceID})
	} else if e, ok := r.devices[id.DeviceID]; ok {
		mods := make([]string, 0, len(e.modules))
		for m := range e.modules {
			mods = append(mods, m)
		}
		slices.Sort(mods)
		for _, m := range mods {
			if len(out) >= sas.MaxSuspectKeys {
				break
			}
			addIdentity(iothub.Identity{DeviceID: id.DeviceID, ModuleID: m})
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
