package iothub

import (
	"fmt"
	"strings"
	"unicode/utf8"
)

// MaxIDLength is the longest device or module ID IoT Hub accepts.
const MaxIDLength = 128

// idPunctuation is the punctuation allowed in device and module IDs besides ASCII letters and
// digits (docs/iothub-behavior.md §1.20). '+', '#' and '/' are not in it: they break MQTT topics.
const idPunctuation = "-.%_*?!(),:=@$'"

// Identity names a device (ModuleID empty) or a module of a device.
type Identity struct {
	DeviceID string
	ModuleID string
}

// ClientID returns the MQTT client ID for the identity: "dev" for a device, "dev/mod" for a
// module.
func (id Identity) ClientID() string {
	if id.ModuleID == "" {
		return id.DeviceID
	}
	return id.DeviceID + "/" + id.ModuleID
}

// String returns the same form as ClientID.
func (id Identity) String() string { return id.ClientID() }

// IsModule reports whether the identity is a module.
func (id Identity) IsModule() bool { return id.ModuleID != "" }

// describe returns "device d" or "module d/m", for error messages.
func (id Identity) describe() string {
	if id.IsModule() {
		return "module " + id.ClientID()
	}
	return "device " + id.DeviceID
}

// Validate checks the device ID and (if set) the module ID with ValidateID.
func (id Identity) Validate() error {
	if err := validateID("device ID", id.DeviceID); err != nil {
		return err
	}
	if id.ModuleID != "" {
		return validateID("module ID", id.ModuleID)
	}
	return nil
}

// ParseClientID parses an MQTT client ID: "{deviceId}" or "{deviceId}/{moduleId}". Both IDs
// must pass ValidateID.
func ParseClientID(s string) (Identity, error) {
	dev, mod, isModule := strings.Cut(s, "/")
	if isModule && strings.Contains(mod, "/") {
		return Identity{}, &ParseError{What: "client ID", Input: s, Err: ErrClientID,
			Problem: "expected {deviceId} or {deviceId}/{moduleId}, found more than one '/'"}
	}
	if isModule && mod == "" {
		return Identity{}, &ParseError{What: "client ID", Input: s, Err: ErrClientID,
			Problem: "module ID after '/' is empty (expected {deviceId}/{moduleId})"}
	}
	id := Identity{DeviceID: dev, ModuleID: mod}
	if err := id.Validate(); err != nil {
		return Identity{}, err
	}
	return id, nil
}

// ValidateID reports whether s is a valid device or module ID: 1 to 128 characters, ASCII
// letters and digits plus - . % _ * ? ! ( ) , : = @ $ '. The error names the first offending
// character and its 1-based position.
func ValidateID(s string) error { return validateID("ID", s) }

func validateID(what, s string) error {
	if s == "" {
		return &ParseError{What: what, Input: s, Err: ErrClientID, Problem: "must not be empty"}
	}
	if len(s) > MaxIDLength {
		return &ParseError{What: what, Input: s, Err: ErrClientID,
			Problem: fmt.Sprintf("is %d characters long, the limit is %d", len(s), MaxIDLength)}
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if isAlnum(c) || strings.IndexByte(idPunctuation, c) >= 0 {
			continue
		}
		return &ParseError{What: what, Input: s, Err: ErrClientID,
			Problem: fmt.Sprintf("character %s at position %d is not allowed (allowed: %s)",
				describeChar(s[i:]), i+1, AllowedIDCharacters())}
	}
	return nil
}

func isAlnum(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9'
}

// describeChar quotes the character at the start of s, with its code point when it is not
// printable ASCII.
func describeChar(s string) string {
	r, _ := utf8.DecodeRuneInString(s)
	if r == utf8.RuneError {
		return fmt.Sprintf("byte 0x%02X", s[0])
	}
	if r < 0x21 || r > 0x7E {
		return fmt.Sprintf("%q (U+%04X)", r, r)
	}
	return fmt.Sprintf("'%c'", r)
}

// AllowedIDCharacters describes the characters of a device or module ID, as
// ValidateID's errors do: "ASCII letters, digits and - . % _ * ? ! ( ) , : = @ $ '"
// (docs/iothub-behavior.md §1.20).
func AllowedIDCharacters() string { return "ASCII letters, digits and " + spaced(idPunctuation) }

func spaced(chars string) string {
	return strings.Join(strings.Split(chars, ""), " ")
}
