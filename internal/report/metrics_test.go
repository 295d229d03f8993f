package report

import (
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

func TestNewMetricsRegisters(t *testing.T) {
	reg := prometheus.NewPedanticRegistry()
	m := NewMetrics(reg)
	if m == nil {
		t.Fatal("NewMetrics returned nil")
	}
	// Vectors show up once they have a child; the plain histogram at once.
	m.Request("resume", "Succeeded", time.Millisecond)
	m.Release("self", time.Millisecond)
	tests := map[string]struct {
		metric string
	}{
		"requests counter": {metric: "resume_trigger_requests_total"},
		"request duration": {metric: "resume_trigger_request_duration_seconds"},
		"releases counter": {metric: "resume_trigger_releases_total"},
		"release duration": {metric: "resume_trigger_release_duration_seconds"},
	}
	n, err := testutil.GatherAndCount(reg)
	if err != nil {
		t.Fatalf("gather: %v", err)
	}
	if n != len(tests) {
		t.Errorf("%d series gathered, want %d", n, len(tests))
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			if c, err := testutil.GatherAndCount(reg, tc.metric); err != nil || c != 1 {
				t.Errorf("%s: %d series (%v), want 1", tc.metric, c, err)
			}
		})
	}
	if problems, err := testutil.GatherAndLint(reg); err != nil || len(problems) > 0 {
		t.Errorf("lint: %v %+v", err, problems)
	}
}

func TestMetricsRecord(t *testing.T) {
	tests := map[string]struct {
		record   func(*Metrics)
		metric   string
		expected string
	}{
		"Request counts by kind and outcome": {
			record: func(m *Metrics) {
				m.Request("resume", "Succeeded", 30*time.Millisecond)
				m.Request("resume", "Succeeded", 40*time.Millisecond)
				m.Request("direct", "Failed", 2*time.Second)
			},
			metric: "resume_trigger_requests_total",
			expected: `
# HELP resume_trigger_requests_total Requests handled, by kind (resume: the Sensor's call for a Resume; direct: a webhook call; revisit: the server's own look at a Pending Resume) and outcome (Succeeded, Failed, Pending, AlreadyFinal).
# TYPE resume_trigger_requests_total counter
resume_trigger_requests_total{kind="direct",outcome="Failed"} 1
resume_trigger_requests_total{kind="resume",outcome="Succeeded"} 2
`,
		},
		"Request observes its duration by outcome in seconds": {
			record: func(m *Metrics) {
				m.Request("resume", "Succeeded", 30*time.Millisecond)
				m.Request("direct", "Succeeded", 40*time.Millisecond)
			},
			metric: "resume_trigger_request_duration_seconds",
			expected: `
# HELP resume_trigger_request_duration_seconds Time to handle an Execute request, by outcome.
# TYPE resume_trigger_request_duration_seconds histogram
resume_trigger_request_duration_seconds_bucket{outcome="Succeeded",le="0.01"} 0
resume_trigger_request_duration_seconds_bucket{outcome="Succeeded",le="0.025"} 0
resume_trigger_request_duration_seconds_bucket{outcome="Succeeded",le="0.05"} 2
resume_trigger_request_duration_seconds_bucket{outcome="Succeeded",le="0.1"} 2
resume_trigger_request_duration_seconds_bucket{outcome="Succeeded",le="0.25"} 2
resume_trigger_request_duration_seconds_bucket{outcome="Succeeded",le="0.5"} 2
resume_trigger_request_duration_seconds_bucket{outcome="Succeeded",le="1"} 2
resume_trigger_request_duration_seconds_bucket{outcome="Succeeded",le="2.5"} 2
resume_trigger_request_duration_seconds_bucket{outcome="Succeeded",le="5"} 2
resume_trigger_request_duration_seconds_bucket{outcome="Succeeded",le="10"} 2
resume_trigger_request_duration_seconds_bucket{outcome="Succeeded",le="30"} 2
resume_trigger_request_duration_seconds_bucket{outcome="Succeeded",le="+Inf"} 2
resume_trigger_request_duration_seconds_sum{outcome="Succeeded"} 0.07
resume_trigger_request_duration_seconds_count{outcome="Succeeded"} 2
`,
		},
		"Release counts by via": {
			record: func(m *Metrics) {
				m.Release("self", time.Millisecond)
				m.Release("sibling", time.Millisecond)
				m.Release("self", time.Millisecond)
				m.Release("ephemeral", time.Millisecond)
			},
			metric: "resume_trigger_releases_total",
			expected: `
# HELP resume_trigger_releases_total Paused containers released, by how the marker was created (self, sibling, ephemeral).
# TYPE resume_trigger_releases_total counter
resume_trigger_releases_total{via="ephemeral"} 1
resume_trigger_releases_total{via="self"} 2
resume_trigger_releases_total{via="sibling"} 1
`,
		},
		"Release observes its duration in seconds": {
			record: func(m *Metrics) {
				m.Release("self", 20*time.Millisecond)
				m.Release("sibling", 3*time.Second)
			},
			metric: "resume_trigger_release_duration_seconds",
			expected: `
# HELP resume_trigger_release_duration_seconds Time to create one marker, fallbacks included.
# TYPE resume_trigger_release_duration_seconds histogram
resume_trigger_release_duration_seconds_bucket{le="0.005"} 0
resume_trigger_release_duration_seconds_bucket{le="0.01"} 0
resume_trigger_release_duration_seconds_bucket{le="0.025"} 1
resume_trigger_release_duration_seconds_bucket{le="0.05"} 1
resume_trigger_release_duration_seconds_bucket{le="0.1"} 1
resume_trigger_release_duration_seconds_bucket{le="0.25"} 1
resume_trigger_release_duration_seconds_bucket{le="0.5"} 1
resume_trigger_release_duration_seconds_bucket{le="1"} 1
resume_trigger_release_duration_seconds_bucket{le="2.5"} 1
resume_trigger_release_duration_seconds_bucket{le="5"} 2
resume_trigger_release_duration_seconds_bucket{le="10"} 2
resume_trigger_release_duration_seconds_bucket{le="+Inf"} 2
resume_trigger_release_duration_seconds_sum 3.02
resume_trigger_release_duration_seconds_count 2
`,
		},
		"Request does not touch the release series": {
			record: func(m *Metrics) { m.Request("resume", "Failed", time.Second) },
			metric: "resume_trigger_releases_total",
		},
		"Release does not touch the request series": {
			record: func(m *Metrics) { m.Release("self", time.Second) },
			metric: "resume_trigger_requests_total",
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			reg := prometheus.NewRegistry()
			m := NewMetrics(reg)
			tc.record(m)
			if err := testutil.GatherAndCompare(reg, strings.NewReader(tc.expected), tc.metric); err != nil {
				t.Error(err)
			}
		})
	}
}

func TestMetricsToFloat64(t *testing.T) {
	m := NewMetrics(prometheus.NewRegistry())
	m.Request("resume", "AlreadyFinal", 0)
	m.Request("resume", "AlreadyFinal", 0)
	m.Release("sibling", 0)
	tests := map[string]struct {
		c    prometheus.Collector
		want float64
	}{
		"requests of one kind and outcome":  {c: m.requests.WithLabelValues("resume", "AlreadyFinal"), want: 2},
		"requests of another kind are zero": {c: m.requests.WithLabelValues("direct", "AlreadyFinal"), want: 0},
		"releases via sibling":              {c: m.releases.WithLabelValues("sibling"), want: 1},
		"releases via self are zero":        {c: m.releases.WithLabelValues("self"), want: 0},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			if got := testutil.ToFloat64(tc.c); got != tc.want {
				t.Errorf("got %v, want %v", got, tc.want)
			}
		})
	}
}

func TestNilMetricsIsNoOp(t *testing.T) {
	tests := map[string]struct {
		call func(*Metrics)
	}{
		"Request": {call: func(m *Metrics) { m.Request("resume", "Succeeded", time.Second) }},
		"Release": {call: func(m *Metrics) { m.Release("self", time.Second) }},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			defer func() {
				if r := recover(); r != nil {
					t.Fatalf("%s on a nil *Metrics panicked: %v", name, r)
				}
			}()
			var m *Metrics
			tc.call(m)
		})
	}
}

func TestNewMetricsTwiceOnOneRegistryPanics(t *testing.T) {
	tests := map[string]struct {
		second func(prometheus.Registerer)
	}{
		"NewMetrics again": {second: func(r prometheus.Registerer) { NewMetrics(r) }},
		"a collector of the same name": {second: func(r prometheus.Registerer) {
			r.MustRegister(prometheus.NewCounter(prometheus.CounterOpts{Name: "resume_trigger_releases_total", Help: "other"}))
		}},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			reg := prometheus.NewRegistry()
			NewMetrics(reg)
			defer func() {
				r := recover()
				if r == nil {
					t.Fatal("registering twice did not panic")
				}
				if _, ok := r.(error); !ok {
					t.Errorf("panicked with %T %v, want the registration error", r, r)
				}
			}()
			tc.second(reg)
		})
	}
}
