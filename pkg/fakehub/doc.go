// Package fakehub is a fake Azure IoT Hub device endpoint for offline tests:
// MQTT 3.1.1 over TLS and over WebSockets (mochi-mqtt underneath; gorilla/websocket
// for the WebSocket framing) that authenticates (SAS tokens, X.509 certificates
// by thumbprint or by a registered CA) and polices devices the way IoT Hub
// does, and records WHY it refused or closed a connection.
//
// A Server listens when NewServer returns (httptest style) and is stopped by
// Close. It checks at CONNECT: client ID, user name (all forms of
// pkg/iothub), host names, the SAS token (pkg/sas: device, module or policy
// key with DeviceConnect, scope by path segment, expiry with skew) and the
// registry status; every refusal is CONNACK 5 (3.1.1 codes only, never an
// MQTT 5 DISCONNECT) and a Rejection with a stable reason, a detail and
// hints, readable with Rejections, WaitRejection and RejectionStream and
// logged at WARN.
// Connected identities are dropped when their token expires (plus a grace),
// when a newer connection of the same identity arrives, when they are
// disabled, after exactly 1.5 × keep-alive of silence (capped at 1767 s;
// not rounded down to whole seconds as mochi alone does), and when
// they break a topic or packet rule (pkg/iothub's ClassifyPublish and
// ClassifySubscribe, QoS 2 publish, 256 KB telemetry). Accepted telemetry is
// captured with the hub's annotations in a bounded buffer read through
// Stream. Inferred behaviours are switchable in Quirks.
//
// Decisions where IoT Hub's behaviour is not documented (each a Quirk): a
// will must target the identity's own telemetry topic, else CONNECT is
// refused (5, reason will-topic-forbidden); the will arrives as telemetry
// with iothub-MessageType=Will when the connection ends without DISCONNECT
// (network loss, keep-alive, protocol violation) but not when the hub itself
// ends it for an administrative reason (token expiry, takeover, device
// disabled or removed). Keep-alive 0 gets the 1767 s cap. A disabled device
// gets CONNACK 5.
//
// # The cloud side
//
// The Server also plays the cloud (cloud.go, c2d.go, twin.go, methods.go
// over the pure packages internal/{c2d,twin,methods}):
//
//   - C2D: SendC2D/SendC2DTo enqueue into a per-identity FIFO (at most 50
//     pending, 64 KB, TTL default 1 h) delivered on
//     devices/{id}/messages/devicebound/{bag} at min(subscription QoS, 1);
//     a QoS 1 message is completed by the device's PUBACK, and one not
//     acknowledged when the connection ends goes back to the head of the
//     queue for the next session. The queue is the only source of
//     redelivery: C2D PUBLISHes bypass mochi's inflight store. C2DState,
//     WaitC2DState and C2DMessages show each message's state.
//   - Twins: $iothub/twin/GET and reported PATCH are answered on
//     $iothub/twin/res/...; Twin, UpdateDesired and UpdateTwin are the
//     service side; desired changes are pushed to subscribed devices.
//   - Direct methods: InvokeMethod/InvokeMethodOn publish
//     $iothub/methods/POST/{name}/?$rid= and wait for the device's
//     $iothub/methods/res/{status}/?$rid=.
//   - The service REST API (ServiceHandler, Options.ServiceAddr) exposes all
//     of it over HTTPS with IoT Hub's paths and SAS policy tokens.
//
// The service side speaks pkg/iothub's service vocabulary: records are
// iothub.Device, iothub.Twin, iothub.MethodResult, iothub.C2DStatus,
// iothub.Event and iothub.Rejection (the same types the REST API serves and
// pkg/serviceclient decodes), and errors are *iothub.Error values matched
// with errors.Is against iothub.ErrDeviceNotOnline, iothub.ErrGatewayTimeout,
// iothub.ErrQueueFull and the other sentinels.
//
// # Extension points
//
// The cloud half plugs into the device side through the unexported
// cloudSide interface (sessions.go); a test in this package may replace it
// with the unexported Options.cloudEvents. Each Server calls it with:
// established (after CONNACK and inflight resend: flush queued C2D),
// subscribed (after the SUBACK is written, with the filters and granted
// codes), devicePublish (twin GET, reported PATCH, method response, with
// the parsed iothub.DevicePublish; the device gets its PUBACK), puback
// (the device acknowledged our QoS 1 packet ID) and disconnected
// (replaced=true on takeover). Server.deliver(identity, topic, payload,
// qos) writes a PUBLISH straight to the identity's live connection,
// bypassing mochi's topic tree which would broadcast $iothub topics to
// every device. The session table (sessions.lookup(identity),
// session.subscriptions, session.subscribed(kind)) gives the live
// *mqtt.Client and its granted subscriptions, inherited ones included.
package fakehub
