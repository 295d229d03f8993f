package resume

import (
	"context"
	"slices"
	"testing"
	"time"

	wffake "github.com/argoproj/argo-workflows/v3/pkg/client/clientset/versioned/fake"
	k8sfake "k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"

	"github.com/argocontroller/resume-trigger/api/v1alpha1"
	fx "github.com/argocontroller/resume-trigger/internal/fixture"
	"github.com/argocontroller/resume-trigger/internal/lookup"
	"github.com/argocontroller/resume-trigger/internal/request"
)

// A Resume request names its workflow (the Sensor maps it from the event's copy of the object), so the
// lookup's Workflow GET runs beside the Resume's; the Resume's own spec still decides which workflow is
// looked up. The request is built by request.Parse from what the Sensor sends, as in production.
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
			// The Resume's read waits for the workflow's: it only comes if the prefetch started it.
			prefetched := make(chan bool, 1)
			f.svc.cfg.Resumes = &slowResumes{store: f.store, before: func() {
				deadline := time.Now().Add(5 * time.Second)
				for len(wfc.Actions()) == 0 && time.Now().Before(deadline) {
					time.Sleep(time.Millisecond)
				}
				select {
				case prefetched <- len(wfc.Actions()) > 0:
				default: // a second read (a conflict) asks nothing new
				}
			}}
			req, err := request.Parse([]byte(`{"namespace":"` + ns + `","resume":"r","workflow":"` + tc.requested + `","template":"step","nodeID":"","nodeName":"","container":"","stage":""}`))
			if err != nil {
				t.Fatal(err)
			}
			res, err := f.svc.Handle(t.Context(), req)
			if err != nil || res.Phase != v1alpha1.PhaseSucceeded || len(res.Released) != 1 || res.Released[0].Pod != pod.Name {
				t.Fatalf("Handle = %+v, %v; want %s released", res, err, pod.Name)
			}
			if !<-prefetched {
				t.Errorf("the workflow was not read while the Resume was")
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

// slowResumes runs before ahead of every Get.
type slowResumes struct {
	*store
	before func()
}

func (s *slowResumes) Get(ctx context.Context, namespace, name string) (*v1alpha1.Resume, error) {
	s.before()
	return s.store.Get(ctx, namespace, name)
}
