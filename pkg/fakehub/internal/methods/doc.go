// Package methods correlates direct-method calls with the device's answers: the cloud half of
// IoT Hub's direct methods, as pure logic the fake hub's MQTT wiring plugs into.
//
// A caller (the service API) runs Registry.Invoke, which validates the request the way the
// hub does (method name, payload of at most 128 KB that is JSON or empty, response timeout of
// 5 to 300 seconds, 30 by default), allocates a request ID ($rid, the lower-case hex of a
// counter, as edgeHub formats it), hands the request to the Send function supplied by the
// wiring, and waits. The wiring publishes the request on
// $iothub/methods/POST/{name}/?$rid={rid} and, when the device publishes
// $iothub/methods/res/{status}/?$rid={rid}, calls Registry.Respond, which wakes the caller.
//
// Outcomes, as the service sees them on the real hub:
//
//   - the device answered: an iothub.MethodResult{Status, Payload} (the device's status and its JSON payload;
//     an empty payload becomes null, a non-JSON payload is wrapped as a JSON string);
//   - Send failed (device offline, or not subscribed to $iothub/methods/POST/#): *Error 404,
//     code 404103 DeviceNotOnline;
//   - no answer within the response timeout: an *iothub.Error of code 504101 GatewayTimeout;
//   - the caller's context ended first: the context's error;
//   - invalid request: an *iothub.Error of code 400004 ArgumentInvalid, before anything is sent.
//
// An answer with an unknown $rid, one for another identity, or one arriving after the call
// ended is ignored (Respond returns false). Invoke runs in the caller's goroutine; the
// package starts no goroutines. Time is injected through Options.Now and Options.NewTimer so
// tests can fire time-outs without sleeping.
package methods
