package loadgen

import (
	"bytes"
	"context"
	"sync"
	"sync/atomic"
	"time"
)

// runner is one Run: the configuration, the devices and the counters.
type runner struct {
	cfg     Config
	payload []byte

	started   atomic.Bool // the steady phase has begun (startedAt is set before)
	stopping  atomic.Bool // the steady phase is over (drainEnd is set before)
	startedAt time.Time
	drainEnd  time.Time

	mu      sync.Mutex
	devices []*device
	errors  map[string]uint64
	wg      sync.WaitGroup // device loops

	tlsOnce  sync.Once
	tlsState string

	connected, failed atomic.Int64
	live              atomic.Int64
	sent, acked       atomic.Uint64
	c2d, methods      atomic.Uint64
	errCount          atomic.Uint64

	connectLat, pubackLat, twinLat histogram
}

// Run connects the devices (the ramp), runs the steady phase for
// cfg.Duration, drains and disconnects, and reports. Cancelling ctx ends
// the ramp and the steady phase early (the report covers what ran). The
// error is only about the configuration: what goes wrong with devices is
// counted in Report.Errors.
func Run(ctx context.Context, cfg Config) (*Report, error) {
	if err := cfg.setDefaults(); err != nil {
		return nil, err
	}
	r := &runner{cfg: cfg, payload: payloadOf(cfg.PayloadSize), errors: map[string]uint64{}}
	rep := &Report{Devices: cfg.Count, First: cfg.First, Telemetry: cfg.Telemetry.String(), QoS: cfg.QoS, PayloadSize: cfg.PayloadSize}
	if cfg.Telemetry == TelemetryInterval {
		rep.Interval = cfg.Interval
	}
	stopProgress := r.progress()

	begin := time.Now()
	r.ramp(ctx)
	rep.Ramp = time.Since(begin)

	r.startedAt = time.Now()
	r.started.Store(true)
	r.wakeAll()
	if cfg.Duration > 0 {
		t := time.NewTimer(cfg.Duration)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
		}
	}
	rep.Steady = time.Since(r.startedAt)
	ackedAtStop := r.acked.Load()
	rep.LiveAtStop = int(r.live.Load())
	r.drainEnd = time.Now().Add(cfg.Drain)
	r.stopping.Store(true)
	r.wakeAll()
	r.wg.Wait()
	stopProgress()

	rep.Connected = int(r.connected.Load())
	rep.Failed = int(r.failed.Load())
	if s := rep.Ramp.Seconds(); s > 0 {
		rep.ConnectsPerSec = float64(rep.Connected) / s
	}
	rep.Connack = r.connectLat.summary()
	rep.Sent, rep.Acked = r.sent.Load(), r.acked.Load()
	if s := rep.Steady.Seconds(); s > 0 {
		rep.MsgsPerSec = float64(ackedAtStop) / s
	}
	rep.Puback = r.pubackLat.summary()
	rep.Twin = r.twinLat.summary()
	rep.C2DReceived, rep.MethodsAnswered = r.c2d.Load(), r.methods.Load()
	rep.TLS = r.tlsState
	r.mu.Lock()
	rep.Errors = r.errors
	r.mu.Unlock()
	return rep, nil
}

// ramp connects the devices at most cfg.ConnectRate per second with
// cfg.Concurrency set-ups at once; it returns when every device has
// connected or failed (or ctx is done).
func (r *runner) ramp(ctx context.Context) {
	cfg := &r.cfg
	next := make(chan int)
	go func() {
		defer close(next)
		t0 := time.Now()
		for k := range cfg.Count {
			if cfg.ConnectRate > 0 {
				if wait := time.Until(t0.Add(time.Duration(float64(k) / cfg.ConnectRate * float64(time.Second)))); wait > 0 {
					select {
					case <-time.After(wait):
					case <-ctx.Done():
						return
					}
				}
			}
			select {
			case next <- cfg.First + k:
			case <-ctx.Done():
				return
			}
		}
	}()
	var workers sync.WaitGroup
	for range min(cfg.Concurrency, max(cfg.Count, 1)) {
		workers.Go(func() {
			for i := range next {
				d, kind, err := r.connect(ctx, i)
				if err != nil {
					r.failed.Add(1)
					r.fail(kind)
					continue
				}
				r.connected.Add(1)
				r.live.Add(1)
				r.mu.Lock()
				r.devices = append(r.devices, d)
				r.mu.Unlock()
				r.wg.Add(1)
				go d.loop()
			}
		})
	}
	workers.Wait()
}

// wakeAll makes every device's blocked read return at once, so that it
// sees a phase change (see the re-check in device.loop).
func (r *runner) wakeAll() {
	r.mu.Lock()
	devs := r.devices
	r.mu.Unlock()
	now := time.Now()
	for _, d := range devs {
		_ = d.conn.SetReadDeadline(now)
	}
}

func (r *runner) fail(kind string) {
	r.errCount.Add(1)
	r.mu.Lock()
	r.errors[kind]++
	r.mu.Unlock()
}

// payloadOf is a JSON object of exactly n bytes (a run of 'x' under 12).
func payloadOf(n int) []byte {
	const head, tail = `{"load":"`, `"}`
	if n < len(head)+len(tail)+1 {
		return bytes.Repeat([]byte("x"), n)
	}
	return []byte(head + string(bytes.Repeat([]byte("x"), n-len(head)-len(tail))) + tail)
}

// Progress is a snapshot for the live progress line.
type Progress struct {
	Elapsed        time.Duration
	Phase          string // "ramp", "steady", "drain"
	Connected      int64  // connections made so far
	Live           int64  // connections open now
	Failed         int64
	ConnectsPerSec float64 // over the last interval
	MsgsPerSec     float64 // acknowledged, over the last interval
	Acked          uint64
	Errors         uint64
	PubackP99      time.Duration // over the whole run so far
	Final          bool          // the last report, at the end of the run
}

// progress calls cfg.Progress every interval until the returned stop
// function is called (which reports once more).
func (r *runner) progress() (stop func()) {
	if r.cfg.Progress == nil {
		return func() {}
	}
	done := make(chan struct{})
	var wg sync.WaitGroup
	begin := time.Now()
	var lastConn int64
	var lastAcked uint64
	last := begin
	report := func(final bool) {
		now := time.Now()
		dt := now.Sub(last).Seconds()
		p := Progress{Elapsed: now.Sub(begin), Phase: "ramp", Connected: r.connected.Load(), Live: r.live.Load(),
			Failed: r.failed.Load(), Acked: r.acked.Load(), Errors: r.errCount.Load(), PubackP99: r.pubackLat.quantile(0.99), Final: final}
		switch {
		case r.stopping.Load():
			p.Phase = "drain"
		case r.started.Load():
			p.Phase = "steady"
		}
		if dt > 0 {
			p.ConnectsPerSec = float64(p.Connected-lastConn) / dt
			p.MsgsPerSec = float64(p.Acked-lastAcked) / dt
		}
		lastConn, lastAcked, last = p.Connected, p.Acked, now
		r.cfg.Progress(p)
	}
	wg.Go(func() {
		t := time.NewTicker(r.cfg.ProgressInterval)
		defer t.Stop()
		for {
			select {
			case <-t.C:
				report(false)
			case <-done:
				report(true)
				return
			}
		}
	})
	return func() { close(done); wg.Wait() }
}
