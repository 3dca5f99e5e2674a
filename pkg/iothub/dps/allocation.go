package dps

import "encoding/json"

// AllocationRequest is what DPS sends the webhook of a custom allocation policy (Microsoft
// Learn, "Understand custom allocation policies"): the enrollment the device registered
// through, the device's context, and the hubs it may be assigned to. The enrollment's keys
// are not included.
type AllocationRequest struct {
	IndividualEnrollment *Enrollment          `json:"individualEnrollment,omitempty"`
	EnrollmentGroup      *EnrollmentGroup     `json:"enrollmentGroup,omitempty"`
	DeviceRuntimeContext DeviceRuntimeContext `json:"deviceRuntimeContext"`
	LinkedHubs           []string             `json:"linkedHubs"`
}

// DeviceRuntimeContext describes the registering device in an AllocationRequest.
type DeviceRuntimeContext struct {
	RegistrationID string `json:"registrationId"`
	// The previous assignment, absent on an initial assignment.
	CurrentIoTHubHostName string `json:"currentIotHubHostName,omitempty"`
	CurrentDeviceID       string `json:"currentDeviceId,omitempty"`
	// SymmetricKey is set ({}) for a symmetric-key device; X509 and TPM for the others.
	SymmetricKey *struct{}      `json:"symmetricKey,omitempty"`
	X509         map[string]any `json:"x509,omitempty"`
	TPM          map[string]any `json:"tpm,omitempty"`
	// Payload is the custom payload the device sent with its registration.
	Payload json.RawMessage `json:"payload,omitempty"`
}

// AllocationResponse is the webhook's answer: the hub to assign (one of LinkedHubs), an
// optional initial twin that overrides the enrollment's, and an optional payload returned
// to the device in its RegistrationState.
type AllocationResponse struct {
	IoTHubHostName string          `json:"iotHubHostName"`
	InitialTwin    *InitialTwin    `json:"initialTwin,omitempty"`
	Payload        json.RawMessage `json:"payload,omitempty"`
}
