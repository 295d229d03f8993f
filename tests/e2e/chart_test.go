package e2e

import (
	"net/http"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/argocontroller/resume-trigger/api/v1alpha1"
	"github.com/argocontroller/resume-trigger/tests/internal/chain"
	"github.com/argocontroller/resume-trigger/tests/internal/helmchart"
	"github.com/argocontroller/resume-trigger/tests/internal/rig"
)

// chartLane runs the chain from the Helm chart's rendering (`helm template` with the values a user sets:
// namespaces, webhook.enabled, webhook.namespaces) instead of a kustomize overlay: the server's command
// line and ServiceAccount, its RBAC, the Sensor and both EventSources all come from the chart. It starts
// only when its test runs.
var chartLane = &lane{name: "chart", namespace: "e2e-chart", opts: chain.Options{
	Overlay: helmchart.Dir,
	Render: func(root string, v rig.InstallValues) ([]*unstructured.Unstructured, error) {
		values, err := helmchart.ValuesFor(v)
		if err != nil {
			return nil, err
		}
		return helmchart.Render(root, v.Namespace, values)
	},
}}

// Installed from the chart, a Resume and a webhook call each release a paused step, once.
func TestChartInstallReleasesThroughTheChain(t *testing.T) {
	c := chartLane.acquire(t)
	step, err := c.CreatePausedStep(rig.Context(t, 30*time.Second), "chart-0")
	if err != nil {
		t.Fatal(err)
	}
	created := time.Now()
	if _, err := c.CreateResume(rig.Context(t, 10*time.Second), "chart-0", step); err != nil {
		t.Fatal(err)
	}
	if _, err := c.WaitResumePhase(rig.Context(t, 60*time.Second), "chart-0", v1alpha1.PhaseSucceeded); err != nil {
		t.Fatal(err)
	}
	if err := c.WaitStepDone(rig.Context(t, 30*time.Second), step); err != nil {
		t.Fatalf("the released step did not complete: %v", err)
	}
	t.Logf("chart install: Resume created -> node Succeeded in %v", time.Since(created).Round(time.Millisecond))

	hooked, err := c.CreatePausedStep(rig.Context(t, 30*time.Second), "chart-1")
	if err != nil {
		t.Fatal(err)
	}
	code, body, err := c.PostWebhook(rig.Context(t, 30*time.Second), c.WebhookToken, hooked.ReleaseRequest())
	if err != nil || code != http.StatusOK {
		t.Fatalf("webhook: %d %q %v", code, body, err)
	}
	if _, err := c.WaitMarker(rig.Context(t, 60*time.Second), hooked); err != nil {
		t.Fatalf("the webhook call did not release %s: %v", hooked.Pod, err)
	}
	for _, s := range []*chain.Step{step, hooked} {
		expectOneRelease(t, c, s)
	}
}
