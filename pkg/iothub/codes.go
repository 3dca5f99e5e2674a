package iothub

import "strconv"

// ErrorCode is a six-digit IoT Hub error code, as it appears in the hub's logs, in the
// errorCode field of service error bodies and in the iothub-errorcode header. Its first
// three digits are the HTTP status it is answered with (HTTPStatus); Name is the name the
// SDKs and the documentation give it (docs/iothub-behavior.md §9.5).
type ErrorCode int

// The error codes, with their documented names. Sources: learn.microsoft.com "IoT Hub API
// common error codes" and "Understand and resolve Azure IoT Hub errors", and the ErrorCode /
// IotHubServiceErrorCode enums of the .NET service SDK (azure-iot-sdk-csharp:
// iothub/service/src/Exceptions). The Code*Generic* values are the x00000 code of a status
// class (the troubleshooting page lists 400000 GenericBadRequest); fakehub answers with them
// where IoT Hub names no specific code (an unknown route, a method not allowed on a path).
const (
	CodeGenericBadRequest                          ErrorCode = 400000
	CodeInvalidProtocolVersion                     ErrorCode = 400001 // missing or unsupported api-version
	CodeInvalidOperation                           ErrorCode = 400003
	CodeArgumentInvalid                            ErrorCode = 400004 // a bad field, header, twin document, method name...
	CodeArgumentNull                               ErrorCode = 400005
	CodeIotHubFormatError                          ErrorCode = 400006 // a body that is not the JSON expected
	CodeConnectionForcefullyClosedOnNewConnection  ErrorCode = 400027 // MQTT: another connection with the same identity
	CodeConnectionForcefullyClosedOnFaultInjection ErrorCode = 400029 // a connection closed by a fault injection (or a service upgrade)
	CodeConnectionRejectedOnFaultInjection         ErrorCode = 400030 // a new connection refused by a fault injection (or a service upgrade)
	CodeInvalidContentEncodingOrType               ErrorCode = 400103
	CodeGenericUnauthorized                        ErrorCode = 401000
	CodeIotHubUnauthorizedAccess                   ErrorCode = 401002 // service API: the token does not authorize the request
	CodeIotHubUnauthorized                         ErrorCode = 401003 // the token cannot be validated (expired, wrong scope)
	CodeGenericForbidden                           ErrorCode = 403000
	CodeIotHubQuotaExceeded                        ErrorCode = 403002 // the daily message quota is used up
	CodeDeviceMaximumQueueDepthExceeded            ErrorCode = 403004 // 50 C2D messages already queued
	CodeIotHubMaxCbsTokenExceeded                  ErrorCode = 403005
	CodeDeviceMaximumActiveFileUploadLimitExceeded ErrorCode = 403006
	CodeDeviceMaximumQueueSizeExceeded             ErrorCode = 403007
	CodeOperationNotAllowedInCurrentTier           ErrorCode = 403010
	CodeGenericNotFound                            ErrorCode = 404000
	CodeDeviceNotFound                             ErrorCode = 404001
	CodeModuleNotFound                             ErrorCode = 404010
	CodeDeviceNotOnline                            ErrorCode = 404103 // a direct method to an identity that is not connected
	CodeDeviceConnectionClosedRemotely             ErrorCode = 404104 // the device left (also logged on every MQTT close)
	CodeGenericMethodNotAllowed                    ErrorCode = 405000
	CodeGenericConflict                            ErrorCode = 409000
	CodeDeviceAlreadyExists                        ErrorCode = 409001
	CodeLinkCreationConflict                       ErrorCode = 409002
	CodeModuleAlreadyExistsOnDevice                ErrorCode = 409301
	CodeGenericPreconditionFailed                  ErrorCode = 412000
	CodePreconditionFailed                         ErrorCode = 412001 // If-Match does not match the etag
	CodeDeviceMessageLockLost                      ErrorCode = 412002
	CodeMessageTooLarge                            ErrorCode = 413001
	CodeTooManyDevices                             ErrorCode = 413002
	CodeTooManyModulesOnDevice                     ErrorCode = 413003 // a device's 51st module
	CodeThrottlingException                        ErrorCode = 429001
	CodeThrottleBacklogLimitExceeded               ErrorCode = 429002
	CodeThrottlingBacklogTimeout                   ErrorCode = 429003
	CodeGenericTooManyRequests                     ErrorCode = 429000
	CodeGenericServerError                         ErrorCode = 500000
	CodeServerError                                ErrorCode = 500001
	CodeGenericServiceUnavailable                  ErrorCode = 503000
	CodeServiceUnavailable                         ErrorCode = 503001
	CodePartitionNotFound                          ErrorCode = 503003
	CodeGenericTimeout                             ErrorCode = 504000
	CodeGatewayTimeout                             ErrorCode = 504101 // a direct method got no answer in time
)

var codeNames = map[ErrorCode]string{
	CodeGenericBadRequest:                          "GenericBadRequest",
	CodeInvalidProtocolVersion:                     "InvalidProtocolVersion",
	CodeInvalidOperation:                           "InvalidOperation",
	CodeArgumentInvalid:                            "ArgumentInvalid",
	CodeArgumentNull:                               "ArgumentNull",
	CodeIotHubFormatError:                          "IotHubFormatError",
	CodeConnectionForcefullyClosedOnNewConnection:  "ConnectionForcefullyClosedOnNewConnection",
	CodeConnectionForcefullyClosedOnFaultInjection: "ConnectionForcefullyClosedOnFaultInjection",
	CodeConnectionRejectedOnFaultInjection:         "ConnectionRejectedOnFaultInjection",
	CodeInvalidContentEncodingOrType:               "InvalidContentEncodingOrType",
	CodeGenericUnauthorized:                        "GenericUnauthorized",
	CodeIotHubUnauthorizedAccess:                   "IotHubUnauthorizedAccess",
	CodeIotHubUnauthorized:                         "IoTHubUnauthorized",
	CodeGenericForbidden:                           "GenericForbidden",
	CodeIotHubQuotaExceeded:                        "IotHubQuotaExceeded",
	CodeDeviceMaximumQueueDepthExceeded:            "DeviceMaximumQueueDepthExceeded",
	CodeIotHubMaxCbsTokenExceeded:                  "IotHubMaxCbsTokenExceeded",
	CodeDeviceMaximumActiveFileUploadLimitExceeded: "DeviceMaximumActiveFileUploadLimitExceeded",
	CodeDeviceMaximumQueueSizeExceeded:             "DeviceMaximumQueueSizeExceeded",
	CodeOperationNotAllowedInCurrentTier:           "OperationNotAllowedInCurrentTier",
	CodeGenericNotFound:                            "GenericNotFound",
	CodeDeviceNotFound:                             "DeviceNotFound",
	CodeModuleNotFound:                             "ModuleNotFound",
	CodeDeviceNotOnline:                            "DeviceNotOnline",
	CodeDeviceConnectionClosedRemotely:             "DeviceConnectionClosedRemotely",
	CodeGenericMethodNotAllowed:                    "GenericMethodNotAllowed",
	CodeGenericConflict:                            "GenericConflict",
	CodeDeviceAlreadyExists:                        "DeviceAlreadyExists",
	CodeLinkCreationConflict:                       "LinkCreationConflict",
	CodeModuleAlreadyExistsOnDevice:                "ModuleAlreadyExistsOnDevice",
	CodeGenericPreconditionFailed:                  "GenericPreconditionFailed",
	CodePreconditionFailed:                         "PreconditionFailed",
	CodeDeviceMessageLockLost:                      "DeviceMessageLockLost",
	CodeMessageTooLarge:                            "MessageTooLarge",
	CodeTooManyDevices:                             "TooManyDevices",
	CodeTooManyModulesOnDevice:                     "TooManyModulesOnDevice",
	CodeThrottlingException:                        "ThrottlingException",
	CodeThrottleBacklogLimitExceeded:               "ThrottleBacklogLimitExceeded",
	CodeThrottlingBacklogTimeout:                   "ThrottlingBacklogTimeout",
	CodeGenericTooManyRequests:                     "GenericTooManyRequests",
	CodeGenericServerError:                         "GenericServerError",
	CodeServerError:                                "ServerError",
	CodeGenericServiceUnavailable:                  "GenericServiceUnavailable",
	CodeServiceUnavailable:                         "ServiceUnavailable",
	CodePartitionNotFound:                          "PartitionNotFound",
	CodeGenericTimeout:                             "GenericTimeout",
	CodeGatewayTimeout:                             "GatewayTimeout",
}

// Name returns the code's documented name ("DeviceNotFound"), or "" for a code not in the
// table.
func (c ErrorCode) Name() string { return codeNames[c] }

// String returns "404103 DeviceNotOnline", or just the number for a code not in the table.
func (c ErrorCode) String() string {
	if name := c.Name(); name != "" {
		return strconv.Itoa(int(c)) + " " + name
	}
	return strconv.Itoa(int(c))
}

// HTTPStatus returns the HTTP status the code is answered with: its first three digits, or
// 500 for a number that is not a six-digit 4xx or 5xx code.
func (c ErrorCode) HTTPStatus() int {
	if s := int(c) / 1000; s >= 400 && s <= 599 {
		return s
	}
	return 500
}

// CodeByName returns the code a name stands for ("DeviceNotFound" → 404001), for error
// answers that carry only the name (the older "ErrorCode:DeviceNotFound;..." bodies).
func CodeByName(name string) (ErrorCode, bool) {
	for c, n := range codeNames {
		if n == name {
			return c, true
		}
	}
	return 0, false
}

// GenericCode returns the generic code of an HTTP status class (404 → 404000), for an error
// answer that carries no code of its own.
func GenericCode(status int) ErrorCode {
	if status < 400 || status > 599 {
		status = 500
	}
	return ErrorCode(status * 1000)
}
