package resume

import (
	"slices"
	"testing"
	"time"

	wffake "github.com/argoproj/argo-workflows/v3/pkg/client/clientset/versioned/fake"
	k8sfake "k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"

	"github.com/argocontroller/resume-trigger/api/v1alpha1"
	fx "github.com/argocontroller/resume-trigger/internal/fixture"
	"github.com/argocontroller/resume-trigger/internal/lookup"
)

// A Resume request names its workflow, so the lookup's Workflow GET runs beside the Resume's; the
// Resume's own spec still decides which workflow is looked up.
func TestResumeWorkflowIsPrefetched(t *testing.T) {
	tests := map[string]struct {
		requested string // the workflow the request (the event) names
		expGets   []string
	}{
		"the request names the Resume's workflow: one read":          {requested: "wf", expGets: []string{"wf"}},
		"the request names another workflow: the spec's is read too": {requested: "stale", expGets: []string{"stale", "wf"}},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			node := fx.PodNode("wf", "wf[0].step", "step", "step")
			wf := fx.Workflow(ns, "wf", node)
			pod := fx.Pod(wf, node, "wf-step-1", fx.Container("main", fx.PauseAfter))
			wfc := wffake.NewSimpleClientset(wf)
			f := newFixture(newResume("r", v1alpha1.ResumeStatus{}))
			f.svc.cfg.Finder = &lookup.Finder{Workflows: fx.Workflows{Client: wfc}, Pods: k8sfake.NewClientset(pod)}
			req := resumeRequest("r")
			req.Step.Workflow = tc.requested
			res, err := f.svc.Handle(t.Context(), req)
			if err != nil || res.Phase != v1alpha1.PhaseSucceeded || len(res.Released) != 1 || res.Released[0].Pod != pod.Name {
				t.Fatalf("Handle = %+v, %v; want %s released", res, err, pod.Name)
			}
			// The prefetch of a workflow the spec does not name may still be in flight: wait for it.
			var gets []string
			for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(time.Millisecond) {
				gets = gets[:0]
				for _, a := range wfc.Actions() {
					gets = append(gets, a.(k8stesting.GetAction).GetName())
				}
				if len(gets) >= len(tc.expGets) || time.Now().After(deadline) {
					break
				}
			}
			slices.Sort(gets)
			if !slices.Equal(gets, tc.expGets) {
				t.Errorf("workflow gets = %v, want %v", gets, tc.expGets)
			}
		})
	}
}
