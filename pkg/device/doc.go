// Package device is hubkit's reference Azure IoT Hub device client: MQTT 3.1.1 over TLS (or over
// WebSockets, Config.Transport) with SAS tokens or an X.509 certificate (Config.Certificate),
// built on eclipse/paho.mqtt.golang but exposing none of its types.
//
// A Client speaks the device (or module) side of IoT Hub exactly as the Azure SDKs do:
//
//   - client ID "{deviceId}" or "{deviceId}/{moduleId}", user name
//     "{host}/{deviceId}/?api-version=2021-04-12&DeviceClientType=hubkit%2F<version>[&model-id=...]",
//     all built by package iothub;
//   - password: a SAS token signed by package sas, minted FRESH on every connection attempt, so a
//     reconnect after an expiry or a takeover never presents a stale token; tokens live TokenTTL
//     (default 1 h) and the client renews them by reconnecting gracefully at 85 % of the TTL, as
//     the .NET and Java SDKs do;
//   - persistent sessions (CleanSession=0) by default, keep-alive 60 s, MQTT 3.1.1 pinned,
//     TLS 1.2 or later with the system roots or a given pool;
//   - after a lost connection, reconnection at once, then with back-off (1 s, 2 s, 4 s ... up
//     to MaxReconnectInterval, 30 s by default), each attempt on a fresh paho client with a
//     fresh token; subscriptions are made again and, with a desired-properties handler, the
//     twin is read again. A connection the hub closed cleanly (EOF) before its token expired is
//     reported as ErrReplaced, since that is how IoT Hub ends the older of two connections with
//     the same identity, and the first reconnect waits 1 s, doubled for each further such close
//     of a connection that lived under a minute, so two clients with one identity do not take
//     over from each other in a loop;
//   - telemetry at QoS 1 (SendEvent waits for the PUBACK), cloud-to-device messages at QoS 1
//     acknowledged only after the handler returns, twin GET / reported PATCH / desired
//     notifications with $rid correlation and stale-version filtering, and direct methods.
//
// Handlers never run on paho's network goroutines: C2D messages and desired-property patches are
// each handled in order by one goroutine per kind, method calls each in their own goroutine.
// Close waits for all of them.
//
// Register handlers (OnC2D, OnDesired, OnMethod, OnAnyMethod) before Connect: Connect then
// returns only once their subscriptions are acknowledged. Handlers registered later are
// subscribed in the background.
package device
