package iothub

// Status codes carried in twin and method response topics ($iothub/twin/res/{status},
// $iothub/methods/res/{status}) and in direct-method results on the service side. They are
// HTTP status codes; the names say where IoT Hub uses them (docs/iothub-behavior.md §4.3, §4.4, §6).
const (
	StatusOK                 = 200 // twin GET succeeded; DPS registration done
	StatusAccepted           = 202 // DPS registration in progress (poll again after retry-after)
	StatusNoContent          = 204 // twin reported-properties PATCH accepted
	StatusBadRequest         = 400 // twin PATCH with malformed JSON or invalid properties; non-integer method status
	StatusUnauthorized       = 401 // DPS: bad registration credentials
	StatusNotFound           = 404 // direct method: device offline or not subscribed (404103 DeviceNotOnline)
	StatusPreconditionFailed = 412
	StatusEntityTooLarge     = 413 // payload over the limit
	StatusTooManyRequests    = 429 // throttled (twin operations, DPS)
	StatusInternalError      = 500
	StatusServiceUnavailable = 503
	StatusGatewayTimeout     = 504 // direct method: no response in time (504101 GatewayTimeout)
)

// Limits the hub enforces beyond MaxTelemetrySize and MaxC2DSize (docs/iothub-behavior.md §4, §5).
const (
	MaxMethodPayloadSize = 128 * 1024 // direct-method request and response payloads
	MaxC2DQueueDepth     = 50         // pending C2D messages per device
	MaxSubscriptions     = 5          // "a device can only subscribe to five topics at a time"
	MaxTwinSectionSize   = 32 * 1024  // desired and reported, each
)
