package iothub

import (
	"encoding/json"
	"fmt"
	"strings"
	"time"
)

// DeviceStatus is whether a device may connect: enabled, or disabled (refused, and dropped
// when disabled while connected).
type DeviceStatus string

// Device statuses, as IoT Hub's identity JSON spells them.
const (
	StatusEnabled  DeviceStatus = "enabled"
	StatusDisabled DeviceStatus = "disabled"
)

// ParseDeviceStatus accepts "enabled" and "disabled" in any case; "" is enabled.
func ParseDeviceStatus(s string) (DeviceStatus, error) {
	switch DeviceStatus(strings.ToLower(s)) {
	case "", StatusEnabled:
		return StatusEnabled, nil
	case StatusDisabled:
		return StatusDisabled, nil
	}
	return "", fmt.Errorf("status %q: want %s or %s", s, StatusEnabled, StatusDisabled)
}

// ConnectionState is whether an identity has a live MQTT connection.
type ConnectionState string

// Connection states, as IoT Hub spells them.
const (
	StateConnected    ConnectionState = "Connected"
	StateDisconnected ConnectionState = "Disconnected"
)

// AuthType is how an identity authenticates.
type AuthType string

// Authentication types of IoT Hub's identity registry.
const (
	AuthSAS                  AuthType = "sas"                  // symmetric keys (SAS tokens)
	AuthSelfSigned           AuthType = "selfSigned"           // X.509, by certificate thumbprint
	AuthCertificateAuthority AuthType = "certificateAuthority" // X.509, signed by a CA registered on the hub
	AuthNone                 AuthType = "none"
)

// Device is a device or module identity in IoT Hub's registry JSON (api-version 2021-04-12),
// as the service REST API and `az iot hub device-identity show` render it. A module has
// ModuleID (and perhaps ManagedBy) set; status, statusReason, statusUpdatedTime and
// capabilities are device fields and are not rendered for a module.
//
// The registry-side fields (ConnectionState, LastActivityTime, CloudToDeviceMessageCount)
// are filled by whoever reports the identity; zero times render as the hub renders them,
// "0001-01-01T00:00:00Z".
type Device struct {
	DeviceID                   string          `json:"deviceId"`
	ModuleID                   string          `json:"moduleId,omitempty"`
	ManagedBy                  string          `json:"managedBy,omitempty"`
	GenerationID               string          `json:"generationId"`
	ETag                       string          `json:"etag"`
	ConnectionState            ConnectionState `json:"connectionState"`
	Status                     DeviceStatus    `json:"status,omitempty"`
	StatusReason               string          `json:"statusReason,omitempty"`
	ConnectionStateUpdatedTime time.Time       `json:"connectionStateUpdatedTime"`
	StatusUpdatedTime          time.Time       `json:"statusUpdatedTime"`
	LastActivityTime           time.Time       `json:"lastActivityTime"`
	CloudToDeviceMessageCount  int             `json:"cloudToDeviceMessageCount"`
	Authentication             Authentication  `json:"authentication"`
	Capabilities               Capabilities    `json:"capabilities"`
}

// Authentication is IoT Hub's AuthenticationMechanism. Empty keys and thumbprints render as
// null, as the hub renders them.
type Authentication struct {
	SymmetricKey   SymmetricKey   `json:"symmetricKey"`
	X509Thumbprint X509Thumbprint `json:"x509Thumbprint"`
	Type           AuthType       `json:"type"`
}

// SymmetricKey holds an identity's two base64 keys.
type SymmetricKey struct {
	PrimaryKey   string `json:"primaryKey"`
	SecondaryKey string `json:"secondaryKey"`
}

// X509Thumbprint holds the SHA-1 or SHA-256 thumbprints (hex) of a self-signed identity.
type X509Thumbprint struct {
	PrimaryThumbprint   string `json:"primaryThumbprint"`
	SecondaryThumbprint string `json:"secondaryThumbprint"`
}

// Capabilities is IoT Hub's DeviceCapabilities.
type Capabilities struct {
	IoTEdge bool `json:"iotEdge"`
}

// Identity returns the identity the record names.
func (d Device) Identity() Identity { return Identity{DeviceID: d.DeviceID, ModuleID: d.ModuleID} }

// SASAuth returns the authentication of a symmetric-key identity.
func SASAuth(primaryKey, secondaryKey string) Authentication {
	return Authentication{Type: AuthSAS, SymmetricKey: SymmetricKey{PrimaryKey: primaryKey, SecondaryKey: secondaryKey}}
}

// MarshalJSON renders empty keys as null.
func (k SymmetricKey) MarshalJSON() ([]byte, error) {
	return json.Marshal(struct {
		P *string `json:"primaryKey"`
		S *string `json:"secondaryKey"`
	}{nullIfEmpty(k.PrimaryKey), nullIfEmpty(k.SecondaryKey)})
}

// MarshalJSON renders empty thumbprints as null.
func (t X509Thumbprint) MarshalJSON() ([]byte, error) {
	return json.Marshal(struct {
		P *string `json:"primaryThumbprint"`
		S *string `json:"secondaryThumbprint"`
	}{nullIfEmpty(t.PrimaryThumbprint), nullIfEmpty(t.SecondaryThumbprint)})
}

func nullIfEmpty(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

// MarshalJSON renders the identity as IoT Hub does: times in UTC, statusReason null when
// empty, and no device-only fields for a module.
func (d Device) MarshalJSON() ([]byte, error) {
	type plain Device // the same fields without the methods; the ones below shadow its own
	out := struct {
		plain
		ConnectionState            ConnectionState `json:"connectionState"`
		Status                     DeviceStatus    `json:"status,omitempty"`
		StatusReason               json.RawMessage `json:"statusReason,omitempty"`
		ConnectionStateUpdatedTime *jsonTime       `json:"connectionStateUpdatedTime"`
		StatusUpdatedTime          *jsonTime       `json:"statusUpdatedTime,omitempty"`
		LastActivityTime           *jsonTime       `json:"lastActivityTime"`
		Capabilities               *Capabilities   `json:"capabilities,omitempty"`
	}{
		plain:                      plain(d),
		ConnectionState:            d.ConnectionState,
		ConnectionStateUpdatedTime: timeOf(d.ConnectionStateUpdatedTime),
		LastActivityTime:           timeOf(d.LastActivityTime),
	}
	if out.ConnectionState == "" {
		out.ConnectionState = StateDisconnected
	}
	if out.Authentication.Type == "" {
		out.Authentication.Type = AuthSAS
	}
	if d.ModuleID == "" {
		out.Status = d.Status
		if out.Status == "" {
			out.Status = StatusEnabled
		}
		out.StatusReason, _ = json.Marshal(nullIfEmpty(d.StatusReason)) // the hub writes null
		out.StatusUpdatedTime = timeOf(d.StatusUpdatedTime)
		out.Capabilities = &d.Capabilities
	}
	return json.Marshal(out)
}

// UnmarshalJSON accepts the times as the hub, az and hubkit write them (with or without a
// zone: az prints "0001-01-01T00:00:00"), and null where the hub writes null.
func (d *Device) UnmarshalJSON(b []byte) error {
	type plain Device
	in := struct {
		*plain
		StatusReason               *string   `json:"statusReason"`
		ConnectionStateUpdatedTime *jsonTime `json:"connectionStateUpdatedTime"`
		StatusUpdatedTime          *jsonTime `json:"statusUpdatedTime"`
		LastActivityTime           *jsonTime `json:"lastActivityTime"`
	}{plain: (*plain)(d)}
	*d = Device{}
	if err := json.Unmarshal(b, &in); err != nil {
		return err
	}
	if in.StatusReason != nil {
		d.StatusReason = *in.StatusReason
	}
	d.ConnectionStateUpdatedTime = in.ConnectionStateUpdatedTime.get()
	d.StatusUpdatedTime = in.StatusUpdatedTime.get()
	d.LastActivityTime = in.LastActivityTime.get()
	return nil
}

// UnquoteETag returns the etag an If-Match header names, accepting it as the SDKs send it:
// quoted ("AAAAAAAAAAE=", RFC 7232) or bare, with or without the W/ of a weak tag. "*" stays
// "*".
func UnquoteETag(s string) string {
	s = strings.TrimPrefix(strings.TrimSpace(s), "W/")
	if len(s) >= 2 && s[0] == '"' && s[len(s)-1] == '"' {
		s = s[1 : len(s)-1]
	}
	return s
}

// QuoteETag returns the If-Match header value for an etag: quoted, as RFC 7232 and the SDKs
// write it; "*" and an already quoted value are unchanged.
func QuoteETag(s string) string {
	if s == "" || s == "*" || (len(s) >= 2 && s[0] == '"') {
		return s
	}
	return `"` + s + `"`
}
