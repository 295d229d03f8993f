package integration

import (
	"testing"
	"time"

	wfv1 "github.com/argoproj/argo-workflows/v3/pkg/apis/workflow/v1alpha1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/argocontroller/resume-trigger/api/v1alpha1"
	"github.com/argocontroller/resume-trigger/tests/internal/rig"
)

// Argo v4's failedPodRestart, on the real v4.0.5 controller with the setting on in its ConfigMap
// (workflow-controller-configmap key failedPodRestart, v4.0.5 config/config.go). A pod that failed before
// its main container ever ran, for a reason of the node's (Evicted, NodeShutdown, NodeAffinity,
// UnexpectedAdmissionError: workflow/controller/pod_restart.go), is deleted by UID and created again under
// the same name, its node set back to Pending (workflow/controller/operator.go). A Resume pending on the
// step while this happens waits for the new pod, and is released there.
//
// The kubelet evicts the step's first pod while the controller is frozen, so that the server is shown,
// on purpose rather than by luck of timing, the state a cluster is in until the controller answers: the
// pod Failed while its node is still Pending.
func TestArgoV4FailedPodRestart(t *testing.T) {
	c := cellV4PodNamesV2
	e := setupArgo(t, c, rig.ControllerOptions{Config: map[string]string{"failedPodRestart": "enabled: true\nmaxRestarts: 1\n"}}, withRevisits())
	ctx := rig.Context(t, 2*time.Minute)
	const name = "restart"
	// The step's pod is bound but its containers are not started: its images are being pulled.
	if err := e.r.HoldPods(ctx, e.ns, name, rig.HoldScheduled); err != nil {
		t.Fatal(err)
	}
	e.submit(`
apiVersion: argoproj.io/v1alpha1
kind: Workflow
metadata:
  name: restart
spec:
  entrypoint: main
  templates:
    - name: main
      steps:
        - - name: pause
            template: pause` + pauseTemplate + `
`)
	pods, err := e.r.WaitPods(ctx, e.ns, name, func(pods []corev1.Pod) bool { return len(pods) == 1 && pods[0].Spec.NodeName != "" })
	if err != nil {
		t.Fatal(e.wc.Failure(err))
	}
	first := pods[0]
	nodeID := first.Annotations["workflows.argoproj.io/node-id"]
	e.workflow(name, func(wf *wfv1.Workflow) bool { return wf.Status.Nodes[nodeID].Phase == wfv1.NodePending })

	// The Resume comes while the pod is being set up: it waits.
	u := e.createResume("early", map[string]any{"Workflow-ID": name, "TemplateName": "pause"})
	expectPending(t, e.srv.fireResume(t, u), "not running yet")

	if err := e.wc.Freeze(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(e.wc.Thaw)
	evicted, err := e.r.EvictPod(ctx, e.ns, first.Name)
	if err != nil {
		t.Fatal(err)
	}
	if wf := e.workflow(name, func(*wfv1.Workflow) bool { return true }); wf.Status.Nodes[nodeID].Phase != wfv1.NodePending {
		t.Fatalf("node %s is %s while the controller is frozen, want Pending", nodeID, wf.Status.Nodes[nodeID].Phase)
	}
	// The pod failed while its node is Pending: the Resume keeps waiting, for the pod Argo makes next.
	expectPending(t, e.srv.fireResume(t, u), "waiting for the pod Argo creates in its place")
	if res, _ := e.resume("early"); res.Status.Phase != v1alpha1.PhasePending {
		t.Fatalf("resume phase %s (%s) after the pod was evicted, want Pending", res.Status.Phase, res.Status.Message)
	}
	e.expectNoCalls()

	// The controller answers: it deletes the evicted pod and creates the node's pod again, which the
	// kubelet now runs up to its pause; the server's revisits find it there.
	if err := e.r.HoldPods(ctx, e.ns, name, rig.HoldNone); err != nil {
		t.Fatal(err)
	}
	e.wc.Thaw()
	res := e.waitResume("early", time.Minute, isPhase(v1alpha1.PhaseSucceeded))
	expectSucceeded(t, res, v1alpha1.ReleasedTarget{Node: nodeID, Pod: first.Name, Container: "main", Stage: v1alpha1.StageAfter})
	e.expectCalls(rig.Call{Pod: first.Name, Container: "main", Argv: touchMainAfter, Outcome: "exit 0"})
	e.waitSucceeded(name)

	// The pod released is the second one: same name, another UID, and Argo counted one restart.
	now, err := e.r.Client().CoreV1().Pods(e.ns).Get(ctx, first.Name, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if now.UID == evicted.UID {
		t.Fatalf("pod %s still has the evicted pod's UID %s: the controller did not create it again", now.Name, now.UID)
	}
	raw, err := e.r.Dynamic().Resource(rig.WorkflowGVR).Namespace(e.ns).Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	restarts, _, _ := unstructured.NestedInt64(raw.Object, "status", "nodes", nodeID, "failedPodRestarts")
	if restarts != 1 {
		t.Errorf("node %s failedPodRestarts %d, want 1", nodeID, restarts)
	}
	t.Logf("pod %s evicted (uid %s), created again (uid %s), released there; node failedPodRestarts %d", first.Name, evicted.UID, now.UID, restarts)
}
