package fakehub

import (
	"context"
	"io"
	"strings"
	"time"

	"github.com/hubkit/hubkit/pkg/fakehub/internal/restapi"
	"github.com/hubkit/hubkit/pkg/iothub"
)

// serviceBackend serves the service API (restapi.Backend) from the Server: each method
// forwards to the Go API, which speaks the same pkg/iothub vocabulary.
type serviceBackend struct{ s *Server }

var _ restapi.Backend = serviceBackend{}

func (b serviceBackend) Policy(name string) (iothub.AccessPolicy, bool) {
	return b.s.opts.Registry.Policy(name)
}

func (b serviceBackend) Devices(ctx context.Context) ([]iothub.Device, error) {
	if err := b.s.serviceGate(ctx, opRegistry, 1, "", 0); err != nil {
		return nil, err
	}
	return b.s.Devices(), nil
}

func (b serviceBackend) Modules(ctx context.Context, deviceID string) ([]iothub.Device, error) {
	if err := b.s.serviceGate(ctx, opRegistry, 1, "", 0); err != nil {
		return nil, err
	}
	return b.s.Modules(deviceID)
}

func (b serviceBackend) Device(ctx context.Context, id iothub.Identity) (iothub.Device, error) {
	if err := b.s.serviceGate(ctx, opRegistry, 1, "", 0); err != nil {
		return iothub.Device{}, err
	}
	return b.s.Device(id)
}

func (b serviceBackend) PutDevice(ctx context.Context, d iothub.Device, ifMatch string) (iothub.Device, error) {
	if err := b.s.serviceGate(ctx, opRegistry, 1, "", 0); err != nil {
		return iothub.Device{}, err
	}
	stored, _, err := b.s.opts.Registry.Put(d, ifMatch)
	if err != nil {
		return iothub.Device{}, err
	}
	return b.s.live(stored), nil
}

func (b serviceBackend) DeleteDevice(ctx context.Context, id iothub.Identity, ifMatch string) error {
	if err := b.s.serviceGate(ctx, opRegistry, 1, "", 0); err != nil {
		return err
	}
	return b.s.opts.Registry.Delete(id, ifMatch)
}

func (b serviceBackend) Twins(_ context.Context, modules bool) ([]iothub.Twin, error) {
	var out []iothub.Twin
	for _, d := range b.s.opts.Registry.Devices() {
		ids := []iothub.Identity{d.Identity()}
		if modules {
			ids = ids[:0]
			ms, _ := b.s.opts.Registry.Modules(d.DeviceID) // the device may go meanwhile: then none
			for _, m := range ms {
				ids = append(ids, m.Identity())
			}
		}
		for _, id := range ids {
			// A query is not a twin read of each twin: it is metered by its result (MeterQuery).
			if b.s.opts.Registry.Exists(id) == nil { // removed meanwhile: left out
				out = append(out, b.s.cloud.twinOf(id))
			}
		}
	}
	return out, nil
}

func (b serviceBackend) MeterQuery(_ context.Context, size int) error {
	return b.s.limits.charge("a twin query", size)
}

func (b serviceBackend) Twin(_ context.Context, id iothub.Identity) (iothub.Twin, error) {
	return b.s.Twin(id)
}

func (b serviceBackend) UpdateTwin(ctx context.Context, id iothub.Identity, u iothub.TwinUpdate) (iothub.Twin, error) {
	return b.s.UpdateTwin(ctx, id, u)
}

func (b serviceBackend) InvokeMethod(ctx context.Context, id iothub.Identity, name string, payload []byte, response, connect time.Duration) (iothub.MethodResult, error) {
	if connect > 0 {
		b.s.cloud.waitMethodsReady(ctx, id, connect)
	}
	return b.s.InvokeMethodOn(ctx, id, name, payload, response)
}

func (b serviceBackend) SendC2D(ctx context.Context, id iothub.Identity, m iothub.C2DMessage) (iothub.C2DStatus, error) {
	msgID, err := b.s.SendC2DTo(ctx, id, m)
	if err != nil {
		return iothub.C2DStatus{}, err
	}
	st, _ := b.s.C2DState(msgID)
	return st, nil
}

func (b serviceBackend) C2DStatus(_ context.Context, id iothub.Identity, messageID string) (iothub.C2DStatus, error) {
	if err := b.s.opts.Registry.Exists(id); err != nil {
		return iothub.C2DStatus{}, err
	}
	st, ok := b.s.C2DState(messageID)
	if !ok || st.Identity() != id {
		return iothub.C2DStatus{}, iothub.Errorf(iothub.CodeGenericNotFound, "no cloud-to-device message %q was sent to %s", messageID, id)
	}
	return st, nil
}

func (b serviceBackend) WaitC2DStatus(ctx context.Context, id iothub.Identity, messageID string, wait time.Duration) (iothub.C2DStatus, error) {
	st, err := b.C2DStatus(ctx, id, messageID) // the identity and the message must exist
	if err != nil || st.State.Finished() {
		return st, err
	}
	wctx, cancel := context.WithTimeout(ctx, wait)
	defer cancel()
	st, err = b.s.WaitC2DState(wctx, messageID, nil)
	if err != nil && ctx.Err() == nil { // the wait is over: the state it is in now
		return b.C2DStatus(ctx, id, messageID)
	}
	return st, err
}

func (b serviceBackend) C2DStatuses(_ context.Context, id iothub.Identity) ([]iothub.C2DStatus, error) {
	if err := b.s.opts.Registry.Exists(id); err != nil {
		return nil, err
	}
	return b.s.C2DMessages(id), nil
}

func (b serviceBackend) PurgeC2D(_ context.Context, id iothub.Identity) (int, error) {
	if err := b.s.opts.Registry.Exists(id); err != nil {
		return 0, err
	}
	return b.s.PurgeC2D(id), nil
}

func (b serviceBackend) C2DFeedback(context.Context) ([]iothub.C2DFeedback, error) {
	return b.s.C2DFeedback(), nil
}

// Telemetry follows the one rule of telemetry streams (Server.Telemetry): a listing
// (no Follow) shows the messages held, from Since if set; a Follow stream starts
// where it is opened, or at Since when it is set (the messages since then, then the
// new ones).
func (b serviceBackend) Telemetry(_ context.Context, q restapi.TelemetryQuery) (restapi.TelemetryReader, error) {
	if q.DeviceID != "" {
		if err := b.s.opts.Registry.Exists(iothub.Identity{DeviceID: q.DeviceID}); err != nil && len(b.s.TelemetrySince(1).ForDevice(q.DeviceID, "").All()) == 0 {
			return nil, err // a device that is not registered and never sent anything: a typo
		}
	}
	var st *Stream
	switch {
	case q.Follow && q.Since.IsZero():
		st = b.s.Telemetry()
	default:
		st = b.s.TelemetryFrom(q.Since)
	}
	if q.DeviceID != "" {
		st = st.ForDevice(q.DeviceID, "")
	}
	return newStreamReader(q.Follow, st.Next, st.All, func(m iothub.Event) bool { return !m.EnqueuedTime.Before(q.Since) }), nil
}

func (b serviceBackend) Reset(_ context.Context, parts []string) error {
	ps, err := ParseResetParts(strings.Join(parts, ","))
	if err != nil {
		return iothub.Errorf(iothub.CodeArgumentInvalid, "%v", err)
	}
	b.s.Reset(ps...)
	return nil
}

// Rejections reads the rejection log under the rule of Telemetry.
func (b serviceBackend) Rejections(_ context.Context, q restapi.StreamQuery) (restapi.RejectionReader, error) {
	st := b.s.RejectionStream()
	if !q.Follow || !q.Since.IsZero() {
		st = b.s.RejectionsFrom(q.Since)
	}
	if q.DeviceID != "" {
		st = st.ForDevice(q.DeviceID, "")
	}
	return newStreamReader(q.Follow, st.Next, st.All, func(r iothub.Rejection) bool { return !r.Time.Before(q.Since) }), nil
}

// streamReader reads a stream for the service API: the records held so far (backlog), or
// (with follow) the new ones from next. Records keep refuses are skipped: the stream starts
// at a time, but a moved clock can record earlier times later.
type streamReader[T any] struct {
	next    func(context.Context) (T, error)
	follow  bool
	backlog []T
	keep    func(T) bool
}

// newStreamReader reads next when follow is set, else what all returns now.
func newStreamReader[T any](follow bool, next func(context.Context) (T, error), all func() []T, keep func(T) bool) *streamReader[T] {
	r := &streamReader[T]{next: next, follow: follow, keep: keep}
	if !follow {
		r.backlog = all()
	}
	return r
}

func (r *streamReader[T]) Next(ctx context.Context) (T, error) {
	for {
		var rec T
		if !r.follow {
			if len(r.backlog) == 0 {
				return rec, io.EOF
			}
			rec, r.backlog = r.backlog[0], r.backlog[1:]
		} else {
			var err error
			if rec, err = r.next(ctx); err != nil {
				return rec, err
			}
		}
		if r.keep == nil || r.keep(rec) {
			return rec, nil
		}
	}
}

func (r *streamReader[T]) Close() error { return nil }
