package report

import (
	"context"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/utils/clock"

	"github.com/argocontroller/resume-trigger/internal/argo"
	"github.com/argocontroller/resume-trigger/internal/lookup"
)

// PausedConfig is what the paused-steps collector works with.
type PausedConfig struct {
	// Pods lists the workflow pods (required).
	Pods kubernetes.Interface
	// Namespaces are listed; "" lists every namespace (the server's "*").
	Namespaces []string
	// MaxAge is how long one reading is served before the next scrape reads again; 30s by default.
	MaxAge time.Duration
	// Timeout bounds one reading; 10s by default.
	Timeout time.Duration
	// Clock is the real clock by default.
	Clock clock.PassiveClock
}

// Paused is a Prometheus collector of the debug-paused containers now, by namespace, and the age of the
// oldest pause. It reads on scrape, at most once per MaxAge, with one label-selected pod LIST per
// namespace (only pods Argo has not finished with), so the server holds nothing between scrapes but the
// last reading's few numbers. A container counts when the server would release it: the pause env exactly
// "true", pod and container running, in a pod a Workflow controls. One a Resume has released counts until
// its command ends (seconds for a pause after the command).
type Paused struct {
	cfg      PausedConfig
	count    *prometheus.Desc
	oldest   *prometheus.Desc
	failures *prometheus.Desc

	mu     sync.Mutex
	at     time.Time
	counts map[string]int
	since  map[string]time.Time
	failed float64
}

// NewPaused returns the collector for c.
func NewPaused(c PausedConfig) *Paused {
	if c.MaxAge <= 0 {
		c.MaxAge = 30 * time.Second
	}
	if c.Timeout <= 0 {
		c.Timeout = 10 * time.Second
	}
	if c.Clock == nil {
		c.Clock = clock.RealClock{}
	}
	if len(c.Namespaces) == 0 {
		c.Namespaces = []string{""}
	}
	return &Paused{
		cfg:      c,
		count:    prometheus.NewDesc("resume_trigger_paused_containers", "Debug-paused containers of Argo Workflows now, by namespace.", []string{"namespace"}, nil),
		oldest:   prometheus.NewDesc("resume_trigger_oldest_pause_seconds", "Age of the oldest debug pause, by namespace (since its container started running).", []string{"namespace"}, nil),
		failures: prometheus.NewDesc("resume_trigger_paused_read_failures_total", "Readings of the paused containers that failed (the last good reading is served).", nil, nil),
	}
}

// Describe implements prometheus.Collector.
func (p *Paused) Describe(ch chan<- *prometheus.Desc) {
	ch <- p.count
	ch <- p.oldest
	ch <- p.failures
}

// Collect implements prometheus.Collector.
func (p *Paused) Collect(ch chan<- prometheus.Metric) {
	p.mu.Lock()
	defer p.mu.Unlock()
	now := p.cfg.Clock.Now()
	if p.counts == nil || now.Sub(p.at) >= p.cfg.MaxAge {
		if counts, since, err := p.read(); err != nil {
			p.failed++
		} else {
			p.counts, p.since, p.at = counts, since, now
		}
	}
	for ns, n := range p.counts {
		ch <- prometheus.MustNewConstMetric(p.count, prometheus.GaugeValue, float64(n), ns)
		age := 0.0
		if s, ok := p.since[ns]; ok {
			age = now.Sub(s).Seconds()
		}
		ch <- prometheus.MustNewConstMetric(p.oldest, prometheus.GaugeValue, age, ns)
	}
	ch <- prometheus.MustNewConstMetric(p.failures, prometheus.CounterValue, p.failed)
}

func (p *Paused) read() (map[string]int, map[string]time.Time, error) {
	ctx, cancel := context.WithTimeout(context.Background(), p.cfg.Timeout)
	defer cancel()
	counts, since := map[string]int{}, map[string]time.Time{}
	for _, ns := range p.cfg.Namespaces {
		pods, err := p.cfg.Pods.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{LabelSelector: argo.SelectorActivePods, ResourceVersion: "0"})
		if err != nil {
			return nil, nil, err
		}
		for i := range pods.Items {
			pod := &pods.Items[i]
			if !controlledByWorkflow(pod) {
				continue
			}
			for _, c := range lookup.PausedContainers(pod) {
				counts[pod.Namespace]++
				if s, ok := since[pod.Namespace]; !c.Running.IsZero() && (!ok || c.Running.Before(s)) {
					since[pod.Namespace] = c.Running
				}
			}
		}
	}
	return counts, since, nil
}

func controlledByWorkflow(pod *corev1.Pod) bool {
	ref := metav1.GetControllerOf(pod)
	return ref != nil && ref.Kind == "Workflow" && ref.Name == pod.Labels[argo.LabelWorkflow]
}
