package integration

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	wfv1 "github.com/argoproj/argo-workflows/v3/pkg/apis/workflow/v1alpha1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/argocontroller/resume-trigger/api/v1alpha1"
	"github.com/argocontroller/resume-trigger/tests/internal/rig"
)

// The tests of this file run Argo's own executor in the step pods (rig.ExecutorArgo): the real
// `argoexec emissary` holds the step at its debug pause, the server's touch reaches the very file it polls,
// and the real `argoexec wait` writes the WorkflowTaskResult from which the controller marks the node
// Succeeded. Nothing of the pause, the marker or the task result is the rig's (see the rig's doc.go).
var (
	cellV3Argoexec = argoCell{argo: rig.ArgoV3, podNames: cellV3PodNamesV2.podNames, crds: rig.MinimalCRDs, executor: rig.ExecutorArgo}
	cellV4Argoexec = argoCell{argo: rig.ArgoV4, podNames: cellV4PodNamesV2.podNames, crds: rig.FullCRDsV4, executor: rig.ExecutorArgo}

	argoexecCells = []argoCell{cellV3Argoexec, cellV4Argoexec}
)

func TestArgoexecStepsAndDAG(t *testing.T) { eachCell(t, argoexecCells, testStepsAndDAG) }

func TestArgoexecLoop(t *testing.T) { eachCell(t, argoexecCells, testLoop) }

func TestArgoexecContainerSetPauseBefore(t *testing.T) {
	eachCell(t, argoexecCells, testContainerSetPauseBefore)
}

// expectArgoExecutor requires that Argo's executor, not the rig, finished wf's pods: every
// WorkflowTaskResult of wf still there is complete and was written by argoexec alone (its field managers;
// v3.7's controller may already have deleted them once the Workflow completed), the emissary of each
// pod's main container logged its command's end, and each pod's wait container saw it.
func (e *env) expectArgoExecutor(wf *wfv1.Workflow) {
	e.t.Helper()
	ctx := rig.Context(e.t, 10*time.Second)
	sel := metav1.ListOptions{LabelSelector: rig.LabelWorkflow + "=" + wf.Name}
	trs, err := e.wfc.ArgoprojV1alpha1().WorkflowTaskResults(e.ns).List(ctx, sel)
	if err != nil {
		e.t.Fatal(err)
	}
	for _, tr := range trs.Items {
		var managers []string
		for _, mf := range tr.ManagedFields {
			managers = append(managers, mf.Manager)
		}
		slices.Sort(managers)
		managers = slices.Compact(managers)
		if !slices.Equal(managers, []string{"argoexec"}) || tr.Labels["workflows.argoproj.io/report-outputs-completed"] != "true" {
			e.t.Errorf("task result %s: field managers %v, labels %v; want argoexec's alone, outputs completed", tr.Name, managers, tr.Labels)
		}
	}
	pods, err := e.r.Client().CoreV1().Pods(e.ns).List(ctx, sel)
	if err != nil {
		e.t.Fatal(err)
	}
	for _, p := range pods.Items {
		for _, c := range p.Spec.Containers {
			if c.Name != "main" {
				continue
			}
			log, err := e.r.Kubelet().ContainerLog(e.ns, p.Name, c.Name)
			if err != nil || !strings.Contains(log, "sub-process exited") {
				e.t.Errorf("pod %s: main's emissary never logged its command's end (%v):\n%s", p.Name, err, log)
			}
			if log, err := e.r.Kubelet().ContainerLog(e.ns, p.Name, "wait"); err != nil || !strings.Contains(log, "Main container completed") {
				e.t.Errorf("pod %s: Argo's wait never saw main end (%v):\n%s", p.Name, err, log)
			}
		}
	}
}

// retryStrategy on Argo's executor: attempt 0's command fails and, its pause env "false", its emissary
// ends without pausing; attempt 1 succeeds and pauses; the Resume releases attempt 1 only.
func TestArgoexecRetryReleasesTheLastAttempt(t *testing.T) {
	eachCell(t, argoexecCells, func(t *testing.T, c argoCell) {
		e := setupArgo(t, c, rig.ControllerOptions{})
		e.submit(`
apiVersion: argoproj.io/v1alpha1
kind: Workflow
metadata:
  name: retry
spec:
  entrypoint: main
  templates:
    - name: main
      steps:
        - - name: flaky
            template: flaky
    - name: flaky
      retryStrategy:
        limit: "2"
      container:
        image: busybox
        command: [sh, -c, "echo attempt {{retries}}; test {{retries}} -ge 1"]
        env:
          - {name: ARGO_DEBUG_PAUSE_AFTER, value: "{{=retries == '0' ? 'false' : 'true'}}"}
`)
		paused := e.waitPaused("retry", "main", 1)
		wf := e.workflow("retry", func(*wfv1.Workflow) bool { return true })
		attempts := podNodes(wf)
		if len(attempts) != 2 || attempts[0].Phase != wfv1.NodeFailed || attempts[1].Phase != wfv1.NodeRunning {
			t.Fatalf("attempts: %s, want (0) Failed and (1) Running", rig.NodeSummary(wf))
		}
		if !strings.Contains(attempts[0].Message, "exit code 1") {
			t.Errorf("attempt 0: message %q, want the command's exit code 1 as Argo's wait reported it", attempts[0].Message)
		}
		if got := paused[0].Annotations["workflows.argoproj.io/node-id"]; got != attempts[1].ID {
			t.Fatalf("paused pod %s is of node %s, want attempt 1 %s", paused[0].Name, got, attempts[1].ID)
		}
		e.release("retry", map[string]any{"Workflow-ID": "retry", "TemplateName": "flaky"}, "main", v1alpha1.StageAfter, paused...)
		done := e.waitSucceeded("retry")
		if n := done.Status.Nodes[attempts[1].ID]; n.Phase != wfv1.NodeSucceeded {
			t.Errorf("attempt 1 %s", n.Phase)
		}
	})
}

// A Resume that arrives while the step's command still runs, before the emissary reaches its after
// pause: the server creates the marker at once (the container runs and has the pause env), and the real
// emissary, finding it when the command ends, never stops there.
func TestArgoexecEarlyResume(t *testing.T) {
	eachCell(t, argoexecCells, func(t *testing.T, c argoCell) {
		e := setupArgo(t, c, rig.ControllerOptions{})
		// The command runs until the test lets it end (a file in the pod's /var/run/argo): the Resume
		// surely comes first.
		e.submit(`
apiVersion: argoproj.io/v1alpha1
kind: Workflow
metadata:
  name: early
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
        command: [sh, -c, "until test -e /var/run/argo/go; do sleep 0.1; done; echo went on"]
        env:
          - {name: ARGO_DEBUG_PAUSE_AFTER, value: "true"}
`)
		pods, err := e.r.WaitPods(rig.Context(t, time.Minute), e.ns, "early", func(pods []corev1.Pod) bool {
			return len(pods) == 1 && e.r.Kubelet().HasFile(e.ns, pods[0].Name, "main", "/var/run/argo/ctr/main")
		})
		if err != nil {
			t.Fatal(e.wc.Failure(err))
		}
		pod := pods[0]
		if e.r.Paused(&pod, "main") {
			t.Fatalf("pod %s paused before its command ended", pod.Name)
		}
		e.workflow("early", func(wf *wfv1.Workflow) bool {
			n := wf.Status.Nodes.FindByDisplayName("pause")
			return n != nil && n.Phase == wfv1.NodeRunning
		})
		e.release("early", map[string]any{"Workflow-ID": "early", "TemplateName": "pause"}, "main", v1alpha1.StageAfter, pod)
		log, _ := e.r.Kubelet().ContainerLog(e.ns, pod.Name, "main")
		if strings.Contains(log, "sub-process exited") {
			t.Fatalf("the command ended before the release:\n%s", log)
		}
		if err := rig.Exec(rig.Context(t, 10*time.Second), e.r.AdminConfig(), e.ns, pod.Name, "main", "touch", "/var/run/argo/go"); err != nil {
			t.Fatal(err)
		}
		e.waitSucceeded("early")
		if log, _ := e.r.Kubelet().ContainerLog(e.ns, pod.Name, "main"); !strings.Contains(log, "went on") {
			t.Errorf("main's command did not run to its end:\n%s", log)
		}
	})
}

// The paused container's image has no touch: the server's touch there fails as a runtime reports it
// (exit 127, found by name in the image's PATH), and the marker is created from the sibling container of
// the containerSet, which mounts the same /var/run/argo; the real emissary of the paused container sees it.
func TestArgoexecNoTouchSibling(t *testing.T) {
	eachCell(t, argoexecCells, func(t *testing.T, c argoCell) {
		e := setupArgo(t, c, rig.ControllerOptions{})
		image := "rig.example/no-touch:" + strings.ReplaceAll(e.ns, "-", "")
		e.r.Kubelet().SetImage(image, "sh", "echo", "sleep")
		e.submit(fmt.Sprintf(`
apiVersion: argoproj.io/v1alpha1
kind: Workflow
metadata:
  name: notouch
spec:
  entrypoint: main
  templates:
    - name: main
      steps:
        - - name: set
            template: set
    - name: set
      containerSet:
        containers:
          - name: debugme
            image: %s
            command: [sh, -c, "echo debug"]
            env:
              - {name: ARGO_DEBUG_PAUSE_BEFORE, value: "true"}
          - name: main
            image: busybox
            command: [sh, -c, "echo main"]
            dependencies: [debugme]
`, image))
		paused := e.waitPaused("notouch", "debugme", 1)
		u := e.createResume("notouch", map[string]any{"Workflow-ID": "notouch", "TemplateName": "set"})
		expectOK(t, e.srv.fireResume(t, u), 1)
		argv := []string{"touch", "/var/run/argo/ctr/debugme/before"}
		e.expectCalls(
			rig.Call{Pod: paused[0].Name, Container: "debugme", Argv: argv, Outcome: "exit 127"},
			rig.Call{Pod: paused[0].Name, Container: "main", Argv: argv, Outcome: "exit 0"},
		)
		res, _ := e.resume("notouch")
		expectSucceeded(t, res, v1alpha1.ReleasedTarget{
			Node: paused[0].Annotations["workflows.argoproj.io/node-id"], Pod: paused[0].Name, Container: "debugme", Stage: v1alpha1.StageBefore, Via: "main",
		})
		e.waitSucceeded("notouch")
		if log, _ := e.r.Kubelet().ContainerLog(e.ns, paused[0].Name, "debugme"); !strings.Contains(log, "debug") {
			t.Errorf("debugme's command did not run after its release:\n%s", log)
		}
	})
}
