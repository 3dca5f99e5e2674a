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
//	res, err := c.InvokeMethod(ctx, "dev1", iothub.NewMethodRequest("reboot", nil, 10*time.Second, 0))
//
// The client speaks pkg/iothub's service vocabulary, the same types fakehub
// serves: iothub.Device, iothub.Twin, iothub.MethodResult, iothub.C2DStatus,
// iothub.Event, iothub.Rejection. Each request carries a freshly minted
// SharedAccessSignature (sr = the hub host, skn = the policy,
// DefaultTokenTTL). Error answers are *iothub.Error values carrying IoT Hub's
// six-digit code (match them with errors.Is(err, iothub.ErrDeviceNotOnline)
// and the other sentinels), the tracking ID, and for a 401 the pkg/sas reason
// and hints fakehub adds.
//
// The package depends only on pkg/iothub and pkg/sas; to test code that uses
// it, start a real in-process hub with pkg/fakehub/fakehubtest and
// fakehub.Options.ServiceAddr.
package serviceclient
