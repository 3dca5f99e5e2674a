// Package provisioning is fakehub's Device Provisioning Service without its transports: the
// enrollments (individual and group), the attestation of a registering device, the
// registration operations a device polls, the allocation of the device to the hub, the
// registration records, DPS's throttling, and the HTTPS API (the device registration API
// and the service API). pkg/fakehub serves it over MQTT and HTTPS and gives it the hub
// (Hub) to create assigned devices in.
//
// Attestation is one seam (Engine.Attest): a Credential carries what the device presented
// (a SAS token now; the TLS client certificate chain once fakehub verifies X.509) and the
// answer names the enrollment that admits it and the credentials its hub device gets. A
// TPM enrollment or registration is refused with ErrTPMUnsupported, an X.509 one (for now)
// with ErrX509Unsupported.
//
// Everything cites docs/iothub-behavior.md §7.
package provisioning
