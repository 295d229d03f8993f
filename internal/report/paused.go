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
// its command ends (seconds for a pause after the command), and so does a pod of an earlier run of a
// re-submitted Workflow until the garbage collector removes it (telling it apart would need workflows
// list, a right the server otherwise does not need; kubectl resume list, run with the user's rights, does).
type Paused struct {
	cfg      PausedConfig
	count    *prometheus.GaugeVec
	oldest   *prometheus.GaugeVec
	failures prometheus.Counter

	mu     sync.Mutex
	at     time.Time
	counts map[string]int
	since  map[string]time.Time
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
		cfg: c,
		count: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "resume_trigger_paused_containers",
			Help: "Debug-paused containers of Argo Workflows now, by namespace.",
		}, []string{"namespace"}),
		oldest: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "resume_trigger_oldest_pause_seconds",
			Help: "Age of the oldest debug pause, by namespace (since its container started running).",
		}, []string{"namespace"}),
		failures: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "resume_trigger_paused_read_failures_total",
			Help: "Readings of the paused containers that failed (the last good reading is served).",
		}),
	}
}

// Describe implements prometheus.Collector.
func (p *Paused) Describe(ch chan<- *prometheus.Desc) {
	p.count.Describe(ch)
	p.oldest.Describe(ch)
	p.failures.Describe(ch)
}

// Collect implements prometheus.Collector.
func (p *Paused) Collect(ch chan<- prometheus.Metric) {
	p.mu.Lock()
	defer p.mu.Unlock()
	now := p.cfg.Clock.Now()
	if p.counts == nil || now.Sub(p.at) >= p.cfg.MaxAge {
		if counts, since, err := p.read(); err != nil {
			p.failures.Inc()
		} else {
			p.counts, p.since, p.at = counts, since, now
		}
	}
	p.count.Reset()
	p.oldest.Reset()
	for ns, n := range p.counts {
		p.count.WithLabelValues(ns).Set(float64(n))
		age := 0.0
		if s, ok := p.since[ns]; ok {
			age = now.Sub(s).Seconds()
		}
		p.oldest.WithLabelValues(ns).Set(age)
	}
	p.count.Collect(ch)
	p.oldest.Collect(ch)
	p.failures.Collect(ch)
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
