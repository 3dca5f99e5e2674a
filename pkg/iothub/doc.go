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
// The package imports only the standard library.
package iothub
