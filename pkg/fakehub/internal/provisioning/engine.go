package provisioning

import (
	"context"
	"crypto/rand"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"io"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/hubkit/hubkit/pkg/iothub"
	"github.com/hubkit/hubkit/pkg/iothub/dps"
	"github.com/hubkit/hubkit/pkg/sas"
)

// Hub is the IoT hub devices are assigned to.
type Hub interface {
	// HostNames are the hub's names, the first the canonical one: the hubs linked to the
	// DPS. (One fakehub serves one registry under several names; see Options.)
	HostNames() []string
	// Assign creates the device in the hub's registry, or updates an existing one, with the
	// attestation's credentials. With twin set (a new device, or a reset), the twin's tags and
	// desired properties are replaced by it. It reports whether the device was created.
	Assign(ctx context.Context, a Assignment) (created bool, err error)
	// Exists reports whether the device is in the hub's registry.
	Exists(deviceID string) bool
}

// Assignment is a device DPS puts into its hub.
type Assignment struct {
	HostName string
	DeviceID string
	Keys     iothub.SymmetricKey // symmetric-key attestation: the device's keys (derived for a group)
	// Auth is the hub authentication of an X.509 device (zero for symmetric keys): selfSigned
	// with the individual enrollment's thumbprints, or certificateAuthority for a group, whose
	// signing certificate TrustCA the hub must then trust (docs/iothub-behavior.md §7.16).
	Auth    iothub.Authentication
	TrustCA *x509.Certificate
	// GroupID names the enrollment group of a certificateAuthority device.
	GroupID      string
	Capabilities iothub.Capabilities
	Twin         *dps.InitialTwin // nil: keep the twin as it is
}

// Allocator is the custom allocation webhook, in Go (Options.Allocate).
type Allocator func(ctx context.Context, req dps.AllocationRequest) (dps.AllocationResponse, error)

// Options configure an Engine.
type Options struct {
	IDScope string           // default dps.DefaultIDScope
	Now     func() time.Time // default time.Now
	Rand    io.Reader        // keys, operation IDs, etags, tracking IDs; default crypto/rand
	Skew    time.Duration    // token clock skew; 0: sas.DefaultSkew; negative: none
	// RetryAfter is the retry-after of an accepted registration and of an "assigning" poll
	// answer: whole seconds, at least 1 (default 3, as captured from DPS).
	RetryAfter time.Duration
	// AssignDelay is how long an operation stays "assigning" after it was accepted: a poll
	// before then is answered 202 again (default 0: the first poll gets the result).
	AssignDelay time.Duration
	// Allocate is called for enrollments with the custom allocation policy (nil: assign to
	// the hub's canonical name and return the device's payload to it).
	Allocate Allocator
	// Throttle limits requests like DPS (zero: no throttling).
	Throttle Throttle
	Logger   *slog.Logger
}

// Throttle is DPS's rate limits (Microsoft Learn "IoT Hub Device Provisioning Service
// limits"): 5 polls per 10 s per device and 1,000 registrations per minute per service.
type Throttle struct {
	PollsPer10s            int // per registration ID; 0: unlimited
	RegistrationsPerMinute int // per DPS; 0: unlimited
}

// DefaultThrottle is the documented limits.
var DefaultThrottle = Throttle{PollsPer10s: 5, RegistrationsPerMinute: 1000}

// Defaults.
const (
	DefaultRetryAfter = 3 * time.Second
	// keyBytes is the size of generated enrollment keys (DPS: 64 bytes by default).
	keyBytes = 64
)

// Engine is a DPS instance. It is safe for concurrent use.
type Engine struct {
	opts Options
	hub  Hub
	log  *slog.Logger

	mu            sync.Mutex
	enrollments   map[string]*dps.Enrollment      // by lower-case registration ID
	groups        map[string]*dps.EnrollmentGroup // by enrollment group ID (case-sensitive)
	registrations map[string]*dps.RegistrationState
	groupOf       map[string]string // registration -> the group it registered through
	operations    map[string]*operation
	policies      map[string]*dps.AccessPolicy
	throttle      throttleState
}

// New returns an empty DPS (with the provisioningserviceowner policy, keys generated) that
// assigns devices to hub.
func New(hub Hub, opts Options) (*Engine, error) {
	if opts.IDScope == "" {
		opts.IDScope = dps.DefaultIDScope
	}
	if err := dps.ValidateIDScope(opts.IDScope); err != nil {
		return nil, err
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Rand == nil {
		opts.Rand = rand.Reader
	}
	switch {
	case opts.Skew == 0:
		opts.Skew = sas.DefaultSkew
	case opts.Skew < 0:
		opts.Skew = 0
	}
	if opts.RetryAfter <= 0 {
		opts.RetryAfter = DefaultRetryAfter
	}
	opts.RetryAfter = max(opts.RetryAfter.Round(time.Second), time.Second)
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	e := &Engine{opts: opts, hub: hub, log: opts.Logger,
		enrollments: map[string]*dps.Enrollment{}, groups: map[string]*dps.EnrollmentGroup{},
		registrations: map[string]*dps.RegistrationState{}, groupOf: map[string]string{}, operations: map[string]*operation{},
		policies: map[string]*dps.AccessPolicy{}}
	if _, err := e.SetPolicy(dps.AccessPolicy{KeyName: dps.OwnerPolicy, Rights: dps.AllRights}); err != nil {
		return nil, err
	}
	return e, nil
}

// IDScope returns the DPS's ID scope.
func (e *Engine) IDScope() string { return e.opts.IDScope }

// RetryAfter returns the retry-after the DPS answers with.
func (e *Engine) RetryAfter() time.Duration { return e.opts.RetryAfter }

// Now returns the engine's clock reading.
func (e *Engine) Now() time.Time { return e.opts.Now() }

// TrackingID returns a new tracking ID for an error answer.
func (e *Engine) TrackingID() string {
	var b [16]byte
	if _, err := io.ReadFull(e.opts.Rand, b[:]); err != nil {
		return "00000000-0000-0000-0000-000000000000"
	}
	h := hex.EncodeToString(b[:])
	return h[:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:]
}

// etag returns a new etag in DPS's form: a quoted GUID-like string.
func (e *Engine) etag() string { return `"` + e.TrackingID() + `"` }

func regKey(id string) string { return strings.ToLower(id) }

// SetPolicy adds or replaces a shared access policy of the service API (missing keys are
// generated).
func (e *Engine) SetPolicy(p dps.AccessPolicy) (dps.AccessPolicy, error) {
	if p.KeyName == "" {
		return dps.AccessPolicy{}, errors.New("DPS policy: empty keyName")
	}
	for _, k := range []*string{&p.PrimaryKey, &p.SecondaryKey} {
		if err := e.fillKey(k); err != nil {
			return dps.AccessPolicy{}, err
		}
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	e.policies[p.KeyName] = &p
	return p, nil
}

// RemovePolicy deletes a policy; it reports whether there was one.
func (e *Engine) RemovePolicy(name string) bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	_, ok := e.policies[name]
	delete(e.policies, name)
	return ok
}

// Policy returns the named policy (names are case-sensitive).
func (e *Engine) Policy(name string) (dps.AccessPolicy, bool) {
	e.mu.Lock()
	defer e.mu.Unlock()
	p, ok := e.policies[name]
	if !ok {
		return dps.AccessPolicy{}, false
	}
	return *p, true
}

// fillKey generates *k when it is empty, else checks it is a 16-64 byte base64 key.
func (e *Engine) fillKey(k *string) error {
	if *k == "" {
		b := make([]byte, keyBytes)
		if _, err := io.ReadFull(e.opts.Rand, b); err != nil {
			return err
		}
		*k = encodeKey(b)
		return nil
	}
	b, err := sas.DecodeKey(*k)
	if err == nil {
		err = sas.ValidateKeyLength(b)
	}
	return err
}
