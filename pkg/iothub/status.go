package iothub

import "strconv"

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

// ErrorCode is a six-digit IoT Hub error code as it appears in the hub's logs and in service
// error bodies (docs/iothub-behavior.md §9.5). The first three digits are the HTTP status.
type ErrorCode int

// Error codes a fake hub reports in logs and rejections.
const (
	ErrorConnectionForcefullyClosedOnNewConnection ErrorCode = 400027
	ErrorIoTHubUnauthorized                        ErrorCode = 401003
	ErrorIoTHubQuotaExceeded                       ErrorCode = 403002
	ErrorDeviceMaximumQueueDepthExceeded           ErrorCode = 403004
	ErrorDeviceMaximumActiveFileUploadLimit        ErrorCode = 403005
	ErrorDeviceMaximumQueueSizeExceeded            ErrorCode = 403006
	ErrorArgumentInvalid                           ErrorCode = 400004
	ErrorDeviceNotFound                            ErrorCode = 404001
	ErrorDeviceNotOnline                           ErrorCode = 404103
	ErrorDeviceConnectionClosedRemotely            ErrorCode = 404104
	ErrorLinkCreationConflict                      ErrorCode = 409002
	ErrorPreconditionFailed                        ErrorCode = 412001
	ErrorDeviceMessageLockLost                     ErrorCode = 412002
	ErrorMessageTooLarge                           ErrorCode = 413001
	ErrorThrottling                                ErrorCode = 429001
	ErrorThrottleBacklogLimitExceeded              ErrorCode = 429002
	ErrorThrottlingBacklogTimeout                  ErrorCode = 429003
	ErrorServerError                               ErrorCode = 500001
	ErrorServiceUnavailable                        ErrorCode = 503001
	ErrorGatewayTimeout                            ErrorCode = 504101
)

var errorCodeNames = map[ErrorCode]string{
	ErrorConnectionForcefullyClosedOnNewConnection: "ConnectionForcefullyClosedOnNewConnection",
	ErrorIoTHubUnauthorized:                        "IoTHubUnauthorized",
	ErrorIoTHubQuotaExceeded:                       "IotHubQuotaExceeded",
	ErrorDeviceMaximumQueueDepthExceeded:           "DeviceMaximumQueueDepthExceeded",
	ErrorDeviceMaximumActiveFileUploadLimit:        "DeviceMaximumActiveFileUploadLimitExceeded",
	ErrorDeviceMaximumQueueSizeExceeded:            "DeviceMaximumQueueSizeExceeded",
	ErrorDeviceNotFound:                            "DeviceNotFound",
	ErrorDeviceNotOnline:                           "DeviceNotOnline",
	ErrorDeviceConnectionClosedRemotely:            "DeviceConnectionClosedRemotely",
	ErrorLinkCreationConflict:                      "LinkCreationConflict",
	ErrorPreconditionFailed:                        "PreconditionFailed",
	ErrorDeviceMessageLockLost:                     "DeviceMessageLockLost",
	ErrorArgumentInvalid:                           "ArgumentInvalid",
	ErrorMessageTooLarge:                           "MessageTooLarge",
	ErrorThrottling:                                "ThrottlingException",
	ErrorThrottleBacklogLimitExceeded:              "ThrottleBacklogLimitExceeded",
	ErrorThrottlingBacklogTimeout:                  "ThrottlingBacklogTimeout",
	ErrorServerError:                               "ServerError",
	ErrorServiceUnavailable:                        "ServiceUnavailable",
	ErrorGatewayTimeout:                            "GatewayTimeout",
}

// String returns "404103 DeviceNotOnline", or just the number for an unknown code.
func (c ErrorCode) String() string {
	if name, ok := errorCodeNames[c]; ok {
		return strconv.Itoa(int(c)) + " " + name
	}
	return strconv.Itoa(int(c))
}

// HTTPStatus returns the HTTP status the code belongs to (its first three digits).
func (c ErrorCode) HTTPStatus() int { return int(c) / 1000 }
