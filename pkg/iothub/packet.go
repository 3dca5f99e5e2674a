package iothub

import "time"

// Packet is one MQTT packet between a hub and a device as the hub saw it, or an event of
// the connection that carried it (a hubkit extension: fakehub's packet observers, the device
// grader's evidence). It never holds a secret: a CONNECT is described by its token's
// resource, policy name and expiry, never by its signature; payloads are given by size only.
type Packet struct {
	// Time is the hub's clock when the hub read or wrote the packet (a test may move it).
	Time time.Time `json:"time"`
	// Service is "" for the IoT hub's MQTT endpoint, "dps" for its Device Provisioning
	// Service.
	Service string `json:"service,omitempty"`
	// Conn numbers the TCP connection the packet travelled on (1, 2, ... in accept order,
	// unique within the hub); 0 when unknown.
	Conn       uint64 `json:"conn,omitempty"`
	RemoteAddr string `json:"remoteAddr,omitempty"`
	// DeviceID and ModuleID are the identity the connection's CONNECT named in its client
	// ID ("" before CONNECT, and on the DPS, whose client ID is a registration ID).
	DeviceID string `json:"deviceId,omitempty"`
	ModuleID string `json:"moduleId,omitempty"`
	// FromDevice is true for what the device sent, false for what the hub wrote.
	FromDevice bool `json:"fromDevice"`
	// Type is the MQTT control packet type (PacketConnect ... PacketDisconnect), or one of
	// the connection events PacketAccept (a TCP connection was accepted), PacketHandshake
	// (its TLS handshake ended) and PacketClose (the connection ended).
	Type        string `json:"type"`
	PacketID    uint16 `json:"packetId,omitempty"`
	QoS         byte   `json:"qos,omitempty"`
	Dup         bool   `json:"dup,omitempty"`
	Retain      bool   `json:"retain,omitempty"`
	Topic       string `json:"topic,omitempty"`
	PayloadSize int    `json:"payloadSize,omitempty"`
	// Filters are a SUBSCRIBE's filters with their requested QoS (an UNSUBSCRIBE's with
	// QoS 0); ReturnCodes a SUBACK's granted codes (0x80: refused).
	Filters     []PacketFilter `json:"filters,omitempty"`
	ReturnCodes []int          `json:"returnCodes,omitempty"`

	// CONNECT.
	ClientID      string    `json:"clientId,omitempty"`
	UserName      string    `json:"userName,omitempty"`
	KeepAlive     uint16    `json:"keepAlive,omitempty"` // seconds, as sent
	CleanSession  bool      `json:"cleanSession,omitempty"`
	Will          bool      `json:"will,omitempty"`
	TokenResource string    `json:"tokenResource,omitempty"` // the password token's sr, as sent
	TokenKeyName  string    `json:"tokenKeyName,omitempty"`  // its skn, for a policy token
	TokenExpiry   time.Time `json:"tokenExpiry,omitzero"`    // its se (zero: no parsable token)

	// CONNACK.
	ReturnCode     byte `json:"returnCode,omitempty"`
	SessionPresent bool `json:"sessionPresent,omitempty"`
	// Inherited are, on a session-present CONNACK, the subscriptions the connection took
	// over from the stored session (filter and granted QoS, sorted by filter): what the
	// device holds before it sends anything on this connection.
	Inherited []PacketFilter `json:"inherited,omitempty"`

	// PacketClose: the reason the hub recorded when it closed the connection itself ("":
	// the device went, or the hub recorded none).
	Reason string `json:"reason,omitempty"`

	// PacketHandshake: TLSError is "" when the handshake completed, else why it failed (a
	// device refusing the hub's certificate sends an alert: "remote error: tls: bad
	// certificate"); TLSDrill names the TLS drill whose chain the hub presented ("": its own).
	TLSError string `json:"tlsError,omitempty"`
	TLSDrill string `json:"tlsDrill,omitempty"`
}

// PacketFilter is one SUBSCRIBE (or UNSUBSCRIBE) filter.
type PacketFilter struct {
	Filter string `json:"filter"`
	QoS    byte   `json:"qos"`
}

// Identity returns the identity the packet's connection named (zero when unknown).
func (p Packet) Identity() Identity { return Identity{DeviceID: p.DeviceID, ModuleID: p.ModuleID} }

// The values of Packet.Type.
const (
	PacketAccept      = "accept" // a TCP connection was accepted (before TLS and CONNECT)
	PacketHandshake   = "tls"    // the connection's TLS handshake ended (completed, or failed: Packet.TLSError)
	PacketClose       = "close"  // the connection ended
	PacketConnect     = "CONNECT"
	PacketConnack     = "CONNACK"
	PacketPublish     = "PUBLISH"
	PacketPuback      = "PUBACK"
	PacketPubrec      = "PUBREC"
	PacketPubrel      = "PUBREL"
	PacketPubcomp     = "PUBCOMP"
	PacketSubscribe   = "SUBSCRIBE"
	PacketSuback      = "SUBACK"
	PacketUnsubscribe = "UNSUBSCRIBE"
	PacketUnsuback    = "UNSUBACK"
	PacketPingreq     = "PINGREQ"
	PacketPingresp    = "PINGRESP"
	PacketDisconnect  = "DISCONNECT"
)
