package dps

import (
	"encoding/json"
	"fmt"
	"strings"
	"time"
)

// Defaults of the device registration API (docs/iothub-behavior.md §7.1, §7.2).
const (
	// DefaultIDScope is the ID scope fakehub's DPS answers to unless configured otherwise: the
	// shape of a real one (0ne followed by 8 hexadecimal digits).
	DefaultIDScope = "0ne00000000"
	// APIVersion is the api-version of the device registration API the SDKs send over MQTT
	// and HTTPS (azure-iot-provisioning-device's constants, the C SDK's user name).
	APIVersion = "2019-03-31"
	// ServiceAPIVersion is the api-version of the service API (enrollments, registrations) the
	// SDKs send (azure-iot-provisioning-service).
	ServiceAPIVersion = "2021-10-01"
	// RegistrationKeyName is the skn of every device registration token.
	RegistrationKeyName = "registration"
)

// Status is the status of a registration operation and of a registration record.
type Status string

// Statuses, as the service spells them. Assigned, Failed and Disabled end an operation;
// Unassigned and Assigning mean "poll again".
const (
	StatusUnassigned Status = "unassigned"
	StatusAssigning  Status = "assigning"
	StatusAssigned   Status = "assigned"
	StatusFailed     Status = "failed"
	StatusDisabled   Status = "disabled"
)

// Done reports whether the status ends a registration operation.
func (s Status) Done() bool {
	switch Status(strings.ToLower(string(s))) {
	case StatusAssigned, StatusFailed, StatusDisabled:
		return true
	}
	return false
}

// Substatus says how an assigned device got to its hub.
type Substatus string

// Substatuses of an assigned registration.
const (
	SubstatusInitialAssignment                Substatus = "initialAssignment"
	SubstatusDeviceDataMigrated               Substatus = "deviceDataMigrated"
	SubstatusDeviceDataReset                  Substatus = "deviceDataReset"
	SubstatusReprovisionedToInitialAssignment Substatus = "reprovisionedToInitialAssignment"
)

// RegistrationRequest is the body of a register request (DeviceRegistration): PUT
// /{idScope}/registrations/{registrationId}/register over HTTPS, or a PUBLISH to
// $dps/registrations/PUT/iotdps-register/?$rid={rid} over MQTT.
type RegistrationRequest struct {
	RegistrationID string `json:"registrationId"`
	// Payload is the custom allocation payload: any JSON the device sends to the allocation
	// logic (how-to-send-additional-data).
	Payload json.RawMessage `json:"payload,omitempty"`
	TPM     *TPMAttestation `json:"tpm,omitempty"`
}

// OperationStatus is the answer to a register request and to an operation-status poll
// (RegistrationOperationStatus).
type OperationStatus struct {
	OperationID       string             `json:"operationId"`
	Status            Status             `json:"status"`
	RegistrationState *RegistrationState `json:"registrationState,omitempty"`
}

// RegistrationState is a device's registration record: what the device gets back in
// OperationStatus.RegistrationState (DeviceRegistrationResult) and what the service API
// serves at /registrations/{id} (DeviceRegistrationState).
type RegistrationState struct {
	RegistrationID         string    `json:"registrationId"`
	CreatedDateTimeUTC     time.Time `json:"createdDateTimeUtc,omitzero"`
	AssignedHub            string    `json:"assignedHub,omitempty"`
	DeviceID               string    `json:"deviceId,omitempty"`
	Status                 Status    `json:"status"`
	Substatus              Substatus `json:"substatus,omitempty"`
	ErrorCode              ErrorCode `json:"errorCode,omitempty"`
	ErrorMessage           string    `json:"errorMessage,omitempty"`
	LastUpdatedDateTimeUTC time.Time `json:"lastUpdatedDateTimeUtc,omitzero"`
	ETag                   string    `json:"etag,omitempty"`
	// Payload is the custom allocation payload returned to the device (the allocation
	// webhook's answer).
	Payload json.RawMessage `json:"payload,omitempty"`
	// Which attestation the registration used (device registration API only).
	SymmetricKey *AttestationResult `json:"symmetricKey,omitempty"`
	X509         *AttestationResult `json:"x509,omitempty"`
}

// AttestationResult names the enrollment group a device registered through ("" for an
// individual enrollment), in RegistrationState.SymmetricKey or .X509.
type AttestationResult struct {
	EnrollmentGroupID string `json:"enrollmentGroupId,omitempty"`
}

// ValidateIDScope checks the shape of an ID scope: 1 to 64 ASCII letters and digits (real
// ones are "0ne" and 8 hexadecimal digits, such as 0ne00000A0A).
func ValidateIDScope(s string) error {
	if s == "" {
		return fmt.Errorf("ID scope is empty; it looks like %s", DefaultIDScope)
	}
	if len(s) > 64 {
		return fmt.Errorf("ID scope %q is %d characters long; it looks like %s", s, len(s), DefaultIDScope)
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9') {
			return fmt.Errorf("ID scope %q: character %q at position %d is not a letter or digit; it looks like %s", s, c, i+1, DefaultIDScope)
		}
	}
	return nil
}
