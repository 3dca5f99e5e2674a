// Package iothub is the Azure IoT Hub MQTT vocabulary that both sides of a connection share:
// client IDs, user names, property bags, topic names and filters, status codes, and the rules
// the hub applies to what a device identity may publish and subscribe to.
//
// Every wire form has a builder and a parser, written once here. The device client builds with
// it, the fake hub parses with it, and the tests round-trip it: for every builder X and its
// parser ParseX, ParseX(X(v)) gives back v.
//
// The grammar follows the IoT Hub MQTT documentation, widened where real clients are known to
// differ (legacy user names without '?', telemetry topics without the trailing '/', C2D filters
// with '+' in the device segment). Each accepted deviation is documented on the parser that
// accepts it.
//
// Parsers return a *ParseError (client IDs, user names, property bags) or a *TopicError (topic
// names and filters). Both name what was expected and unwrap to a sentinel (ErrClientID,
// ErrUserName, ErrProperties, ErrTopic) so callers can branch with errors.Is.
//
// The service side shares the same vocabulary, written once here too: IoT Hub's error codes
// (ErrorCode, one error type *Error, and a sentinel per code that errors.Is matches by
// code), shared access policy rights (Rights, AccessPolicy, BuiltinPolicies), and the JSON
// wire shapes of the service REST API (Device, Twin, TwinPatch, MethodRequest,
// MethodResult, C2DStatus, C2DFeedback, PurgeResult) and of hubkit's documented extensions
// (Event, Rejection), plus the header mapping of cloud-to-device messages (C2DMessage).
// fakehub serves these types, the Go service client decodes them, and the CLIs print them.
//
// The package imports only the standard library and pkg/sas.
package iothub
