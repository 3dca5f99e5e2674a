package provisioning

import (
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/hubkit/hubkit/pkg/iothub"
	"github.com/hubkit/hubkit/pkg/iothub/dps"
)

// The service side: enrollments, groups and registration records, with DPS's If-Match rules
// (docs/iothub-behavior.md §7.10). Errors are *dps.Error.

// PutEnrollment creates or updates an individual enrollment. ifMatch "" creates (409 if it
// exists), "*" creates or updates, an etag updates that version only (412 otherwise).
// Missing symmetric keys are generated. It returns the stored enrollment.
func (e *Engine) PutEnrollment(en dps.Enrollment, ifMatch string) (dps.Enrollment, error) {
	if err := iothub.ValidateRegistrationID(en.RegistrationID); err != nil {
		return dps.Enrollment{}, dps.Errorf(dps.CodeBadRequest, "registrationId: %v", err)
	}
	if en.DeviceID != "" {
		if err := iothub.ValidateID(en.DeviceID); err != nil {
			return dps.Enrollment{}, dps.Errorf(dps.CodeBadRequest, "deviceId: %v", err)
		}
	}
	where := "individual enrollment " + en.RegistrationID
	if err := e.validate(where, false, &en.Attestation, &en.ProvisioningStatus, en.AllocationPolicy, en.IoTHubs, en.IoTHubHostName, en.InitialTwin, en.Capabilities); err != nil {
		return dps.Enrollment{}, err
	}
	k := regKey(en.RegistrationID)
	now := e.opts.Now().UTC()
	e.mu.Lock()
	defer e.mu.Unlock()
	old := e.enrollments[k]
	if err := checkIfMatch(where, old != nil, etagOf(old), ifMatch); err != nil {
		return dps.Enrollment{}, err
	}
	en.CreatedDateTimeUTC, en.LastUpdatedDateTimeUTC, en.ETag = now, now, e.etag()
	en.RegistrationState = nil
	if old != nil {
		en.CreatedDateTimeUTC, en.RegistrationState = old.CreatedDateTimeUTC, old.RegistrationState
	}
	e.enrollments[k] = &en
	return publicEnrollment(&en), nil
}

func etagOf(en *dps.Enrollment) string {
	if en == nil {
		return ""
	}
	return en.ETag
}

// checkIfMatch applies the If-Match rules to a resource (exists, with etag).
func checkIfMatch(where string, exists bool, etag, ifMatch string) error {
	im := iothub.UnquoteETag(ifMatch)
	switch {
	case exists && ifMatch == "":
		return dps.Errorf(dps.CodeConflict, "%s already exists: send If-Match with its etag (or *) to update it", where)
	case !exists && im != "" && im != "*":
		return dps.Errorf(dps.CodePreconditionFailed, "%s does not exist, but If-Match names etag %s", where, ifMatch)
	case exists && im != "*" && im != "" && im != iothub.UnquoteETag(etag):
		return dps.Errorf(dps.CodePreconditionFailed, "etag %s does not match %s's %s", ifMatch, where, etag)
	}
	return nil
}

// validate checks what enrollments and groups share, fills generated keys and the default
// provisioning status.
func (e *Engine) validate(where string, group bool, att *dps.Attestation, status *dps.ProvisioningStatus, policy dps.AllocationPolicy,
	hubs []string, legacyHub string, twin *dps.InitialTwin, caps *iothub.Capabilities) error {
	st, err := dps.ParseProvisioningStatus(string(*status))
	if err != nil {
		return dps.Errorf(dps.CodeBadRequest, "%s: %v", where, err)
	}
	*status = st
	switch att.Type {
	case dps.AttestationSymmetricKey:
		if att.SymmetricKey == nil {
			att.SymmetricKey = &iothub.SymmetricKey{}
		}
		k := att.SymmetricKey
		for i, key := range []*string{&k.PrimaryKey, &k.SecondaryKey} {
			if err := e.fillKey(key); err != nil {
				return dps.Errorf(dps.CodeBadRequest, "%s: attestation.symmetricKey.%s: %v", where, [2]string{"primaryKey", "secondaryKey"}[i], err)
			}
		}
		att.TPM, att.X509 = nil, nil
	case dps.AttestationTPM:
		return &dps.Error{Code: dps.CodeBadRequest, Message: where + ": " + ErrTPMUnsupported.Error(), Reason: string(ReasonTPMUnsupported)}
	case dps.AttestationX509:
		if err := e.validateX509(where, att, group); err != nil {
			return err
		}
	case "":
		return dps.Errorf(dps.CodeBadRequest, "%s: attestation.type is missing (want %s or %s)", where, dps.AttestationSymmetricKey, dps.AttestationX509)
	default:
		return dps.Errorf(dps.CodeBadRequest, "%s: attestation.type %q: want %s, %s or %s", where, att.Type, dps.AttestationSymmetricKey, dps.AttestationX509, dps.AttestationTPM)
	}
	switch policy {
	case "", dps.AllocationHashed, dps.AllocationGeoLatency, dps.AllocationStatic, dps.AllocationCustom:
	default:
		return dps.Errorf(dps.CodeBadRequest, "%s: allocationPolicy %q: want hashed, geoLatency, static or custom", where, policy)
	}
	linked := e.hub.HostNames()
	for _, h := range append(slices.Clip(hubs), legacyHub) {
		if h != "" && !containsFold(linked, h) {
			return dps.Errorf(dps.CodeBadRequest, "%s: IoT hub %q is not linked to this DPS (linked: %s)", where, h, strings.Join(linked, ", "))
		}
	}
	if policy == dps.AllocationStatic && len(hubs) > 1 {
		return dps.Errorf(dps.CodeBadRequest, "%s: the static allocation policy takes one IoT hub, not %d", where, len(hubs))
	}
	if twin != nil {
		for name, doc := range map[string]json.RawMessage{"initialTwin.tags": twin.Tags, "initialTwin.properties.desired": twin.Properties.Desired} {
			if len(doc) > 0 && !isObject(doc) {
				return dps.Errorf(dps.CodeBadRequest, "%s: %s must be a JSON object", where, name)
			}
		}
	}
	if caps != nil && caps.IoTEdge {
		return dps.Errorf(dps.CodeBadRequest, "%s: capabilities.iotEdge: fakehub does not support IoT Edge devices", where)
	}
	return nil
}

func isObject(b json.RawMessage) bool {
	var m map[string]json.RawMessage
	return json.Unmarshal(b, &m) == nil && m != nil
}

// Enrollment returns an individual enrollment (registration IDs are case-insensitive).
func (e *Engine) Enrollment(registrationID string) (dps.Enrollment, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	en, ok := e.enrollments[regKey(registrationID)]
	if !ok {
		return dps.Enrollment{}, dps.Errorf(dps.CodeNotFound, "no individual enrollment %q", registrationID)
	}
	return publicEnrollment(en), nil
}

// Enrollments returns the individual enrollments, sorted by registration ID.
func (e *Engine) Enrollments() []dps.Enrollment {
	e.mu.Lock()
	defer e.mu.Unlock()
	out := make([]dps.Enrollment, 0, len(e.enrollments))
	for _, en := range e.enrollments {
		out = append(out, publicEnrollment(en))
	}
	slices.SortFunc(out, func(a, b dps.Enrollment) int {
		return strings.Compare(regKey(a.RegistrationID), regKey(b.RegistrationID))
	})
	return out
}

// DeleteEnrollment removes an individual enrollment and its registration record (ifMatch ""
// or "*": unconditional). The device stays in the hub.
func (e *Engine) DeleteEnrollment(registrationID, ifMatch string) error {
	k := regKey(registrationID)
	e.mu.Lock()
	defer e.mu.Unlock()
	en, ok := e.enrollments[k]
	if !ok {
		return dps.Errorf(dps.CodeNotFound, "no individual enrollment %q", registrationID)
	}
	if err := checkDeleteIfMatch("individual enrollment "+en.RegistrationID, en.ETag, ifMatch); err != nil {
		return err
	}
	delete(e.enrollments, k)
	if _, viaGroup := e.groupOf[k]; !viaGroup {
		delete(e.registrations, k)
	}
	return nil
}

func checkDeleteIfMatch(where, etag, ifMatch string) error {
	im := iothub.UnquoteETag(ifMatch)
	if im != "" && im != "*" && im != iothub.UnquoteETag(etag) {
		return dps.Errorf(dps.CodePreconditionFailed, "etag %s does not match %s's %s", ifMatch, where, etag)
	}
	return nil
}

// PutGroup creates or updates an enrollment group, with PutEnrollment's If-Match rules.
func (e *Engine) PutGroup(g dps.EnrollmentGroup, ifMatch string) (dps.EnrollmentGroup, error) {
	if err := validateGroupID(g.EnrollmentGroupID); err != nil {
		return dps.EnrollmentGroup{}, dps.Errorf(dps.CodeBadRequest, "enrollmentGroupId: %v", err)
	}
	where := "enrollment group " + g.EnrollmentGroupID
	if err := e.validate(where, true, &g.Attestation, &g.ProvisioningStatus, g.AllocationPolicy, g.IoTHubs, g.IoTHubHostName, g.InitialTwin, g.Capabilities); err != nil {
		return dps.EnrollmentGroup{}, err
	}
	now := e.opts.Now().UTC()
	e.mu.Lock()
	defer e.mu.Unlock()
	old := e.groups[g.EnrollmentGroupID]
	etag := ""
	if old != nil {
		etag = old.ETag
	}
	if err := checkIfMatch(where, old != nil, etag, ifMatch); err != nil {
		return dps.EnrollmentGroup{}, err
	}
	g.CreatedDateTimeUTC, g.LastUpdatedDateTimeUTC, g.ETag = now, now, e.etag()
	if old != nil {
		g.CreatedDateTimeUTC = old.CreatedDateTimeUTC
	}
	e.groups[g.EnrollmentGroupID] = &g
	return publicGroup(&g), nil
}

// validateGroupID: enrollment group IDs follow the registration ID alphabet.
func validateGroupID(id string) error {
	if err := iothub.ValidateRegistrationID(id); err != nil {
		var pe *iothub.ParseError
		if errors.As(err, &pe) {
			return fmt.Errorf("enrollment group ID %q %s", id, pe.Problem)
		}
		return err
	}
	return nil
}

// Group returns an enrollment group.
func (e *Engine) Group(id string) (dps.EnrollmentGroup, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	g, ok := e.groups[id]
	if !ok {
		return dps.EnrollmentGroup{}, dps.Errorf(dps.CodeNotFound, "no enrollment group %q", id)
	}
	return publicGroup(g), nil
}

// Groups returns the enrollment groups, sorted by ID.
func (e *Engine) Groups() []dps.EnrollmentGroup {
	e.mu.Lock()
	defer e.mu.Unlock()
	out := make([]dps.EnrollmentGroup, 0, len(e.groups))
	for _, g := range e.groups {
		out = append(out, publicGroup(g))
	}
	slices.SortFunc(out, func(a, b dps.EnrollmentGroup) int { return strings.Compare(a.EnrollmentGroupID, b.EnrollmentGroupID) })
	return out
}

// DeleteGroup removes an enrollment group and the registration records of its devices.
func (e *Engine) DeleteGroup(id, ifMatch string) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	g, ok := e.groups[id]
	if !ok {
		return dps.Errorf(dps.CodeNotFound, "no enrollment group %q", id)
	}
	if err := checkDeleteIfMatch("enrollment group "+id, g.ETag, ifMatch); err != nil {
		return err
	}
	delete(e.groups, id)
	for reg, gid := range e.groupOf {
		if gid == id {
			delete(e.groupOf, reg)
			delete(e.registrations, reg)
		}
	}
	return nil
}

// Registration returns a device's registration record.
func (e *Engine) Registration(registrationID string) (dps.RegistrationState, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	st, ok := e.registrations[regKey(registrationID)]
	if !ok {
		return dps.RegistrationState{}, dps.Errorf(dps.CodeNotFound, "no registration record for %q", registrationID)
	}
	return *st, nil
}

// Registrations returns the registration records, of one group when groupID is set, sorted
// by registration ID.
func (e *Engine) Registrations(groupID string) []dps.RegistrationState {
	e.mu.Lock()
	defer e.mu.Unlock()
	var out []dps.RegistrationState
	for k, st := range e.registrations {
		if groupID != "" && e.groupOf[k] != groupID {
			continue
		}
		out = append(out, *st)
	}
	slices.SortFunc(out, func(a, b dps.RegistrationState) int {
		return strings.Compare(regKey(a.RegistrationID), regKey(b.RegistrationID))
	})
	return out
}

// DeleteRegistration removes a registration record: the device's next registration is an
// initial assignment again. The device stays in the hub.
func (e *Engine) DeleteRegistration(registrationID, ifMatch string) error {
	k := regKey(registrationID)
	e.mu.Lock()
	defer e.mu.Unlock()
	st, ok := e.registrations[k]
	if !ok {
		return dps.Errorf(dps.CodeNotFound, "no registration record for %q", registrationID)
	}
	if err := checkDeleteIfMatch("registration "+registrationID, st.ETag, ifMatch); err != nil {
		return err
	}
	delete(e.registrations, k)
	delete(e.groupOf, k)
	if en, ok := e.enrollments[k]; ok {
		en.RegistrationState = nil
	}
	return nil
}

// publicEnrollment and publicGroup are copies as the service API answers: an X.509
// attestation's certificates are replaced by their info.
func publicEnrollment(en *dps.Enrollment) dps.Enrollment {
	c := copyEnrollment(en)
	redactX509(&c.Attestation)
	return *c
}

func publicGroup(g *dps.EnrollmentGroup) dps.EnrollmentGroup {
	c := copyGroup(g)
	redactX509(&c.Attestation)
	return *c
}
