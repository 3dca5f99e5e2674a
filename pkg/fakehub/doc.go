// Package fakehub is a fake Azure IoT Hub device endpoint for offline tests:
// MQTT 3.1.1 over TLS (mochi-mqtt underneath) that authenticates and polices
// devices the way IoT Hub does, and records WHY it refused or closed a
// connection.
//
// A Server listens when NewServer returns (httptest style) and is stopped by
// Close. It checks at CONNECT: client ID, user name (all forms of
// pkg/iothub), host names, the SAS token (pkg/sas: device, module or policy
// key with DeviceConnect, scope by path segment, expiry with skew) and the
// registry status; every refusal is CONNACK 5 (3.1.1 codes only, never an
// MQTT 5 DISCONNECT) and a Rejection with a stable reason, a detail and
// hints, readable with Rejections and WaitRejection and logged at WARN.
// Connected identities are dropped when their token expires (plus a grace),
// when a newer connection of the same identity arrives, when they are
// disabled, after 1.5 × keep-alive of silence (capped at 1767 s), and when
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
// # Extension points for the cloud side
//
// The cloud half (C2D queue, twins, direct methods, service API) lives in
// files of this package next to internal/{twin,c2d,methods,restapi}. It
// plugs in without touching the device side:
//
//   - Implement the unexported cloudSide interface (sessions.go) and set
//     newCloudSide from an init function; each Server then calls it with:
//     established (after CONNACK and inflight resend: flush queued C2D),
//     subscribed (after the SUBACK is written, with the filters and granted
//     codes), devicePublish (twin GET, reported PATCH, method response, with
//     the parsed iothub.DevicePublish; the device gets its PUBACK), puback
//     (the device acknowledged our QoS 1 packet ID) and disconnected
//     (replaced=true on takeover). The default is a no-op.
//   - Server.deliver(identity, topic, payload, qos) writes a PUBLISH straight
//     to the identity's live connection (QoS 1 registers the inflight, so it
//     is resent on a clean=false reconnect), bypassing mochi's topic tree
//     which would broadcast $iothub topics to every device.
//   - The session table (sessions.lookup(identity), session.subscriptions,
//     session.subscribed(kind)) gives the live *mqtt.Client and its granted
//     subscriptions, inherited ones included.
package fakehub
