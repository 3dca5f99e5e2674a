// Package serviceclient is a Go client for fakehub's service API: the HTTPS
// REST surface a test or script uses to play the cloud side of an Azure IoT
// Hub (registry, twins, direct methods, cloud-to-device messages, captured
// telemetry and refused connections).
//
// A Client is built from a service connection string, exactly as for the
// real hub:
//
//	c, err := serviceclient.New("HostName=localhost;SharedAccessKeyName=iothubowner;SharedAccessKey=...",
//		serviceclient.WithRootCAs(pool)) // default URL https://localhost:8443
//	res, err := c.InvokeMethod(ctx, "dev1", serviceclient.MethodCall{Name: "reboot", ResponseTimeout: 10 * time.Second})
//
// Each request carries a freshly minted SharedAccessSignature (sr = the hub
// host, skn = the policy, DefaultTokenTTL). Error answers are *Error values
// carrying the HTTP status and IoT Hub's error code name (DeviceNotFound,
// DeviceNotOnline, GatewayTimeout, ...), and for a 401 the pkg/sas reason and
// hints fakehub adds.
//
// The package servicetest starts an in-memory service API for testing code
// that uses this client, without an MQTT hub.
package serviceclient
