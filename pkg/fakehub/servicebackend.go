package fakehub

import (
	"context"
	"errors"
	"io"
	"slices"
	"time"

	"github.com/hubkit/hubkit/pkg/fakehub/internal/restapi"
	"github.com/hubkit/hubkit/pkg/iothub"
	"github.com/hubkit/hubkit/pkg/sas"
)

// serviceBackend adapts the Server to the service API (restapi.Backend).
type serviceBackend struct{ s *Server }

var _ restapi.Backend = serviceBackend{}

// restErr maps the Server's errors to the restapi sentinels.
func restErr(err error) error {
	var se *ServiceError
	switch {
	case err == nil:
		return nil
	case errors.As(err, &se):
		if se.Message != "" {
			err = errors.New(se.Message) // the sentinel's text says the rest
		}
		return restapi.FromCode(int(se.Code), err)
	case errors.Is(err, ErrClosed):
		return restapi.FromCode(int(iothub.ErrorServiceUnavailable), err)
	}
	return err
}

func (b serviceBackend) Policy(name string) (restapi.Policy, bool) {
	p, ok := b.s.opts.Registry.Policy(name)
	if !ok {
		return restapi.Policy{}, false
	}
	out := restapi.Policy{Name: p.Name, Rights: restapi.Rights(p.Rights)}
	var err1, err2 error
	out.PrimaryKey, err1 = sas.DecodeKey(p.Keys.Primary)
	out.SecondaryKey, err2 = sas.DecodeKey(p.Keys.Secondary)
	if err1 != nil || err2 != nil {
		return restapi.Policy{}, false // unusable keys: as if there were no such policy
	}
	return out, true
}

func (b serviceBackend) device(id iothub.Identity) (restapi.Device, error) {
	s := b.s
	d, ok := s.opts.Registry.Device(id.DeviceID)
	if !ok {
		return restapi.Device{}, restErr(s.identityExists(id))
	}
	out := restapi.Device{Identity: id, Status: restapi.StatusEnabled, ConnectionState: restapi.StateDisconnected}
	if id.IsModule() {
		m, ok := d.module(id.ModuleID)
		if !ok {
			return restapi.Device{}, restErr(s.identityExists(id))
		}
		out.GenerationID, out.PrimaryKey, out.SecondaryKey = m.GenerationID, m.Keys.Primary, m.Keys.Secondary
		out.Status = ""
	} else {
		out.GenerationID, out.PrimaryKey, out.SecondaryKey = d.GenerationID, d.Keys.Primary, d.Keys.Secondary
		if d.Status == StatusDisabled {
			out.Status = restapi.StatusDisabled
		}
	}
	out.ETag, _ = s.identityETag(id)
	if ss := s.svc.sessionFor(id); ss != nil {
		out.ConnectionState, out.ConnectionStateUpdatedTime, out.LastActivityTime = restapi.StateConnected, ss.connectedAt, ss.connectedAt
	}
	out.CloudToDeviceMessageCount = len(s.svc.c2d.List(id))
	return out, nil
}

func (b serviceBackend) Devices(context.Context) ([]restapi.Device, error) {
	var out []restapi.Device
	for _, d := range b.s.opts.Registry.Devices() {
		if rd, err := b.device(iothub.Identity{DeviceID: d.ID}); err == nil {
			out = append(out, rd)
		}
	}
	return out, nil
}

func (b serviceBackend) Modules(_ context.Context, deviceID string) ([]restapi.Device, error) {
	d, ok := b.s.opts.Registry.Device(deviceID)
	if !ok {
		return nil, restErr(b.s.identityExists(iothub.Identity{DeviceID: deviceID}))
	}
	out := []restapi.Device{}
	for _, m := range d.Modules {
		if rd, err := b.device(iothub.Identity{DeviceID: deviceID, ModuleID: m.ID}); err == nil {
			out = append(out, rd)
		}
	}
	return out, nil
}

func (b serviceBackend) Device(_ context.Context, id iothub.Identity) (restapi.Device, error) {
	return b.device(id)
}

// checkIfMatch applies IoT Hub's If-Match rule to an existing identity.
func (b serviceBackend) checkIfMatch(id iothub.Identity, ifMatch string) error {
	if ifMatch == "" || ifMatch == "*" {
		return nil
	}
	etag, err := b.s.identityETag(id)
	if err != nil {
		return restErr(err)
	}
	if etag != ifMatch {
		return restapi.FromCode(412001, serviceError(412001, "etag %q does not match %s's %q", ifMatch, id, etag))
	}
	return nil
}

func (b serviceBackend) PutDevice(_ context.Context, d restapi.Device, ifMatch string) (restapi.Device, bool, error) {
	s, id := b.s, d.Identity
	s.svc.regMu.Lock()
	defer s.svc.regMu.Unlock()
	reg := s.opts.Registry
	keys := Keys{Primary: d.PrimaryKey, Secondary: d.SecondaryKey}
	exists := s.identityExists(id) == nil
	switch {
	case exists && ifMatch == "":
		if id.IsModule() {
			return restapi.Device{}, false, restapi.ErrModuleAlreadyExists
		}
		return restapi.Device{}, false, restapi.ErrDeviceAlreadyExists
	case !exists && ifMatch != "" && ifMatch != "*":
		return restapi.Device{}, false, restErr(s.identityExists(id))
	case exists:
		if err := b.checkIfMatch(id, ifMatch); err != nil {
			return restapi.Device{}, false, err
		}
		if _, err := reg.SetKeys(id, keys); err != nil {
			return restapi.Device{}, false, err
		}
		if !id.IsModule() && d.Status != "" {
			if err := reg.SetStatus(id.DeviceID, Status(d.Status)); err != nil {
				return restapi.Device{}, false, err
			}
		}
		stored, err := b.device(id)
		return stored, false, err
	}
	var err error
	if id.IsModule() {
		_, err = reg.AddModule(Module{DeviceID: id.DeviceID, ID: id.ModuleID, Keys: keys})
	} else {
		st := StatusEnabled
		if d.Status == restapi.StatusDisabled {
			st = StatusDisabled
		}
		_, err = reg.AddDevice(Device{ID: id.DeviceID, Status: st, Keys: keys})
	}
	if errors.Is(err, ErrNotFound) {
		return restapi.Device{}, false, restErr(s.identityExists(iothub.Identity{DeviceID: id.DeviceID}))
	}
	if err != nil {
		return restapi.Device{}, false, err
	}
	stored, err := b.device(id)
	return stored, true, err
}

func (b serviceBackend) DeleteDevice(_ context.Context, id iothub.Identity, ifMatch string) error {
	s := b.s
	s.svc.regMu.Lock()
	defer s.svc.regMu.Unlock()
	if err := s.identityExists(id); err != nil {
		return restErr(err)
	}
	if err := b.checkIfMatch(id, ifMatch); err != nil {
		return err
	}
	var err error
	if id.IsModule() {
		err = s.opts.Registry.RemoveModule(id.DeviceID, id.ModuleID)
	} else {
		err = s.opts.Registry.RemoveDevice(id.DeviceID)
	}
	if errors.Is(err, ErrNotFound) {
		return restErr(s.identityExists(id))
	}
	return err
}

func restTwin(t Twin) restapi.Twin {
	return restapi.Twin{Identity: t.Identity, ETag: t.ETag, Version: t.Version, View: t.JSON}
}

func (b serviceBackend) Twin(_ context.Context, id iothub.Identity) (restapi.Twin, error) {
	t, err := b.s.Twin(id)
	return restTwin(t), restErr(err)
}

func (b serviceBackend) UpdateTwin(ctx context.Context, id iothub.Identity, u restapi.TwinUpdate) (restapi.Twin, error) {
	t, err := b.s.UpdateTwin(ctx, id, TwinUpdate{Tags: u.Tags, Desired: u.Desired, Replace: u.Replace, IfMatch: u.IfMatch})
	if err != nil {
		return restapi.Twin{}, restErr(err)
	}
	return restTwin(t), nil
}

func (b serviceBackend) InvokeMethod(ctx context.Context, id iothub.Identity, req restapi.MethodRequest) (restapi.MethodResult, error) {
	payload := req.Payload
	if string(payload) == "null" {
		payload = nil
	}
	if req.ConnectTimeout > 0 {
		b.s.svc.waitMethodsReady(ctx, id, req.ConnectTimeout)
	}
	res, err := b.s.InvokeMethodOn(ctx, id, req.Name, payload, req.ResponseTimeout)
	if err != nil {
		return restapi.MethodResult{}, restErr(err)
	}
	return restapi.MethodResult{Status: res.Status, Payload: res.Payload}, nil
}

func restC2DStatus(r C2DRecord) restapi.C2DStatus {
	upd := r.EnqueuedTime
	if !r.FinishedTime.IsZero() {
		upd = r.FinishedTime
	} else if !r.DeliveredTime.IsZero() {
		upd = r.DeliveredTime
	}
	return restapi.C2DStatus{Identity: r.Identity, MessageID: r.MessageID, State: string(r.State),
		EnqueuedTime: r.EnqueuedTime, UpdatedTime: upd, Detail: r.Reason}
}

func (b serviceBackend) SendC2D(ctx context.Context, id iothub.Identity, m restapi.C2DMessage) (restapi.C2DStatus, error) {
	msgID, err := b.s.SendC2DTo(ctx, id, C2DMessage{
		MessageID: m.MessageID, CorrelationID: m.CorrelationID, UserID: m.UserID, To: m.To, Ack: m.Ack,
		ExpiryTime: m.ExpiryTime, ContentType: m.ContentType, ContentEncoding: m.ContentEncoding,
		Properties: m.Properties, Payload: m.Body,
	})
	if err != nil {
		return restapi.C2DStatus{}, restErr(err)
	}
	rec, _ := b.s.C2DState(msgID)
	return restC2DStatus(rec), nil
}

func (b serviceBackend) C2DStatus(_ context.Context, id iothub.Identity, messageID string) (restapi.C2DStatus, error) {
	rec, ok := b.s.C2DState(messageID)
	if !ok || rec.Identity != id {
		return restapi.C2DStatus{}, restapi.ErrMessageNotFound
	}
	return restC2DStatus(rec), nil
}

func (b serviceBackend) C2DStatuses(_ context.Context, id iothub.Identity) ([]restapi.C2DStatus, error) {
	if err := b.s.identityExists(id); err != nil {
		return nil, restErr(err)
	}
	out := []restapi.C2DStatus{}
	for _, r := range b.s.C2DMessages(id) {
		out = append(out, restC2DStatus(r))
	}
	return out, nil
}

func (b serviceBackend) PurgeC2D(_ context.Context, id iothub.Identity) (int, error) {
	if err := b.s.identityExists(id); err != nil {
		return 0, restErr(err)
	}
	return b.s.PurgeC2D(id), nil
}

func (b serviceBackend) C2DFeedback(context.Context) ([]restapi.C2DFeedback, error) {
	out := []restapi.C2DFeedback{}
	for _, f := range b.s.svc.c2d.Feedback() {
		out = append(out, restapi.C2DFeedback{OriginalMessageID: f.OriginalMessageID,
			Identity: iothub.Identity{DeviceID: f.DeviceID, ModuleID: f.ModuleID},
			Status:   string(f.Status), Description: f.Description, EnqueuedTime: f.EnqueuedTime})
	}
	return out, nil
}

func (b serviceBackend) Telemetry(_ context.Context, q restapi.TelemetryQuery) (restapi.TelemetryReader, error) {
	st := b.s.TelemetrySince(1)
	if q.DeviceID != "" {
		st = st.ForDevice(q.DeviceID, "")
	}
	r := &telemetryReader{st: st, since: q.Since, follow: q.Follow}
	if !q.Follow {
		r.backlog = st.All()
	}
	return r, nil
}

func (b serviceBackend) Rejections(context.Context) ([]restapi.Rejection, error) {
	out := []restapi.Rejection{}
	for _, r := range b.s.Rejections() {
		out = append(out, restapi.Rejection{Time: r.Time, RemoteAddr: r.RemoteAddr, ClientID: r.ClientID,
			Identity: r.Identity, Reason: string(r.Reason), Detail: r.Detail, Hints: slices.Clone(r.Hints)})
	}
	return out, nil
}

// telemetryReader reads a Stream for the service API: the messages captured
// so far, then (with follow) the new ones.
type telemetryReader struct {
	st      *Stream
	since   time.Time
	follow  bool
	backlog []Message
}

func (r *telemetryReader) Next(ctx context.Context) (restapi.TelemetryRecord, error) {
	for {
		var m Message
		if !r.follow {
			if len(r.backlog) == 0 {
				return restapi.TelemetryRecord{}, io.EOF
			}
			m, r.backlog = r.backlog[0], r.backlog[1:]
		} else {
			var err error
			if m, err = r.st.Next(ctx); err != nil {
				return restapi.TelemetryRecord{}, err
			}
		}
		if !r.since.IsZero() && m.EnqueuedTime.Before(r.since) {
			continue
		}
		return restapi.TelemetryRecord{Identity: iothub.Identity{DeviceID: m.DeviceID, ModuleID: m.ModuleID},
			EnqueuedTime: m.EnqueuedTime, Topic: m.Topic, SystemProperties: m.SystemProperties,
			Properties: m.Properties, Annotations: m.Annotations, Body: m.Payload}, nil
	}
}

func (r *telemetryReader) Close() error { return nil }
