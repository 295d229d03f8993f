package integration

import (
	"context"
	"maps"
	"slices"
	"sync"
	"testing"
	"time"

	wfv1 "github.com/argoproj/argo-workflows/v3/pkg/apis/workflow/v1alpha1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/watch"

	"github.com/argocontroller/resume-trigger/api/v1alpha1"
	"github.com/argocontroller/resume-trigger/tests/internal/rig"
)

// Resumes made before Argo's controller reaches their step: whatever selects the step (template name, node
// name, node id), and whether the step calls a WorkflowTemplate's template or the whole Workflow comes from
// one, the Resume waits and is released within seconds of its step's pod running.

// releaseWithin is how soon after its pod runs a waiting Resume's step is to be released: the server
// looks again every productRevisits.
const releaseWithin = 5 * time.Second

// runningPods watches the pods of a workflow and notes when each was first seen running with every
// container ready: the moment the server can first release it. A watch, not a poll, so the time is the
// API server's news of it, not a poll interval later.
type runningPods struct {
	mu   sync.Mutex
	seen map[string]time.Time
}

func (e *env) watchRunning(workflow string) *runningPods {
	e.t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	e.t.Cleanup(cancel)
	w, err := e.r.Client().CoreV1().Pods(e.ns).Watch(ctx, metav1.ListOptions{LabelSelector: "workflows.argoproj.io/workflow=" + workflow})
	if err != nil {
		e.t.Fatalf("watch pods of %s: %v", workflow, err)
	}
	rp := &runningPods{seen: map[string]time.Time{}}
	go func() {
		defer w.Stop()
		for ev := range w.ResultChan() {
			pod, ok := ev.Object.(*corev1.Pod)
			if !ok || ev.Type == watch.Deleted || !podReady(pod) {
				continue
			}
			now := time.Now()
			rp.mu.Lock()
			if _, done := rp.seen[pod.Name]; !done {
				rp.seen[pod.Name] = now
			}
			rp.mu.Unlock()
		}
	}()
	return rp
}

func podReady(pod *corev1.Pod) bool {
	if pod.Status.Phase != corev1.PodRunning || len(pod.Status.ContainerStatuses) == 0 {
		return false
	}
	for _, cs := range pod.Status.ContainerStatuses {
		if cs.State.Running == nil || !cs.Ready {
			return false
		}
	}
	return true
}

func (rp *runningPods) at(pod string) (time.Time, bool) {
	rp.mu.Lock()
	defer rp.mu.Unlock()
	t, ok := rp.seen[pod]
	return t, ok
}

// expectReleasedSoon waits until Resume name released pod (container main, stage), and requires that
// the server's touch reached the kubelet within releaseWithin of the pod running. It logs the time.
func (e *env) expectReleasedSoon(rp *runningPods, name string, pod corev1.Pod, stage v1alpha1.Stage) {
	e.t.Helper()
	res := e.waitResume(name, time.Minute, isPhase(v1alpha1.PhaseSucceeded))
	expectSucceeded(e.t, res, v1alpha1.ReleasedTarget{Node: pod.Annotations["workflows.argoproj.io/node-id"], Pod: pod.Name, Container: "main", Stage: stage})
	running, ok := rp.at(pod.Name)
	if !ok {
		e.t.Fatalf("pod %s was never seen running and ready", pod.Name)
	}
	argv := []string{"touch", "/var/run/argo/ctr/main/" + string(stage)}
	var touched []rig.Call
	for _, c := range e.calls() {
		if c.Pod == pod.Name && slices.Equal(c.Argv, argv) {
			touched = append(touched, c)
		}
	}
	if len(touched) != 1 || touched[0].Outcome != "exit 0" {
		e.t.Fatalf("execs of %v into pod %s: %s, want exactly one, exit 0", argv, pod.Name, formatCalls(touched))
	}
	took := touched[0].Time.Sub(running)
	e.t.Logf("resume %s: pod %s running -> released (touch at the kubelet) in %v", name, pod.Name, took.Round(time.Millisecond))
	if took > releaseWithin {
		e.t.Errorf("resume %s released pod %s %v after it ran, want within %v", name, pod.Name, took.Round(time.Millisecond), releaseWithin)
	}
}

// argoNodeID is the id Argo's controller gives node nodeName of workflow: a hash of the name, by Argo's own
// code, so a test knows a node's id before the node exists.
func argoNodeID(workflow, nodeName string) string {
	return (&wfv1.Workflow{ObjectMeta: metav1.ObjectMeta{Name: workflow}}).NodeID(nodeName)
}

// podOfNode waits until workflow has a pod for node id and returns it. A waiting Resume may release the
// pod before a poll sees it paused, so only its existence is waited for.
func (e *env) podOfNode(workflow, id string) corev1.Pod {
	e.t.Helper()
	return e.podOfNodeWhen(workflow, id, func(*corev1.Pod) bool { return true })
}

// pausedPodOfNode waits until workflow's pod for node id holds its main container at a pause.
func (e *env) pausedPodOfNode(workflow, id string) corev1.Pod {
	e.t.Helper()
	return e.podOfNodeWhen(workflow, id, func(p *corev1.Pod) bool { return e.r.Paused(p, "main") })
}

func (e *env) podOfNodeWhen(workflow, id string, cond func(*corev1.Pod) bool) corev1.Pod {
	e.t.Helper()
	var found corev1.Pod
	_, err := e.r.WaitPods(rig.Context(e.t, time.Minute), e.ns, workflow, func(pods []corev1.Pod) bool {
		for i := range pods {
			if pods[i].Annotations["workflows.argoproj.io/node-id"] == id && cond(&pods[i]) {
				found = pods[i]
				return true
			}
		}
		return false
	})
	if err != nil {
		e.t.Fatal(e.wc.Failure(err))
	}
	return found
}

const earlyLibrary = `
apiVersion: argoproj.io/v1alpha1
kind: WorkflowTemplate
metadata:
  name: library
spec:
  templates:
    - name: by-template` + laterContainer + `
    - name: by-name` + laterContainer + `
    - name: by-id` + laterContainer + `
`

const laterContainer = `
      container:
        image: busybox
        command: [sh, -c, "echo later step ran"]
        env:
          - name: ARGO_DEBUG_PAUSE_BEFORE
            value: "true"`

// While the first step of a Workflow runs (held at its own pause), a Resume for each of three later
// steps, which call a WorkflowTemplate's templates through templateRef: one by template name, one by node
// name, one by node id (Argo's node ids are a hash of the node name, so it is known in advance). None of
// the three nodes exists yet. All three wait; once the first step is released the three steps run and each is released within
// releaseWithin of its pod running.
func TestArgoEarlyResumesForALaterStep(t *testing.T) {
	eachCell(t, primaryCells, testEarlyResumesForALaterStep)
}

func testEarlyResumesForALaterStep(t *testing.T, c argoCell) {
	e := setupArgo(t, c, rig.ControllerOptions{}, withRevisits())
	e.submit(earlyLibrary)
	const name = "early"
	rp := e.watchRunning(name)
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
        - - name: first
            template: first
        - - name: by-template
            templateRef: {name: library, template: by-template}
          - name: by-name
            templateRef: {name: library, template: by-name}
          - name: by-id
            templateRef: {name: library, template: by-id}
    - name: first
      container:
        image: busybox
        command: [sh, -c, "echo first step ran"]
        env:
          - name: ARGO_DEBUG_PAUSE_AFTER
            value: "true"
`)
	first := e.waitPaused(name, "main", 1)
	wf := e.workflow(name, func(*wfv1.Workflow) bool { return true })
	byID := argoNodeID(name, name+"[1].by-id")
	for _, later := range []string{"[1].by-template", "[1].by-name", "[1].by-id"} {
		if n, ok := wf.Status.Nodes[argoNodeID(name, name+later)]; ok {
			t.Fatalf("node %s exists (%s) while the first step runs: the Resumes below would not be early", n.Name, n.Phase)
		}
	}
	// Argo's one-time validation of a new Workflow already stores the templates its templateRefs name,
	// before any of them runs; a template not stored yet is a unit case (lookup's TestFind).
	t.Logf("stored templates while the first step runs: %v", slices.Sorted(maps.Keys(wf.Status.StoredTemplates)))

	early := map[string]map[string]any{
		"by-template": {"Workflow-ID": name, "TemplateName": "by-template"},
		"by-name":     {"Workflow-ID": name, "nodeName": name + "[1].by-name"},
		"by-id":       {"Workflow-ID": name, "nodeID": byID},
	}
	for _, r := range []string{"by-template", "by-name", "by-id"} {
		u := e.createResume(r, early[r])
		expectPending(t, e.srv.fireResume(t, u), "has not reached")
		if res, _ := e.resume(r); res.Status.Phase != v1alpha1.PhasePending || res.Status.Reason != "Waiting" {
			t.Fatalf("resume %s made while the first step runs: %s/%s (%s), want Pending/Waiting", r, res.Status.Phase, res.Status.Reason, res.Status.Message)
		}
	}
	e.expectNoCalls()

	e.release("first", map[string]any{"Workflow-ID": name, "nodeName": name + "[0].first"}, "main", v1alpha1.StageAfter, first...)
	for _, r := range []string{"by-template", "by-name", "by-id"} {
		id := argoNodeID(name, name+"[1]."+r)
		pod := e.podOfNode(name, id)
		if r == "by-id" && pod.Annotations["workflows.argoproj.io/node-id"] != byID {
			t.Fatalf("pod %s runs node %s, not the id %s computed in advance", pod.Name, pod.Annotations["workflows.argoproj.io/node-id"], byID)
		}
		e.expectReleasedSoon(rp, r, pod, v1alpha1.StageBefore)
	}
	e.waitSucceeded(name)
}

// A Resume by template made before its Workflow exists, for a Workflow that takes its whole spec from a
// WorkflowTemplate (workflowTemplateRef). It waits for the Workflow, then, while the controller has not
// taken the new Workflow up (no templates in it yet; the controller is frozen to show that state on
// purpose), for the template; then it is released within releaseWithin of the step's pod running.
func TestArgoEarlyResumeForAWorkflowTemplateRef(t *testing.T) {
	eachCell(t, primaryCells, testEarlyResumeForAWorkflowTemplateRef)
}

func testEarlyResumeForAWorkflowTemplateRef(t *testing.T, c argoCell) {
	e := setupArgo(t, c, rig.ControllerOptions{}, withRevisits())
	e.submit(`
apiVersion: argoproj.io/v1alpha1
kind: WorkflowTemplate
metadata:
  name: whole
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
          - name: ARGO_DEBUG_PAUSE_BEFORE
            value: "true"
`)
	const name = "from-template"
	u := e.createResume("early", map[string]any{"Workflow-ID": name, "TemplateName": "pause"})
	expectPending(t, e.srv.fireResume(t, u), "waiting for it to be created")

	rp := e.watchRunning(name)
	if err := e.wc.Freeze(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(e.wc.Thaw)
	e.submit(`
apiVersion: argoproj.io/v1alpha1
kind: Workflow
metadata:
  name: from-template
spec:
  workflowTemplateRef: {name: whole}
`)
	wf := e.workflow(name, func(*wfv1.Workflow) bool { return true })
	if wf.Status.Phase != wfv1.WorkflowUnknown || len(wf.Spec.Templates) != 0 || wf.Status.StoredWorkflowSpec != nil {
		t.Fatalf("workflow %s: phase %q, %d templates, stored spec %v; want it not taken up yet", name, wf.Status.Phase, len(wf.Spec.Templates), wf.Status.StoredWorkflowSpec != nil)
	}
	expectPending(t, e.srv.fireResume(t, u), "has not reached template pause yet")
	if res, _ := e.resume("early"); res.Status.Phase != v1alpha1.PhasePending || res.Status.Workflow == nil || res.Status.Workflow.UID != string(wf.UID) {
		t.Fatalf("resume: %s (%s), bound to %+v; want Pending, bound to %s", res.Status.Phase, res.Status.Message, res.Status.Workflow, wf.UID)
	}

	e.wc.Thaw()
	pod := e.podOfNode(name, argoNodeID(name, name+"[0].pause"))
	e.expectReleasedSoon(rp, "early", pod, v1alpha1.StageBefore)
	e.waitSucceeded(name)
}

// A daemon step (daemon: true) held before its command: Argo marks its node Running and daemoned as soon
// as its pod runs and is ready, which is exactly the state of a daemon at its pause. The Resume releases
// it; the daemon then runs (here it is also held after its command, as a daemon's long-running command
// would be), the next step runs, and the Workflow ends Succeeded with the daemon stopped by Argo.
func TestArgoDaemonStep(t *testing.T) {
	eachCell(t, primaryCells, testDaemonStep)
}

func testDaemonStep(t *testing.T, c argoCell) {
	e := setupArgo(t, c, rig.ControllerOptions{})
	const name = "daemon"
	e.submit(`
apiVersion: argoproj.io/v1alpha1
kind: Workflow
metadata:
  name: daemon
spec:
  entrypoint: main
  templates:
    - name: main
      steps:
        - - name: server
            template: server
        - - name: client
            template: client
    - name: server
      daemon: true
      container:
        image: busybox
        command: [sh, -c, "echo serving"]
        env:
          - name: ARGO_DEBUG_PAUSE_BEFORE
            value: "true"
          - name: ARGO_DEBUG_PAUSE_AFTER
            value: "true"
    - name: client
      container:
        image: busybox
        command: [sh, -c, "echo client ran"]
        env:
          - name: ARGO_DEBUG_PAUSE_BEFORE
            value: "true"
`)
	id := argoNodeID(name, name+"[0].server")
	server := e.pausedPodOfNode(name, id)
	wf := e.workflow(name, func(wf *wfv1.Workflow) bool { return wf.Status.Nodes[id].IsDaemoned() })
	if n := wf.Status.Nodes[id]; n.Phase != wfv1.NodeRunning || !n.Fulfilled() {
		t.Fatalf("daemon node %s: phase %s daemoned %v fulfilled %v; want the state Argo's Fulfilled calls done", n.Name, n.Phase, n.IsDaemoned(), n.Fulfilled())
	}
	e.release("server", map[string]any{"Workflow-ID": name, "TemplateName": "server", "stage": "before"}, "main", v1alpha1.StageBefore, server)
	if n := e.workflow(name, func(*wfv1.Workflow) bool { return true }).Status.Nodes[id]; n.Phase != wfv1.NodeRunning {
		t.Errorf("daemon node %s is %s after its release, want Running (the daemon serves)", n.Name, n.Phase)
	}

	clientID := argoNodeID(name, name+"[1].client")
	client := e.pausedPodOfNode(name, clientID)
	e.release("client", map[string]any{"Workflow-ID": name, "TemplateName": "client"}, "main", v1alpha1.StageBefore, client)
	done := e.waitSucceeded(name)
	if n := done.Status.Nodes[id]; n.Phase != wfv1.NodeSucceeded || n.IsDaemoned() {
		t.Errorf("daemon node %s: %s daemoned %v at the end, want Succeeded (stopped by Argo with its steps)", n.Name, n.Phase, n.IsDaemoned())
	}
}
