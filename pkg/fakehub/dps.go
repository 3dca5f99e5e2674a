package fakehub

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/http"
	"time"

	mqtt "github.com/mochi-mqtt/server/v2"

	"github.com/hubkit/hubkit/pkg/fakehub/internal/provisioning"
	"github.com/hubkit/hubkit/pkg/iothub"
	"github.com/hubkit/hubkit/pkg/iothub/dps"
	"github.com/hubkit/hubkit/pkg/sas"
)

// DPSOptions configure the Device Provisioning Service a Server runs next to the hub
// (Options.DPS): its own MQTT over TLS listener and an HTTPS listener for the device
// registration API and the service API, both with the hub's TLS certificate. Devices it
// assigns are created in the hub's registry, so that their next CONNECT to the hub works
// (docs/iothub-behavior.md §7).
type DPSOptions struct {
	// Addr is the MQTT over TLS listen address (default "127.0.0.1:0"; DPS listens on 8883).
	Addr string
	// HTTPAddr is the HTTPS listen address of the registration and service APIs (default
	// "127.0.0.1:0"; DPS listens on 443).
	HTTPAddr string
	// IDScope is the DPS's ID scope (default dps.DefaultIDScope, "0ne00000000").
	IDScope string
	// HostName is the DPS service host name: service API tokens are signed for it
	// (sr={HostName}), and ServiceConnectionString names it. Default: the hub's HostName.
	HostName string
	// RetryAfter is the retry-after DPS answers an accepted registration with, in whole
	// seconds (default 3 s, as captured from DPS, docs/iothub-behavior.md §7.5).
	RetryAfter time.Duration
	// AssignDelay keeps a registration "assigning" for this long: earlier polls are answered
	// 202 again. Default 0: the first poll gets the assignment.
	AssignDelay time.Duration
	// Allocate is the custom allocation webhook, in Go, for enrollments with
	// allocationPolicy "custom" (their customAllocationDefinition URL is never called: the
	// DPS is offline). nil: assign to HostName and return the device's registration payload
	// to it as the registration state's payload.
	Allocate func(ctx context.Context, req dps.AllocationRequest) (dps.AllocationResponse, error)
	// Throttle applies DPS's rate limits (zero: none; DefaultDPSThrottle: the documented ones).
	Throttle DPSThrottle
	// Enrollments and Groups are created at start; Policies, when set, replace the built-in
	// provisioningserviceowner policy (missing keys are generated).
	Enrollments []dps.Enrollment
	Groups      []dps.EnrollmentGroup
	Policies    []dps.AccessPolicy
}

// DPSThrottle is DPS's rate limits (Microsoft Learn, "IoT Hub Device Provisioning Service
// limits"; docs/iothub-behavior.md §7.11). A request over a limit is answered 429 with
// retry-after.
type DPSThrottle struct {
	PollsPer10s            int // operation-status polls per registration ID in 10 s; 0: unlimited
	RegistrationsPerMinute int // register requests per DPS per minute; 0: unlimited
}

// DefaultDPSThrottle is the documented limits: 5 polls per 10 s per device, 1,000
// registrations per minute.
var DefaultDPSThrottle = DPSThrottle{PollsPer10s: 5, RegistrationsPerMinute: 1000}

// Reasons of DPS refusals, beyond the pkg/sas verdicts and fakehub's packet reasons (a DPS
// refusal's Detail starts with "DPS").
const (
	ReasonEnrollmentDisabled  = provisioning.ReasonEnrollmentDisabled  // the enrollment is disabled: status "disabled"
	ReasonAttestationMismatch = provisioning.ReasonAttestationMismatch // a SAS token for an X.509 or TPM enrollment
	ReasonTPMUnsupported      = provisioning.ReasonTPMUnsupported      // TPM attestation (ErrTPMUnsupported)
	ReasonX509Unsupported     = provisioning.ReasonX509Unsupported     // attestation.x509.caReferences (ErrX509CAReferences)
	ReasonDPSBadRequest       = provisioning.ReasonBadRequest          // a register or poll request DPS cannot read (400)
	ReasonDPSThrottled        = provisioning.ReasonThrottled           // over DPSOptions.Throttle (429)
)

// Errors of attestation kinds fakehub's DPS refuses (in the message of the *dps.Error of a
// refused enrollment; a registration attempt with TPM gets ReasonTPMUnsupported).
var (
	ErrTPMUnsupported   = provisioning.ErrTPMUnsupported
	ErrX509CAReferences = provisioning.ErrX509CAReferences
)

// DPS is the Device Provisioning Service of a Server (Server.DPS).
type DPS struct {
	s       *Server
	e       *provisioning.Engine
	host    string
	mochi   *mqtt.Server
	tlsLn   *guardListener
	conns   dpsConns
	httpSrv *http.Server
	httpLn  net.Listener
	done    chan struct{}
}

// DPS returns the server's Device Provisioning Service, or nil without Options.DPS.
func (s *Server) DPS() *DPS { return s.dps }

// Addr returns the MQTT over TLS listener's address.
func (d *DPS) Addr() string { return d.tlsLn.Addr().String() }

// HTTPAddr returns the HTTPS listener's address (registration and service APIs).
func (d *DPS) HTTPAddr() string { return d.httpLn.Addr().String() }

// URL returns the base URL of the HTTPS API, https://{hub HostName}:{port}.
func (d *DPS) URL() string {
	_, port, _ := net.SplitHostPort(d.HTTPAddr())
	return "https://" + net.JoinHostPort(d.s.opts.HostName, port)
}

// IDScope returns the ID scope.
func (d *DPS) IDScope() string { return d.e.IDScope() }

// HostName returns the service host name (service tokens' sr).
func (d *DPS) HostName() string { return d.host }

// ServiceConnectionString returns the provisioningserviceowner policy's connection string,
// HostName={HostName};SharedAccessKeyName=provisioningserviceowner;SharedAccessKey=..., for
// the service API ("" if the policy was removed).
func (d *DPS) ServiceConnectionString() string {
	p, ok := d.e.Policy(dps.OwnerPolicy)
	if !ok {
		return ""
	}
	return sas.ConnectionString{HostName: d.host, SharedAccessKeyName: p.KeyName, SharedAccessKey: p.PrimaryKey}.String()
}

// Handler returns the HTTPS API (device registration and service API) to mount elsewhere.
func (d *DPS) Handler() http.Handler {
	return d.e.Handler(provisioning.HandlerOptions{HostName: d.host, Reject: d.s.reject})
}

// SetEnrollment creates or replaces an individual enrollment (missing symmetric keys are
// generated) and returns it as stored. Errors are *dps.Error (400 for a bad enrollment,
// naming ErrTPMUnsupported or ErrX509CAReferences in its message for those attestations).
func (d *DPS) SetEnrollment(en dps.Enrollment) (dps.Enrollment, error) {
	return d.e.PutEnrollment(en, "*")
}

// Enrollment returns an individual enrollment with its registration state (dps.ErrNotFound).
func (d *DPS) Enrollment(registrationID string) (dps.Enrollment, error) {
	return d.e.Enrollment(registrationID)
}

// Enrollments returns the individual enrollments.
func (d *DPS) Enrollments() []dps.Enrollment { return d.e.Enrollments() }

// DeleteEnrollment removes an individual enrollment and its registration record.
func (d *DPS) DeleteEnrollment(registrationID string) error {
	return d.e.DeleteEnrollment(registrationID, "")
}

// SetGroup creates or replaces an enrollment group (missing keys are generated).
func (d *DPS) SetGroup(g dps.EnrollmentGroup) (dps.EnrollmentGroup, error) {
	return d.e.PutGroup(g, "*")
}

// Group returns an enrollment group (dps.ErrNotFound).
func (d *DPS) Group(id string) (dps.EnrollmentGroup, error) { return d.e.Group(id) }

// Groups returns the enrollment groups.
func (d *DPS) Groups() []dps.EnrollmentGroup { return d.e.Groups() }

// DeleteGroup removes an enrollment group and its devices' registration records.
func (d *DPS) DeleteGroup(id string) error { return d.e.DeleteGroup(id, "") }

// Registration returns a device's registration record (dps.ErrNotFound).
func (d *DPS) Registration(registrationID string) (dps.RegistrationState, error) {
	return d.e.Registration(registrationID)
}

// Registrations returns the registration records (of one enrollment group when groupID is
// set).
func (d *DPS) Registrations(groupID string) []dps.RegistrationState {
	return d.e.Registrations(groupID)
}

// DeleteRegistration removes a registration record: the device's next registration is an
// initial assignment. The device stays in the hub.
func (d *DPS) DeleteRegistration(registrationID string) error {
	return d.e.DeleteRegistration(registrationID, "")
}

// Policy returns a DPS shared access policy.
func (d *DPS) Policy(name string) (dps.AccessPolicy, bool) { return d.e.Policy(name) }

// SetPolicy adds or replaces a DPS shared access policy (missing keys are generated).
func (d *DPS) SetPolicy(p dps.AccessPolicy) (dps.AccessPolicy, error) { return d.e.SetPolicy(p) }

// startDPS creates the engine and opens the DPS listeners (called by NewServer).
func (s *Server) startDPS() error {
	o := *s.opts.DPS
	if s.opts.TLS == nil {
		return errors.New("fakehub: Options.DPS needs Options.TLS: DPS speaks only TLS")
	}
	d := &DPS{s: s, host: o.HostName, done: make(chan struct{})}
	if d.host == "" {
		d.host = s.opts.HostName
	}
	e, err := provisioning.New(dpsHub{s}, provisioning.Options{
		IDScope: o.IDScope, Now: s.opts.Now, Rand: s.opts.Rand, Skew: s.opts.TokenExpiryGrace,
		RetryAfter: o.RetryAfter, AssignDelay: o.AssignDelay, Allocate: o.Allocate, Logger: s.log.With("service", "dps"),
		Throttle: provisioning.Throttle{PollsPer10s: o.Throttle.PollsPer10s, RegistrationsPerMinute: o.Throttle.RegistrationsPerMinute},
	})
	if err != nil {
		return fmt.Errorf("fakehub: DPS: %w", err)
	}
	d.e = e
	if len(o.Policies) > 0 {
		e.RemovePolicy(dps.OwnerPolicy)
		for _, p := range o.Policies {
			if _, err := e.SetPolicy(p); err != nil {
				return fmt.Errorf("fakehub: DPS policy %q: %w", p.KeyName, err)
			}
		}
	}
	for _, g := range o.Groups {
		if _, err := e.PutGroup(g, "*"); err != nil {
			return fmt.Errorf("fakehub: DPS: %w", err)
		}
	}
	for _, en := range o.Enrollments {
		if _, err := e.PutEnrollment(en, "*"); err != nil {
			return fmt.Errorf("fakehub: DPS: %w", err)
		}
	}
	if err := d.startMQTT(o.Addr); err != nil {
		return err
	}
	s.dps = d
	if err := d.startHTTP(o.HTTPAddr); err != nil {
		return err
	}
	return nil
}

// stopDPS closes the DPS listeners and connections (called by Close).
func (s *Server) stopDPS() {
	if s.dps == nil {
		return
	}
	s.dps.stopHTTP()
	s.dps.stopMQTT()
}

// dpsHub is the hub the DPS assigns devices to: this Server.
type dpsHub struct{ s *Server }

func (h dpsHub) HostNames() []string {
	return append([]string{h.s.opts.HostName}, h.s.opts.Aliases...)
}

func (h dpsHub) Exists(deviceID string) bool {
	return h.s.opts.Registry.Exists(iothub.Identity{DeviceID: deviceID}) == nil
}

// Assign creates the device with the attestation's keys (or X.509 authentication), or
// gives an existing one those credentials (its status stays), then applies the initial
// twin. A certificateAuthority device's group CA is registered on the hub, verified, as
// "dps-{enrollmentGroupId}" unless the hub already has it verified (docs/iothub-behavior.md
// §7.16): the hub trusts what its DPS attested.
func (h dpsHub) Assign(ctx context.Context, a provisioning.Assignment) (bool, error) {
	reg := h.s.opts.Registry
	id := iothub.Identity{DeviceID: a.DeviceID}
	created := false
	if a.TrustCA != nil {
		if err := h.trustCA(a.GroupID, a.TrustCA); err != nil {
			return false, err
		}
	}
	if a.Auth.Type != "" {
		return h.assignX509(ctx, a)
	}
	if d, ok := reg.Get(id); ok {
		if d.Authentication.SymmetricKey != a.Keys || d.Authentication.IsX509() {
			if _, err := reg.SetKeys(id, a.Keys); err != nil {
				return false, err
			}
		}
	} else {
		if _, err := reg.Add(iothub.Device{DeviceID: a.DeviceID, Authentication: iothub.SASAuth(a.Keys.PrimaryKey, a.Keys.SecondaryKey),
			Capabilities: a.Capabilities}); err != nil && !errors.Is(err, iothub.ErrDeviceAlreadyExists) {
			return false, err
		}
		created = true
	}
	return created, h.applyTwin(ctx, id, created, a.Twin)
}

// applyTwin sets the initial twin of a new device, or resets an existing one's (twin nil:
// keep it).
func (h dpsHub) applyTwin(ctx context.Context, id iothub.Identity, created bool, twin *dps.InitialTwin) error {
	if twin == nil {
		return nil
	}
	a := struct{ Twin *dps.InitialTwin }{twin}
	u := iothub.TwinUpdate{Tags: a.Twin.Tags, Desired: a.Twin.Properties.Desired}
	if !created { // a reset: what the enrollment does not set is cleared
		u.Replace = true
		if u.Tags == nil {
			u.Tags = []byte("{}")
		}
		if u.Desired == nil {
			u.Desired = []byte("{}")
		}
	}
	if u.Tags == nil && u.Desired == nil {
		return nil
	}
	_, err := h.s.UpdateTwin(ctx, id, u)
	return err
}

// trustCA registers the group's signing CA as verified, unless a verified one is there.
func (h dpsHub) trustCA(groupID string, ca *x509.Certificate) error {
	reg := h.s.opts.Registry
	_, byCert := reg.caAnchors()
	if e := byCert[string(ca.Raw)]; e != nil && e.verified {
		return nil
	}
	_, err := reg.PutCertificate(dpsCAName(groupID), provisioning.CertificatePEM(ca), true, "*")
	return err
}

// dpsCAName is the hub certificate name of a DPS group's CA (at most 64 characters).
func dpsCAName(groupID string) string {
	n := "dps-" + groupID
	if len(n) > 64 {
		n = n[:64]
	}
	return n
}

// assignX509 creates or updates an X.509 device, then applies the twin.
func (h dpsHub) assignX509(ctx context.Context, a provisioning.Assignment) (bool, error) {
	reg := h.s.opts.Registry
	id := iothub.Identity{DeviceID: a.DeviceID}
	d, exists := reg.Get(id)
	if !exists {
		d = iothub.Device{DeviceID: a.DeviceID, Capabilities: a.Capabilities}
	}
	created := !exists
	if !exists || d.Authentication.EffectiveType() != a.Auth.EffectiveType() || d.Authentication.X509Thumbprint != a.Auth.X509Thumbprint {
		d.Authentication = a.Auth
		if _, _, err := reg.Put(d, "*"); err != nil {
			return false, err
		}
	}
	return created, h.applyTwin(ctx, id, created, a.Twin)
}
