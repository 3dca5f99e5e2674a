package provisioning

import (
	"bytes"
	"context"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"hash/fnv"
	"io"
	"strings"
	"time"

	"github.com/hubkit/hubkit/pkg/iothub"
	"github.com/hubkit/hubkit/pkg/iothub/dps"
)

// operation is one registration request a device polls (docs/iothub-behavior.md §7.5).
type operation struct {
	id       string
	regID    string // lower-case
	attested *Attested
	payload  json.RawMessage
	accepted time.Time
	result   *dps.OperationStatus // set once assigned or failed
}

// maxOperations bounds the operations kept (the oldest finished ones go first).
const maxOperations = 10000

// Answer is the DPS answer to a register or poll request: the HTTP (and MQTT) status, the
// body, and the retry-after of a 202 or 429.
type Answer struct {
	Status     int
	Body       any // *dps.OperationStatus or dps.ErrorBody
	RetryAfter time.Duration
}

// Register starts a registration (PUT .../register, or iotdps-register over MQTT) for an
// attested device: 202 with an operation ID and retry-after, or, for a disabled
// enrollment, 200 with status disabled (docs/iothub-behavior.md §7.5).
func (e *Engine) Register(a *Attested, body []byte) (*dps.OperationStatus, time.Duration, *Refusal) {
	var req dps.RegistrationRequest
	if len(bytes.TrimSpace(body)) > 0 {
		if err := json.Unmarshal(body, &req); err != nil {
			return nil, 0, refuse(dps.CodeBadRequest, ReasonBadRequest, "the register request is not a JSON DeviceRegistration: "+err.Error(),
				`send {"registrationId":"`+a.RegistrationID+`"} (and "payload":{...} for custom allocation)`)
		}
	}
	if req.TPM != nil {
		return nil, 0, refuse(dps.CodeBadRequest, ReasonTPMUnsupported, "the request carries a TPM attestation: "+ErrTPMUnsupported.Error())
	}
	if req.RegistrationID != "" && !strings.EqualFold(req.RegistrationID, a.RegistrationID) {
		return nil, 0, refuse(dps.CodeBadRequest, ReasonBadRequest, fmt.Sprintf("the body's registrationId %q is not the registration ID of the request, %q", req.RegistrationID, a.RegistrationID))
	}
	if len(req.Payload) > 0 && !json.Valid(req.Payload) {
		return nil, 0, refuse(dps.CodeBadRequest, ReasonBadRequest, "payload is not JSON")
	}
	now := e.opts.Now()
	if wait := e.throttle.register(now, e.opts.Throttle.RegistrationsPerMinute, &e.mu); wait > 0 {
		return nil, wait, refuse(dps.CodeThrottled, ReasonThrottled,
			fmt.Sprintf("more than %d registrations in a minute (the DPS limit)", e.opts.Throttle.RegistrationsPerMinute),
			"retry after the retry-after seconds, with back-off and jitter")
	}
	if a.Disabled() {
		return &dps.OperationStatus{Status: dps.StatusDisabled, RegistrationState: &dps.RegistrationState{RegistrationID: a.RegistrationID, Status: dps.StatusDisabled}}, 0,
			refuse(0, ReasonEnrollmentDisabled, "the "+a.enrollmentName()+" is disabled: the registration ends with status disabled")
	}
	op := &operation{id: e.operationID(), regID: regKey(a.RegistrationID), attested: a, payload: req.Payload, accepted: now}
	e.mu.Lock()
	e.addOperation(op)
	e.mu.Unlock()
	return &dps.OperationStatus{OperationID: op.id, Status: dps.StatusAssigning}, e.opts.RetryAfter, nil
}

func (a *Attested) enrollmentName() string {
	if a.Enrollment != nil {
		return "individual enrollment " + a.Enrollment.RegistrationID
	}
	return "enrollment group " + a.Group.EnrollmentGroupID
}

// operationID returns an ID in DPS's shape, "4.{16 hex}.{uuid}".
func (e *Engine) operationID() string {
	var b [8]byte
	_, _ = io.ReadFull(e.opts.Rand, b[:])
	return "4." + hex.EncodeToString(b[:]) + "." + e.TrackingID()
}

func (e *Engine) addOperation(op *operation) {
	if len(e.operations) >= maxOperations {
		var oldest *operation
		for _, o := range e.operations {
			if oldest == nil || o.accepted.Before(oldest.accepted) {
				oldest = o
			}
		}
		delete(e.operations, oldest.id)
	}
	e.operations[op.id] = op
}

// Poll answers an operation-status request (GET .../operations/{operationId}, or
// iotdps-get-operationstatus over MQTT) for registrationID: 202 while assigning, then 200
// with the final state. The first poll at or after AssignDelay assigns the device.
func (e *Engine) Poll(ctx context.Context, registrationID, operationID string) (*dps.OperationStatus, time.Duration, *Refusal) {
	now := e.opts.Now()
	if wait := e.throttle.poll(now, regKey(registrationID), e.opts.Throttle.PollsPer10s, &e.mu); wait > 0 {
		return nil, wait, refuse(dps.CodeThrottled, ReasonThrottled,
			fmt.Sprintf("more than %d operation-status polls in 10 s for %s (the DPS limit)", e.opts.Throttle.PollsPer10s, registrationID),
			"wait retry-after seconds between polls, as the 202 answer says")
	}
	e.mu.Lock()
	op, ok := e.operations[operationID]
	e.mu.Unlock()
	if !ok || op.regID != regKey(registrationID) {
		return nil, 0, refuse(dps.CodeNotFound, ReasonBadRequest, fmt.Sprintf("no registration operation %q for registration ID %q", operationID, registrationID),
			"poll with the operationId of the 202 answer to this device's register request")
	}
	e.mu.Lock()
	res := op.result
	e.mu.Unlock()
	if res != nil {
		return res, 0, nil
	}
	if now.Before(op.accepted.Add(e.opts.AssignDelay)) {
		return &dps.OperationStatus{OperationID: op.id, Status: dps.StatusAssigning}, e.opts.RetryAfter, nil
	}
	res = e.assign(ctx, op)
	e.mu.Lock()
	if op.result == nil {
		op.result = res
	}
	res = op.result
	e.mu.Unlock()
	return res, 0, nil
}

// assign allocates the device to a hub, creates it there and records the registration.
func (e *Engine) assign(ctx context.Context, op *operation) *dps.OperationStatus {
	a := op.attested
	now := e.opts.Now().UTC()
	e.mu.Lock()
	prev := copyState(e.registrations[op.regID])
	e.mu.Unlock()

	fail := func(code dps.ErrorCode, msg string) *dps.OperationStatus {
		st := &dps.RegistrationState{RegistrationID: a.RegistrationID, CreatedDateTimeUTC: now, Status: dps.StatusFailed,
			ErrorCode: code, ErrorMessage: msg, LastUpdatedDateTimeUTC: now, ETag: e.etag()}
		if prev != nil && !prev.CreatedDateTimeUTC.IsZero() {
			st.CreatedDateTimeUTC = prev.CreatedDateTimeUTC
		}
		e.record(a, st)
		return &dps.OperationStatus{OperationID: op.id, Status: dps.StatusFailed, RegistrationState: st}
	}

	policy, hubs, twin, caps := e.allocationOf(a)
	var payload json.RawMessage
	hub := ""
	switch policy {
	case dps.AllocationCustom:
		resp, err := e.allocateCustom(ctx, a, hubs, prev, op.payload)
		if err != nil {
			return fail(dps.CodeCustomAllocationFailed, "Custom allocation failed: "+err.Error())
		}
		if !containsFold(hubs, resp.IoTHubHostName) {
			return fail(dps.CodeCustomAllocationFailed, fmt.Sprintf("Custom allocation returned hub %q, which is not linked (linked: %s)", resp.IoTHubHostName, strings.Join(hubs, ", ")))
		}
		hub, payload = resp.IoTHubHostName, resp.Payload
		if resp.InitialTwin != nil {
			twin = resp.InitialTwin
		}
	case dps.AllocationGeoLatency, dps.AllocationStatic:
		hub = hubs[0]
	default: // hashed
		h := fnv.New32a()
		h.Write([]byte(op.regID))
		hub = hubs[int(h.Sum32()%uint32(len(hubs)))]
	}

	deviceID := a.DeviceID()
	substatus := dps.SubstatusInitialAssignment
	resetTwin := true
	reprov := dps.DefaultReprovisionPolicy
	if a.Enrollment != nil {
		reprov = a.Enrollment.Reprovision()
	} else {
		reprov = a.Group.Reprovision()
	}
	if prev != nil && prev.Status == dps.StatusAssigned && prev.DeviceID == deviceID && e.hub.Exists(deviceID) {
		// A re-registration (docs/iothub-behavior.md §7.9).
		switch {
		case !reprov.UpdateHubAssignment || strings.EqualFold(prev.AssignedHub, hub):
			hub, substatus, resetTwin = prev.AssignedHub, prev.Substatus, false
			if substatus == "" {
				substatus = dps.SubstatusInitialAssignment
			}
		case reprov.MigrateDeviceData:
			substatus, resetTwin = dps.SubstatusDeviceDataMigrated, false
		default:
			substatus = dps.SubstatusDeviceDataReset
		}
	}
	as := Assignment{HostName: hub, DeviceID: deviceID, Keys: a.Keys, Capabilities: caps}
	if a.Type == dps.AttestationX509 {
		as.Keys = iothub.SymmetricKey{}
		if a.Group != nil {
			as.Auth, as.TrustCA, as.GroupID = iothub.CAAuth(), a.SigningCA, a.Group.EnrollmentGroupID
		} else {
			as.Auth = iothub.X509Auth(a.Thumbprints.PrimaryThumbprint, a.Thumbprints.SecondaryThumbprint)
		}
	}
	if resetTwin {
		as.Twin = twin
		if as.Twin == nil {
			as.Twin = &dps.InitialTwin{}
		}
	}
	if _, err := e.hub.Assign(ctx, as); err != nil {
		return fail(dps.CodeBadRequest, fmt.Sprintf("creating device %q in hub %s: %v", deviceID, hub, err))
	}
	st := &dps.RegistrationState{RegistrationID: a.RegistrationID, CreatedDateTimeUTC: now, AssignedHub: hub, DeviceID: deviceID,
		Status: dps.StatusAssigned, Substatus: substatus, LastUpdatedDateTimeUTC: now, ETag: e.etag(), Payload: payload}
	if prev != nil && !prev.CreatedDateTimeUTC.IsZero() {
		st.CreatedDateTimeUTC = prev.CreatedDateTimeUTC
	}
	e.record(a, st)
	out := *st
	res := &dps.AttestationResult{}
	if a.Group != nil {
		res.EnrollmentGroupID = a.Group.EnrollmentGroupID
	}
	if a.Type == dps.AttestationX509 {
		out.X509 = res
	} else {
		out.SymmetricKey = res
	}
	return &dps.OperationStatus{OperationID: op.id, Status: dps.StatusAssigned, RegistrationState: &out}
}

// allocationOf returns the admitting enrollment's allocation policy, the hubs it may use
// (its iotHubs, or every linked hub), its initial twin and capabilities.
func (e *Engine) allocationOf(a *Attested) (dps.AllocationPolicy, []string, *dps.InitialTwin, iothub.Capabilities) {
	var policy dps.AllocationPolicy
	var hubs []string
	var legacy string
	var twin *dps.InitialTwin
	var caps *iothub.Capabilities
	if en := a.Enrollment; en != nil {
		policy, hubs, legacy, twin, caps = en.AllocationPolicy, en.IoTHubs, en.IoTHubHostName, en.InitialTwin, en.Capabilities
	} else {
		g := a.Group
		policy, hubs, legacy, twin, caps = g.AllocationPolicy, g.IoTHubs, g.IoTHubHostName, g.InitialTwin, g.Capabilities
	}
	if len(hubs) == 0 && legacy != "" {
		hubs = []string{legacy}
	}
	if len(hubs) == 0 {
		hubs = e.hub.HostNames()
	}
	var c iothub.Capabilities
	if caps != nil {
		c = *caps
	}
	return policy, hubs, twin, c
}

// allocateCustom asks Options.Allocate (or the built-in echo) for the hub.
func (e *Engine) allocateCustom(ctx context.Context, a *Attested, hubs []string, prev *dps.RegistrationState, payload json.RawMessage) (dps.AllocationResponse, error) {
	req := dps.AllocationRequest{LinkedHubs: hubs, DeviceRuntimeContext: dps.DeviceRuntimeContext{
		RegistrationID: a.RegistrationID, Payload: payload}}
	if a.Type == dps.AttestationX509 {
		// hubkit's shape: the device certificate, PEM (the documented request names only x509).
		req.DeviceRuntimeContext.X509 = map[string]any{"clientCertificate": CertificatePEM(a.Certificate)}
	} else {
		req.DeviceRuntimeContext.SymmetricKey = &struct{}{}
	}
	if prev != nil && prev.Status == dps.StatusAssigned {
		req.DeviceRuntimeContext.CurrentIoTHubHostName, req.DeviceRuntimeContext.CurrentDeviceID = prev.AssignedHub, prev.DeviceID
	}
	if a.Enrollment != nil {
		en := copyEnrollment(a.Enrollment)
		en.Attestation = dps.Attestation{Type: en.Attestation.Type} // the webhook gets no keys
		en.RegistrationState = nil
		req.IndividualEnrollment = en
	} else {
		g := copyGroup(a.Group)
		g.Attestation = dps.Attestation{Type: g.Attestation.Type}
		req.EnrollmentGroup = g
	}
	if e.opts.Allocate == nil {
		return dps.AllocationResponse{IoTHubHostName: hubs[0], Payload: payload}, nil
	}
	return e.opts.Allocate(ctx, req)
}

// record stores the registration record, on its own and on the individual enrollment.
func (e *Engine) record(a *Attested, st *dps.RegistrationState) {
	e.mu.Lock()
	defer e.mu.Unlock()
	k := regKey(a.RegistrationID)
	e.registrations[k] = copyState(st)
	if en, ok := e.enrollments[k]; ok && a.Enrollment != nil {
		en.RegistrationState = copyState(st)
	}
	if a.Group != nil {
		if g, ok := e.groups[a.Group.EnrollmentGroupID]; ok {
			e.groupOf[k] = g.EnrollmentGroupID
		}
	}
}

func containsFold(list []string, s string) bool {
	for _, x := range list {
		if strings.EqualFold(x, s) {
			return true
		}
	}
	return false
}

func copyState(s *dps.RegistrationState) *dps.RegistrationState {
	if s == nil {
		return nil
	}
	c := *s
	return &c
}

// copyEnrollment returns a deep enough copy of e (nil for nil): the pointers it holds are
// replaced, never modified, by the engine.
func copyEnrollment(en *dps.Enrollment) *dps.Enrollment {
	if en == nil {
		return nil
	}
	c := *en
	if en.Attestation.SymmetricKey != nil {
		k := *en.Attestation.SymmetricKey
		c.Attestation.SymmetricKey = &k
	}
	c.RegistrationState = copyState(en.RegistrationState)
	c.IoTHubs = append([]string(nil), en.IoTHubs...)
	return &c
}

func copyGroup(g *dps.EnrollmentGroup) *dps.EnrollmentGroup {
	if g == nil {
		return nil
	}
	c := *g
	if g.Attestation.SymmetricKey != nil {
		k := *g.Attestation.SymmetricKey
		c.Attestation.SymmetricKey = &k
	}
	c.IoTHubs = append([]string(nil), g.IoTHubs...)
	return &c
}
