package report

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Metrics are the server's Prometheus metrics. Labels take only a handful of values each, never names of
// objects, so the series count stays fixed.
type Metrics struct {
	requests *prometheus.CounterVec
	duration *prometheus.HistogramVec
	releases *prometheus.CounterVec
	exec     prometheus.Histogram
}

// NewMetrics registers the metrics with reg.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "resume_trigger_requests_total",
			Help: "Requests handled, by kind (resume: the Sensor's call for a Resume; direct: a webhook call; revisit: the server's own look at a Pending Resume) and outcome (Succeeded, Failed, Pending, AlreadyFinal).",
		}, []string{"kind", "outcome"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "resume_trigger_request_duration_seconds",
			Help:    "Time to handle an Execute request, by outcome.",
			Buckets: []float64{.01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30},
		}, []string{"outcome"}),
		releases: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "resume_trigger_releases_total",
			Help: "Paused containers released, by how the marker was created (self, sibling, ephemeral).",
		}, []string{"via"}),
		exec: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "resume_trigger_release_duration_seconds",
			Help:    "Time to create one marker, fallbacks included.",
			Buckets: []float64{.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10},
		}),
	}
	reg.MustRegister(m.requests, m.duration, m.releases, m.exec)
	return m
}

// Request counts one handled request.
func (m *Metrics) Request(kind, outcome string, took time.Duration) {
	if m == nil {
		return
	}
	m.requests.WithLabelValues(kind, outcome).Inc()
	m.duration.WithLabelValues(outcome).Observe(took.Seconds())
}

// Release counts one released container.
func (m *Metrics) Release(via string, took time.Duration) {
	if m == nil {
		return
	}
	m.releases.WithLabelValues(via).Inc()
	m.exec.Observe(took.Seconds())
}
