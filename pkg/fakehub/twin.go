package fakehub

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/hubkit/hubkit/pkg/fakehub/internal/twin"
	"github.com/hubkit/hubkit/pkg/iothub"
)

// Twin is a device or module twin. Desired and Reported are the sections as
// the device receives them (with "$version", without "$metadata"); Tags is
// the tags object ("{}" when none). JSON is the whole twin as IoT Hub's
// service REST API renders it (GET /twins/{id}).
type Twin struct {
	Identity        iothub.Identity
	ETag            string // the service view's etag (If-Match for updates)
	Version         int64  // the service view's version: +1 for every change
	DesiredVersion  int64
	ReportedVersion int64
	Tags            json.RawMessage
	Desired         json.RawMessage
	Reported        json.RawMessage
	JSON            json.RawMessage
}

// TwinUpdate is a service-side change to a twin. A nil field is left alone.
// Tags and Desired are JSON merge patches (null deletes a property), or,
// with Replace, the new sections. IfMatch is "" or "*" (unconditional) or an
// ETag the caller saw (ErrPreconditionFailed when the twin changed since).
type TwinUpdate struct {
	Tags    json.RawMessage
	Desired json.RawMessage
	Replace bool
	IfMatch string
}

// Twin returns the twin of a device or module in the registry
// (ErrDeviceNotFound, ErrModuleNotFound).
func (s *Server) Twin(id iothub.Identity) (Twin, error) {
	if err := s.identityExists(id); err != nil {
		return Twin{}, err
	}
	return s.svc.twinOf(id), nil
}

// UpdateDesired applies a JSON merge patch to the desired properties of a
// device or module twin and returns the new twin. The change is pushed to
// the device on $iothub/twin/PATCH/properties/desired/?$version={n} when it
// is connected and subscribed. Invalid JSON or a broken limit (key and value
// sizes, depth, 32 KB per section) is ErrInvalidArgument.
func (s *Server) UpdateDesired(ctx context.Context, id iothub.Identity, patch []byte) (Twin, error) {
	return s.UpdateTwin(ctx, id, TwinUpdate{Desired: patch})
}

// UpdateTwin changes the tags and desired properties of a twin (see
// TwinUpdate); when both change, IfMatch is checked before the first change.
func (s *Server) UpdateTwin(ctx context.Context, id iothub.Identity, u TwinUpdate) (Twin, error) {
	if err := ctxErr(ctx); err != nil {
		return Twin{}, err
	}
	if err := s.identityExists(id); err != nil {
		return Twin{}, err
	}
	c := s.svc
	c.touch(id)
	ifMatch := u.IfMatch
	if u.Tags != nil {
		var err error
		if u.Replace {
			_, err = c.twins.ReplaceTags(id, u.Tags, ifMatch)
		} else {
			_, err = c.twins.UpdateTags(id, u.Tags, ifMatch)
		}
		if err != nil {
			return Twin{}, asServiceError(err)
		}
		ifMatch = ""
	}
	if u.Desired != nil {
		var err error
		if u.Replace {
			_, err = c.twins.ReplaceDesired(id, u.Desired, ifMatch)
		} else {
			_, err = c.twins.PatchDesired(id, u.Desired, ifMatch)
		}
		if err != nil {
			return Twin{}, asServiceError(err)
		}
	} else if u.Tags == nil {
		if err := checkTwinETag(c.twins.Versions(id).ETag, ifMatch); err != nil {
			return Twin{}, err
		}
	}
	return c.twinOf(id), nil
}

func checkTwinETag(etag, ifMatch string) error {
	if ifMatch == "" || ifMatch == "*" || ifMatch == etag {
		return nil
	}
	return serviceError(412001, "etag %q does not match the twin's %q", ifMatch, etag)
}

// twinOf assembles the exported view of a twin.
func (c *cloud) twinOf(id iothub.Identity) Twin {
	c.touch(id)
	view := c.twins.ServiceView(id, c.serviceInfo(id))
	var dev struct {
		Desired  json.RawMessage `json:"desired"`
		Reported json.RawMessage `json:"reported"`
	}
	var svc struct {
		Tags json.RawMessage `json:"tags"`
	}
	_ = json.Unmarshal(c.twins.Get(id), &dev) // the store's own JSON
	_ = json.Unmarshal(view, &svc)
	if svc.Tags == nil {
		svc.Tags = json.RawMessage(`{}`)
	}
	v := c.twins.Versions(id)
	return Twin{Identity: id, ETag: v.ETag, Version: v.Twin, DesiredVersion: v.Desired, ReportedVersion: v.Reported,
		Tags: svc.Tags, Desired: dev.Desired, Reported: dev.Reported, JSON: view}
}

// serviceInfo is the registry side of the service view of a twin.
func (c *cloud) serviceInfo(id iothub.Identity) twin.ServiceInfo {
	info := twin.ServiceInfo{Status: string(StatusEnabled), ConnectionState: "Disconnected"}
	if d, ok := c.s.opts.Registry.Device(id.DeviceID); ok && d.Status != "" {
		info.Status = string(d.Status)
	}
	if ss := c.sessionFor(id); ss != nil {
		info.ConnectionState = "Connected"
		info.LastActivityTime = ss.connectedAt
		info.ModelID = ss.userName.ModelID
	}
	info.CloudToDeviceMessageCount = len(c.c2d.List(id))
	if e, err := c.s.identityETag(id); err == nil {
		info.DeviceEtag = e
	}
	return info
}

// twinGet answers $iothub/twin/GET/?$rid= on $iothub/twin/res/200/?$rid=
// with {"desired":{...},"reported":{...}}.
func (c *cloud) twinGet(ss *session, rid string) {
	c.touch(ss.id)
	v := c.twins.Versions(ss.id)
	c.s.log.Info("twin GET", append(idAttrs(ss.id), "rid", rid, "desiredVersion", v.Desired, "reportedVersion", v.Reported)...)
	c.twinRespond(ss, iothub.TwinResponseTopic(200, rid, 0), c.twins.Get(ss.id))
}

// twinPatchReported applies a reported-properties patch and answers 204
// with the new $version, or the error status (400) with no version; a
// refusal is recorded as a Rejection (ReasonTwinPatchRefused), the
// connection stays open. A connection whose user name has no api-version
// is refused 400, as IoT Hub did (docs/iothub-behavior.md §1.11), unless
// Quirks.TwinPatchWithoutAPIVersion.
func (c *cloud) twinPatchReported(ss *session, rid string, patch []byte) {
	c.touch(ss.id)
	if ss.userName.APIVersion == "" && !c.s.opts.Quirks.TwinPatchWithoutAPIVersion {
		rj := ss.rejection(ReasonTwinPatchRefused, "reported-properties PATCH answered 400: the user name "+ss.rawUserName+" has no api-version")
		rj.Hints = []string{"put the api-version in the user name: " + iothub.UserName{Host: ss.userName.Host, Identity: ss.id,
			APIVersion: iothub.DefaultAPIVersion, Form: iothub.FormQuery}.String()}
		c.s.reject(rj)
		c.twinRespond(ss, iothub.TwinResponseTopic(400, rid, 0), nil)
		return
	}
	v, err := c.twins.PatchReported(ss.id, patch)
	var te *twin.Error
	switch {
	case err == nil:
		c.s.log.Info("reported properties updated", append(idAttrs(ss.id), "rid", rid, "version", v, "bytes", len(patch))...)
		c.twinRespond(ss, iothub.TwinResponseTopic(204, rid, v), nil)
	case errors.As(err, &te):
		c.s.reject(ss.rejection(ReasonTwinPatchRefused, fmt.Sprintf("reported-properties PATCH answered %d: %s", te.Status, te.Message)))
		c.twinRespond(ss, iothub.TwinResponseTopic(te.Status, rid, 0), nil)
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
	if _, err := c.s.deliver(id, iothub.TwinDesiredPatchTopic(version), body, 0); err != nil {
		c.s.log.Debug("desired properties not delivered", append(idAttrs(id), "version", version, "error", err)...)
		return
	}
	c.s.log.Info("desired properties sent", append(idAttrs(id), "version", version, "bytes", len(body))...)
}
