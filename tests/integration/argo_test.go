package integration

import (
	"encoding/json"
	"fmt"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	wfv1 "github.com/argoproj/argo-workflows/v3/pkg/apis/workflow/v1alpha1"
	argoutil "github.com/argoproj/argo-workflows/v3/workflow/util"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/yaml"

	"github.com/argocontroller/resume-trigger/api/v1alpha1"
	"github.com/argocontroller/resume-trigger/tests/internal/rig"
)

// The tests of this file release steps whose Workflow status and pods Argo's own workflow-controller
// (started beside the rig for the test's namespace) made from a submitted spec; no node and no pod is
// written by hand. The test kubelet binds and runs the controller's pods, holds paused containers until
// their marker is touched, and writes what Argo's wait container writes, so the controller itself moves
// the released node and the Workflow to Succeeded.
//
// They run as a version matrix (argoCell): workflow-controller v3.7.17 and v4.0.5 (the newest /v4 release
// the Go module proxy serves here), each with POD_NAMES v1 and v2; the v4 cells run on an API server with
// v4.0.5's full CRDs (what a v4 install applies by default), the v3.7 cells on v3.7.17's minimal ones.
// Every shape runs on the two v2 cells (primaryCells); on the v1 cells a representative subset runs (steps,
// DAG and the README's Workflow: how pods are named and found is what POD_NAMES changes), which keeps the
// tier's added time to what one more full pass would cost.

// argoCell is one cell of the version matrix: a controller release, its POD_NAMES, and the Workflow CRD
// the API server has.
type argoCell struct {
	argo     rig.Argo
	podNames argoutil.PodNameVersion
	crds     rig.ArgoCRDs
	// executor runs the controller's pods ("": rig.DefaultExecutor).
	executor rig.ExecutorKind
}

func (c argoCell) String() string {
	crd := "minimal-crd"
	if c.crds == rig.FullCRDsV4 {
		crd = "full-crd"
	}
	s := fmt.Sprintf("%s-pod-names-%s-%s", c.argo, c.podNames, crd)
	if c.executor != "" {
		s += "-" + string(c.executor)
	}
	return s
}

var (
	cellV3PodNamesV2 = argoCell{argo: rig.ArgoV3, podNames: argoutil.PodNameV2, crds: rig.MinimalCRDs}
	cellV3PodNamesV1 = argoCell{argo: rig.ArgoV3, podNames: argoutil.PodNameV1, crds: rig.MinimalCRDs}
	cellV4PodNamesV2 = argoCell{argo: rig.ArgoV4, podNames: argoutil.PodNameV2, crds: rig.FullCRDsV4}
	cellV4PodNamesV1 = argoCell{argo: rig.ArgoV4, podNames: argoutil.PodNameV1, crds: rig.FullCRDsV4}

	// primaryCells run every shape; allCells the representative subset.
	primaryCells = []argoCell{cellV3PodNamesV2, cellV4PodNamesV2}
	allCells     = []argoCell{cellV3PodNamesV2, cellV3PodNamesV1, cellV4PodNamesV2, cellV4PodNamesV1}
)

// eachCell runs test as a subtest per cell, the cells at the same time: each has its own namespace and
// controller, and most of a shape's time is spent waiting for the controller's next look.
func eachCell(t *testing.T, cells []argoCell, test func(*testing.T, argoCell)) {
	for _, c := range cells {
		t.Run(c.String(), func(t *testing.T) {
			t.Parallel()
			test(t, c)
		})
	}
}

// setupArgo is setup, on a rig with the cell's CRDs, plus the cell's workflow-controller for the
// namespace (opts add to what the cell sets).
func setupArgo(t *testing.T, c argoCell, opts rig.ControllerOptions, srvOpts ...serverOption) *env {
	t.Helper()
	e := setupOn(t, rig.GetWithCRDs(t, c.crds), srvOpts...)
	opts.Namespace, opts.Argo, opts.PodNames = e.ns, c.argo, c.podNames.String()
	if opts.Executor == "" {
		opts.Executor = c.executor
	}
	began := time.Now()
	wc, err := e.r.StartWorkflowController(rig.Context(t, 2*time.Minute), opts)
	if err != nil {
		t.Fatalf("start Argo's workflow-controller %s: %v", c.argo, err)
	}
	t.Logf("workflow-controller %s ready in %v", c.argo, time.Since(began).Round(time.Millisecond))
	t.Cleanup(wc.Stop)
	e.wc = wc
	e.executor = opts.Executor
	return e
}

// submit creates the Workflow (or WorkflowTemplate) of a YAML spec, as `argo submit` does.
func (e *env) submit(spec string) {
	e.t.Helper()
	var meta metav1.TypeMeta
	if err := yaml.Unmarshal([]byte(spec), &meta); err != nil {
		e.t.Fatal(err)
	}
	ctx := rig.Context(e.t, 10*time.Second)
	switch meta.Kind {
	case "Workflow":
		var wf wfv1.Workflow
		if err := yaml.UnmarshalStrict([]byte(spec), &wf); err != nil {
			e.t.Fatal(err)
		}
		wf.Namespace = ""
		if _, err := e.wfc.ArgoprojV1alpha1().Workflows(e.ns).Create(ctx, &wf, metav1.CreateOptions{}); err != nil {
			e.t.Fatalf("submit workflow %s: %v", wf.Name, err)
		}
	case "WorkflowTemplate":
		var wft wfv1.WorkflowTemplate
		if err := yaml.UnmarshalStrict([]byte(spec), &wft); err != nil {
			e.t.Fatal(err)
		}
		if _, err := e.wfc.ArgoprojV1alpha1().WorkflowTemplates(e.ns).Create(ctx, &wft, metav1.CreateOptions{}); err != nil {
			e.t.Fatalf("create workflow template %s: %v", wft.Name, err)
		}
	default:
		e.t.Fatalf("submit: kind %q", meta.Kind)
	}
}

// waitPaused waits until n pods of workflow hold container at a debug pause and returns them by name.
func (e *env) waitPaused(workflow, container string, n int) []corev1.Pod {
	e.t.Helper()
	var paused []corev1.Pod
	_, err := e.r.WaitPods(rig.Context(e.t, time.Minute), e.ns, workflow, func(pods []corev1.Pod) bool {
		paused = nil
		for i := range pods {
			if e.r.Paused(&pods[i], container) {
				paused = append(paused, pods[i])
			}
		}
		return len(paused) >= n
	})
	if err != nil {
		e.t.Fatal(e.wc.Failure(err))
	}
	if len(paused) != n {
		e.t.Fatalf("%d pods of %s paused, want %d", len(paused), workflow, n)
	}
	sort.Slice(paused, func(i, j int) bool { return paused[i].Name < paused[j].Name })
	// The state the server must find: the controller has seen the pods run and marked their nodes Running.
	e.workflow(workflow, func(wf *wfv1.Workflow) bool {
		for _, p := range paused {
			if wf.Status.Nodes[p.Annotations["workflows.argoproj.io/node-id"]].Phase != wfv1.NodeRunning {
				return false
			}
		}
		return true
	})
	return paused
}

// workflow waits until cond holds for the Workflow, nodes decompressed.
func (e *env) workflow(name string, cond func(*wfv1.Workflow) bool) *wfv1.Workflow {
	e.t.Helper()
	wf, err := e.r.WaitWorkflow(rig.Context(e.t, time.Minute), e.ns, name, cond)
	if err != nil {
		e.t.Fatal(e.wc.Failure(err))
	}
	return wf
}

// waitSucceeded waits until the controller ends the Workflow and requires Succeeded.
func (e *env) waitSucceeded(name string) *wfv1.Workflow {
	e.t.Helper()
	wf := e.workflow(name, func(wf *wfv1.Workflow) bool { return wf.Status.Phase.Completed() })
	if wf.Status.Phase != wfv1.WorkflowSucceeded {
		e.t.Fatalf("workflow %s %s (%s): %s", name, wf.Status.Phase, wf.Status.Message, rig.NodeSummary(wf))
	}
	if e.executor == rig.ExecutorArgo {
		e.expectArgoExecutor(wf)
	}
	return wf
}

// release creates Resume name with spec, fires it at the server as the Sensor would, and requires that
// it released exactly the pods (container, stage) given.
func (e *env) release(name string, spec map[string]any, container string, stage v1alpha1.Stage, pods ...corev1.Pod) *v1alpha1.Resume {
	e.t.Helper()
	u := e.createResume(name, spec)
	expectOK(e.t, e.srv.fireResume(e.t, u), len(pods))
	res, _ := e.resume(name)
	var want []v1alpha1.ReleasedTarget
	for _, p := range pods {
		want = append(want, v1alpha1.ReleasedTarget{Node: p.Annotations["workflows.argoproj.io/node-id"], Pod: p.Name, Container: container, Stage: stage})
	}
	expectSucceeded(e.t, res, want...)
	return res
}

// argoRun is one run of a Workflow whose paused pods one Resume releases.
type argoRun struct {
	// spec is the Workflow's YAML (or JSON), named workflow.
	spec, workflow string
	// pods pause in container at stage; the Resume's spec names them (Workflow-ID and TemplateName, or
	// what resume says instead).
	pods      int
	container string
	stage     v1alpha1.Stage
	resume    map[string]any
	// paused checks the paused pods before the release, released right after it; either may be nil.
	paused, released func(paused []corev1.Pod)
}

// run submits r's Workflow, waits until its r.pods pods are paused, releases them with Resume name,
// requires that exactly those were released, and waits until the controller ends the Workflow Succeeded,
// which it returns.
func (e *env) run(name string, r argoRun) *wfv1.Workflow {
	e.t.Helper()
	e.submit(r.spec)
	paused := e.waitPaused(r.workflow, r.container, r.pods)
	if r.paused != nil {
		r.paused(paused)
	}
	e.release(name, r.resume, r.container, r.stage, paused...)
	if r.released != nil {
		r.released(paused)
	}
	return e.waitSucceeded(r.workflow)
}

// podNodes are the workflow's Pod nodes ordered by name: a retried step's attempts in order.
func podNodes(wf *wfv1.Workflow) []wfv1.NodeStatus {
	var out []wfv1.NodeStatus
	for _, n := range wf.Status.Nodes {
		if n.Type == wfv1.NodeTypePod {
			out = append(out, n)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

func podNames(pods []corev1.Pod) []string {
	var out []string
	for _, p := range pods {
		out = append(out, p.Name)
	}
	return out
}

const pauseTemplate = `
    - name: pause
      container:
        image: busybox
        command: [sh, -c, "echo step ran"]
        env:
          - name: ARGO_DEBUG_PAUSE_AFTER
            value: "true"`

func TestArgoStepsAndDAG(t *testing.T) {
	eachCell(t, allCells, testStepsAndDAG)
}

func testStepsAndDAG(t *testing.T, c argoCell) {
	for name, spec := range map[string]string{
		"steps": `
apiVersion: argoproj.io/v1alpha1
kind: Workflow
metadata:
  name: shape
spec:
  entrypoint: main
  templates:
    - name: main
      steps:
        - - name: first
            template: plain
        - - name: pause
            template: pause
    - name: plain
      container:
        image: busybox
        command: [true]` + pauseTemplate,
		"dag": `
apiVersion: argoproj.io/v1alpha1
kind: Workflow
metadata:
  name: shape
spec:
  entrypoint: main
  templates:
    - name: main
      dag:
        tasks:
          - name: pause
            template: pause
          - name: next
            template: plain
            dependencies: [pause]
    - name: plain
      container:
        image: busybox
        command: [true]` + pauseTemplate,
	} {
		t.Run(name, func(t *testing.T) {
			e := setupArgo(t, c, rig.ControllerOptions{})
			var node *wfv1.NodeStatus
			done := e.run("release", argoRun{
				spec: spec, workflow: "shape", pods: 1, container: "main", stage: v1alpha1.StageAfter,
				resume: map[string]any{"Workflow-ID": "shape", "TemplateName": "pause"},
				paused: func(paused []corev1.Pod) {
					wf := e.workflow("shape", func(*wfv1.Workflow) bool { return true })
					node = wf.Status.Nodes.FindByDisplayName("pause")
					if node == nil || node.Phase != wfv1.NodeRunning || paused[0].Annotations["workflows.argoproj.io/node-id"] != node.ID {
						t.Fatalf("paused pod %s is not the Running node %+v", paused[0].Name, node)
					}
				},
			})
			if n := done.Status.Nodes[node.ID]; n.Phase != wfv1.NodeSucceeded {
				t.Errorf("node %s %s", n.Name, n.Phase)
			}
		})
	}
}

const loopWorkflow = `
apiVersion: argoproj.io/v1alpha1
kind: Workflow
metadata:
  name: %s
spec:
  entrypoint: main
  templates:
    - name: main
      steps:
        - - name: fan
            template: fan
            arguments:
              parameters: [{name: item, value: "{{item}}"}]
            withItems: [%s]
    - name: fan
      inputs:
        parameters: [{name: item}]
      container:
        image: busybox
        command: [echo, "{{inputs.parameters.item}}"]
        env:
          - name: ARGO_DEBUG_PAUSE_AFTER
            value: "true"
`

// A withItems loop of 3: one Resume naming the template releases all three; in a second run, a Resume
// naming one item's node releases that one only.
func TestArgoLoop(t *testing.T) {
	eachCell(t, primaryCells, testLoop)
}

func testLoop(t *testing.T, c argoCell) {
	e := setupArgo(t, c, rig.ControllerOptions{})
	e.submit(fmt.Sprintf(loopWorkflow, "loop-all", "a, b, c"))
	e.submit(fmt.Sprintf(loopWorkflow, "loop-one", "a, b, c"))
	all := e.waitPaused("loop-all", "main", 3)
	e.release("all", map[string]any{"Workflow-ID": "loop-all", "TemplateName": "fan"}, "main", v1alpha1.StageAfter, all...)
	e.waitSucceeded("loop-all")

	one := e.waitPaused("loop-one", "main", 3)
	item, pod := e.pausedItem("loop-one", "fan(1:b)", one)
	e.release("one", map[string]any{"Workflow-ID": "loop-one", "TemplateName": "fan", "nodeName": item.Name}, "main", v1alpha1.StageAfter, pod)
	e.itemGoesOn("loop-one", item, pod, "main", 2)
}

// pausedItem finds the node of workflow shown as displayName (a loop item) and its pod among paused.
func (e *env) pausedItem(workflow, displayName string, paused []corev1.Pod) (*wfv1.NodeStatus, corev1.Pod) {
	e.t.Helper()
	wf := e.workflow(workflow, func(*wfv1.Workflow) bool { return true })
	item := wf.Status.Nodes.FindByDisplayName(displayName)
	if item == nil {
		e.t.Fatalf("no node %s: %s", displayName, rig.NodeSummary(wf))
	}
	i := slices.IndexFunc(paused, func(p corev1.Pod) bool { return p.Annotations["workflows.argoproj.io/node-id"] == item.ID })
	if i < 0 {
		e.t.Fatalf("no paused pod of node %s among %v", item.Name, podNames(paused))
	}
	return item, paused[i]
}

// itemGoesOn waits for the released item's node to succeed and for stillPaused pods of workflow to be
// paused in container, pod not among them.
func (e *env) itemGoesOn(workflow string, item *wfv1.NodeStatus, pod corev1.Pod, container string, stillPaused int) {
	e.t.Helper()
	e.workflow(workflow, func(wf *wfv1.Workflow) bool { return wf.Status.Nodes[item.ID].Phase == wfv1.NodeSucceeded })
	if left := e.waitPaused(workflow, container, stillPaused); slices.Contains(podNames(left), pod.Name) {
		e.t.Errorf("released pod %s still paused", pod.Name)
	}
}

// retryStrategy: attempt 0 fails (its container exits 1 before the pause), the controller makes attempt
// 1, which pauses; the Resume releases attempt 1 only.
func TestArgoRetryReleasesTheLastAttempt(t *testing.T) {
	eachCell(t, primaryCells, testRetryReleasesTheLastAttempt)
}

func testRetryReleasesTheLastAttempt(t *testing.T, c argoCell) {
	e := setupArgo(t, c, rig.ControllerOptions{})
	var attempts []wfv1.NodeStatus
	done := e.run("retry", argoRun{spec: `
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
        command: [sh, -c, "echo attempt {{retries}}"]
        env:
          - {name: ARGO_DEBUG_PAUSE_AFTER, value: "true"}
          - {name: ` + rig.EnvFailAttempts + `, value: "1"}
          - {name: ` + rig.EnvAttempt + `, value: "{{retries}}"}
`,
		workflow: "retry", pods: 1, container: "main", stage: v1alpha1.StageAfter,
		resume: map[string]any{"Workflow-ID": "retry", "TemplateName": "flaky"},
		paused: func(paused []corev1.Pod) {
			wf := e.workflow("retry", func(*wfv1.Workflow) bool { return true })
			attempts = podNodes(wf)
			if len(attempts) != 2 || attempts[0].Phase != wfv1.NodeFailed || attempts[1].Phase != wfv1.NodeRunning {
				t.Fatalf("attempts: %s, want (0) Failed and (1) Running", rig.NodeSummary(wf))
			}
			if got := paused[0].Annotations["workflows.argoproj.io/node-id"]; got != attempts[1].ID {
				t.Fatalf("paused pod %s is of node %s, want attempt 1 %s", paused[0].Name, got, attempts[1].ID)
			}
		},
	})
	if n := done.Status.Nodes[attempts[1].ID]; n.Phase != wfv1.NodeSucceeded {
		t.Errorf("attempt 1 %s", n.Phase)
	}
}

// A containerSet whose non-main container debugme pauses before its command; main depends on it.
func TestArgoContainerSetPauseBefore(t *testing.T) {
	eachCell(t, primaryCells, testContainerSetPauseBefore)
}

func testContainerSetPauseBefore(t *testing.T, c argoCell) {
	e := setupArgo(t, c, rig.ControllerOptions{})
	done := e.run("cset", argoRun{spec: `
apiVersion: argoproj.io/v1alpha1
kind: Workflow
metadata:
  name: cset
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
            image: busybox
            command: [sh, -c, "echo debug"]
            env:
              - {name: ARGO_DEBUG_PAUSE_BEFORE, value: "true"}
          - name: main
            image: busybox
            command: [sh, -c, "echo main"]
            dependencies: [debugme]
`,
		workflow: "cset", pods: 1, container: "debugme", stage: v1alpha1.StageBefore,
		resume: map[string]any{"Workflow-ID": "cset", "TemplateName": "set"},
		paused: func(paused []corev1.Pod) {
			if c := containerStatus(paused[0], "main"); c == nil || c.State.Running == nil {
				t.Fatalf("main of %s is not running while debugme is paused: %+v", paused[0].Name, c)
			}
		},
		released: func(paused []corev1.Pod) {
			e.expectCalls(rig.Call{Pod: paused[0].Name, Container: "debugme", Argv: []string{"touch", "/var/run/argo/ctr/debugme/before"}, Outcome: "exit 0"})
		},
	})
	for _, n := range done.Status.Nodes {
		// Argo gives Container nodes the step's template, as their Pod node.
		if n.Type == wfv1.NodeTypeContainer && (n.Phase != wfv1.NodeSucceeded || n.TemplateName != "set") {
			t.Errorf("container node %s: %s, templateName %q", n.Name, n.Phase, n.TemplateName)
		}
	}
}

func containerStatus(p corev1.Pod, name string) *corev1.ContainerStatus {
	for i := range p.Status.ContainerStatuses {
		if p.Status.ContainerStatuses[i].Name == name {
			return &p.Status.ContainerStatuses[i]
		}
	}
	return nil
}

// A step running a WorkflowTemplate's template through templateRef.
func TestArgoTemplateRef(t *testing.T) {
	eachCell(t, primaryCells, testTemplateRef)
}

func testTemplateRef(t *testing.T, c argoCell) {
	e := setupArgo(t, c, rig.ControllerOptions{})
	e.submit(`
apiVersion: argoproj.io/v1alpha1
kind: WorkflowTemplate
metadata:
  name: library
spec:
  templates:` + pauseTemplate + `
`)
	e.run("ref", argoRun{spec: `
apiVersion: argoproj.io/v1alpha1
kind: Workflow
metadata:
  name: ref
spec:
  entrypoint: main
  templates:
    - name: main
      steps:
        - - name: step
            templateRef: {name: library, template: pause}
`,
		workflow: "ref", pods: 1, container: "main", stage: v1alpha1.StageAfter,
		resume: map[string]any{"Workflow-ID": "ref", "TemplateName": "pause"},
		paused: func(paused []corev1.Pod) {
			wf := e.workflow("ref", func(*wfv1.Workflow) bool { return true })
			node := wf.Status.Nodes[paused[0].Annotations["workflows.argoproj.io/node-id"]]
			if node.TemplateRef == nil || node.TemplateRef.Name != "library" || node.TemplateRef.Template != "pause" {
				t.Fatalf("node %s templateRef %+v templateName %q", node.Name, node.TemplateRef, node.TemplateName)
			}
		},
	})
}

// A step with a lifecycle hook that runs while the step runs: the hook's pod (node <step>.hooks.running,
// also paused) is never taken for the step.
func TestArgoLifecycleHookIsNotTheStep(t *testing.T) {
	eachCell(t, primaryCells, testLifecycleHookIsNotTheStep)
}

func testLifecycleHookIsNotTheStep(t *testing.T, c argoCell) {
	e := setupArgo(t, c, rig.ControllerOptions{})
	e.submit(`
apiVersion: argoproj.io/v1alpha1
kind: Workflow
metadata:
  name: hooked
spec:
  entrypoint: main
  templates:
    - name: main
      steps:
        - - name: step
            template: pause
            hooks:
              running:
                expression: steps["step"].status == "Running"
                template: hook
    - name: hook
      container:
        image: busybox
        command: [sh, -c, "echo hook"]
        env:
          - {name: ARGO_DEBUG_PAUSE_AFTER, value: "true"}` + pauseTemplate + `
`)
	paused := e.waitPaused("hooked", "main", 2)
	wf := e.workflow("hooked", func(*wfv1.Workflow) bool { return true })
	step := wf.Status.Nodes.FindByDisplayName("step")
	if step == nil {
		t.Fatalf("no step node: %s", rig.NodeSummary(wf))
	}
	var stepPod, hookPod []corev1.Pod
	for _, p := range paused {
		n := wf.Status.Nodes[p.Annotations["workflows.argoproj.io/node-id"]]
		switch {
		case n.ID == step.ID:
			stepPod = append(stepPod, p)
		case strings.Contains(n.Name, ".hooks."):
			hookPod = append(hookPod, p)
		}
	}
	if len(stepPod) != 1 || len(hookPod) != 1 {
		t.Fatalf("step pods %v, hook pods %v: %s", podNames(stepPod), podNames(hookPod), rig.NodeSummary(wf))
	}
	e.release("step-by-template", map[string]any{"Workflow-ID": "hooked", "TemplateName": "pause"}, "main", v1alpha1.StageAfter, stepPod...)
	e.workflow("hooked", func(wf *wfv1.Workflow) bool { return wf.Status.Nodes[step.ID].Phase == wfv1.NodeSucceeded })
	if left := e.waitPaused("hooked", "main", 1); left[0].Name != hookPod[0].Name {
		t.Fatalf("paused after the step's release: %v, want the hook's %s", podNames(left), hookPod[0].Name)
	}
	e.release("hook", map[string]any{"Workflow-ID": "hooked", "TemplateName": "hook"}, "main", v1alpha1.StageAfter, hookPod...)
	e.waitSucceeded("hooked")
}

// POD_NAMES v1 and v2: the controller names the pods, argo-workflows' GeneratePodName agrees, and the
// server finds them either way.
func TestArgoPodNameFormats(t *testing.T) {
	eachCell(t, allCells, testPodNameFormats)
}

func testPodNameFormats(t *testing.T, c argoCell) {
	format := c.podNames
	e := setupArgo(t, c, rig.ControllerOptions{})
	wf, err := rig.ReadmeWorkflow()
	if err != nil {
		t.Fatal(err)
	}
	spec, err := json.Marshal(wf)
	if err != nil {
		t.Fatal(err)
	}
	e.run("release", argoRun{
		spec: string(spec), workflow: wf.Name, pods: 1, container: "main", stage: v1alpha1.StageAfter,
		resume: map[string]any{"Workflow-ID": wf.Name, "TemplateName": "pause"},
		paused: func(paused []corev1.Pod) {
			got := e.workflow(wf.Name, func(*wfv1.Workflow) bool { return true })
			node := got.Status.Nodes.FindByDisplayName("pause")
			if want := argoutil.GeneratePodName(wf.Name, node.Name, node.TemplateName, node.ID, format); paused[0].Name != want {
				t.Fatalf("controller named the pod %s, GeneratePodName(%s) says %s", paused[0].Name, format, want)
			}
			if got.Annotations["workflows.argoproj.io/pod-name-format"] != format.String() {
				t.Errorf("workflow annotation pod-name-format %q, want %s", got.Annotations["workflows.argoproj.io/pod-name-format"], format)
			}
		},
	})
}

// Node status compressed by the controller itself: MAX_WORKFLOW_SIZE (Argo's packer, default 1 MiB) set
// below the Workflow's size with its nodes and above it with them compressed, so the controller stores
// status.compressedNodes and no status.nodes while the loop's steps are paused.
func TestArgoCompressedNodes(t *testing.T) {
	eachCell(t, primaryCells, testCompressedNodes)
}

func testCompressedNodes(t *testing.T, c argoCell) {
	items := make([]string, 10)
	for i := range items {
		items[i] = fmt.Sprintf("%d-%s", i, strings.Repeat("x", 200))
	}
	e := setupArgo(t, c, rig.ControllerOptions{Env: []string{"MAX_WORKFLOW_SIZE=7000"}})
	e.run("all", argoRun{
		spec: fmt.Sprintf(loopWorkflow, "big", strings.Join(items, ", ")), workflow: "big", pods: len(items), container: "main", stage: v1alpha1.StageAfter,
		resume: map[string]any{"Workflow-ID": "big", "TemplateName": "fan"},
		paused: func([]corev1.Pod) {
			raw, err := e.wfc.ArgoprojV1alpha1().Workflows(e.ns).Get(rig.Context(t, 10*time.Second), "big", metav1.GetOptions{})
			if err != nil {
				t.Fatal(err)
			}
			size, _ := json.Marshal(raw)
			t.Logf("stored workflow: %d bytes, %d plain nodes, compressedNodes %d bytes", len(size), len(raw.Status.Nodes), len(raw.Status.CompressedNodes))
			if len(raw.Status.Nodes) != 0 || raw.Status.CompressedNodes == "" {
				t.Fatalf("the controller did not compress: %d nodes, compressedNodes %d bytes (workflow %d bytes)", len(raw.Status.Nodes), len(raw.Status.CompressedNodes), len(size))
			}
		},
	})
}

// The two Workflow CRDs of the matrix differ where it matters to a reader of Workflows: the full one
// (v4.0.5's, what a v4 install applies by default) has Argo's whole schema, so the API server prunes
// what it does not know; the minimal one keeps whatever is written.
func TestArgoWorkflowCRDs(t *testing.T) {
	for _, crds := range []rig.ArgoCRDs{rig.MinimalCRDs, rig.FullCRDsV4} {
		t.Run(crds.String(), func(t *testing.T) {
			e := newEnvOn(t, rig.GetWithCRDs(t, crds))
			wf := &unstructured.Unstructured{Object: map[string]any{
				"apiVersion": "argoproj.io/v1alpha1",
				"kind":       "Workflow",
				"metadata":   map[string]any{"name": "schema"},
				"spec": map[string]any{
					"entrypoint": "main",
					"templates":  []any{map[string]any{"name": "main", "container": map[string]any{"image": "busybox"}}},
					"notArgos":   "x",
				},
			}}
			ctx := rig.Context(t, 10*time.Second)
			if _, err := e.r.Dynamic().Resource(rig.WorkflowGVR).Namespace(e.ns).Create(ctx, wf, metav1.CreateOptions{}); err != nil {
				t.Fatal(err)
			}
			got, err := e.r.Dynamic().Resource(rig.WorkflowGVR).Namespace(e.ns).Get(ctx, "schema", metav1.GetOptions{})
			if err != nil {
				t.Fatal(err)
			}
			_, kept, _ := unstructured.NestedString(got.Object, "spec", "notArgos")
			if want := crds == rig.MinimalCRDs; kept != want {
				t.Fatalf("spec.notArgos kept %v, want %v with the %s", kept, want, crds)
			}
		})
	}
}
