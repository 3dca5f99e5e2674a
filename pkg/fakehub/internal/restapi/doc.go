// Package restapi is fakehub's service API: the HTTPS REST surface a test or
// a script uses to play the cloud side of an Azure IoT Hub.
//
// [NewHandler] serves IoT Hub's own service routes where they exist
// (registry: /devices/{id}, /devices/{id}/modules/{mid}; twins: /twins/{id};
// direct methods: /twins/{id}/methods) with IoT Hub's JSON shapes, status
// codes and error bodies, and documented extensions for what the real hub
// offers only over AMQP or its Event Hubs endpoint:
//
//	POST /devices/{id}/messages/devicebound           send a cloud-to-device message
//	GET  /devices/{id}/messages/devicebound           states of the messages sent to the device
//	GET  /devices/{id}/messages/devicebound/{msgId}   state of one message
//	GET  /hubkit/telemetry?device=ID&follow=true&count=N   captured telemetry, NDJSON
//	GET  /hubkit/rejections                           refused connections and their verdicts
//
// Every request is authorized exactly as IoT Hub does: an
// "Authorization: SharedAccessSignature sr=...&sig=...&se=...&skn=POLICY"
// header, verified with pkg/sas against the policy's keys, whose rights must
// include RegistryRead (registry reads), RegistryWrite (registry writes) or
// ServiceConnect (twins, methods, messages, telemetry, rejections). A refusal
// is a 401 with IoT Hub's IotHubUnauthorizedAccess error body, plus the
// pkg/sas verdict in X-Hubkit-Reason and X-Hubkit-Hint headers.
//
// The handler holds no state: everything goes through the [Backend]
// interface, which fakehub's Server provides. The interface speaks
// pkg/iothub's service vocabulary, the same types the JSON carries, so the
// handler translates nothing; its tests run against a real in-process hub.
package restapi
