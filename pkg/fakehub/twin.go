package fakehub

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/hubkit/hubkit/pkg/iothub"
)

// Twin returns the twin of a device or module in the registry, in the
// service's view (iothub.ErrDeviceNotFound, iothub.ErrModuleNotFound).
func (s *Server) Twin(id iothub.Identity) (iothub.Twin, error) {
	if err := s.opts.Registry.Exists(id); err != nil {
		return iothub.Twin{}, err
	}
	if err := s.serviceGate(context.Background(), opTwinRead, 1, "", 0); err != nil {
		return iothub.Twin{}, err
	}
	t := s.cloud.twinOf(id)
	if err := s.limits.charge("a twin read", twinSize(t)); err != nil {
		return iothub.Twin{}, err
	}
	return t, nil
}

// twinSize is the size a twin read is metered by for the daily quota: the twin's JSON as the
// service API serves it (docs/iothub-behavior.md §14.9).
func twinSize(t iothub.Twin) int {
	b, err := json.Marshal(t)
	if err != nil {
		return 0
	}
	return len(b)
}

// DeviceTwin returns the twin as the device sees it (the answer to
// $iothub/twin/GET): desired and reported with their $version, without
// $metadata.
func (s *Server) DeviceTwin(id iothub.Identity) (iothub.TwinDocument, error) {
	if err := s.opts.Registry.Exists(id); err != nil {
		return iothub.TwinDocument{}, err
	}
	var doc iothub.TwinDocument
	if err := json.Unmarshal(s.cloud.twins.Get(id), &doc); err != nil {
		return iothub.TwinDocument{}, err // the store's own JSON: cannot happen
	}
	return doc, nil
}

// UpdateDesired applies a JSON merge patch to the desired properties of a
// device or module twin and returns the new twin. The change is pushed to
// the device on $iothub/twin/PATCH/properties/desired/?$version={n} when it
// is connected and subscribed. Invalid JSON or a broken limit (key and value
// sizes, depth, 32 KB per section) is iothub.ErrInvalidArgument.
func (s *Server) UpdateDesired(ctx context.Context, id iothub.Identity, patch []byte) (iothub.Twin, error) {
	return s.UpdateTwin(ctx, id, iothub.TwinUpdate{Desired: patch})
}

// UpdateTwin changes the tags and desired properties of a twin in one step
// (see iothub.TwinUpdate): IfMatch is checked once, an invalid section changes
// nothing, and the twin version moves by one.
func (s *Server) UpdateTwin(ctx context.Context, id iothub.Identity, u iothub.TwinUpdate) (iothub.Twin, error) {
	if err := ctxErr(ctx); err != nil {
		return iothub.Twin{}, err
	}
	if err := s.opts.Registry.Exists(id); err != nil {
		return iothub.Twin{}, err
	}
	// The quota meters an update by its size: the tags and desired properties sent (§14.9).
	if err := s.serviceGate(ctx, opTwinUpdate, 1, "a twin update", len(u.Tags)+len(u.Desired)); err != nil {
		return iothub.Twin{}, err
	}
	c := s.cloud
	c.touch(id)
	start := s.metrics.clock()
	_, err := c.twins.Update(id, u.Tags, u.Desired, u.Replace, u.IfMatch)
	s.metrics.twinOp("update", start)
	if err != nil {
		s.metrics.message(kindTwinDesired, "refused")
		return iothub.Twin{}, err
	}
	s.metrics.message(kindTwinDesired, "accepted")
	s.activity.changed()
	return c.twinOf(id), nil
}

// twinOf assembles the service's view of a twin: the store's part and the
// registry's.
func (c *cloud) twinOf(id iothub.Identity) iothub.Twin {
	c.touch(id)
	t := c.twins.ServiceView(id)
	t.Status, t.ConnectionState, t.AuthenticationType = iothub.StatusEnabled, iothub.StateDisconnected, iothub.AuthSAS
	if d, ok := c.s.opts.Registry.Get(id); ok {
		t.DeviceETag, t.AuthenticationType = d.ETag, d.Authentication.EffectiveType()
		if !id.IsModule() {
			t.Status, t.StatusReason, t.StatusUpdateTime = d.Status, d.StatusReason, d.StatusUpdatedTime
			t.Capabilities = &iothub.Capabilities{IoTEdge: d.Capabilities.IoTEdge}
		} else if dev, ok := c.s.opts.Registry.Get(iothub.Identity{DeviceID: id.DeviceID}); ok {
			t.Status = dev.Status
		}
	}
	if ss := c.sessionFor(id); ss != nil {
		t.ConnectionState = iothub.StateConnected
		t.LastActivityTime = ss.connectedAt
		t.ModelID = ss.userName.ModelID
	}
	t.CloudToDeviceMessageCount = len(c.c2d.List(id))
	return t
}

// twinGet answers $iothub/twin/GET/?$rid= on $iothub/twin/res/200/?$rid=
// with {"desired":{...},"reported":{...}}.
func (c *cloud) twinGet(ss *session, rid string) {
	c.touch(ss.id)
	start := c.s.metrics.clock()
	v := c.twins.Versions(ss.id)
	doc := c.twins.Get(ss.id)
	if c.quotaRefusesTwin(ss, rid, kindTwinGet, "twin GET", len(doc)) {
		return
	}
	c.s.log.Info("twin GET", append(idAttrs(ss.id), "rid", rid, "desiredVersion", v.Desired, "reportedVersion", v.Reported)...)
	c.twinRespond(ss, iothub.TwinResponseTopic(200, rid, 0), doc)
	c.s.metrics.twinOp("get", start)
	c.s.metrics.message(kindTwinGet, "answered")
}

// quotaRefusesTwin charges a device's twin operation of size bytes to the daily quota
// (docs/iothub-behavior.md §14.9). When the quota cannot hold it, the request is answered
// $iothub/twin/res/403/?$rid= ([I]: 403 is 403002's HTTP status; the connection stays, as
// for a twin throttle's 429), recorded as quota-exceeded with 403002, counted as refused
// under kind, and it reports true.
func (c *cloud) quotaRefusesTwin(ss *session, rid, kind, what string, size int) bool {
	err := c.s.limits.charge("a device's "+what, size)
	if err == nil {
		return false
	}
	rj := ss.rejection(ReasonQuotaExceeded, err.Error()+"; answered with status 403 on $iothub/twin/res/403/")
	rj.ErrorCode, rj.Warning = iothub.CodeIotHubQuotaExceeded, true
	c.s.reject(rj)
	c.twinRespond(ss, iothub.TwinResponseTopic(iothub.CodeIotHubQuotaExceeded.HTTPStatus(), rid, 0), nil)
	c.s.metrics.message(kind, "refused")
	return true
}

// twinPatchReported applies a reported-properties patch and answers 204
// with the new $version, or the error status (400) with no version; a
// refusal is recorded as a Rejection (ReasonTwinPatchRefused), the
// connection stays open. A connection whose user name has no api-version
// is refused 400, as IoT Hub did (docs/iothub-behavior.md §1.11), unless
// Quirks.TwinPatchWithoutAPIVersion.
func (c *cloud) twinPatchReported(ss *session, rid string, patch []byte) {
	c.touch(ss.id)
	start := c.s.metrics.clock()
	if ss.userName.APIVersion == "" && !c.s.opts.Quirks.TwinPatchWithoutAPIVersion {
		c.s.metrics.message(kindTwinReported, "refused")
		rj := ss.rejection(ReasonTwinPatchRefused, "reported-properties PATCH answered 400: the user name "+ss.rawUserName+" has no api-version")
		rj.Hints = []string{"put the api-version in the user name: " + iothub.UserName{Host: ss.userName.Host, Identity: ss.id,
			APIVersion: iothub.DefaultAPIVersion, Form: iothub.FormQuery}.String()}
		c.s.reject(rj)
		c.twinRespond(ss, iothub.TwinResponseTopic(400, rid, 0), nil)
		return
	}
	if c.quotaRefusesTwin(ss, rid, kindTwinReported, "reported-properties PATCH", len(patch)) {
		return
	}
	v, err := c.twins.PatchReported(ss.id, patch)
	c.s.metrics.twinOp("patch_reported", start)
	var te *iothub.Error
	switch {
	case err == nil:
		c.s.metrics.message(kindTwinReported, "accepted")
		c.s.activity.changed()
		c.s.log.Info("reported properties updated", append(idAttrs(ss.id), "rid", rid, "version", v, "bytes", len(patch))...)
		c.twinRespond(ss, iothub.TwinResponseTopic(204, rid, v), nil)
	case errors.As(err, &te):
		c.s.metrics.message(kindTwinReported, "refused")
		c.s.reject(ss.rejection(ReasonTwinPatchRefused, fmt.Sprintf("reported-properties PATCH answered %d: %s", te.Status(), te.Message)))
		c.twinRespond(ss, iothub.TwinResponseTopic(te.Status(), rid, 0), nil)
	default:
		c.twinRespond(ss, iothub.TwinResponseTopic(500, rid, 0), nil)
	}
}

// twinRespond publishes a twin response if the device subscribed to
// $iothub/twin/res/#; otherwise the answer is dropped, as the hub does.
func (c *cloud) twinRespond(ss *session, topic string, body []byte) {
	if _, ok := ss.subscribed(iothub.FilterTwinResponse); !ok {
		c.s.log.Info("twin response dropped: the device is not subscribed to "+iothub.TwinResponseFilter,
			append(idAttrs(ss.id), "topic", topic)...)
		return
	}
	if _, err := c.s.deliver(ss.id, topic, body, 0); err != nil {
		c.s.log.Debug("twin response not delivered", append(idAttrs(ss.id), "topic", topic, "error", err)...)
		return
	}
	c.s.log.Debug("twin response sent", append(idAttrs(ss.id), "topic", topic)...)
}

// desiredChanged pushes a desired-properties change to the device when it is
// connected and subscribed to $iothub/twin/PATCH/properties/desired/#.
// The twin store calls it in version order, one call at a time.
func (c *cloud) desiredChanged(id iothub.Identity, version int64, body []byte) {
	ss := c.sessionFor(id)
	if ss == nil {
		return
	}
	if _, ok := ss.subscribed(iothub.FilterTwinDesired); !ok {
		return
	}
	// The notification is a metered operation of its own (docs/iothub-behavior.md §14.9); with
	// the quota used up it is not sent ([I]): the device reads the change with its next GET.
	if err := c.s.limits.charge("a desired-properties notification", len(body)); err != nil {
		rj := ss.rejection(ReasonQuotaExceeded, fmt.Sprintf("desired properties version %d not pushed: %v", version, err))
		rj.ErrorCode, rj.Warning = iothub.CodeIotHubQuotaExceeded, true
		c.s.reject(rj)
		return
	}
	if _, err := c.s.deliver(id, iothub.TwinDesiredPatchTopic(version), body, 0); err != nil {
		c.s.log.Debug("desired properties not delivered", append(idAttrs(id), "version", version, "error", err)...)
		return
	}
	c.s.log.Info("desired properties sent", append(idAttrs(id), "version", version, "bytes", len(body))...)
}
