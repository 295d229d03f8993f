package report_test

import (
	"encoding/json"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	k8sfake "k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"
	clocktesting "k8s.io/utils/clock/testing"

	"github.com/argocontroller/resume-trigger/internal/fixture"
	"github.com/argocontroller/resume-trigger/internal/inspect"
	"github.com/argocontroller/resume-trigger/internal/report"
)

// A namespace mixing paused, unpaused, finished and stray pods: the gauge counts what kubectl resume list
// shows, the oldest pause's age comes from its container's start, and a scrape within 30s reads nothing.
func TestPausedGaugeMatchesList(t *testing.T) {
	start := time.Date(2026, 12, 1, 8, 0, 0, 0, time.UTC)
	wf := fixture.Workflow("argo", "loop",
		fixture.PodNode("loop", "loop[0].a", "a", "a"), fixture.PodNode("loop", "loop[0].b", "b", "b"),
		fixture.PodNode("loop", "loop[0].c", "c", "c"), fixture.PodNode("loop", "loop[0].d", "d", "d"))
	pod := func(node, name string, c corev1.Container, startedAt time.Time) *corev1.Pod {
		p := fixture.Pod(wf, wf.Status.Nodes[fixture.NodeID("loop", "loop[0]."+node)], name, c)
		for i := range p.Status.ContainerStatuses {
			if r := p.Status.ContainerStatuses[i].State.Running; r != nil {
				r.StartedAt = metav1.NewTime(startedAt)
			}
		}
		return p
	}
	pausedOld := pod("a", "loop-a", fixture.Container("main", fixture.PauseAfter), start)
	pausedNew := pod("b", "loop-b", fixture.Container("main", fixture.PauseBefore), start.Add(time.Hour))
	unpaused := pod("c", "loop-c", fixture.Container("main"), start)
	finished := pod("d", "loop-d", fixture.Container("main", fixture.PauseAfter), start)
	finished.Status.Phase = corev1.PodSucceeded
	stray := pod("a", "stray", fixture.Container("main", fixture.PauseAfter), start)
	stray.OwnerReferences = nil
	kube := k8sfake.NewClientset(pausedOld, pausedNew, unpaused, finished, stray)

	items, err := inspect.ListPaused(t.Context(), kube, nil, nil, "argo")
	if err != nil {
		t.Fatal(err)
	}
	kube.ClearActions()

	clock := clocktesting.NewFakePassiveClock(start.Add(5 * time.Hour))
	reg := prometheus.NewRegistry()
	reg.MustRegister(report.NewPaused(report.PausedConfig{Pods: kube, Namespaces: []string{"argo"}, Clock: clock}))
	want := `
# HELP resume_trigger_paused_containers Debug-paused containers of Argo Workflows now, by namespace.
# TYPE resume_trigger_paused_containers gauge
resume_trigger_paused_containers{namespace="argo"} 2
# HELP resume_trigger_oldest_pause_seconds Age of the oldest debug pause, by namespace (since its container started running).
# TYPE resume_trigger_oldest_pause_seconds gauge
resume_trigger_oldest_pause_seconds{namespace="argo"} 18000
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want), "resume_trigger_paused_containers", "resume_trigger_oldest_pause_seconds"); err != nil {
		t.Error(err)
	}
	if len(items) != 2 {
		t.Errorf("kubectl resume list shows %d containers, the gauge 2: %+v", len(items), items)
	}

	// Within 30s the reading is served again, without a request.
	clock.SetTime(clock.Now().Add(20 * time.Second))
	if _, err := reg.Gather(); err != nil {
		t.Fatal(err)
	}
	if n := countLists(kube.Actions()); n != 1 {
		t.Errorf("%d pod LISTs for two scrapes 20s apart, want 1", n)
	}
	clock.SetTime(clock.Now().Add(20 * time.Second))
	if _, err := reg.Gather(); err != nil {
		t.Fatal(err)
	}
	if n := countLists(kube.Actions()); n != 2 {
		t.Errorf("%d pod LISTs after 40s, want 2", n)
	}
}

func countLists(actions []k8stesting.Action) int {
	n := 0
	for _, a := range actions {
		if a.Matches("list", "pods") {
			n++
		}
	}
	return n
}

// The shipped alert and dashboard read metrics that exist (a rename would silently break them).
func TestMonitoringExamplesUseOurMetrics(t *testing.T) {
	reg := prometheus.NewRegistry()
	report.NewMetrics(reg)
	reg.MustRegister(report.NewPaused(report.PausedConfig{Pods: k8sfake.NewClientset(), Namespaces: []string{"argo"}}))
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	known := map[string]bool{}
	for _, f := range families {
		known[f.GetName()] = true
	}
	// Histograms and counters that have seen nothing are not gathered: name them by their definitions.
	for _, n := range []string{"resume_trigger_requests_total", "resume_trigger_releases_total", "resume_trigger_request_duration_seconds", "resume_trigger_paused_containers", "resume_trigger_oldest_pause_seconds"} {
		known[n] = true
	}
	metric := regexp.MustCompile(`resume_trigger_[a-z_]+`)
	for _, file := range []string{"../../examples/monitoring/prometheusrule.yaml", "../../examples/monitoring/grafana-dashboard.json"} {
		data, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		if strings.HasSuffix(file, ".json") && !json.Valid(data) {
			t.Errorf("%s is not JSON", file)
		}
		found := metric.FindAllString(string(data), -1)
		if len(found) == 0 {
			t.Errorf("%s reads no metric of ours", file)
		}
		for _, m := range found {
			base := strings.TrimSuffix(m, "_bucket")
			if !known[base] {
				t.Errorf("%s reads %s, which resume-trigger does not serve", file, m)
			}
		}
	}
}
