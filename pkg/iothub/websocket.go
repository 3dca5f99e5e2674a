package iothub

// MQTT over WebSockets (docs/iothub-behavior.md §1.1–§1.3): the hub and DPS listen on 443
// at one path, with one sub-protocol (compared without regard to case: the C SDK sends
// "MQTT").
const (
	WebSocketPort        = 443
	WebSocketPath        = "/$iothub/websocket"
	WebSocketSubprotocol = "mqtt"
	// WebSocketNoClientCertQuery is the query some SDKs append to WebSocketPath to ask the
	// hub not to request a client certificate (a SAS device).
	WebSocketNoClientCertQuery = "iothub-no-client-cert=true"
)
