package rig_test

import (
	"context"
	"strings"
	"testing"
	"time"

	wfv1 "github.com/argoproj/argo-workflows/v3/pkg/apis/workflow/v1alpha1"
	argoutil "github.com/argoproj/argo-workflows/v3/workflow/util"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/yaml"

	"github.com/argocontroller/resume-trigger/tests/internal/rig"
)

// helloWorld is the README's Workflow spec: step "pause" paused after its command.
const helloWorld = `
apiVersion: argoproj.io/v1alpha1
kind: Workflow
metadata:
  name: hello-world
spec:
  entrypoint: main
  templates:
    - name: main
      steps:
        - - name: pause
            template: pause
    - name: pause
      container:
        image: busybox
        command: [sh, -c, "echo step ran"]
        env:
          - name: ARGO_DEBUG_PAUSE_AFTER
            value: "false"
          - name: ARGO_DEBUG_PAUSE_AFTER
            value: "true"
`

// The real workflow-controller makes the step's pod; the test kubelet binds and runs it, main holds at
// its pause (the last of the duplicate env entries, as Kubernetes resolves them), and once the marker is
// touched main ends and the wait container's WorkflowTaskResult is written, so that the controller itself
// marks the node and the Workflow Succeeded. On ExecutorArgo all of that is Argo's own argoexec; on
// ExecutorEmulated it is the kubelet's emulation.
func TestRealControllerRunsAndFinishesAPausedStep(t *testing.T) {
	for _, executor := range []rig.ExecutorKind{rig.ExecutorArgo, rig.ExecutorEmulated} {
		t.Run(string(executor), func(t *testing.T) {
			t.Parallel()
			testRealController(t, executor)
		})
	}
}

func testRealController(t *testing.T, executor rig.ExecutorKind) {
	r := rig.Get(t)
	ns := r.Namespace(t)
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	wc, err := r.StartWorkflowController(ctx, rig.ControllerOptions{Namespace: ns, Executor: executor})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(wc.Stop)

	var wf wfv1.Workflow
	if err := yaml.UnmarshalStrict([]byte(helloWorld), &wf); err != nil {
		t.Fatal(err)
	}
	created, err := r.Workflows().ArgoprojV1alpha1().Workflows(ns).Create(ctx, &wf, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	running, err := r.WaitWorkflow(ctx, ns, created.Name, func(wf *wfv1.Workflow) bool {
		n := wf.Status.Nodes.FindByDisplayName("pause")
		return n != nil && n.Phase == wfv1.NodeRunning
	})
	if err != nil {
		t.Fatal(wc.Failure(err))
	}
	node := running.Status.Nodes.FindByDisplayName("pause")
	podName := argoutil.GeneratePodName(created.Name, node.Name, node.TemplateName, node.ID, argoutil.PodNameV2)
	pod, err := r.WaitPod(ctx, ns, podName, func(p *corev1.Pod) bool { return r.Paused(p, "main") })
	if err != nil {
		if executor == rig.ExecutorArgo {
			for _, c := range []string{"init", "main", "wait"} {
				log, _ := r.Kubelet().ContainerLog(ns, podName, c)
				t.Logf("container %s:\n%s", c, log)
			}
		}
		t.Fatal(wc.Failure(err))
	}
	if pod.Spec.NodeName != rig.NodeName {
		t.Errorf("pod bound to %q, want %q", pod.Spec.NodeName, rig.NodeName)
	}

	released := time.Now()
	if err := rig.Exec(ctx, r.AdminConfig(), ns, podName, "main", "touch", afterMarker); err != nil {
		t.Fatalf("exec touch: %v", err)
	}
	done, err := r.WaitWorkflow(ctx, ns, created.Name, func(wf *wfv1.Workflow) bool { return wf.Status.Phase.Completed() })
	if err != nil {
		t.Fatal(wc.Failure(err))
	}
	t.Logf("workflow %s %v after the release", done.Status.Phase, time.Since(released).Round(time.Millisecond))
	if done.Status.Phase != wfv1.WorkflowSucceeded {
		t.Fatalf("workflow %s: %s", done.Status.Phase, rig.NodeSummary(done))
	}
	n := done.Status.Nodes[node.ID]
	if n.Phase != wfv1.NodeSucceeded || n.FinishedAt.IsZero() {
		t.Errorf("node %s: phase %s, finished %v", n.Name, n.Phase, n.FinishedAt)
	}
	t.Logf("node %s Running→Succeeded %s → %s", n.Name, n.StartedAt.Format(time.RFC3339), n.FinishedAt.Format(time.RFC3339))
	if executor != rig.ExecutorArgo {
		return
	}
	log, err := r.Kubelet().ContainerLog(ns, podName, "main")
	if err != nil || !strings.Contains(log, "sub-process exited") || !strings.Contains(log, "step ran") {
		t.Errorf("main's log, as Argo's emissary and the command wrote it (%v):\n%s", err, log)
	}
	if !r.Kubelet().HasFile(ns, podName, "main", "/var/run/argo/ctr/main/exitcode") {
		t.Errorf("the emissary wrote no exitcode into the pod's /var/run/argo")
	}
	if errs := r.Kubelet().RuntimeErrors(); len(errs) > 0 {
		t.Errorf("the rig's runtime failed: %v", errs)
	}
}
