package fakehub

import (
	"errors"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	dto "github.com/prometheus/client_model/go"

	"github.com/hubkit/hubkit/pkg/iothub"
	"github.com/hubkit/hubkit/pkg/sas"
)

// hubMetrics are the hub's Prometheus metrics, all in this file (the README's
// "Metrics" section lists them). Each Server has its own registry, so that
// several hubs in one process (tests) do not share counters.
//
// The telemetry path pays one atomic add per counter: the labelled children
// it uses are resolved once here, never per message, and nothing on it takes
// a lock or allocates.
type hubMetrics struct {
	reg   *prometheus.Registry
	clock func() time.Time // real time for latencies (Options.Now may be a fixed test clock)

	connects   prometheus.Counter
	rejections *prometheus.CounterVec // reason
	messages   *prometheus.CounterVec // kind, result
	throttled  *prometheus.CounterVec // limit

	telemetry      prometheus.Counter // messages{kind="telemetry",result="accepted"}
	telemetryBytes prometheus.Counter

	twinSeconds   *prometheus.HistogramVec // op
	methodSeconds *prometheus.HistogramVec // result
}

// Message kinds and results of hubkit_messages_total.
const (
	kindTelemetry    = "telemetry"
	kindC2D          = "c2d"
	kindTwinGet      = "twin_get"
	kindTwinReported = "twin_reported"
	kindTwinDesired  = "twin_desired"
	kindMethod       = "method"
)

func newHubMetrics(s *Server) *hubMetrics {
	m := &hubMetrics{reg: prometheus.NewRegistry(), clock: time.Now}
	m.connects = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "hubkit_connects_total",
		Help: "MQTT connections accepted (CONNACK 0 sent), devices and modules.",
	})
	m.rejections = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "hubkit_rejections_total",
		Help: "Connections the hub refused or closed, by reason (the reason codes of GET /hubkit/rejections).",
	}, []string{"reason"})
	m.messages = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "hubkit_messages_total",
		Help: "Messages by kind (telemetry, c2d, twin_get, twin_reported, twin_desired, method) and result.",
	}, []string{"kind", "result"})
	m.throttled = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "hubkit_throttled_total",
		Help: "Operations refused or delayed by a hub limit (throttling), by limit.",
	}, []string{"limit"})
	m.telemetry = m.messages.WithLabelValues(kindTelemetry, "accepted")
	m.telemetryBytes = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "hubkit_telemetry_bytes_total",
		Help: "Payload bytes of the telemetry messages accepted.",
	})
	m.twinSeconds = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "hubkit_twin_operation_seconds",
		Help:    "Time the hub took for twin operations: get and patch_reported (device side), update (service side).",
		Buckets: []float64{.0001, .00025, .0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1},
	}, []string{"op"})
	m.methodSeconds = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "hubkit_method_duration_seconds",
		Help:    "Direct-method invocations from the service call to the device's answer (or the failure), by result.",
		Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60, 300},
	}, []string{"result"})
	m.reg.MustRegister(m.connects, m.rejections, m.messages, m.throttled, m.telemetryBytes, m.twinSeconds, m.methodSeconds,
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "hubkit_connected_devices",
			Help: "Identities (devices and modules) with a live MQTT connection.",
		}, func() float64 { return float64(s.sessions.count()) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "hubkit_registered_devices",
			Help: "Devices in the identity registry (modules not counted).",
		}, func() float64 { return float64(s.opts.Registry.count()) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "hubkit_c2d_queue_depth",
			Help: "Cloud-to-device messages waiting for their devices (queued or awaiting PUBACK), all identities.",
		}, func() float64 { return float64(s.cloud.c2d.Depth()) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{
			Name: "hubkit_telemetry_evicted_total",
			Help: "Telemetry messages evicted from the capture buffer (Options.TelemetryBuffer, TelemetryBufferBytes).",
		}, func() float64 { return float64(s.Dropped()) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{
			Name: "hubkit_accept_errors_total",
			Help: "Temporary accept failures of the MQTT listeners (out of file descriptors, buffers or memory), each retried (ListenerStats).",
		}, func() float64 { return float64(s.ListenerStats().AcceptErrors) }),
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
	)
	// Series that exist from the start (at 0), so that rate() sees the first one.
	for _, r := range []string{"enqueued", "refused", "completed", "rejected", "expired", "purged"} {
		m.messages.WithLabelValues(kindC2D, r)
	}
	return m
}

// MetricsHandler returns the hub's metrics in the Prometheus text format
// (hubkit_* plus the Go runtime's and the process's). It checks no
// credentials: the service listener serves it on /metrics to loopback
// clients, and to others only with Options.MetricsPublic.
func (s *Server) MetricsHandler() http.Handler {
	return promhttp.HandlerFor(s.metrics.reg, promhttp.HandlerOpts{})
}

// telemetryAccepted counts one telemetry message (hot path: two atomic adds).
func (m *hubMetrics) telemetryAccepted(payload int) {
	m.telemetry.Inc()
	m.telemetryBytes.Add(float64(payload))
}

func (m *hubMetrics) connected() { m.connects.Inc() }

func (m *hubMetrics) rejected(reason sas.Reason) { m.rejections.WithLabelValues(string(reason)).Inc() }

func (m *hubMetrics) message(kind, result string) { m.messages.WithLabelValues(kind, result).Inc() }

// c2dSent counts an Enqueue: enqueued, or refused with err.
func (m *hubMetrics) c2dSent(err error) {
	if err != nil {
		m.message(kindC2D, "refused")
		return
	}
	m.message(kindC2D, "enqueued")
}

// c2dFinished counts a message reaching a final state (completed, rejected,
// expired, purged). Expiry is seen when a queue is next read.
func (m *hubMetrics) c2dFinished(_ iothub.Identity, st iothub.C2DState) {
	m.message(kindC2D, string(st))
}

// twinOp records a twin operation that started at start.
func (m *hubMetrics) twinOp(op string, start time.Time) {
	m.twinSeconds.WithLabelValues(op).Observe(m.clock().Sub(start).Seconds())
}

// methodDone records an invocation that started at start and ended with err.
func (m *hubMetrics) methodDone(start time.Time, err error) {
	result := "answered"
	var e *iothub.Error
	switch {
	case err == nil:
	case errors.As(err, &e) && e.Code == iothub.CodeGatewayTimeout:
		result = "timeout"
	case errors.As(err, &e) && e.Code == iothub.CodeDeviceNotOnline:
		result = "offline"
	case errors.As(err, &e) && e.Code == iothub.CodeDeviceConnectionClosedRemotely:
		result = "disconnected"
	default:
		result = "error"
	}
	m.methodSeconds.WithLabelValues(result).Observe(m.clock().Sub(start).Seconds())
	m.message(kindMethod, result)
}

// throttle counts an operation that a hub limit refused or delayed; limit
// names the throttled operation as limits.go does ("device-to-cloud sends",
// "new connections", ...).
func (m *hubMetrics) throttle(limit string) { m.throttled.WithLabelValues(limit).Inc() }

// throttledCount returns hubkit_throttled_total{limit} (0 before the first),
// for the dashboard; it creates no series.
func (m *hubMetrics) throttledCount(limit string) uint64 {
	ch := make(chan prometheus.Metric, 16)
	go func() { m.throttled.Collect(ch); close(ch) }()
	var n float64
	for pm := range ch {
		var d dto.Metric
		if pm.Write(&d) != nil {
			continue
		}
		for _, lp := range d.GetLabel() {
			if lp.GetName() == "limit" && lp.GetValue() == limit {
				n = d.GetCounter().GetValue()
			}
		}
	}
	return uint64(n)
}
