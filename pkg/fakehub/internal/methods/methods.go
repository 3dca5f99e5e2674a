package methods

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/hubkit/hubkit/pkg/iothub"
)

// Limits of direct methods on IoT Hub (learn.microsoft.com, "Understand and invoke direct
// methods from IoT Hub").
const (
	DefaultTimeout = iothub.DefaultMethodTimeout // responseTimeoutInSeconds when the caller gives none
	MinTimeout     = iothub.MinMethodTimeout     // smallest responseTimeoutInSeconds accepted
	MaxTimeout     = iothub.MaxMethodTimeout     // largest responseTimeoutInSeconds accepted
	MaxPayloadSize = iothub.MaxMethodPayloadSize // request and response payloads, bytes (128 KB)
)

// Request is what the wiring must publish to the device, on
// iothub.MethodRequestTopic(Name, RID), at QoS 0, with Payload as the body.
type Request struct {
	Identity iothub.Identity
	Name     string
	RID      string // lower-case hex of a counter: "1", "2", ... "a", ...
	Payload  []byte // the caller's payload as given (empty allowed)
}

// Call describes an invocation waiting for its answer (see Registry.Pending).
type Call struct {
	Identity iothub.Identity
	Name     string
	RID      string
	Started  time.Time     // when Invoke sent the request
	Timeout  time.Duration // the response timeout in force
}

// Options configure a Registry.
type Options struct {
	// Send delivers a request to the device. It is called from Invoke, without locks held,
	// and should not block for long. It returns an error when the identity is not connected
	// or has no subscription to $iothub/methods/POST/#; Invoke then fails with 404103
	// DeviceNotOnline. The device's answer may reach Respond before Send returns.
	Send func(ctx context.Context, req Request) error
	// Now returns the current time (default time.Now); used for Call.Started.
	Now func() time.Time
	// NewTimer starts a timer for the response timeout: it returns the channel that fires
	// and a stop function (default: time.NewTimer's C and Stop). Tests inject a fake.
	NewTimer func(d time.Duration) (<-chan time.Time, func() bool)
	// Logger receives Debug records for each call (nil = discard).
	Logger *slog.Logger
	// MinTimeout is the smallest response timeout Invoke accepts (default
	// MinTimeout, 5 s, as the hub). An in-process test harness may lower it
	// to exercise the time-out path quickly; MaxTimeout still applies.
	MinTimeout time.Duration
}

// Registry correlates direct-method invocations with the devices' answers. It is safe for
// concurrent use; the zero value is not usable, call New.
type Registry struct {
	send     func(ctx context.Context, req Request) error
	now      func() time.Time
	newTimer func(d time.Duration) (<-chan time.Time, func() bool)
	log      *slog.Logger
	min      time.Duration

	mu     sync.Mutex
	next   uint64
	calls  map[string]*call // by RID
	closed bool
}

type call struct {
	Call
	seq  uint64
	done chan outcome // buffered (1); written once, under Registry.mu, by whoever removes the call
}

type outcome struct {
	res iothub.MethodResult
	err error
}

// New returns a Registry. Options.Send is required.
func New(opts Options) (*Registry, error) {
	if opts.Send == nil {
		return nil, errors.New("methods: Options.Send is required")
	}
	r := &Registry{send: opts.Send, now: opts.Now, newTimer: opts.NewTimer, log: opts.Logger,
		min: opts.MinTimeout, calls: make(map[string]*call)}
	if r.min <= 0 {
		r.min = MinTimeout
	}
	if r.now == nil {
		r.now = time.Now
	}
	if r.newTimer == nil {
		r.newTimer = func(d time.Duration) (<-chan time.Time, func() bool) {
			t := time.NewTimer(d)
			return t.C, t.Stop
		}
	}
	if r.log == nil {
		r.log = slog.New(slog.DiscardHandler)
	}
	return r, nil
}

// ValidateRequest checks a method name, payload and response timeout the way the hub does
// before anything reaches the device, and returns the timeout in force (DefaultTimeout for 0).
// Errors are *iothub.Error with code 400004.
func ValidateRequest(name string, payload []byte, timeout time.Duration) (time.Duration, error) {
	return validate(name, payload, timeout, MinTimeout)
}

func validate(name string, payload []byte, timeout, minTimeout time.Duration) (time.Duration, error) {
	switch {
	case name == "":
		return 0, newError(iothub.CodeArgumentInvalid, nil, "method name is empty")
	case strings.ContainsAny(name, "/+#\x00"):
		return 0, newError(iothub.CodeArgumentInvalid, nil, "method name %q contains '/', '+', '#' or NUL", name)
	case len(payload) > MaxPayloadSize:
		return 0, newError(iothub.CodeArgumentInvalid, nil, "payload is %d bytes, more than the %d allowed", len(payload), MaxPayloadSize)
	case len(payload) > 0 && !json.Valid(payload):
		return 0, newError(iothub.CodeArgumentInvalid, nil, "payload is not valid JSON")
	}
	if timeout == 0 {
		timeout = DefaultTimeout
	}
	if timeout < minTimeout || timeout > MaxTimeout {
		return 0, newError(iothub.CodeArgumentInvalid, nil, "response timeout %v is outside %v-%v", timeout, minTimeout, MaxTimeout)
	}
	return timeout, nil
}

// Invoke calls method name on the identity and waits for the answer, the response timeout
// (0 means DefaultTimeout) or the end of ctx, whichever comes first. See the package
// documentation for the outcomes.
func (r *Registry) Invoke(ctx context.Context, id iothub.Identity, name string, payload []byte, timeout time.Duration) (iothub.MethodResult, error) {
	timeout, err := validate(name, payload, timeout, r.min)
	if err != nil {
		return iothub.MethodResult{}, err
	}
	if err := ctx.Err(); err != nil {
		return iothub.MethodResult{}, err
	}

	r.mu.Lock()
	if r.closed {
		r.mu.Unlock()
		return iothub.MethodResult{}, newError(iothub.CodeServiceUnavailable, ErrClosed, "the hub is shutting down")
	}
	r.next++
	c := &call{seq: r.next, done: make(chan outcome, 1), Call: Call{
		Identity: id, Name: name, RID: strconv.FormatUint(r.next, 16),
		Started: r.now(), Timeout: timeout,
	}}
	r.calls[c.RID] = c
	r.mu.Unlock()

	req := Request{Identity: id, Name: name, RID: c.RID, Payload: payload}
	r.log.Debug("direct method invoked", "clientId", id.ClientID(), "method", name, "rid", c.RID, "timeout", timeout)
	if err := r.send(ctx, req); err != nil {
		if o, ok := r.finish(c, outcome{}); !ok {
			return o.res, o.err // answered, closed or disconnected before Send returned
		}
		if ctxErr := ctx.Err(); ctxErr != nil {
			return iothub.MethodResult{}, ctxErr
		}
		return iothub.MethodResult{}, newError(iothub.CodeDeviceNotOnline, err, "device %s is not online or not subscribed to direct methods", id.ClientID())
	}

	fire, stop := r.newTimer(timeout)
	defer stop()
	select {
	case o := <-c.done:
		return o.res, o.err
	case <-fire:
		o, _ := r.finish(c, outcome{err: newError(iothub.CodeGatewayTimeout, nil,
			"timed out after %v waiting for device %s to answer method %q", timeout, id.ClientID(), name)})
		return o.res, o.err
	case <-ctx.Done():
		o, _ := r.finish(c, outcome{err: ctx.Err()})
		return o.res, o.err
	}
}

// finish removes c and returns o, unless someone else (Respond, Disconnected, Close) removed it
// first: then it returns their outcome and false.
func (r *Registry) finish(c *call, o outcome) (outcome, bool) {
	r.mu.Lock()
	if r.calls[c.RID] == c {
		delete(r.calls, c.RID)
		r.mu.Unlock()
		return o, true
	}
	r.mu.Unlock()
	return <-c.done, false
}

// complete removes c and hands it its outcome. Callers hold r.mu.
func (r *Registry) complete(c *call, o outcome) {
	delete(r.calls, c.RID)
	c.done <- o
}

// Respond delivers the device's answer, published on $iothub/methods/res/{status}/?$rid={rid}.
// It returns false, and does nothing, when no call with that rid is waiting for this identity
// (unknown rid, another device's rid, or a call that already ended).
//
// The payload becomes Result.Payload: an empty payload is null, valid JSON is kept as is, and
// anything else is wrapped as a JSON string (invalid UTF-8 replaced by U+FFFD), so callers
// always receive valid JSON. A payload larger than MaxPayloadSize fails the call with *Error
// 413 (code 413001); Respond still returns true.
func (r *Registry) Respond(id iothub.Identity, rid string, status int, payload []byte) bool {
	o := outcome{res: iothub.MethodResult{Status: status, Payload: responsePayload(payload)}}
	if len(payload) > MaxPayloadSize {
		o = outcome{err: newError(iothub.CodeMessageTooLarge, nil,
			"device response is %d bytes, more than the %d allowed", len(payload), MaxPayloadSize)}
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	c := r.calls[rid]
	if c == nil || c.Identity != id {
		r.log.Debug("direct method response ignored", "clientId", id.ClientID(), "rid", rid, "reason", "no such pending call")
		return false
	}
	r.complete(c, o)
	return true
}

func responsePayload(p []byte) json.RawMessage {
	switch {
	case len(p) == 0:
		return json.RawMessage("null")
	case json.Valid(p):
		return json.RawMessage(append([]byte(nil), p...))
	default:
		s, _ := json.Marshal(string(p)) // a string never fails to marshal
		return s
	}
}

// Disconnected fails every call waiting on the identity with *iothub.Error 404 (code 404104
// DeviceConnectionClosedRemotely) and returns how many it failed. The wiring may call it when
// the device's connection closes; the real hub's behaviour here is not documented (a call in
// flight may instead run into its time-out), so this is a choice of the fake.
func (r *Registry) Disconnected(id iothub.Identity) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	n := 0
	for _, c := range r.calls {
		if c.Identity == id {
			r.complete(c, outcome{err: newError(iothub.CodeDeviceConnectionClosedRemotely, nil,
				"device %s disconnected before answering method %q", id.ClientID(), c.Name)})
			n++
		}
	}
	return n
}

// Pending lists the calls waiting for an answer, oldest first.
func (r *Registry) Pending() []Call {
	r.mu.Lock()
	cs := make([]*call, 0, len(r.calls))
	for _, c := range r.calls {
		cs = append(cs, c)
	}
	r.mu.Unlock()
	slices.SortFunc(cs, func(a, b *call) int { return cmp.Compare(a.seq, b.seq) })
	out := make([]Call, len(cs))
	for i, c := range cs {
		out[i] = c.Call
	}
	return out
}

// Close fails every waiting call with *iothub.Error 503 (wrapping ErrClosed); later Invokes fail the
// same way. It is safe to call more than once.
func (r *Registry) Close() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.closed = true
	for _, c := range r.calls {
		r.complete(c, outcome{err: newError(iothub.CodeServiceUnavailable, ErrClosed, "the hub is shutting down")})
	}
	return nil
}

// newError returns an *iothub.Error with code and a formatted message, wrapping cause.
func newError(code iothub.ErrorCode, cause error, format string, args ...any) *iothub.Error {
	return &iothub.Error{Code: code, Message: fmt.Sprintf(format, args...), Err: cause}
}
