// Package provisioning is fakehub's Device Provisioning Service without its transports: the
// enrollments (individual and group), the attestation of a registering device, the
// registration operations a device polls, the allocation of the device to the hub, the
// registration records, DPS's throttling, and the HTTPS API (the device registration API
// and the service API). pkg/fakehub serves it over MQTT and HTTPS and gives it the hub
// (Hub) to create assigned devices in.
//
// Attestation is one seam (Engine.Attest): a Credential carries what the device presented
// (a SAS token, or the TLS client certificate chain of an X.509 device, x509.go) and the
// answer names the enrollment that admits it and the credentials its hub device gets
// (keys, selfSigned thumbprints, or certificateAuthority with the group's CA). A TPM
// enrollment or registration is refused with ErrTPMUnsupported; X.509 caReferences with
// ErrX509CAReferences.
//
// Everything cites docs/iothub-behavior.md §7.
package provisioning
