package integration

import (
	"encoding/json"
	"testing"
	"time"

	wfv1 "github.com/argoproj/argo-workflows/v3/pkg/apis/workflow/v1alpha1"
	argofile "github.com/argoproj/argo-workflows/v3/util/file"
	argoutil "github.com/argoproj/argo-workflows/v3/workflow/util"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/argocontroller/resume-trigger/api/v1alpha1"
	"github.com/argocontroller/resume-trigger/internal/argo"
	"github.com/argocontroller/resume-trigger/internal/fixture"
	"github.com/argocontroller/resume-trigger/tests/internal/rig"
)

func mainContainer(env ...corev1.EnvVar) []corev1.Container {
	return []corev1.Container{fixture.Container("main", env...)}
}

func TestOriginalExampleIsReleased(t *testing.T) {
	e := setup(t)
	if id := fixture.NodeID(fixture.HelloWorkflow, fixture.HelloStep); id != fixture.HelloNodeID {
		t.Fatalf("node id of %s is %s, want %s", fixture.HelloStep, id, fixture.HelloNodeID)
	}
	wf := e.createWorkflow(fixture.HelloWorld(e.ns))
	e.runPod(wf, fixture.HelloNodeID, fixture.HelloPodV2, mainContainer(fixture.PauseAfter))
	u := e.createResume("release-hello", map[string]any{"Workflow-ID": fixture.HelloWorkflow, "TemplateName": "pause"})

	f := e.srv.fireResume(t, u)
	expectOK(t, f, 1)
	e.expectCalls(rig.Call{Pod: fixture.HelloPodV2, Container: "main", Argv: touchMainAfter, Outcome: "exit 0"})
	res, _ := e.resume("release-hello")
	expectSucceeded(t, res, v1alpha1.ReleasedTarget{Node: fixture.HelloNodeID, Pod: fixture.HelloPodV2, Container: "main", Stage: v1alpha1.StageAfter})
	ev := e.expectEvent("release-hello", corev1.EventTypeNormal, "Released")
	if ev.InvolvedObject.UID != u.GetUID() {
		t.Errorf("event is about uid %s, the Resume is %s", ev.InvolvedObject.UID, u.GetUID())
	}
	e.waitPodSucceeded(fixture.HelloPodV2)
}

// Pods without the node-id annotation are found by the name Argo computes, in the format the Workflow's
// annotation names. A pod with the other format's name exists too and must not be touched.
func TestPodNameFormats(t *testing.T) {
	for format, tc := range map[string]struct{ pod, other string }{
		"v1": {fixture.HelloPodV1, fixture.HelloPodV2},
		"v2": {fixture.HelloPodV2, fixture.HelloPodV1},
	} {
		t.Run(format, func(t *testing.T) {
			e := setup(t)
			wf := fixture.HelloWorld(e.ns)
			wf.Annotations["workflows.argoproj.io/pod-name-format"] = format
			wf = e.createWorkflow(wf)
			for _, name := range []string{tc.pod, tc.other} {
				pod := fixture.Pod(wf, wf.Status.Nodes[fixture.HelloNodeID], name, mainContainer(fixture.PauseAfter)...)
				pod.UID = ""
				delete(pod.Annotations, argo.AnnotationNodeID)
				fixture.Own(pod, wf)
				e.runPodObject(pod)
			}
			u := e.createResume("release", map[string]any{"Workflow-ID": fixture.HelloWorkflow, "TemplateName": "pause"})

			expectOK(t, e.srv.fireResume(t, u), 1)
			e.expectCalls(rig.Call{Pod: tc.pod, Container: "main", Argv: touchMainAfter, Outcome: "exit 0"})
			res, _ := e.resume("release")
			expectSucceeded(t, res, v1alpha1.ReleasedTarget{Node: fixture.HelloNodeID, Pod: tc.pod, Container: "main", Stage: v1alpha1.StageAfter})
			e.waitPodSucceeded(tc.pod)
		})
	}
}

// A withItems loop runs the template once per item; a Resume naming the template releases every item.
func TestLoopReleasesEveryPausedPod(t *testing.T) {
	e := setup(t)
	var nodes []wfv1.NodeStatus
	for _, item := range []string{"(0:a)", "(1:b)", "(2:c)"} {
		nodes = append(nodes, fixture.PodNode(fixture.HelloWorkflow, "hello-world[0].fan"+item, "fan"+item, "fan"))
	}
	wf := e.createWorkflow(fixture.Workflow(e.ns, fixture.HelloWorkflow, nodes...))
	var want []v1alpha1.ReleasedTarget
	var calls []rig.Call
	for _, n := range nodes {
		pod := argoutil.GeneratePodName(fixture.HelloWorkflow, n.Name, "fan", n.ID, argoutil.PodNameV2)
		e.runPod(wf, n.ID, pod, mainContainer(fixture.PauseAfter))
		want = append(want, v1alpha1.ReleasedTarget{Node: n.ID, Pod: pod, Container: "main", Stage: v1alpha1.StageAfter})
		calls = append(calls, rig.Call{Pod: pod, Container: "main", Argv: touchMainAfter, Outcome: "exit 0"})
	}
	u := e.createResume("release-loop", map[string]any{"Workflow-ID": fixture.HelloWorkflow, "TemplateName": "fan"})

	expectOK(t, e.srv.fireResume(t, u), 3)
	// Targets are released in node id order.
	byID := map[string]rig.Call{}
	for i, n := range nodes {
		byID[n.ID] = calls[i]
	}
	var ordered []rig.Call
	for _, id := range sortedKeys(byID) {
		ordered = append(ordered, byID[id])
	}
	e.expectCalls(ordered...)
	res, _ := e.resume("release-loop")
	expectSucceeded(t, res, want...)
	for _, w := range want {
		e.waitPodSucceeded(w.Pod)
	}
}

// A step with retryStrategy: the Retry node and its attempts all carry the template name; only the last
// attempt's pod is paused, the first attempt's pod has failed.
func TestRetryReleasesLastAttempt(t *testing.T) {
	e := setup(t)
	retry := fixture.Node(fixture.HelloWorkflow, "hello-world[0].flaky", "flaky", wfv1.NodeTypeRetry, "flaky")
	first := fixture.PodNode(fixture.HelloWorkflow, "hello-world[0].flaky(0)", "flaky(0)", "flaky")
	first.Phase, first.NodeFlag = wfv1.NodeFailed, &wfv1.NodeFlag{Retried: true}
	first.BoundaryID = fixture.HelloWorkflow
	last := fixture.PodNode(fixture.HelloWorkflow, "hello-world[0].flaky(1)", "flaky(1)", "flaky")
	last.NodeFlag = &wfv1.NodeFlag{Retried: true}
	retry.Children = []string{first.ID, last.ID}
	wf := e.createWorkflow(fixture.Workflow(e.ns, fixture.HelloWorkflow, retry, first, last))

	firstPod, lastPod := argoutil.GeneratePodName(fixture.HelloWorkflow, first.Name, "flaky", first.ID, argoutil.PodNameV2), argoutil.GeneratePodName(fixture.HelloWorkflow, last.Name, "flaky", last.ID, argoutil.PodNameV2)
	e.runPod(wf, first.ID, firstPod, mainContainer(fixture.PauseAfter), func(p *corev1.Pod) {
		p.Status.Phase = corev1.PodFailed
		for i := range p.Status.ContainerStatuses {
			p.Status.ContainerStatuses[i].State = corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{ExitCode: 1, Reason: "Error"}}
			p.Status.ContainerStatuses[i].Ready = false
		}
	})
	e.runPod(wf, last.ID, lastPod, mainContainer(fixture.PauseAfter))
	u := e.createResume("release-retry", map[string]any{"Workflow-ID": fixture.HelloWorkflow, "TemplateName": "flaky"})

	expectOK(t, e.srv.fireResume(t, u), 1)
	e.expectCalls(rig.Call{Pod: lastPod, Container: "main", Argv: touchMainAfter, Outcome: "exit 0"})
	res, _ := e.resume("release-retry")
	expectSucceeded(t, res, v1alpha1.ReleasedTarget{Node: last.ID, Pod: lastPod, Container: "main", Stage: v1alpha1.StageAfter})
	e.waitPodSucceeded(lastPod)
}

// A containerSet template: one pod, containers main (not paused) and debugme (paused after).
func TestContainerSetReleasesPausedContainer(t *testing.T) {
	e := setup(t)
	podNode := fixture.PodNode(fixture.HelloWorkflow, "hello-world[0].set", "set", "set")
	var containerNodes []wfv1.NodeStatus
	for _, c := range []string{"main", "debugme"} {
		// Argo gives a containerSet's Container nodes the calling step's template, as their Pod node
		// (container_set_template.go initializeNode(..., orgTmpl, ...); TestArgoContainerSetPauseBefore).
		n := fixture.Node(fixture.HelloWorkflow, podNode.Name+"."+c, c, wfv1.NodeTypeContainer, "set")
		n.BoundaryID = podNode.ID
		podNode.Children = append(podNode.Children, n.ID)
		containerNodes = append(containerNodes, n)
	}
	wf := e.createWorkflow(fixture.Workflow(e.ns, fixture.HelloWorkflow, append([]wfv1.NodeStatus{podNode}, containerNodes...)...))
	pod := argoutil.GeneratePodName(fixture.HelloWorkflow, podNode.Name, "set", podNode.ID, argoutil.PodNameV2)
	e.runPod(wf, podNode.ID, pod, []corev1.Container{fixture.Container("main"), fixture.Container("debugme", fixture.PauseAfter)})
	u := e.createResume("release-set", map[string]any{"Workflow-ID": fixture.HelloWorkflow, "TemplateName": "set"})

	expectOK(t, e.srv.fireResume(t, u), 1)
	e.expectCalls(rig.Call{Pod: pod, Container: "debugme", Argv: []string{"touch", "/var/run/argo/ctr/debugme/after"}, Outcome: "exit 0"})
	res, _ := e.resume("release-set")
	expectSucceeded(t, res, v1alpha1.ReleasedTarget{Node: podNode.ID, Pod: pod, Container: "debugme", Stage: v1alpha1.StageAfter})
	e.waitContainerTerminated(pod, "debugme")
}

// ARGO_DEBUG_PAUSE_BEFORE: the Resume names no stage, the container's env decides.
func TestBeforeStage(t *testing.T) {
	e := setup(t)
	wf := e.createWorkflow(fixture.HelloWorld(e.ns))
	e.runPod(wf, fixture.HelloNodeID, fixture.HelloPodV2, mainContainer(fixture.PauseBefore))
	u := e.createResume("release-before", map[string]any{"Workflow-ID": fixture.HelloWorkflow, "TemplateName": "pause"})

	expectOK(t, e.srv.fireResume(t, u), 1)
	e.expectCalls(rig.Call{Pod: fixture.HelloPodV2, Container: "main", Argv: []string{"touch", "/var/run/argo/ctr/main/before"}, Outcome: "exit 0"})
	res, _ := e.resume("release-before")
	expectSucceeded(t, res, v1alpha1.ReleasedTarget{Node: fixture.HelloNodeID, Pod: fixture.HelloPodV2, Container: "main", Stage: v1alpha1.StageBefore})
	e.waitPodSucceeded(fixture.HelloPodV2)
}

// Large workflows keep their nodes in status.compressedNodes.
func TestCompressedNodes(t *testing.T) {
	e := setup(t)
	wf := fixture.HelloWorld(e.ns)
	// Compressed by Argo's own compressor, as its packer does (workflow/packer.compressWorkflow).
	plain, err := json.Marshal(wf.Status.Nodes)
	if err != nil {
		t.Fatal(err)
	}
	compressed := argofile.CompressEncodeString(string(plain))
	nodes := wf.Status.Nodes
	wf.Status.Nodes, wf.Status.CompressedNodes = nil, compressed
	created := e.createWorkflow(wf)
	stored, err := e.wfc.ArgoprojV1alpha1().Workflows(e.ns).Get(rig.Context(t, 10*time.Second), fixture.HelloWorkflow, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(stored.Status.Nodes) != 0 || stored.Status.CompressedNodes == "" {
		t.Fatalf("stored workflow has %d nodes and compressedNodes %q: the test needs compressed nodes only", len(stored.Status.Nodes), stored.Status.CompressedNodes)
	}
	created.Status.Nodes = nodes // for runPod's node lookup only
	e.runPod(created, fixture.HelloNodeID, fixture.HelloPodV2, mainContainer(fixture.PauseAfter))
	u := e.createResume("release-compressed", map[string]any{"Workflow-ID": fixture.HelloWorkflow, "TemplateName": "pause"})

	expectOK(t, e.srv.fireResume(t, u), 1)
	e.expectCalls(rig.Call{Pod: fixture.HelloPodV2, Container: "main", Argv: touchMainAfter, Outcome: "exit 0"})
	res, _ := e.resume("release-compressed")
	expectSucceeded(t, res, v1alpha1.ReleasedTarget{Node: fixture.HelloNodeID, Pod: fixture.HelloPodV2, Container: "main", Stage: v1alpha1.StageAfter})
	e.waitPodSucceeded(fixture.HelloPodV2)
}
