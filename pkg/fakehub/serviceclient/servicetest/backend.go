package servicetest

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/hubkit/hubkit/pkg/fakehub/internal/restapi"
	"github.com/hubkit/hubkit/pkg/iothub"
)

// memBackend is an in-memory restapi.Backend.
type memBackend struct {
	mu         sync.Mutex
	now        func() time.Time
	policies   map[string]restapi.Policy
	devices    map[iothub.Identity]restapi.Device
	order      []iothub.Identity
	twins      map[iothub.Identity]restapi.Twin
	online     map[string]bool
	methods    map[string]restapi.MethodResult // method name -> answer for online devices
	calls      []restapi.MethodRequest
	c2d        []restapi.C2DStatus
	c2dMsgs    []restapi.C2DMessage
	queueMax   int
	telemetry  []restapi.TelemetryRecord
	changed    chan struct{}
	rejections []restapi.Rejection
	feedback   []restapi.C2DFeedback
	etag       int
}

func newMemBackend(now func() time.Time, policies ...restapi.Policy) *memBackend {
	b := &memBackend{
		now: now, policies: map[string]restapi.Policy{}, devices: map[iothub.Identity]restapi.Device{},
		twins: map[iothub.Identity]restapi.Twin{}, online: map[string]bool{}, methods: map[string]restapi.MethodResult{},
		queueMax: 50, changed: make(chan struct{}),
	}
	for _, p := range policies {
		b.policies[p.Name] = p
	}
	return b
}

func (b *memBackend) Policy(name string) (restapi.Policy, bool) {
	p, ok := b.policies[name]
	return p, ok
}

func notFound(id iothub.Identity) error {
	if id.IsModule() {
		return fmt.Errorf("%w: %s", restapi.ErrModuleNotFound, id)
	}
	return fmt.Errorf("%w: %s", restapi.ErrDeviceNotFound, id.DeviceID)
}

func (b *memBackend) Devices(context.Context) ([]restapi.Device, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	var out []restapi.Device
	for _, id := range b.order {
		if !id.IsModule() {
			out = append(out, b.devices[id])
		}
	}
	return out, nil
}

func (b *memBackend) Modules(_ context.Context, deviceID string) ([]restapi.Device, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if _, ok := b.devices[iothub.Identity{DeviceID: deviceID}]; !ok {
		return nil, notFound(iothub.Identity{DeviceID: deviceID})
	}
	var out []restapi.Device
	for _, id := range b.order {
		if id.IsModule() && id.DeviceID == deviceID {
			out = append(out, b.devices[id])
		}
	}
	return out, nil
}

func (b *memBackend) Device(_ context.Context, id iothub.Identity) (restapi.Device, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	d, ok := b.devices[id]
	if !ok {
		return restapi.Device{}, notFound(id)
	}
	return d, nil
}

func (b *memBackend) PutDevice(_ context.Context, d restapi.Device, ifMatch string) (restapi.Device, bool, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	old, exists := b.devices[d.Identity]
	switch {
	case ifMatch == "" && exists:
		if d.Identity.IsModule() {
			return restapi.Device{}, false, fmt.Errorf("%w: %s", restapi.ErrModuleAlreadyExists, d.Identity)
		}
		return restapi.Device{}, false, fmt.Errorf("%w: %s", restapi.ErrDeviceAlreadyExists, d.Identity.DeviceID)
	case ifMatch != "" && ifMatch != "*" && !exists:
		return restapi.Device{}, false, notFound(d.Identity)
	case ifMatch != "" && ifMatch != "*" && strings.Trim(ifMatch, `"`) != old.ETag:
		return restapi.Device{}, false, fmt.Errorf("%w: stored etag is %q", restapi.ErrPreconditionFailed, old.ETag)
	}
	if d.Identity.IsModule() {
		if _, ok := b.devices[iothub.Identity{DeviceID: d.Identity.DeviceID}]; !ok {
			return restapi.Device{}, false, notFound(iothub.Identity{DeviceID: d.Identity.DeviceID})
		}
	}
	b.etag++
	d.ETag = "MTk" + strconv.Itoa(b.etag)
	if exists {
		d.GenerationID = old.GenerationID
	} else {
		d.GenerationID = "63800000000000000" + strconv.Itoa(len(b.order))
		b.order = append(b.order, d.Identity)
		b.twins[d.Identity] = restapi.Twin{Identity: d.Identity, ETag: "AAAAAAAAAAE=", Version: 1,
			Desired: json.RawMessage(`{"$version":1}`), Reported: json.RawMessage(`{"$version":1}`)}
	}
	if !exists || old.Status != d.Status {
		d.StatusUpdatedTime = b.now()
	}
	b.devices[d.Identity] = d
	return d, !exists, nil
}

func (b *memBackend) DeleteDevice(_ context.Context, id iothub.Identity, ifMatch string) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	old, ok := b.devices[id]
	if !ok {
		return notFound(id)
	}
	if ifMatch != "" && ifMatch != "*" && strings.Trim(ifMatch, `"`) != old.ETag {
		return restapi.ErrPreconditionFailed
	}
	delete(b.devices, id)
	b.order = slices.DeleteFunc(b.order, func(x iothub.Identity) bool {
		return x == id || (!id.IsModule() && x.DeviceID == id.DeviceID)
	})
	return nil
}

func (b *memBackend) Twin(_ context.Context, id iothub.Identity) (restapi.Twin, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	t, ok := b.twins[id]
	if !ok {
		return restapi.Twin{}, notFound(id)
	}
	return t, nil
}

// UpdateTwin does a shallow merge, enough to see the handler pass the
// sections through.
func (b *memBackend) UpdateTwin(_ context.Context, id iothub.Identity, u restapi.TwinUpdate) (restapi.Twin, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	t, ok := b.twins[id]
	if !ok {
		return restapi.Twin{}, notFound(id)
	}
	if u.IfMatch != "" && u.IfMatch != "*" && u.IfMatch != t.ETag {
		return restapi.Twin{}, fmt.Errorf("%w: twin etag is %q", restapi.ErrPreconditionFailed, t.ETag)
	}
	merge := func(old, patch json.RawMessage, replace bool) json.RawMessage {
		m := map[string]any{}
		if !replace && old != nil {
			_ = json.Unmarshal(old, &m)
		}
		var p map[string]any
		_ = json.Unmarshal(patch, &p)
		for k, v := range p {
			if v == nil {
				delete(m, k)
			} else {
				m[k] = v
			}
		}
		out, _ := json.Marshal(m)
		return out
	}
	if u.Tags != nil || u.Replace {
		t.Tags = merge(t.Tags, u.Tags, u.Replace)
	}
	if u.Desired != nil || u.Replace {
		t.Desired = merge(t.Desired, u.Desired, u.Replace)
	}
	t.Version++
	t.ETag = "AAAAAAAAAA" + strconv.FormatInt(t.Version, 10) + "="
	b.twins[id] = t
	return t, nil
}

func (b *memBackend) InvokeMethod(ctx context.Context, id iothub.Identity, req restapi.MethodRequest) (restapi.MethodResult, error) {
	b.mu.Lock()
	b.calls = append(b.calls, req)
	_, exists := b.devices[id]
	online := b.online[id.ClientID()]
	res, answers := b.methods[req.Name]
	b.mu.Unlock()
	switch {
	case !exists:
		return restapi.MethodResult{}, notFound(id)
	case !online:
		return restapi.MethodResult{}, fmt.Errorf("%w: %s is not connected", restapi.ErrDeviceNotOnline, id)
	case !answers:
		return restapi.MethodResult{}, fmt.Errorf("%w: no answer from %s within %v", restapi.ErrGatewayTimeout, id, req.ResponseTimeout)
	}
	return res, nil
}

func (b *memBackend) SendC2D(_ context.Context, id iothub.Identity, m restapi.C2DMessage) (restapi.C2DStatus, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if _, ok := b.devices[id]; !ok {
		return restapi.C2DStatus{}, notFound(id)
	}
	queued := 0
	for _, s := range b.c2d {
		if s.Identity == id && s.State == restapi.C2DQueued {
			queued++
		}
	}
	if queued >= b.queueMax {
		return restapi.C2DStatus{}, fmt.Errorf("%w: %d messages queued for %s", restapi.ErrQueueFull, queued, id)
	}
	if m.To == "" {
		m.To = "/devices/" + id.DeviceID + "/messages/deviceBound"
	}
	st := restapi.C2DStatus{Identity: id, MessageID: m.MessageID, State: restapi.C2DQueued, EnqueuedTime: b.now(), UpdatedTime: b.now()}
	b.c2d = append(b.c2d, st)
	b.c2dMsgs = append(b.c2dMsgs, m)
	return st, nil
}

func (b *memBackend) C2DStatus(_ context.Context, id iothub.Identity, messageID string) (restapi.C2DStatus, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, s := range b.c2d {
		if s.Identity == id && s.MessageID == messageID {
			return s, nil
		}
	}
	return restapi.C2DStatus{}, fmt.Errorf("%w: %q", restapi.ErrMessageNotFound, messageID)
}

func (b *memBackend) C2DStatuses(_ context.Context, id iothub.Identity) ([]restapi.C2DStatus, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	var out []restapi.C2DStatus
	for _, s := range b.c2d {
		if s.Identity == id {
			out = append(out, s)
		}
	}
	return out, nil
}

// publish records a telemetry message and wakes followers.
func (b *memBackend) publish(rec restapi.TelemetryRecord) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.telemetry = append(b.telemetry, rec)
	close(b.changed)
	b.changed = make(chan struct{})
}

func (b *memBackend) Telemetry(_ context.Context, q restapi.TelemetryQuery) (restapi.TelemetryReader, error) {
	return &memReader{b: b, q: q}, nil
}

type memReader struct {
	b    *memBackend
	q    restapi.TelemetryQuery
	next int
}

func (r *memReader) Next(ctx context.Context) (restapi.TelemetryRecord, error) {
	for {
		r.b.mu.Lock()
		for r.next < len(r.b.telemetry) {
			rec := r.b.telemetry[r.next]
			r.next++
			if (r.q.DeviceID == "" || rec.Identity.DeviceID == r.q.DeviceID) && !rec.EnqueuedTime.Before(r.q.Since) {
				r.b.mu.Unlock()
				return rec, nil
			}
		}
		changed := r.b.changed
		r.b.mu.Unlock()
		if !r.q.Follow {
			return restapi.TelemetryRecord{}, io.EOF
		}
		select {
		case <-ctx.Done():
			return restapi.TelemetryRecord{}, ctx.Err()
		case <-changed:
		}
	}
}

func (r *memReader) Close() error { return nil }

func (b *memBackend) Rejections(context.Context) ([]restapi.Rejection, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return slices.Clone(b.rejections), nil
}

func (b *memBackend) PurgeC2D(_ context.Context, id iothub.Identity) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if _, ok := b.devices[id]; !ok {
		return 0, notFound(id)
	}
	n := 0
	for i, s := range b.c2d {
		if s.Identity == id && s.State == restapi.C2DQueued {
			b.c2d[i].State, b.c2d[i].UpdatedTime = restapi.C2DPurged, b.now()
			n++
			if ack := b.c2dMsgs[i].Ack; ack == restapi.AckNegative || ack == restapi.AckFull {
				b.feedback = append(b.feedback, restapi.C2DFeedback{OriginalMessageID: s.MessageID, Identity: id,
					Status: "Purged", Description: "Message purged", EnqueuedTime: b.now()})
			}
		}
	}
	return n, nil
}

func (b *memBackend) C2DFeedback(context.Context) ([]restapi.C2DFeedback, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return slices.Clone(b.feedback), nil
}
