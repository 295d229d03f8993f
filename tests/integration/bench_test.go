package integration

import (
	"fmt"
	"slices"
	"testing"
	"time"

	wfv1 "github.com/argoproj/argo-workflows/v3/pkg/apis/workflow/v1alpha1"
	corev1 "k8s.io/api/core/v1"
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
	wf := fixture.HelloWorld(ns)
	wf.UID = ""
	created, err := wfc.ArgoprojV1alpha1().Workflows(ns).Create(rig.Context(b, 10*time.Second), wf, metav1.CreateOptions{})
	if err != nil {
		b.Fatal(err)
	}
	pod := fixture.Pod(created, created.Status.Nodes[fixture.HelloNodeID], fixture.HelloPodV2, mainContainer(fixture.PauseAfter)...)
	pod.UID = ""
	fixture.Own(pod, created)
	r.Kubelet().SetEmissary(ns, fixture.HelloPodV2, false)
	if _, err := r.RunPod(rig.Context(b, 10*time.Second), pod); err != nil {
		b.Fatal(err)
	}
	srv := startServer(b, r.AdminConfig(), []string{ns})
	resumes := r.Dynamic().Resource(v1alpha1.Resource).Namespace(ns)

	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		u, err := resumes.Create(rig.Context(b, 10*time.Second), &unstructured.Unstructured{Object: map[string]any{
			"apiVersion": v1alpha1.GroupVersion.String(),
			"kind":       v1alpha1.Kind,
			"metadata":   map[string]any{"name": fmt.Sprintf("bench-%d", i)},
			"spec":       map[string]any{"Workflow-ID": fixture.HelloWorkflow, "TemplateName": "pause"},
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

// BenchmarkResumeToArgoSucceeded measures, on state Argo's own workflow-controller made, the time from a
// Resume being created to the controller marking the released node Succeeded: the README's Workflow is
// submitted and its step paused outside the timer; the timer covers the Resume's creation, the server's
// release (fired as the Sensor does) and the controller's reaction to the pod's end (it looks again after
// DEFAULT_REQUEUE_TIME, 1 s in the rig, 10 s by Argo's default). It reports the median as ms/median.
func BenchmarkResumeToArgoSucceeded(b *testing.B) {
	r := rig.Get(b)
	ns := r.Namespace(b)
	wc, err := r.StartWorkflowController(rig.Context(b, 2*time.Minute), rig.ControllerOptions{Namespace: ns})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(wc.Stop)
	srv := startServer(b, r.AdminConfig(), []string{ns})
	readme, err := rig.ReadmeWorkflow()
	if err != nil {
		b.Fatal(err)
	}
	resumes := r.Dynamic().Resource(v1alpha1.Resource).Namespace(ns)
	var took []time.Duration
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		name := fmt.Sprintf("%s-%d", readme.Name, i)
		wf := readme.DeepCopy()
		wf.Name, wf.Namespace = name, ns
		if _, err := r.Workflows().ArgoprojV1alpha1().Workflows(ns).Create(rig.Context(b, 10*time.Second), wf, metav1.CreateOptions{}); err != nil {
			b.Fatal(err)
		}
		var node string
		if _, err := r.WaitPods(rig.Context(b, time.Minute), ns, name, func(pods []corev1.Pod) bool {
			for i := range pods {
				if r.Paused(&pods[i], "main") {
					node = pods[i].Annotations["workflows.argoproj.io/node-id"]
					return true
				}
			}
			return false
		}); err != nil {
			b.Fatal(wc.Failure(err))
		}
		b.StartTimer()
		start := time.Now()
		u, err := resumes.Create(rig.Context(b, 10*time.Second), &unstructured.Unstructured{Object: map[string]any{
			"apiVersion": v1alpha1.GroupVersion.String(),
			"kind":       v1alpha1.Kind,
			"metadata":   map[string]any{"name": name},
			"spec":       map[string]any{"Workflow-ID": name, "TemplateName": "pause"},
		}}, metav1.CreateOptions{})
		if err != nil {
			b.Fatal(err)
		}
		params, payload := resumeEvent(u)
		if f := srv.mustFire(b, params, payload); f.Err != nil || len(f.Result.Released) != 1 {
			b.Fatalf("op %d: err %v, result %+v", i, f.Err, f.Result)
		}
		if _, err := r.WaitWorkflow(rig.Context(b, time.Minute), ns, name, func(wf *wfv1.Workflow) bool {
			return wf.Status.Nodes[node].Phase == wfv1.NodeSucceeded
		}); err != nil {
			b.Fatal(wc.Failure(err))
		}
		took = append(took, time.Since(start))
	}
	b.StopTimer()
	slices.Sort(took)
	b.ReportMetric(float64(took[len(took)/2].Milliseconds()), "ms/median")
}
