package restapi

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/hubkit/hubkit/pkg/iothub"
)

// memBackend is an in-memory Backend for the handler tests.
type memBackend struct {
	mu         sync.Mutex
	now        func() time.Time
	policies   map[string]Policy
	devices    map[iothub.Identity]Device
	order      []iothub.Identity
	twins      map[iothub.Identity]Twin
	online     map[string]bool
	methods    map[string]MethodResult // method name -> answer for online devices
	lastMethod MethodRequest
	c2d        []C2DStatus
	c2dMsgs    []C2DMessage
	queueMax   int
	telemetry  []TelemetryRecord
	changed    chan struct{}
	rejections []Rejection
	etag       int
}

func newMemBackend(now func() time.Time, policies ...Policy) *memBackend {
	b := &memBackend{
		now: now, policies: map[string]Policy{}, devices: map[iothub.Identity]Device{},
		twins: map[iothub.Identity]Twin{}, online: map[string]bool{}, methods: map[string]MethodResult{},
		queueMax: 50, changed: make(chan struct{}),
	}
	for _, p := range policies {
		b.policies[p.Name] = p
	}
	return b
}

func (b *memBackend) Policy(name string) (Policy, bool) {
	p, ok := b.policies[name]
	return p, ok
}

func notFound(id iothub.Identity) error {
	if id.IsModule() {
		return fmt.Errorf("%w: %s", ErrModuleNotFound, id)
	}
	return fmt.Errorf("%w: %s", ErrDeviceNotFound, id.DeviceID)
}

func (b *memBackend) Devices(context.Context) ([]Device, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	var out []Device
	for _, id := range b.order {
		if !id.IsModule() {
			out = append(out, b.devices[id])
		}
	}
	return out, nil
}

func (b *memBackend) Modules(_ context.Context, deviceID string) ([]Device, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if _, ok := b.devices[iothub.Identity{DeviceID: deviceID}]; !ok {
		return nil, notFound(iothub.Identity{DeviceID: deviceID})
	}
	var out []Device
	for _, id := range b.order {
		if id.IsModule() && id.DeviceID == deviceID {
			out = append(out, b.devices[id])
		}
	}
	return out, nil
}

func (b *memBackend) Device(_ context.Context, id iothub.Identity) (Device, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	d, ok := b.devices[id]
	if !ok {
		return Device{}, notFound(id)
	}
	return d, nil
}

func (b *memBackend) PutDevice(_ context.Context, d Device, ifMatch string) (Device, bool, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	old, exists := b.devices[d.Identity]
	switch {
	case ifMatch == "" && exists:
		if d.Identity.IsModule() {
			return Device{}, false, fmt.Errorf("%w: %s", ErrModuleAlreadyExists, d.Identity)
		}
		return Device{}, false, fmt.Errorf("%w: %s", ErrDeviceAlreadyExists, d.Identity.DeviceID)
	case ifMatch != "" && ifMatch != "*" && !exists:
		return Device{}, false, notFound(d.Identity)
	case ifMatch != "" && ifMatch != "*" && unquoteETag(ifMatch) != old.ETag:
		return Device{}, false, fmt.Errorf("%w: stored etag is %q", ErrPreconditionFailed, old.ETag)
	}
	if d.Identity.IsModule() {
		if _, ok := b.devices[iothub.Identity{DeviceID: d.Identity.DeviceID}]; !ok {
			return Device{}, false, notFound(iothub.Identity{DeviceID: d.Identity.DeviceID})
		}
	}
	b.etag++
	d.ETag = "MTk" + strconv.Itoa(b.etag)
	if exists {
		d.GenerationID = old.GenerationID
	} else {
		d.GenerationID = "63800000000000000" + strconv.Itoa(len(b.order))
		b.order = append(b.order, d.Identity)
		b.twins[d.Identity] = Twin{Identity: d.Identity, ETag: "AAAAAAAAAAE=", Version: 1,
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
	if ifMatch != "" && ifMatch != "*" && unquoteETag(ifMatch) != old.ETag {
		return ErrPreconditionFailed
	}
	delete(b.devices, id)
	b.order = slices.DeleteFunc(b.order, func(x iothub.Identity) bool {
		return x == id || (!id.IsModule() && x.DeviceID == id.DeviceID)
	})
	return nil
}

func (b *memBackend) Twin(_ context.Context, id iothub.Identity) (Twin, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	t, ok := b.twins[id]
	if !ok {
		return Twin{}, notFound(id)
	}
	return t, nil
}

// UpdateTwin does a shallow merge, enough to see the handler pass the
// sections through.
func (b *memBackend) UpdateTwin(_ context.Context, id iothub.Identity, u TwinUpdate) (Twin, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	t, ok := b.twins[id]
	if !ok {
		return Twin{}, notFound(id)
	}
	if u.IfMatch != "" && u.IfMatch != "*" && u.IfMatch != t.ETag {
		return Twin{}, fmt.Errorf("%w: twin etag is %q", ErrPreconditionFailed, t.ETag)
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

func (b *memBackend) InvokeMethod(ctx context.Context, id iothub.Identity, req MethodRequest) (MethodResult, error) {
	b.mu.Lock()
	b.lastMethod = req
	_, exists := b.devices[id]
	online := b.online[id.ClientID()]
	res, answers := b.methods[req.Name]
	b.mu.Unlock()
	switch {
	case !exists:
		return MethodResult{}, notFound(id)
	case !online:
		return MethodResult{}, fmt.Errorf("%w: %s is not connected", ErrDeviceNotOnline, id)
	case !answers:
		return MethodResult{}, fmt.Errorf("%w: no answer from %s within %v", ErrGatewayTimeout, id, req.ResponseTimeout)
	}
	return res, nil
}

func (b *memBackend) SendC2D(_ context.Context, id iothub.Identity, m C2DMessage) (C2DStatus, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if _, ok := b.devices[id]; !ok {
		return C2DStatus{}, notFound(id)
	}
	queued := 0
	for _, s := range b.c2d {
		if s.Identity == id && s.State == C2DQueued {
			queued++
		}
	}
	if queued >= b.queueMax {
		return C2DStatus{}, fmt.Errorf("%w: %d messages queued for %s", ErrQueueFull, queued, id)
	}
	st := C2DStatus{Identity: id, MessageID: m.MessageID, State: C2DQueued, EnqueuedTime: b.now(), UpdatedTime: b.now()}
	b.c2d = append(b.c2d, st)
	b.c2dMsgs = append(b.c2dMsgs, m)
	return st, nil
}

func (b *memBackend) C2DStatus(_ context.Context, id iothub.Identity, messageID string) (C2DStatus, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, s := range b.c2d {
		if s.Identity == id && s.MessageID == messageID {
			return s, nil
		}
	}
	return C2DStatus{}, fmt.Errorf("%w: %q", ErrMessageNotFound, messageID)
}

func (b *memBackend) C2DStatuses(_ context.Context, id iothub.Identity) ([]C2DStatus, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	var out []C2DStatus
	for _, s := range b.c2d {
		if s.Identity == id {
			out = append(out, s)
		}
	}
	return out, nil
}

// publish records a telemetry message and wakes followers.
func (b *memBackend) publish(rec TelemetryRecord) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.telemetry = append(b.telemetry, rec)
	close(b.changed)
	b.changed = make(chan struct{})
}

func (b *memBackend) Telemetry(_ context.Context, q TelemetryQuery) (TelemetryReader, error) {
	return &memReader{b: b, q: q}, nil
}

type memReader struct {
	b    *memBackend
	q    TelemetryQuery
	next int
}

func (r *memReader) Next(ctx context.Context) (TelemetryRecord, error) {
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
			return TelemetryRecord{}, io.EOF
		}
		select {
		case <-ctx.Done():
			return TelemetryRecord{}, ctx.Err()
		case <-changed:
		}
	}
}

func (r *memReader) Close() error { return nil }

func (b *memBackend) Rejections(context.Context) ([]Rejection, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return slices.Clone(b.rejections), nil
}
