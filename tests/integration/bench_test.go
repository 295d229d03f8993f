package integration

import (
	"fmt"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/argocontroller/resume-trigger/api/v1alpha1"
	"github.com/argocontroller/resume-trigger/internal/fixture"
	"github.com/argocontroller/resume-trigger/tests/internal/rig"
)

// BenchmarkRelease measures one release as the Sensor sees it: FetchResource + Execute (Resume read,
// workflow and pod lookup, exec through the API server into the kubelet, status write, Event) +
// ApplyPolicy over gRPC. Each op gets a new Resume (created outside the timer); the emissary emulation is
// off, so the same paused pod can be released again and again.
func BenchmarkRelease(b *testing.B) {
	r := rig.Get(b)
	ns := r.Namespace(b)
	wfc := benchWorkflowClient(b, r)
	wf := helloWorldWorkflow(ns)
	wf.UID = ""
	created, err := wfc.ArgoprojV1alpha1().Workflows(ns).Create(ctxFor(b, 10*time.Second), wf, metav1.CreateOptions{})
	if err != nil {
		b.Fatal(err)
	}
	pod := fixture.Pod(created, created.Status.Nodes[helloNodeID], helloPodV2, mainContainer(fixture.PauseAfter)...)
	pod.UID = ""
	fixture.Own(pod, created)
	r.Kubelet().SetEmissary(ns, helloPodV2, false)
	if _, err := r.RunPod(ctxFor(b, 10*time.Second), pod); err != nil {
		b.Fatal(err)
	}
	srv := startServer(b, r.AdminConfig(), []string{ns})
	resumes := r.Dynamic().Resource(v1alpha1.Resource).Namespace(ns)

	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		u, err := resumes.Create(ctxFor(b, 10*time.Second), &unstructured.Unstructured{Object: map[string]any{
			"apiVersion": v1alpha1.GroupVersion.String(),
			"kind":       v1alpha1.Kind,
			"metadata":   map[string]any{"name": fmt.Sprintf("bench-%d", i)},
			"spec":       map[string]any{"Workflow-ID": helloWorld, "TemplateName": "pause"},
		}}, metav1.CreateOptions{})
		if err != nil {
			b.Fatal(err)
		}
		params, payload := resumeEvent(u)
		b.StartTimer()
		f := srv.mustFire(b, params, payload)
		if f.Err != nil || f.Result.Phase != v1alpha1.PhaseSucceeded || len(f.Result.Released) != 1 {
			b.Fatalf("op %d: err %v, result %+v", i, f.Err, f.Result)
		}
	}
	b.StopTimer()
	if n := len(r.Kubelet().CallsFor(ns)); n != b.N {
		b.Fatalf("kubelet got %d execs for %d releases", n, b.N)
	}
}
