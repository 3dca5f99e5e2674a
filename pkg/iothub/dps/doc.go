// Package dps is the Azure IoT Hub Device Provisioning Service (DPS) vocabulary that a
// provisioning device, the provisioning service and their tools share: the JSON wire shapes
// of the device registration API (RegistrationRequest, OperationStatus, RegistrationState),
// of the service API (Enrollment, EnrollmentGroup, Attestation, InitialTwin,
// ReprovisionPolicy), DPS's error answer (ErrorBody, one error type *Error with a sentinel per
// code), the shared access policy rights of a DPS (Rights, AccessPolicy), and the resource a
// registration SAS token is signed for.
//
// The MQTT topic and user-name grammar of DPS is written with the hub's, in package iothub
// (iothub.DPSUserName, iothub.DPSRegisterTopic, iothub.ParseDPSResponseTopic, ...), because it
// shares the hub's $rid and property-bag rules. This package holds what DPS does not share
// with IoT Hub: its own error body ({"errorCode":401000,"trackingId":…,"message":…,
// "timestampUtc":…}, not the hub's {"Message":"ErrorCode:…"}), its own code space, its own
// rights and its own JSON shapes. A sibling package keeps those names short (dps.Enrollment,
// dps.Error) and apart from the hub's iothub.Error and iothub.ErrorBody.
//
// The JSON tags are pinned by vectors from Microsoft's SDK tests and documentation
// (testdata/, each with its source). The package imports only the standard library,
// pkg/sas and pkg/iothub.
package dps
