// Package sas creates, parses, verifies and explains Azure IoT Hub, Device
// Provisioning Service and Event Hubs/Service Bus shared access signature
// (SAS) tokens, keys and connection strings.
//
// For most uses: build a plain resource with [DeviceResource] (or
// [ModuleResource], [HubResource], [DPSResource]), encode it with
// [EncodeResource], sign it with [Sign], and send [Token.String] as the MQTT
// password. On the receiving side, [Parse] the password and call
// [Token.Verify] with the key the token claims (for a token without skn, the
// device's or module's own key; with skn, the named policy's key) and
// [WithAudience]: IoT Hub lets sr cover the identity by path prefix (the
// whole hub, all devices, or exactly the device), and the key binds a token
// without skn to its own identity anyway. [WithExactAudience] is IoT Edge
// hub's stricter rule for a device or module key: sr must name exactly that
// identity.
//
// # Verdicts
//
// [Token.Verify] returns nil or a *[Rejection] whose [Reason] is a stable code
// (for example "signature-mismatch") and whose Hints hold a differential
// diagnosis: when a signature does not match, Verify tries the mistakes
// device authors make (sr re-cased or re-encoded after signing, '+' left
// unescaped in sig, the raw key text used as the HMAC key, milliseconds in
// se, a policy key without skn, another identity's key, ...) and names the one
// that explains the token. The same verdicts are used by sastool and by
// fakehub's authenticator. Rejections unwrap to the sentinel errors in this
// package, so errors.Is(err, sas.ErrExpired) works. [Token.Warnings] lists
// what is odd about a token that verifies (se in milliseconds, an unencoded
// sr, a lifetime of years).
//
// # Wire format
//
// A token is "SharedAccessSignature" followed by one space and
// "&"-separated fields sr, sig, se and optionally skn, in any order; field
// names are case-insensitive (as in IoT Edge hub). The string to sign is the
// sr value exactly as it appears on the wire, "\n", and se in decimal. sr is
// kept raw (still percent-encoded); sig and skn are URL-decoded with
// [net/url.QueryUnescape] semantics, so an unescaped '+' in sig becomes a
// space, exactly as the real hub decodes it.
//
// # Keys
//
// IoT Hub and DPS keys are standard, padded base64 and are decoded before use
// ([DecodeKey]). Event Hubs and Service Bus sign with the raw bytes of the key
// text; [ConnectionString.Key] returns the right bytes for each dialect.
//
// # Secrets
//
// Errors, details and hints never contain keys, signatures or whole tokens
// (nor a character of a malformed key: only its offset); they show
// resources, policy names, expiries and reasons instead. [Token.String] and
// [ConnectionString.String] are the exact wire forms and contain the secret;
// [Token.Redacted] and [ConnectionString.Redacted] do not, and both types
// implement [log/slog.LogValuer], so slog logs them redacted.
//
// This package imports only the standard library.
package sas
