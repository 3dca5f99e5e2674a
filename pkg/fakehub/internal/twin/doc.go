// Package twin stores device and module twins for the fake hub: desired and reported
// properties, tags, their versions and metadata, with the hub's validation rules, as pure logic
// that the fake hub's MQTT wiring and service API call.
//
// # Views
//
// Store.Get renders the device view, the body of $iothub/twin/res/200/?$rid={rid}:
// {"desired":{...,"$version":n},"reported":{...,"$version":m}} with no $metadata. A new twin is
// {"desired":{"$version":1},"reported":{"$version":1}}. Store.ServiceView renders the twin as
// IoT Hub's REST API returns it (deviceId, moduleId, etag, version, tags, properties with
// $metadata and $version). Members keep the order in which they were first set.
//
// # Versions
//
// Each change of reported properties (PatchReported, from the device) adds one to the reported
// $version: the first patch of a new twin answers $version=2, as captured sample logs show.
// Each change of desired properties (PatchDesired, ReplaceDesired, from the service) adds one
// to the desired $version and is announced through Options.OnDesiredChange with the body the
// device must receive on $iothub/twin/PATCH/properties/desired/?$version={v}. Every change,
// tags included, adds one to the twin version, from which the etag is derived; service-side
// changes may carry an If-Match etag and fail with 412 (code 412001) when it is stale.
//
// # Validation
//
// Patches are JSON merge patches (RFC 7386: null deletes a property, objects merge, anything
// else replaces). A patch is refused as a whole, with an *iothub.Error of code 400004 (status 400) and
// nothing changed, when it is not a JSON object or breaks one of the documented limits:
//
//   - property names: at most 1 KB of UTF-8; no control characters, '.', '$' or white space
//     (Options.RejectHashInKeys also refuses '#', as edgeHub does);
//   - string values: at most 4 KB of UTF-8;
//   - integers: within -4503599627370496..4503599627370495 (±2^52);
//   - depth: objects and arrays at most 10 levels below the section root;
//   - arrays: no null elements, and no null values in objects inside arrays;
//   - size: desired and reported at most 32 KB each, tags at most 8 KB, counted as compact
//     JSON without $version and $metadata, after the patch is applied.
//
// The rules follow the IoT Hub documentation and edgeHub's ReportedPropertiesValidator, whose
// constants are "taken from IoTHub". Service-side documents may carry a top-level $version or
// $metadata (as read back from the hub); those are dropped before validation.
package twin
