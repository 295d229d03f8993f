package lookup_test

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"

	wfv1 "github.com/argoproj/argo-workflows/v3/pkg/apis/workflow/v1alpha1"
	wffake "github.com/argoproj/argo-workflows/v3/pkg/client/clientset/versioned/fake"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	k8sfake "k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"

	"github.com/argocontroller/resume-trigger/api/v1alpha1"
	"github.com/argocontroller/resume-trigger/internal/argo"
	"github.com/argocontroller/resume-trigger/internal/fault"
	"github.com/argocontroller/resume-trigger/internal/fixture"
	"github.com/argocontroller/resume-trigger/internal/lookup"
	"github.com/argocontroller/resume-trigger/internal/request"
)

const ns = "argo"

// Node ids and pod names below are hardcoded from FNV-1a-32 values computed independently of the code under
// test: "hello-world[0].pause" → 4183098892, "loop[0].item(0:a)" → 379730024, "loop[0].item(1:b)" →
// 227732738, "retry[0].flaky(0)" → 2016405217, "retry[0].flaky(1)" → 1546778980, "set[0].build" →
// 2045098905, "deep[0].ref" → 3379084416.
const (
	helloNode = "hello-world-4183098892"
	helloPod  = "hello-world-pause-4183098892"

	loopNodeA = "loop-379730024"
	loopNodeB = "loop-227732738"
	loopPodA  = "loop-item-379730024"
	loopPodB  = "loop-item-227732738"

	retryNode0 = "retry-2016405217"
	retryNode1 = "retry-1546778980"
	retryPod0  = "retry-flaky-2016405217"
	retryPod1  = "retry-flaky-1546778980"

	setNode = "set-2045098905"
	setPod  = "set-build-2045098905"

	deepNode = "deep-3379084416"
	deepPod  = "deep-ref-3379084416"
)

// cluster is what the fakes hold: one Workflow and its pods.
type cluster struct {
	wf   *wfv1.Workflow
	pods []*corev1.Pod
}

// with applies changes to a freshly built cluster.
func (c cluster) with(changes ...func(*cluster)) cluster {
	for _, f := range changes {
		f(&c)
	}
	return c
}

func onPod(name string, f func(*corev1.Pod)) func(*cluster) {
	return func(c *cluster) {
		for _, p := range c.pods {
			if p.Name == name {
				f(p)
				return
			}
		}
		panic("no pod " + name)
	}
}

func onNode(id string, f func(*wfv1.NodeStatus)) func(*cluster) {
	return func(c *cluster) {
		n, ok := c.wf.Status.Nodes[id]
		if !ok {
			panic("no node " + id)
		}
		f(&n)
		c.wf.Status.Nodes[id] = n
	}
}

func withoutPods(c *cluster) { c.pods = nil }

// withCopyOf adds a copy of pod name, renamed and changed by f.
func withCopyOf(name, newName string, f func(*corev1.Pod)) func(*cluster) {
	return func(c *cluster) {
		for _, p := range c.pods {
			if p.Name == name {
				cp := p.DeepCopy()
				cp.Name = newName
				f(cp)
				c.pods = append(c.pods, cp)
				return
			}
		}
		panic("no pod " + name)
	}
}

func podNameFormat(v string) func(*cluster) {
	return func(c *cluster) {
		if v == "" {
			delete(c.wf.Annotations, "workflows.argoproj.io/pod-name-format")
			return
		}
		c.wf.Annotations["workflows.argoproj.io/pod-name-format"] = v
	}
}

func noNodeIDAnnotation(p *corev1.Pod) { delete(p.Annotations, argo.AnnotationNodeID) }

func podPhase(phase corev1.PodPhase) func(*corev1.Pod) {
	return func(p *corev1.Pod) { p.Status.Phase = phase }
}

func nodePhase(phase wfv1.NodePhase) func(*wfv1.NodeStatus) {
	return func(n *wfv1.NodeStatus) { n.Phase = phase }
}

func ptrTo[T any](v T) *T { return &v }

func env(name, value string) corev1.EnvVar { return corev1.EnvVar{Name: name, Value: value} }

// helloWorld is the original example: one step "pause" running template "pause" whose main container pauses.
func helloWorld(containers ...corev1.Container) cluster {
	if len(containers) == 0 {
		containers = []corev1.Container{fixture.Container("main", fixture.PauseBefore)}
	}
	node := fixture.PodNode("hello-world", "hello-world[0].pause", "pause", "pause")
	wf := fixture.Workflow(ns, "hello-world",
		fixture.Node("hello-world", "hello-world[0]", "[0]", wfv1.NodeTypeStepGroup, ""),
		node)
	return cluster{wf: wf, pods: []*corev1.Pod{fixture.Pod(wf, node, helloPod, containers...)}}
}

// loop is a withItems step: two items of template "item", both paused before.
func loop() cluster {
	a := fixture.PodNode("loop", "loop[0].item(0:a)", "item(0:a)", "item")
	b := fixture.PodNode("loop", "loop[0].item(1:b)", "item(1:b)", "item")
	wf := fixture.Workflow(ns, "loop", fixture.Node("loop", "loop[0]", "[0]", wfv1.NodeTypeStepGroup, ""), a, b)
	return cluster{wf: wf, pods: []*corev1.Pod{
		fixture.Pod(wf, a, loopPodA, fixture.Container("main", fixture.PauseBefore)),
		fixture.Pod(wf, b, loopPodB, fixture.Container("main", fixture.PauseBefore)),
	}}
}

// retry is a step with retryStrategy: attempt 0 failed, attempt 1 runs and pauses after.
func retry() cluster {
	r := fixture.Node("retry", "retry[0].flaky", "flaky", wfv1.NodeTypeRetry, "flaky")
	a0 := fixture.PodNode("retry", "retry[0].flaky(0)", "flaky(0)", "flaky")
	a0.Phase = wfv1.NodeFailed
	a0.NodeFlag = &wfv1.NodeFlag{Retried: true}
	a1 := fixture.PodNode("retry", "retry[0].flaky(1)", "flaky(1)", "flaky")
	a1.NodeFlag = &wfv1.NodeFlag{Retried: true}
	r.Children = []string{retryNode0, retryNode1}
	wf := fixture.Workflow(ns, "retry", r, a0, a1)
	p0 := fixture.Pod(wf, a0, retryPod0, fixture.Container("main", fixture.PauseAfter))
	fixture.SetTerminated(p0, "main", 1)
	fixture.SetTerminated(p0, "wait", 0)
	p0.Status.Phase = corev1.PodFailed
	return cluster{wf: wf, pods: []*corev1.Pod{p0, fixture.Pod(wf, a1, retryPod1, fixture.Container("main", fixture.PauseAfter))}}
}

// containerSet is a containerSet step "build" with containers main (not paused), lint (paused after) and
// tools (not paused), and a Container node for each.
func containerSet() cluster {
	pod := fixture.PodNode("set", "set[0].build", "build", "build")
	nodes := []wfv1.NodeStatus{pod}
	for _, c := range []string{"main", "lint", "tools"} {
		n := fixture.Node("set", "set[0].build."+c, c, wfv1.NodeTypeContainer, "build")
		n.BoundaryID = setNode
		nodes = append(nodes, n)
	}
	wf := fixture.Workflow(ns, "set", nodes...)
	return cluster{wf: wf, pods: []*corev1.Pod{fixture.Pod(wf, pod, setPod,
		fixture.Container("main"),
		fixture.Container("lint", fixture.PauseAfter),
		fixture.Container("tools"),
	)}}
}

// deep is a step that calls a WorkflowTemplate's template "ref" through templateRef.
func deep() cluster {
	n := fixture.PodNode("deep", "deep[0].ref", "ref", "")
	n.TemplateRef = &wfv1.TemplateRef{Name: "lib", Template: "ref"}
	n.TemplateScope = "namespaced/lib"
	wf := fixture.Workflow(ns, "deep", n)
	return cluster{wf: wf, pods: []*corev1.Pod{fixture.Pod(wf, n, deepPod, fixture.Container("main", fixture.PauseBefore))}}
}

// target is the part of a lookup.Target a row states; Namespace, Workflow and PodUID are checked against
// the cluster.
type target struct {
	Node      string
	Pod       string
	Container string
	Stage     v1alpha1.Stage
	Others    []string
}

func newFinder(c cluster, offloaded lookup.NodeSource) (*lookup.Finder, *wffake.Clientset, *k8sfake.Clientset) {
	wfc := wffake.NewSimpleClientset(c.wf)
	objs := make([]runtime.Object, 0, len(c.pods))
	for _, p := range c.pods {
		objs = append(objs, p)
	}
	kube := k8sfake.NewClientset(objs...)
	return &lookup.Finder{Workflows: fixture.Workflows{Client: wfc}, Pods: kube, Offloaded: offloaded}, wfc, kube
}

// checkActions asserts the cost of a lookup: one get of the workflow, gets pod GETs by name, then lists
// pod lists selected by the workflow label, the first from the API server's cache (resourceVersion 0), a
// second one consistent.
func checkActions(t *testing.T, wfc *wffake.Clientset, kube *k8sfake.Clientset, wf string, gets, lists int) {
	t.Helper()
	gotGets, gotLists := podActions(t, wfc, kube, wf)
	if gotGets != gets || gotLists != lists {
		t.Fatalf("pod actions = %v, want %d get(s) then %d list(s)", kube.Actions(), gets, lists)
	}
}

// checkFindActions asserts the cost of a lookup whose row states only its outcome: one get of the
// workflow, pod GETs by name, and then either no list (the names decided) or the lists podLists says;
// with noPods, no pod request at all.
func checkFindActions(t *testing.T, wfc *wffake.Clientset, kube *k8sfake.Clientset, wf string, res lookup.Result, noPods bool) {
	t.Helper()
	gets, lists := podActions(t, wfc, kube, wf)
	switch {
	case noPods:
		if gets+lists != 0 {
			t.Fatalf("pod actions = %v, want none", kube.Actions())
		}
	case gets == 0 && lists != podLists(res):
		t.Fatalf("pod actions = %v, want %d list(s) when no pod was read by name", kube.Actions(), podLists(res))
	case lists != 0 && lists != podLists(res):
		t.Fatalf("pod actions = %v, want the names to decide or %d list(s)", kube.Actions(), podLists(res))
	}
}

// podActions checks the workflow was read with one get and the pods with gets by name followed by
// label-selected lists, and counts both.
func podActions(t *testing.T, wfc *wffake.Clientset, kube *k8sfake.Clientset, wf string) (gets, lists int) {
	t.Helper()
	wfActions := wfc.Actions()
	if len(wfActions) != 1 {
		t.Fatalf("workflow actions = %v, want exactly one get", wfActions)
	}
	get, ok := wfActions[0].(k8stesting.GetAction)
	if !ok || get.GetVerb() != "get" || get.GetResource().Resource != "workflows" || get.GetNamespace() != ns || get.GetName() != wf {
		t.Errorf("workflow action = %#v, want get workflows %s/%s", wfActions[0], ns, wf)
	}
	for _, a := range kube.Actions() {
		if a.GetResource().Resource != "pods" || a.GetNamespace() != ns {
			t.Fatalf("pod action = %#v, want one on pods in %s", a, ns)
		}
		if g, ok := a.(k8stesting.GetAction); ok && g.GetVerb() == "get" {
			if lists > 0 {
				t.Fatalf("pod actions = %v: a get after a list", kube.Actions())
			}
			gets++
			continue
		}
		list, ok := a.(k8stesting.ListActionImpl)
		if !ok || list.GetVerb() != "list" {
			t.Fatalf("pod action = %#v, want a get or a list", a)
		}
		// Only the workflow's pods that Argo has not finished with, a page at a time.
		if sel, want := list.GetListRestrictions().Labels.String(), "workflows.argoproj.io/completed!=true,workflows.argoproj.io/workflow="+wf; sel != want {
			t.Errorf("pod list label selector = %q, want %s", sel, want)
		}
		if sel := list.GetListRestrictions().Fields.String(); sel != "" {
			t.Errorf("pod list field selector = %q, want none", sel)
		}
		if list.ListOptions.Limit <= 0 {
			t.Errorf("pod list has no limit: a loop's pods are read in pages")
		}
		if lists >= 2 {
			t.Fatalf("pod actions = %v, want at most two lists", kube.Actions())
		}
		want := []string{"0", ""}[lists]
		if rv := list.ListOptions.ResourceVersion; rv != want {
			t.Errorf("pod list %d resourceVersion = %q, want %q", lists+1, rv, want)
		}
		lists++
	}
	return gets, lists
}

// podLists is how many pod lists a lookup needs: the cached one decides alone when it found targets and
// nothing that may still change; otherwise a consistent one follows.
func podLists(res lookup.Result) int {
	if len(res.Targets) > 0 && !slices.ContainsFunc(res.Skipped, func(s lookup.Skip) bool { return fault.KindOf(s.Reason) == fault.Transient }) {
		return 1
	}
	return 2
}

func lists(n int, when bool) int {
	if !when {
		return 0
	}
	return n
}

func checkTargets(t *testing.T, c cluster, got []lookup.Target, exp []target) {
	t.Helper()
	if len(got) != len(exp) {
		t.Fatalf("got %d targets %v, want %d %v", len(got), got, len(exp), exp)
	}
	for i, g := range got {
		e := exp[i]
		if g.Node != e.Node || g.Pod != e.Pod || g.Container != e.Container || g.Stage != e.Stage || !slices.Equal(g.Others, e.Others) {
			t.Errorf("target %d = {node %s pod %s container %s stage %s others %v}, want %+v", i, g.Node, g.Pod, g.Container, g.Stage, g.Others, e)
		}
		if g.Namespace != ns || g.Workflow != c.wf.Name {
			t.Errorf("target %d is in %s/%s, want %s/%s", i, g.Namespace, g.Workflow, ns, c.wf.Name)
		}
		if n, ok := c.wf.Status.Nodes[g.Node]; !ok || n.Name != g.NodeName {
			t.Errorf("target %d node name = %q, want the name of node %s", i, g.NodeName, g.Node)
		}
		var pod *corev1.Pod
		for _, p := range c.pods {
			if p.Name == g.Pod {
				pod = p
			}
		}
		if pod == nil || g.PodUID != pod.UID {
			t.Errorf("target %d pod uid = %q, want the uid of pod %s", i, g.PodUID, g.Pod)
		}
	}
}

// findCase is one row of the Find tables: a cluster, a step, and what Find should answer.
type findCase struct {
	cluster cluster
	step    request.Step
	// expTargets are the targets in order; expKind is the error's kind (Unknown: no error) and expErr
	// substrings of its message.
	expTargets []target
	expKind    fault.Kind
	expErr     []string
	// expSkipped are the node ids of the skipped candidates, in order.
	expSkipped []string
	// expNoList says the lookup fails before it lists pods.
	expNoList bool
}

// runFind runs Find for each row and checks its targets, skips, error and API calls.
func runFind(t *testing.T, tests map[string]findCase) {
	t.Helper()
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			f, wfc, kube := newFinder(tc.cluster, nil)
			res, err := f.Find(t.Context(), ns, tc.step)
			fixture.CheckFault(t, err, tc.expKind, tc.expErr)
			checkTargets(t, tc.cluster, res.Targets, tc.expTargets)
			var skipped []string
			for _, s := range res.Skipped {
				skipped = append(skipped, s.Node)
				if s.Reason == nil {
					t.Errorf("skip of node %s has no reason", s.Node)
				}
			}
			if !slices.Equal(skipped, tc.expSkipped) {
				t.Errorf("skipped nodes = %v, want %v", skipped, tc.expSkipped)
			}
			if tc.expKind == fault.Unknown && (res.Workflow != tc.cluster.wf.Name || res.WorkflowUID != tc.cluster.wf.UID) {
				t.Errorf("result workflow = %s (%s), want %s (%s)", res.Workflow, res.WorkflowUID, tc.cluster.wf.Name, tc.cluster.wf.UID)
			}
			wf := tc.step.Workflow
			checkFindActions(t, wfc, kube, wf, res, tc.expNoList)
		})
	}
}

// TestFindContainers checks which container of the pod is released, and at which stage.
func TestFindContainers(t *testing.T) {
	runFind(t, map[string]findCase{
		"workflow and template find the paused main container and the stage its env sets": {
			cluster:    helloWorld(),
			step:       request.Step{Workflow: "hello-world", Template: "pause"},
			expTargets: []target{{Node: helloNode, Pod: helloPod, Container: "main", Stage: v1alpha1.StageBefore}},
		},
		"stage after comes from ARGO_DEBUG_PAUSE_AFTER": {
			cluster:    helloWorld(fixture.Container("main", fixture.PauseAfter)),
			step:       request.Step{Workflow: "hello-world", Template: "pause"},
			expTargets: []target{{Node: helloNode, Pod: helloPod, Container: "main", Stage: v1alpha1.StageAfter}},
		},
		"pod is found by its node-id annotation whatever its name": {
			cluster:    helloWorld().with(onPod(helloPod, func(p *corev1.Pod) { p.Name = "renamed" })),
			step:       request.Step{Workflow: "hello-world", Template: "pause"},
			expTargets: []target{{Node: helloNode, Pod: "renamed", Container: "main", Stage: v1alpha1.StageBefore}},
		},
		"containers without /var/run/argo are not in Others": {
			cluster: helloWorld(fixture.Container("main", fixture.PauseBefore), fixture.Container("tools"),
				corev1.Container{Name: "istio-proxy", Image: "proxyv2"}),
			step:       request.Step{Workflow: "hello-world", Template: "pause"},
			expTargets: []target{{Node: helloNode, Pod: helloPod, Container: "main", Stage: v1alpha1.StageBefore, Others: []string{"tools"}}},
			expSkipped: []string{helloNode, helloNode},
		},
		"a paused container without /var/run/argo is not Argo's: Precondition": {
			cluster: helloWorld().with(onPod(helloPod, func(p *corev1.Pod) {
				p.Spec.Containers[1].VolumeMounts = nil
			})),
			step:       request.Step{Workflow: "hello-world", Template: "pause"},
			expKind:    fault.Precondition,
			expErr:     []string{"container main does not mount var-run-argo at /var/run/argo"},
			expSkipped: []string{helloNode},
		},
		"other user containers are listed in Others, wait never": {
			cluster:    helloWorld(fixture.Container("main", fixture.PauseBefore), fixture.Container("sidecar"), fixture.Container("tools")),
			step:       request.Step{Workflow: "hello-world", Template: "pause"},
			expTargets: []target{{Node: helloNode, Pod: helloPod, Container: "main", Stage: v1alpha1.StageBefore, Others: []string{"sidecar", "tools"}}},
			expSkipped: []string{helloNode, helloNode},
		},
		"Argo's init and artifact containers are neither targets nor in Others": {
			cluster:    helloWorld(fixture.Container("init", fixture.PauseBefore), fixture.Container("init-artifact-x"), fixture.Container("artifact-plugin-y"), fixture.Container("main", fixture.PauseBefore)),
			step:       request.Step{Workflow: "hello-world", Template: "pause"},
			expTargets: []target{{Node: helloNode, Pod: helloPod, Container: "main", Stage: v1alpha1.StageBefore}},
		},
		"wait is never a target even with the pause env": {
			cluster: helloWorld().with(onPod(helloPod, func(p *corev1.Pod) {
				p.Spec.Containers[0].Env = append(p.Spec.Containers[0].Env, fixture.PauseBefore)
			})),
			step:       request.Step{Workflow: "hello-world", Template: "pause"},
			expTargets: []target{{Node: helloNode, Pod: helloPod, Container: "main", Stage: v1alpha1.StageBefore}},
		},
		"requesting container wait is NotFound": {
			cluster: helloWorld().with(onPod(helloPod, func(p *corev1.Pod) {
				p.Spec.Containers[0].Env = append(p.Spec.Containers[0].Env, fixture.PauseBefore)
			})),
			step:       request.Step{Workflow: "hello-world", Template: "pause", Container: "wait"},
			expKind:    fault.NotFound,
			expErr:     []string{"no container wait", "its containers: main"},
			expSkipped: []string{helloNode},
		},
		"requested container missing in the pod is NotFound": {
			cluster:    helloWorld(),
			step:       request.Step{Workflow: "hello-world", Template: "pause", Container: "sidecar"},
			expKind:    fault.NotFound,
			expErr:     []string{"pod " + helloPod + " has no container sidecar"},
			expSkipped: []string{helloNode},
		},
		"requested container is the only candidate": {
			cluster:    helloWorld(fixture.Container("main", fixture.PauseBefore), fixture.Container("sidecar", fixture.PauseAfter)),
			step:       request.Step{Workflow: "hello-world", Template: "pause", Container: "sidecar"},
			expTargets: []target{{Node: helloNode, Pod: helloPod, Container: "sidecar", Stage: v1alpha1.StageAfter, Others: []string{"main"}}},
		},

		// Loops.
	})
}

// TestFindLoop checks a loop's items: each paused one is released, the others are reported.
func TestFindLoop(t *testing.T) {
	runFind(t, map[string]findCase{
		"loop releases every paused item, ordered by node id": {
			cluster: loop(),
			step:    request.Step{Workflow: "loop", Template: "item"},
			expTargets: []target{
				{Node: loopNodeB, Pod: loopPodB, Container: "main", Stage: v1alpha1.StageBefore},
				{Node: loopNodeA, Pod: loopPodA, Container: "main", Stage: v1alpha1.StageBefore},
			},
		},
		"loop narrowed by node name": {
			cluster:    loop(),
			step:       request.Step{Workflow: "loop", Template: "item", NodeName: "loop[0].item(0:a)"},
			expTargets: []target{{Node: loopNodeA, Pod: loopPodA, Container: "main", Stage: v1alpha1.StageBefore}},
		},
		"loop narrowed by display name": {
			cluster:    loop(),
			step:       request.Step{Workflow: "loop", NodeName: "item(1:b)"},
			expTargets: []target{{Node: loopNodeB, Pod: loopPodB, Container: "main", Stage: v1alpha1.StageBefore}},
		},
		"loop narrowed by node id": {
			cluster:    loop(),
			step:       request.Step{Workflow: "loop", Template: "item", NodeID: loopNodeA},
			expTargets: []target{{Node: loopNodeA, Pod: loopPodA, Container: "main", Stage: v1alpha1.StageBefore}},
		},
		"loop with one item not paused releases the other and reports the skip": {
			cluster:    loop().with(onPod(loopPodB, func(p *corev1.Pod) { p.Spec.Containers[1].Env = p.Spec.Containers[1].Env[:1] })),
			step:       request.Step{Workflow: "loop", Template: "item"},
			expTargets: []target{{Node: loopNodeA, Pod: loopPodA, Container: "main", Stage: v1alpha1.StageBefore}},
			expSkipped: []string{loopNodeB},
		},
		"loop where one item is pending and one not paused is Transient": {
			cluster: loop().with(
				onPod(loopPodA, podPhase(corev1.PodPending)),
				onPod(loopPodB, func(p *corev1.Pod) { p.Spec.Containers[1].Env = p.Spec.Containers[1].Env[:1] })),
			step:       request.Step{Workflow: "loop", Template: "item"},
			expKind:    fault.Transient,
			expErr:     []string{"nothing to release", "not running yet", "is not debug-paused"},
			expSkipped: []string{loopNodeB, loopNodeA},
		},
		"loop where no item is paused is Precondition": {
			cluster: loop().with(
				onPod(loopPodA, func(p *corev1.Pod) { p.Spec.Containers[1].Env = p.Spec.Containers[1].Env[:1] }),
				onPod(loopPodB, func(p *corev1.Pod) { p.Spec.Containers[1].Env = p.Spec.Containers[1].Env[:1] })),
			step:       request.Step{Workflow: "loop", Template: "item"},
			expKind:    fault.Precondition,
			expErr:     []string{"nothing to release for workflow loop template item: pod " + loopPodB + ": container main is not debug-paused", "; pod " + loopPodA + ": container main is not debug-paused"},
			expSkipped: []string{loopNodeB, loopNodeA},
		},
		"loop where one pod is gone and the other finished is Precondition": {
			cluster: loop().with(
				onNode(loopNodeA, nodePhase(wfv1.NodeFailed)),
				onNode(loopNodeB, nodePhase(wfv1.NodeSucceeded)),
				func(c *cluster) { c.pods = c.pods[1:] }),
			step:       request.Step{Workflow: "loop", Template: "item"},
			expKind:    fault.Precondition,
			expErr:     []string{"its pod is gone", "has finished"},
			expSkipped: []string{loopNodeB, loopNodeA},
		},
		"loop whose items all pause both stages is Invalid": {
			cluster: loop().with(
				onPod(loopPodA, func(p *corev1.Pod) { p.Spec.Containers[1].Env = append(p.Spec.Containers[1].Env, fixture.PauseAfter) }),
				onPod(loopPodB, func(p *corev1.Pod) { p.Spec.Containers[1].Env = append(p.Spec.Containers[1].Env, fixture.PauseAfter) })),
			step:       request.Step{Workflow: "loop", Template: "item"},
			expKind:    fault.Invalid,
			expErr:     []string{"set stage"},
			expSkipped: []string{loopNodeB, loopNodeA},
		},
		"loop whose pods are both gone after failing is NotFound": {
			cluster: loop().with(
				onNode(loopNodeA, nodePhase(wfv1.NodeFailed)),
				onNode(loopNodeB, nodePhase(wfv1.NodeError)),
				withoutPods),
			step:       request.Step{Workflow: "loop", Template: "item"},
			expKind:    fault.NotFound,
			expErr:     []string{"is Failed and its pod is gone", "is Error and its pod is gone"},
			expSkipped: []string{loopNodeB, loopNodeA},
		},

		// Retries.
	})
}

// TestFindRetry checks that a Retry node stands for its last attempt.
func TestFindRetry(t *testing.T) {
	runFind(t, map[string]findCase{
		"retry node resolves to its last attempt": {
			cluster:    retry(),
			step:       request.Step{Workflow: "retry", NodeName: "flaky"},
			expTargets: []target{{Node: retryNode1, Pod: retryPod1, Container: "main", Stage: v1alpha1.StageAfter}},
		},
		"retry by template skips the failed earlier attempt": {
			cluster:    retry(),
			step:       request.Step{Workflow: "retry", Template: "flaky"},
			expTargets: []target{{Node: retryNode1, Pod: retryPod1, Container: "main", Stage: v1alpha1.StageAfter}},
			expSkipped: []string{retryNode0},
		},
		"retry that has finished is Precondition": {
			cluster: retry().with(
				onNode(retryNode1, nodePhase(wfv1.NodeSucceeded)),
				onNode(fixture.NodeID("retry", "retry[0].flaky"), nodePhase(wfv1.NodeSucceeded))),
			step:       request.Step{Workflow: "retry", NodeName: "flaky"},
			expKind:    fault.Precondition,
			expErr:     []string{"node " + retryNode1, "has finished (Succeeded)"},
			expSkipped: []string{retryNode1},
		},
		"retry between attempts is Transient: the next attempt will pause": {
			cluster:    retry().with(onNode(retryNode1, nodePhase(wfv1.NodeFailed))),
			step:       request.Step{Workflow: "retry", NodeName: "flaky"},
			expKind:    fault.Transient,
			expErr:     []string{"is between attempts"},
			expSkipped: []string{fixture.NodeID("retry", "retry[0].flaky")},
			expNoList:  true,
		},
		"a completed pod of the workflow is not even listed": {
			cluster: retry().with(onPod(retryPod0, func(p *corev1.Pod) { p.Labels["workflows.argoproj.io/completed"] = "true" })),
			step:    request.Step{Workflow: "retry", Template: "flaky"},
			// Attempt 0's node has failed and its pod is not listed: said so, and attempt 1 is released.
			expTargets: []target{{Node: retryNode1, Pod: retryPod1, Container: "main", Stage: v1alpha1.StageAfter}},
			expSkipped: []string{retryNode0},
		},
		"a lifecycle hook appended to the retry node's children is not its last attempt": {
			cluster: retry().with(func(c *cluster) {
				retryID := fixture.NodeID("retry", "retry[0].flaky")
				hook := fixture.PodNode("retry", "retry[0].flaky.hooks.running", "flaky.hooks.running", "notify")
				c.wf.Status.Nodes[hook.ID] = hook
				r := c.wf.Status.Nodes[retryID]
				r.Children = append(r.Children, hook.ID)
				c.wf.Status.Nodes[retryID] = r
				c.pods = append(c.pods, fixture.Pod(c.wf, hook, "retry-notify-1", fixture.Container("main", fixture.PauseAfter)))
			}),
			step:       request.Step{Workflow: "retry", NodeName: "flaky"},
			expTargets: []target{{Node: retryNode1, Pod: retryPod1, Container: "main", Stage: v1alpha1.StageAfter}},
		},
		"a retry of a steps template is said to be so, not waited for": {
			cluster: retry().with(func(c *cluster) {
				retryID := fixture.NodeID("retry", "retry[0].flaky")
				inner := fixture.Node("retry", "retry[0].flaky(0)", "flaky(0)", wfv1.NodeTypeSteps, "flaky")
				c.wf.Status.Nodes = wfv1.Nodes{retryID: c.wf.Status.Nodes[retryID], inner.ID: inner}
				r := c.wf.Status.Nodes[retryID]
				r.Children = []string{inner.ID}
				c.wf.Status.Nodes[retryID] = r
				c.pods = nil
			}),
			step:      request.Step{Workflow: "retry", NodeName: "flaky"},
			expKind:   fault.Invalid,
			expErr:    []string{"retries a Steps template", "name a step inside it"},
			expNoList: true,
		},
		"running retry node without attempts is Transient": {
			cluster:    retry().with(onNode(fixture.NodeID("retry", "retry[0].flaky"), func(n *wfv1.NodeStatus) { n.Children = nil })),
			step:       request.Step{Workflow: "retry", NodeName: "flaky"},
			expKind:    fault.Transient,
			expErr:     []string{"is between attempts"},
			expSkipped: []string{fixture.NodeID("retry", "retry[0].flaky")},
			expNoList:  true,
		},
		"finished retry node without attempts selects no pod": {
			cluster: retry().with(onNode(fixture.NodeID("retry", "retry[0].flaky"), func(n *wfv1.NodeStatus) {
				n.Children = nil
				n.Phase = wfv1.NodeFailed
			})),
			step:      request.Step{Workflow: "retry", NodeName: "flaky"},
			expKind:   fault.Invalid,
			expErr:    []string{"retry node " + fixture.NodeID("retry", "retry[0].flaky") + " is Failed"},
			expNoList: true,
		},

		// containerSet.
	})
}

// TestFindContainerSet checks that a containerSet's Container nodes release their container of the pod node.
func TestFindContainerSet(t *testing.T) {
	runFind(t, map[string]findCase{
		"container node releases its container of the pod node": {
			cluster:    containerSet(),
			step:       request.Step{Workflow: "set", NodeName: "set[0].build.lint"},
			expTargets: []target{{Node: setNode, Pod: setPod, Container: "lint", Stage: v1alpha1.StageAfter, Others: []string{"main", "tools"}}},
		},
		"container node by id releases its container": {
			cluster:    containerSet(),
			step:       request.Step{Workflow: "set", NodeID: fixture.NodeID("set", "set[0].build.lint")},
			expTargets: []target{{Node: setNode, Pod: setPod, Container: "lint", Stage: v1alpha1.StageAfter, Others: []string{"main", "tools"}}},
		},
		"pod node matched by template releases only the paused containers": {
			cluster:    containerSet(),
			step:       request.Step{Workflow: "set", Template: "build"},
			expTargets: []target{{Node: setNode, Pod: setPod, Container: "lint", Stage: v1alpha1.StageAfter, Others: []string{"main", "tools"}}},
			expSkipped: []string{setNode, setNode},
		},
		"container node of a container that does not pause is Precondition": {
			cluster:    containerSet(),
			step:       request.Step{Workflow: "set", NodeName: "set[0].build.main"},
			expKind:    fault.Precondition,
			expErr:     []string{"container main is not debug-paused"},
			expSkipped: []string{setNode},
		},
		"container node with another container requested is Invalid": {
			cluster:    containerSet(),
			step:       request.Step{Workflow: "set", NodeName: "set[0].build.lint", Container: "tools"},
			expKind:    fault.Invalid,
			expErr:     []string{"is container lint of pod " + setPod + ", but container tools was asked for"},
			expSkipped: []string{setNode},
		},
		"container node not named under its pod node is Invalid": {
			cluster:   containerSet().with(onNode(fixture.NodeID("set", "set[0].build.lint"), func(n *wfv1.NodeStatus) { n.Name = "elsewhere.lint" })),
			step:      request.Step{Workflow: "set", NodeID: fixture.NodeID("set", "set[0].build.lint")},
			expKind:   fault.Invalid,
			expErr:    []string{"has no pod node"},
			expNoList: true,
		},
		"container node whose boundary is not a pod node is Invalid": {
			cluster:   containerSet().with(onNode(fixture.NodeID("set", "set[0].build.lint"), func(n *wfv1.NodeStatus) { n.BoundaryID = "set" })),
			step:      request.Step{Workflow: "set", NodeName: "set[0].build.lint"},
			expKind:   fault.Invalid,
			expErr:    []string{"has no pod node"},
			expNoList: true,
		},
		"containerSet with no container paused is Precondition listing each": {
			cluster:    containerSet().with(onPod(setPod, func(p *corev1.Pod) { p.Spec.Containers[2].Env = p.Spec.Containers[2].Env[:1] })),
			step:       request.Step{Workflow: "set", Template: "build"},
			expKind:    fault.Precondition,
			expErr:     []string{"pod " + setPod + ": container main is not", "pod " + setPod + ": container lint is not", "pod " + setPod + ": container tools is not"},
			expSkipped: []string{setNode, setNode, setNode},
		},
		"containerSet with one container not paused and one not started is Transient": {
			cluster: containerSet().with(onPod(setPod, func(p *corev1.Pod) {
				p.Spec.Containers = p.Spec.Containers[:3]
				fixture.SetWaiting(p, "lint")
			})),
			step:       request.Step{Workflow: "set", Template: "build"},
			expKind:    fault.Transient,
			expErr:     []string{"container lint in pod " + setPod + " is not running yet"},
			expSkipped: []string{setNode, setNode},
		},

		// templateRef.
	})
}

// TestFindNotReachedYet checks that a step the workflow has not reached yet waits; one it can never reach is final.
func TestFindNotReachedYet(t *testing.T) {
	runFind(t, map[string]findCase{
		"templateRef step is matched by templateRef.template": {
			cluster:    deep(),
			step:       request.Step{Workflow: "deep", Template: "ref"},
			expTargets: []target{{Node: deepNode, Pod: deepPod, Container: "main", Stage: v1alpha1.StageBefore}},
		},
		"templateRef step is not matched by the WorkflowTemplate's name": {
			cluster:   deep(),
			step:      request.Step{Workflow: "deep", Template: "lib"},
			expKind:   fault.NotFound,
			expErr:    []string{"no node matching template lib", "templates with pods: ref"},
			expNoList: true,
		},
		"a running workflow that has not reached a template it defines is Transient": {
			cluster: helloWorld().with(func(c *cluster) {
				c.wf.Spec.Templates = []wfv1.Template{{Name: "pause"}, {Name: "later"}}
			}),
			step:      request.Step{Workflow: "hello-world", Template: "later"},
			expKind:   fault.Transient,
			expErr:    []string{"has not reached template later yet"},
			expNoList: true,
		},
		"a template stored from a WorkflowTemplate counts as defined": {
			cluster: helloWorld().with(func(c *cluster) {
				c.wf.Status.StoredTemplates = map[string]wfv1.Template{"namespaced/lib/later": {Name: "later"}}
			}),
			step:      request.Step{Workflow: "hello-world", Template: "later"},
			expKind:   fault.Transient,
			expNoList: true,
		},
		"a finished workflow will never reach the template: NotFound": {
			cluster: helloWorld().with(func(c *cluster) {
				c.wf.Spec.Templates = []wfv1.Template{{Name: "pause"}, {Name: "later"}}
				c.wf.Status.Phase = wfv1.WorkflowSucceeded
			}),
			step:      request.Step{Workflow: "hello-world", Template: "later"},
			expKind:   fault.NotFound,
			expNoList: true,
		},
		"a template the workflow does not define is NotFound at once": {
			cluster: helloWorld().with(func(c *cluster) {
				c.wf.Spec.Templates = []wfv1.Template{{Name: "pause"}}
			}),
			step:      request.Step{Workflow: "hello-world", Template: "typo"},
			expKind:   fault.NotFound,
			expNoList: true,
		},

		// Steps not reached yet: every selector waits while the workflow runs.
		"a node name the running workflow has not reached yet is Transient": {
			cluster:   helloWorld(),
			step:      request.Step{Workflow: "hello-world", NodeName: "hello-world[1].later"},
			expKind:   fault.Transient,
			expErr:    []string{`has not reached node name "hello-world[1].later" yet`, "templates with pods: pause"},
			expNoList: true,
		},
		"a node id the running workflow has not reached yet is Transient": {
			cluster:   helloWorld(),
			step:      request.Step{Workflow: "hello-world", NodeID: fixture.NodeID("hello-world", "hello-world[1].later")},
			expKind:   fault.Transient,
			expErr:    []string{"has not reached node id " + fixture.NodeID("hello-world", "hello-world[1].later") + " yet"},
			expNoList: true,
		},
		"a pending workflow has not reached any node yet: Transient": {
			cluster: helloWorld().with(func(c *cluster) {
				c.wf.Status.Phase = wfv1.WorkflowPending
				c.wf.Status.Nodes = nil
			}),
			step:      request.Step{Workflow: "hello-world", NodeName: "hello-world[0].pause"},
			expKind:   fault.Transient,
			expErr:    []string{"has not reached", "it has no pod nodes yet"},
			expNoList: true,
		},
		"a node name a finished workflow never reached is NotFound": {
			cluster:   helloWorld().with(func(c *cluster) { c.wf.Status.Phase = wfv1.WorkflowFailed }),
			step:      request.Step{Workflow: "hello-world", NodeName: "hello-world[1].later"},
			expKind:   fault.NotFound,
			expErr:    []string{`no node matching node name "hello-world[1].later" and ended Failed`},
			expNoList: true,
		},
		"a node id a finished workflow never reached is NotFound": {
			cluster:   helloWorld().with(func(c *cluster) { c.wf.Status.Phase = wfv1.WorkflowError }),
			step:      request.Step{Workflow: "hello-world", NodeID: "hello-world-1"},
			expKind:   fault.NotFound,
			expErr:    []string{"ended Error"},
			expNoList: true,
		},
		"a template called through a templateRef not stored yet is Transient": {
			cluster: helloWorld().with(func(c *cluster) {
				c.wf.Spec.Templates = []wfv1.Template{{Name: "main", Steps: []wfv1.ParallelSteps{
					{Steps: []wfv1.WorkflowStep{{Name: "pause", Template: "pause"}}},
					{Steps: []wfv1.WorkflowStep{{Name: "later", TemplateRef: &wfv1.TemplateRef{Name: "lib", Template: "later"}}}},
				}}, {Name: "pause"}}
			}),
			step:      request.Step{Workflow: "hello-world", Template: "later"},
			expKind:   fault.Transient,
			expErr:    []string{"has not reached template later yet"},
			expNoList: true,
		},
		"a templateRef in a DAG task keeps any template name waiting": {
			cluster: helloWorld().with(func(c *cluster) {
				c.wf.Spec.Templates = []wfv1.Template{{Name: "main", DAG: &wfv1.DAGTemplate{Tasks: []wfv1.DAGTask{
					{Name: "later", TemplateRef: &wfv1.TemplateRef{Name: "lib", Template: "later", ClusterScope: true}},
				}}}, {Name: "pause"}}
			}),
			step:      request.Step{Workflow: "hello-world", Template: "later"},
			expKind:   fault.Transient,
			expNoList: true,
		},
		"a templateRef in a lifecycle hook keeps any template name waiting": {
			cluster: helloWorld().with(func(c *cluster) {
				c.wf.Spec.Templates = []wfv1.Template{{Name: "main", Steps: []wfv1.ParallelSteps{
					{Steps: []wfv1.WorkflowStep{{Name: "pause", Template: "pause", Hooks: wfv1.LifecycleHooks{
						"running": {TemplateRef: &wfv1.TemplateRef{Name: "lib", Template: "notify"}},
					}}}},
				}}, {Name: "pause"}}
			}),
			step:      request.Step{Workflow: "hello-world", Template: "notify"},
			expKind:   fault.Transient,
			expNoList: true,
		},
		"a templateRef in the workflow's own hooks keeps any template name waiting": {
			cluster: helloWorld().with(func(c *cluster) {
				c.wf.Spec.Templates = []wfv1.Template{{Name: "pause"}}
				c.wf.Spec.Hooks = wfv1.LifecycleHooks{"exit": {TemplateRef: &wfv1.TemplateRef{Name: "lib", Template: "notify"}}}
			}),
			step:      request.Step{Workflow: "hello-world", Template: "notify"},
			expKind:   fault.Transient,
			expNoList: true,
		},
		"a templateRef inside an inline template keeps any template name waiting": {
			cluster: helloWorld().with(func(c *cluster) {
				c.wf.Spec.Templates = []wfv1.Template{{Name: "main", Steps: []wfv1.ParallelSteps{
					{Steps: []wfv1.WorkflowStep{{Name: "inner", Inline: &wfv1.Template{DAG: &wfv1.DAGTemplate{Tasks: []wfv1.DAGTask{
						{Name: "later", TemplateRef: &wfv1.TemplateRef{Name: "lib", Template: "later"}},
					}}}}}},
				}}, {Name: "pause"}}
			}),
			step:      request.Step{Workflow: "hello-world", Template: "later"},
			expKind:   fault.Transient,
			expNoList: true,
		},
		"a stored template with steps calls its WorkflowTemplate's templates, not stored yet: Transient": {
			cluster: helloWorld().with(func(c *cluster) {
				c.wf.Spec.Templates = []wfv1.Template{{Name: "pause"}}
				c.wf.Status.StoredTemplates = map[string]wfv1.Template{"namespaced/lib/outer": {Name: "outer", Steps: []wfv1.ParallelSteps{
					{Steps: []wfv1.WorkflowStep{{Name: "inner", Template: "inner"}}},
				}}}
			}),
			step:      request.Step{Workflow: "hello-world", Template: "inner"},
			expKind:   fault.Transient,
			expNoList: true,
		},
		"a workflowTemplateRef workflow the controller has not taken up yet is Transient": {
			cluster: helloWorld().with(func(c *cluster) {
				c.wf.Spec = wfv1.WorkflowSpec{WorkflowTemplateRef: &wfv1.WorkflowTemplateRef{Name: "lib"}}
				c.wf.Status = wfv1.WorkflowStatus{}
			}),
			step:      request.Step{Workflow: "hello-world", Template: "pause"},
			expKind:   fault.Transient,
			expErr:    []string{"has not reached template pause yet", "it has no pod nodes yet"},
			expNoList: true,
		},
		"any workflow the controller has not taken up yet may still get its templates: Transient": {
			cluster: helloWorld().with(func(c *cluster) {
				c.wf.Spec.Templates = []wfv1.Template{{Name: "pause"}}
				c.wf.Status = wfv1.WorkflowStatus{}
			}),
			step:      request.Step{Workflow: "hello-world", Template: "typo"},
			expKind:   fault.Transient,
			expNoList: true,
		},
		"a workflowTemplateRef workflow taken up: its stored spec is all it runs, so a typo is NotFound": {
			cluster: helloWorld().with(func(c *cluster) {
				c.wf.Spec = wfv1.WorkflowSpec{WorkflowTemplateRef: &wfv1.WorkflowTemplateRef{Name: "lib"}}
				c.wf.Status.StoredWorkflowSpec = &wfv1.WorkflowSpec{Templates: []wfv1.Template{{Name: "main", Steps: []wfv1.ParallelSteps{
					{Steps: []wfv1.WorkflowStep{{Name: "pause", Template: "pause"}}},
				}}, {Name: "pause"}, {Name: "later"}}}
			}),
			step:      request.Step{Workflow: "hello-world", Template: "typo"},
			expKind:   fault.NotFound,
			expErr:    []string{"no node matching template typo", "no template of it is named typo"},
			expNoList: true,
		},
		"a workflowTemplateRef workflow taken up waits for a template its stored spec defines": {
			cluster: helloWorld().with(func(c *cluster) {
				c.wf.Spec = wfv1.WorkflowSpec{WorkflowTemplateRef: &wfv1.WorkflowTemplateRef{Name: "lib"}}
				c.wf.Status.StoredWorkflowSpec = &wfv1.WorkflowSpec{Templates: []wfv1.Template{{Name: "pause"}, {Name: "later"}}}
			}),
			step:      request.Step{Workflow: "hello-world", Template: "later"},
			expKind:   fault.Transient,
			expNoList: true,
		},
		"a workflowTemplateRef workflow whose spec was not stored is not taken as known": {
			cluster: helloWorld().with(func(c *cluster) {
				c.wf.Spec = wfv1.WorkflowSpec{WorkflowTemplateRef: &wfv1.WorkflowTemplateRef{Name: "lib"}}
			}),
			step:      request.Step{Workflow: "hello-world", Template: "later"},
			expKind:   fault.Transient,
			expNoList: true,
		},
		"a template and a node name the running workflow has not reached wait together": {
			cluster: helloWorld().with(func(c *cluster) {
				c.wf.Spec.Templates = []wfv1.Template{{Name: "pause"}, {Name: "later"}}
			}),
			step:      request.Step{Workflow: "hello-world", Template: "later", NodeName: "hello-world[1].later"},
			expKind:   fault.Transient,
			expNoList: true,
		},
		"a node name with a template the workflow never runs is NotFound": {
			cluster: helloWorld().with(func(c *cluster) {
				c.wf.Spec.Templates = []wfv1.Template{{Name: "pause"}}
			}),
			step:      request.Step{Workflow: "hello-world", Template: "typo", NodeName: "hello-world[1].later"},
			expKind:   fault.NotFound,
			expNoList: true,
		},

		// Daemon steps: Argo marks a daemon's node Running and daemoned once its pod runs and is ready,
		// which is what a daemon held at its debug pause is.
	})
}

// TestFindDaemon checks that daemoned steps pause and are released like any other.
func TestFindDaemon(t *testing.T) {
	runFind(t, map[string]findCase{
		"a daemoned node paused before its command is released": {
			cluster: helloWorld().with(onNode(helloNode, func(n *wfv1.NodeStatus) {
				n.Daemoned = ptrTo(true)
			})),
			step:       request.Step{Workflow: "hello-world", NodeName: "hello-world[0].pause"},
			expTargets: []target{{Node: helloNode, Pod: helloPod, Container: "main", Stage: v1alpha1.StageBefore}},
		},
		"a daemoned last attempt of a daemoned retry node is released": {
			cluster: retry().with(
				onNode(retryNode1, func(n *wfv1.NodeStatus) { n.Daemoned = ptrTo(true) }),
				onNode(fixture.NodeID("retry", "retry[0].flaky"), func(n *wfv1.NodeStatus) { n.Daemoned = ptrTo(true) })),
			step:       request.Step{Workflow: "retry", NodeName: "flaky"},
			expTargets: []target{{Node: retryNode1, Pod: retryPod1, Container: "main", Stage: v1alpha1.StageAfter}},
		},
		"a daemoned retry node whose last attempt failed is between attempts": {
			cluster: retry().with(
				onNode(retryNode1, nodePhase(wfv1.NodeFailed)),
				onNode(fixture.NodeID("retry", "retry[0].flaky"), func(n *wfv1.NodeStatus) { n.Daemoned = ptrTo(true) })),
			step:       request.Step{Workflow: "retry", NodeName: "flaky"},
			expKind:    fault.Transient,
			expErr:     []string{"is between attempts"},
			expSkipped: []string{fixture.NodeID("retry", "retry[0].flaky")},
			expNoList:  true,
		},
		"a daemon node Argo killed with its boundary is finished": {
			cluster:    helloWorld().with(onNode(helloNode, nodePhase(wfv1.NodeSucceeded))),
			step:       request.Step{Workflow: "hello-world", NodeName: "hello-world[0].pause"},
			expKind:    fault.Precondition,
			expErr:     []string{"has finished (Succeeded): nothing is paused"},
			expSkipped: []string{helloNode},
		},

		// Pause env.
	})
}

// TestFindPauseEnv checks that the pause env decides whether and at which stage a container is paused.
func TestFindPauseEnv(t *testing.T) {
	runFind(t, map[string]findCase{
		"container without the pause env is Precondition": {
			cluster:    helloWorld(fixture.Container("main")),
			step:       request.Step{Workflow: "hello-world", Template: "pause"},
			expKind:    fault.Precondition,
			expErr:     []string{"container main is not debug-paused", "ARGO_DEBUG_PAUSE_BEFORE"},
			expSkipped: []string{helloNode},
		},
		"pause env value True does not count": {
			cluster:    helloWorld(fixture.Container("main", env("ARGO_DEBUG_PAUSE_BEFORE", "True"))),
			step:       request.Step{Workflow: "hello-world", Template: "pause"},
			expKind:    fault.Precondition,
			expErr:     []string{"not debug-paused"},
			expSkipped: []string{helloNode},
		},
		"pause env value 1 does not count": {
			cluster:    helloWorld(fixture.Container("main", env("ARGO_DEBUG_PAUSE_AFTER", "1"))),
			step:       request.Step{Workflow: "hello-world", Template: "pause"},
			expKind:    fault.Precondition,
			expErr:     []string{"not debug-paused"},
			expSkipped: []string{helloNode},
		},
		"a pause set through valueFrom is reported, not guessed": {
			cluster: helloWorld(fixture.Container("main", corev1.EnvVar{Name: "ARGO_DEBUG_PAUSE_BEFORE", ValueFrom: &corev1.EnvVarSource{
				SecretKeyRef: &corev1.SecretKeySelector{LocalObjectReference: corev1.LocalObjectReference{Name: "debug"}, Key: "pause"},
			}})),
			step:       request.Step{Workflow: "hello-world", Template: "pause"},
			expKind:    fault.Precondition,
			expErr:     []string{"the pause of container main is set indirectly", "name the container and the stage"},
			expSkipped: []string{helloNode},
		},
		"a pause set through envFrom is reported too": {
			cluster: helloWorld(func() corev1.Container {
				c := fixture.Container("main")
				c.EnvFrom = []corev1.EnvFromSource{{ConfigMapRef: &corev1.ConfigMapEnvSource{LocalObjectReference: corev1.LocalObjectReference{Name: "debug"}}}}
				return c
			}()),
			step:       request.Step{Workflow: "hello-world", Template: "pause"},
			expKind:    fault.Precondition,
			expErr:     []string{"set indirectly"},
			expSkipped: []string{helloNode},
		},
		"a pause set through valueFrom is released with the container and the stage named": {
			cluster: helloWorld(fixture.Container("main", corev1.EnvVar{Name: "ARGO_DEBUG_PAUSE_BEFORE", ValueFrom: &corev1.EnvVarSource{
				SecretKeyRef: &corev1.SecretKeySelector{LocalObjectReference: corev1.LocalObjectReference{Name: "debug"}, Key: "pause"},
			}})),
			step:       request.Step{Workflow: "hello-world", Template: "pause", Container: "main", Stage: v1alpha1.StageBefore},
			expTargets: []target{{Node: helloNode, Pod: helloPod, Container: "main", Stage: v1alpha1.StageBefore}},
		},
		"a pause set through valueFrom with only the stage named says to name the container": {
			cluster: helloWorld(fixture.Container("main", corev1.EnvVar{Name: "ARGO_DEBUG_PAUSE_BEFORE", ValueFrom: &corev1.EnvVarSource{
				FieldRef: &corev1.ObjectFieldSelector{FieldPath: "metadata.annotations['debug']"},
			}})),
			step:       request.Step{Workflow: "hello-world", Template: "pause", Stage: v1alpha1.StageBefore},
			expKind:    fault.Precondition,
			expErr:     []string{"through valueFrom or envFrom", "name the container (container: main)"},
			expSkipped: []string{helloNode},
		},
		"both stages paused and no stage requested is Invalid": {
			cluster:    helloWorld(fixture.Container("main", fixture.PauseBefore, fixture.PauseAfter)),
			step:       request.Step{Workflow: "hello-world", Template: "pause"},
			expKind:    fault.Invalid,
			expErr:     []string{"pauses both before and after", "set stage"},
			expSkipped: []string{helloNode},
		},
		"both stages paused and stage after requested": {
			cluster:    helloWorld(fixture.Container("main", fixture.PauseBefore, fixture.PauseAfter)),
			step:       request.Step{Workflow: "hello-world", Template: "pause", Stage: v1alpha1.StageAfter},
			expTargets: []target{{Node: helloNode, Pod: helloPod, Container: "main", Stage: v1alpha1.StageAfter}},
		},
		"requested stage that the container does not pause is Precondition": {
			cluster:    helloWorld(fixture.Container("main", fixture.PauseBefore)),
			step:       request.Step{Workflow: "hello-world", Template: "pause", Stage: v1alpha1.StageAfter},
			expKind:    fault.Precondition,
			expErr:     []string{"does not pause after", "ARGO_DEBUG_PAUSE_AFTER"},
			expSkipped: []string{helloNode},
		},

		// Running state.
	})
}

// TestFindPodState checks that the pod and its container must be running: earlier is Transient, later is final.
func TestFindPodState(t *testing.T) {
	runFind(t, map[string]findCase{
		"pod pending is Transient": {
			cluster:    helloWorld().with(onPod(helloPod, podPhase(corev1.PodPending))),
			step:       request.Step{Workflow: "hello-world", Template: "pause"},
			expKind:    fault.Transient,
			expErr:     []string{"pod " + helloPod + " is Pending, not running yet"},
			expSkipped: []string{helloNode},
		},
		"pod without a phase is Transient": {
			cluster:    helloWorld().with(onPod(helloPod, podPhase(""))),
			step:       request.Step{Workflow: "hello-world", Template: "pause"},
			expKind:    fault.Transient,
			expErr:     []string{"is Unknown, not running yet"},
			expSkipped: []string{helloNode},
		},
		"container waiting is Transient": {
			cluster:    helloWorld().with(onPod(helloPod, func(p *corev1.Pod) { fixture.SetWaiting(p, "main") })),
			step:       request.Step{Workflow: "hello-world", Template: "pause"},
			expKind:    fault.Transient,
			expErr:     []string{"container main in pod " + helloPod + " is not running yet"},
			expSkipped: []string{helloNode},
		},
		"container without status is Transient": {
			cluster:    helloWorld().with(onPod(helloPod, func(p *corev1.Pod) { p.Status.ContainerStatuses = p.Status.ContainerStatuses[:1] })),
			step:       request.Step{Workflow: "hello-world", Template: "pause"},
			expKind:    fault.Transient,
			expErr:     []string{"has no status yet"},
			expSkipped: []string{helloNode},
		},
		"container terminated is Precondition": {
			cluster:    helloWorld().with(onPod(helloPod, func(p *corev1.Pod) { fixture.SetTerminated(p, "main", 0) })),
			step:       request.Step{Workflow: "hello-world", Template: "pause"},
			expKind:    fault.Precondition,
			expErr:     []string{"has terminated (exit 0)"},
			expSkipped: []string{helloNode},
		},
		"pod succeeded is Precondition": {
			cluster:    helloWorld().with(onPod(helloPod, podPhase(corev1.PodSucceeded))),
			step:       request.Step{Workflow: "hello-world", Template: "pause"},
			expKind:    fault.Precondition,
			expErr:     []string{"has ended (Succeeded)"},
			expSkipped: []string{helloNode},
		},
		"a pod being deleted while its node runs is waited past (Argo creates the next one)": {
			cluster: helloWorld().with(onPod(helloPod, func(p *corev1.Pod) {
				now := metav1.Now()
				p.DeletionTimestamp = &now
				p.Finalizers = []string{"example.com/keep"}
			})),
			step:       request.Step{Workflow: "hello-world", Template: "pause"},
			expKind:    fault.Transient,
			expErr:     []string{"is being deleted while node " + helloNode + " is Running", "waiting for the pod Argo creates in its place"},
			expSkipped: []string{helloNode},
		},
		"a failed pod while its node is Pending (v4 failedPodRestart) is waited past": {
			cluster:    helloWorld().with(onPod(helloPod, podPhase(corev1.PodFailed)), onNode(helloNode, nodePhase(wfv1.NodePending))),
			step:       request.Step{Workflow: "hello-world", Template: "pause"},
			expKind:    fault.Transient,
			expErr:     []string{"is Failed while node " + helloNode + " is Pending"},
			expSkipped: []string{helloNode},
		},
		"node succeeded is Precondition": {
			cluster:    helloWorld().with(onNode(helloNode, nodePhase(wfv1.NodeSucceeded))),
			step:       request.Step{Workflow: "hello-world", Template: "pause"},
			expKind:    fault.Precondition,
			expErr:     []string{"has finished (Succeeded)"},
			expSkipped: []string{helloNode},
		},
		"missing pod while node running is Transient": {
			cluster:    helloWorld().with(withoutPods),
			step:       request.Step{Workflow: "hello-world", Template: "pause"},
			expKind:    fault.Transient,
			expErr:     []string{"has no pod yet"},
			expSkipped: []string{helloNode},
		},
		"missing pod while node pending is Transient": {
			cluster:    helloWorld().with(withoutPods, onNode(helloNode, nodePhase(wfv1.NodePending))),
			step:       request.Step{Workflow: "hello-world", Template: "pause"},
			expKind:    fault.Transient,
			expErr:     []string{"has no pod yet"},
			expSkipped: []string{helloNode},
		},
		"missing pod after node failed is NotFound": {
			cluster:    helloWorld().with(withoutPods, onNode(helloNode, nodePhase(wfv1.NodeFailed))),
			step:       request.Step{Workflow: "hello-world", Template: "pause"},
			expKind:    fault.NotFound,
			expErr:     []string{"is Failed and its pod is gone"},
			expSkipped: []string{helloNode},
		},

		// Ownership.
	})
}

// TestFindPodOwner checks that only a pod this run of the workflow controls is ever exec'd into.
func TestFindPodOwner(t *testing.T) {
	runFind(t, map[string]findCase{
		"pod controlled by another workflow is refused": {
			cluster: helloWorld().with(onPod(helloPod, func(p *corev1.Pod) {
				p.OwnerReferences[0].UID = "11111111-2222-3333-4444-555555555555"
				p.OwnerReferences[0].Name = "another-workflow"
			})),
			step:       request.Step{Workflow: "hello-world", Template: "pause"},
			expKind:    fault.Precondition,
			expErr:     []string{"pod " + helloPod + " claims node " + helloNode, "not controlled by workflow hello-world", "refusing"},
			expSkipped: []string{helloNode},
		},
		"a pod by Argo's name without the node-id annotation, beside a stranger that claims the node: refused": {
			cluster: helloWorld().with(
				withCopyOf(helloPod, "stranger", func(p *corev1.Pod) {
					p.OwnerReferences[0].UID = "11111111-2222-3333-4444-555555555555"
					p.OwnerReferences[0].Name = "another-workflow"
				}),
				onPod(helloPod, noNodeIDAnnotation)),
			step:       request.Step{Workflow: "hello-world", Template: "pause"},
			expKind:    fault.Precondition,
			expErr:     []string{"pod stranger claims node " + helloNode, "refusing"},
			expSkipped: []string{helloNode},
		},
		"a pod by Argo's name without the node-id annotation, beside an owned pod that claims the node: the claimant": {
			cluster: helloWorld().with(
				withCopyOf(helloPod, "claimant", func(*corev1.Pod) {}),
				onPod(helloPod, noNodeIDAnnotation)),
			step:       request.Step{Workflow: "hello-world", Template: "pause"},
			expTargets: []target{{Node: helloNode, Pod: "claimant", Container: "main", Stage: v1alpha1.StageBefore}},
		},
		"a pod by Argo's name without the workflow label (not among the workflow's pods) is not released": {
			cluster:    helloWorld().with(onPod(helloPod, func(p *corev1.Pod) { delete(p.Labels, argo.LabelWorkflow) })),
			step:       request.Step{Workflow: "hello-world", Template: "pause"},
			expKind:    fault.Transient,
			expErr:     []string{"has no pod yet"},
			expSkipped: []string{helloNode},
		},
		"the pod of an earlier run of the workflow (re-created, same name) is waited past, never exec'd": {
			cluster: helloWorld().with(onPod(helloPod, func(p *corev1.Pod) {
				p.OwnerReferences[0].UID = "11111111-2222-3333-4444-555555555555"
			})),
			step:       request.Step{Workflow: "hello-world", Template: "pause"},
			expKind:    fault.Transient,
			expErr:     []string{"pod " + helloPod + " belongs to an earlier run of workflow hello-world", "waiting for this run's pod"},
			expSkipped: []string{helloNode},
		},
		"pod without controller is refused": {
			cluster:    helloWorld().with(onPod(helloPod, func(p *corev1.Pod) { p.OwnerReferences = nil })),
			step:       request.Step{Workflow: "hello-world", Template: "pause"},
			expKind:    fault.Precondition,
			expErr:     []string{"not controlled by workflow hello-world"},
			expSkipped: []string{helloNode},
		},
		"pod owned by a non-Workflow kind with the workflow's uid is refused": {
			cluster:    helloWorld().with(onPod(helloPod, func(p *corev1.Pod) { p.OwnerReferences[0].Kind = "ReplicaSet" })),
			step:       request.Step{Workflow: "hello-world", Template: "pause"},
			expKind:    fault.Precondition,
			expErr:     []string{"not controlled by workflow hello-world"},
			expSkipped: []string{helloNode},
		},
		"look-alike pod beside the owned one is ignored": {
			cluster: helloWorld().with(func(c *cluster) {
				fake := c.pods[0].DeepCopy()
				fake.Name, fake.UID = "impostor", "impostor-uid"
				fake.OwnerReferences[0].UID = "11111111-2222-3333-4444-555555555555"
				c.pods = append(c.pods, fake)
			}),
			step:       request.Step{Workflow: "hello-world", Template: "pause"},
			expTargets: []target{{Node: helloNode, Pod: helloPod, Container: "main", Stage: v1alpha1.StageBefore}},
		},
		"two owned pods for one node is Precondition": {
			// Without the pod-name-format annotation both names are Argo's; both pods claim the node.
			cluster: helloWorld().with(podNameFormat(""), func(c *cluster) {
				dup := c.pods[0].DeepCopy()
				dup.Name, dup.UID = helloNode, "old-uid"
				c.pods = append(c.pods, dup)
			}),
			step:       request.Step{Workflow: "hello-world", Template: "pause"},
			expKind:    fault.Precondition,
			expErr:     []string{"has 2 pods", helloPod, helloNode},
			expSkipped: []string{helloNode},
		},
		"two owned pods for one node under other names is Precondition": {
			// Argo's name for the node has no pod: the list shows every pod that claims the node.
			cluster: helloWorld().with(func(c *cluster) {
				c.pods[0].Name = "renamed"
				dup := c.pods[0].DeepCopy()
				dup.Name, dup.UID = "renamed-old", "old-uid"
				c.pods = append(c.pods, dup)
			}),
			step:       request.Step{Workflow: "hello-world", Template: "pause"},
			expKind:    fault.Precondition,
			expErr:     []string{"has 2 pods", "renamed", "renamed-old"},
			expSkipped: []string{helloNode},
		},
		"the pod Argo names for the node is released beside another owned pod claiming it": {
			// The v2 name is the Workflow's own format: that pod is the node's, whatever else claims it.
			cluster: helloWorld().with(func(c *cluster) {
				dup := c.pods[0].DeepCopy()
				dup.Name, dup.UID = helloPod+"-old", "old-uid"
				c.pods = append(c.pods, dup)
			}),
			step:       request.Step{Workflow: "hello-world", Template: "pause"},
			expTargets: []target{{Node: helloNode, Pod: helloPod, Container: "main", Stage: v1alpha1.StageBefore}},
		},

		// Selection errors.
	})
}

// TestFindNoMatch checks what Find answers when the step matches nothing that runs a pod.
func TestFindNoMatch(t *testing.T) {
	runFind(t, map[string]findCase{
		"unknown workflow is NotFound": {
			cluster:   helloWorld(),
			step:      request.Step{Workflow: "nope", Template: "pause"},
			expKind:   fault.NotFound,
			expErr:    []string{"workflow nope not found in namespace argo"},
			expNoList: true,
		},
		"no node matches the template: NotFound listing the templates with pods": {
			cluster:   loop(),
			step:      request.Step{Workflow: "loop", Template: "itme"},
			expKind:   fault.NotFound,
			expErr:    []string{"no node matching template itme", "(templates with pods: item)"},
			expNoList: true,
		},
		"the template list names every template with pods once, sorted": {
			cluster: deep().with(func(c *cluster) {
				for _, n := range []wfv1.NodeStatus{
					fixture.PodNode("deep", "deep[1].b", "b", "zeta"),
					fixture.PodNode("deep", "deep[1].a", "a", "alpha"),
					fixture.PodNode("deep", "deep[1].c", "c", "alpha"),
				} {
					c.wf.Status.Nodes[n.ID] = n
				}
			}),
			step:      request.Step{Workflow: "deep", NodeName: "nope"},
			expKind:   fault.Transient,
			expErr:    []string{`has not reached node name "nope" yet`, "(templates with pods: alpha, ref, zeta)"},
			expNoList: true,
		},
		"workflow without nodes yet is NotFound saying so": {
			cluster:   helloWorld().with(func(c *cluster) { c.wf.Status.Nodes = nil }),
			step:      request.Step{Workflow: "hello-world", Template: "pause"},
			expKind:   fault.NotFound,
			expErr:    []string{"it has no pod nodes yet"},
			expNoList: true,
		},
		"node id of a Steps node is Invalid": {
			cluster:   helloWorld(),
			step:      request.Step{Workflow: "hello-world", NodeID: "hello-world"},
			expKind:   fault.Invalid,
			expErr:    []string{"node hello-world is of type Steps", "selects no node that runs a pod"},
			expNoList: true,
		},
		"node name of a StepGroup node is Invalid": {
			cluster:   helloWorld(),
			step:      request.Step{Workflow: "hello-world", NodeName: "hello-world[0]"},
			expKind:   fault.Invalid,
			expErr:    []string{"is of type StepGroup"},
			expNoList: true,
		},
		"template of a Steps node only is NotFound listing the templates with pods": {
			cluster:   helloWorld(),
			step:      request.Step{Workflow: "hello-world", Template: "main"},
			expKind:   fault.NotFound,
			expErr:    []string{"is of type Steps", "templates with pods: pause"},
			expNoList: true,
		},
		"node id and template that disagree match nothing": {
			cluster:   loop(),
			step:      request.Step{Workflow: "loop", Template: "other", NodeID: loopNodeA},
			expKind:   fault.NotFound,
			expErr:    []string{"template other and node id " + loopNodeA},
			expNoList: true,
		},
		"pod with only Argo's containers gives nothing to release": {
			cluster:    helloWorld().with(onPod(helloPod, func(p *corev1.Pod) { p.Spec.Containers = p.Spec.Containers[:1] })),
			step:       request.Step{Workflow: "hello-world", Template: "pause"},
			expKind:    fault.NotFound,
			expErr:     []string{"nothing to release for workflow hello-world template pause"},
			expSkipped: nil,
		},
	})
}

func TestFindPodNameFallback(t *testing.T) {
	// Argo refuses workflow names over 63 characters (they are label values), so a long prefix comes from
	// the template name. FNV-1a-32 of "long[0].step" is 1647401025.
	long := func(template string) cluster {
		n := fixture.PodNode("long", "long[0].step", "step", template)
		wf := fixture.Workflow(ns, "long", n)
		return cluster{wf: wf}
	}
	solo := func() cluster {
		// A workflow whose entrypoint is a container template: its root node runs the pod.
		wf := fixture.Workflow(ns, "solo")
		wf.Status.Nodes["solo"] = wfv1.NodeStatus{ID: "solo", Name: "solo", DisplayName: "solo", Type: wfv1.NodeTypePod, TemplateName: "main", Phase: wfv1.NodeRunning}
		return cluster{wf: wf}
	}
	tests := map[string]struct {
		cluster cluster
		step    request.Step
		// podName is the name the pod without node-id annotation gets; expFound says the lookup finds it.
		podName  string
		expFound bool
	}{
		"v2 name is workflow, template and node-name hash": {
			cluster:  helloWorld().with(onPod(helloPod, noNodeIDAnnotation)),
			step:     request.Step{Workflow: "hello-world", Template: "pause"},
			podName:  "hello-world-pause-4183098892",
			expFound: true,
		},
		"missing pod-name-format annotation means v2": {
			cluster:  helloWorld().with(onPod(helloPod, noNodeIDAnnotation), podNameFormat("")),
			step:     request.Step{Workflow: "hello-world", Template: "pause"},
			podName:  "hello-world-pause-4183098892",
			expFound: true,
		},
		"missing pod-name-format annotation: a v1 name is found too (the controller's POD_NAMES decides)": {
			cluster:  helloWorld().with(onPod(helloPod, noNodeIDAnnotation), podNameFormat("")),
			step:     request.Step{Workflow: "hello-world", Template: "pause"},
			podName:  "hello-world-4183098892",
			expFound: true,
		},
		"unknown pod-name-format means v2": {
			cluster:  helloWorld().with(onPod(helloPod, noNodeIDAnnotation), podNameFormat("v3")),
			step:     request.Step{Workflow: "hello-world", Template: "pause"},
			podName:  "hello-world-pause-4183098892",
			expFound: true,
		},
		"v1 name is the node id": {
			cluster:  helloWorld().with(onPod(helloPod, noNodeIDAnnotation), podNameFormat("v1")),
			step:     request.Step{Workflow: "hello-world", Template: "pause"},
			podName:  "hello-world-4183098892",
			expFound: true,
		},
		"v2 name is not looked up for a v1 workflow": {
			cluster: helloWorld().with(onPod(helloPod, noNodeIDAnnotation), podNameFormat("v1")),
			step:    request.Step{Workflow: "hello-world", Template: "pause"},
			podName: "hello-world-pause-4183098892",
		},
		"v1 name is not looked up for a v2 workflow": {
			cluster: helloWorld().with(onPod(helloPod, noNodeIDAnnotation)),
			step:    request.Step{Workflow: "hello-world", Template: "pause"},
			podName: "hello-world-4183098892",
		},
		"pod with the computed name but another node's id is not taken": {
			cluster: helloWorld().with(onPod(helloPod, func(p *corev1.Pod) { p.Annotations[argo.AnnotationNodeID] = "hello-world-1" })),
			step:    request.Step{Workflow: "hello-world", Template: "pause"},
			podName: "hello-world-pause-4183098892",
		},
		"computed name of a pod controlled by another workflow is refused": {
			cluster: helloWorld().with(onPod(helloPod, func(p *corev1.Pod) {
				noNodeIDAnnotation(p)
				p.OwnerReferences[0].UID = "other"
			})),
			step:    request.Step{Workflow: "hello-world", Template: "pause"},
			podName: "hello-world-pause-4183098892",
		},
		"v2 name of a templateRef step uses templateRef.template": {
			cluster:  deep().with(onPod(deepPod, noNodeIDAnnotation)),
			step:     request.Step{Workflow: "deep", Template: "ref"},
			podName:  "deep-ref-3379084416",
			expFound: true,
		},
		"v2 name of a retry attempt hashes the attempt's name": {
			cluster:  retry().with(onPod(retryPod1, noNodeIDAnnotation)),
			step:     request.Step{Workflow: "retry", NodeName: "flaky"},
			podName:  "retry-flaky-1546778980",
			expFound: true,
		},
		"v1 name of a loop item": {
			cluster:  loop().with(onPod(loopPodB, noNodeIDAnnotation), podNameFormat("v1")),
			step:     request.Step{Workflow: "loop", NodeName: "item(1:b)"},
			podName:  "loop-227732738",
			expFound: true,
		},
		"v2 name of a containerSet pod": {
			cluster:  containerSet().with(onPod(setPod, noNodeIDAnnotation)),
			step:     request.Step{Workflow: "set", NodeName: "set[0].build.lint"},
			podName:  "set-build-2045098905",
			expFound: true,
		},
		"v2 name of a workflow's root pod is the workflow name": {
			cluster:  solo(),
			step:     request.Step{Workflow: "solo", NodeID: "solo"},
			podName:  "solo",
			expFound: true,
		},
		"v2 prefix of exactly 242 characters is kept": {
			cluster:  long(strings.Repeat("t", 237)),
			step:     request.Step{Workflow: "long", NodeName: "step"},
			podName:  "long-" + strings.Repeat("t", 237) + "-1647401025",
			expFound: true,
		},
		"v2 prefix longer than 242 characters is cut to 242": {
			cluster:  long(strings.Repeat("t", 300)),
			step:     request.Step{Workflow: "long", NodeName: "step"},
			podName:  "long-" + strings.Repeat("t", 237) + "-1647401025",
			expFound: true,
		},
		"v2 prefix of 243 characters is cut by one": {
			cluster:  long(strings.Repeat("t", 238)),
			step:     request.Step{Workflow: "long", NodeName: "step"},
			podName:  "long-" + strings.Repeat("t", 237) + "-1647401025",
			expFound: true,
		},
		"v2 prefix of 243 characters is not looked up uncut": {
			cluster: long(strings.Repeat("t", 238)),
			step:    request.Step{Workflow: "long", NodeName: "step"},
			podName: "long-" + strings.Repeat("t", 238) + "-1647401025",
		},
		"v1 name with a long template is the node id": {
			cluster:  long(strings.Repeat("t", 300)).with(podNameFormat("v1")),
			step:     request.Step{Workflow: "long", NodeName: "step"},
			podName:  "long-1647401025",
			expFound: true,
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			c := tc.cluster
			if len(c.pods) == 0 {
				var node wfv1.NodeStatus
				for _, n := range c.wf.Status.Nodes {
					if n.Type == wfv1.NodeTypePod {
						node = n
					}
				}
				p := fixture.Pod(c.wf, node, "placeholder", fixture.Container("main", fixture.PauseBefore))
				noNodeIDAnnotation(p)
				c.pods = []*corev1.Pod{p}
			}
			// The pod the fallback must find is the one that carries no node-id annotation or claims another
			// node; rename it to the name under test.
			var renamed *corev1.Pod
			for _, p := range c.pods {
				if id := p.Annotations[argo.AnnotationNodeID]; id == "" || c.wf.Status.Nodes[id].Name == "" {
					p.Name = tc.podName
					renamed = p
				}
			}
			if renamed == nil {
				t.Fatal("the row has no pod without node-id annotation")
			}
			f, _, _ := newFinder(c, nil)
			res, err := f.Find(t.Context(), ns, tc.step)
			if !tc.expFound {
				if err == nil {
					t.Fatalf("found %v, want no target", res.Targets)
				}
				if k := fault.KindOf(err); k != fault.Transient && k != fault.Precondition {
					t.Errorf("error kind = %s, want Transient (no pod yet) or Precondition (not owned): %v", k, err)
				}
				return
			}
			if err != nil {
				t.Fatalf("unexpected error: %v", err)
			}
			if len(res.Targets) != 1 || res.Targets[0].Pod != tc.podName || res.Targets[0].PodUID != renamed.UID {
				t.Fatalf("targets = %v, want one in pod %s", res.Targets, tc.podName)
			}
		})
	}
}

func TestFindCost(t *testing.T) {
	// bigLoop is loop with n items, more than are read by name.
	bigLoop := func(n int) cluster {
		c := loop()
		c.pods = nil
		for k := range n {
			name := fmt.Sprintf("loop[0].item(%d:x)", k)
			node := fixture.PodNode("loop", name, fmt.Sprintf("item(%d:x)", k), "item")
			c.wf.Status.Nodes[node.ID] = node
		}
		for _, node := range c.wf.Status.Nodes {
			if node.Type == wfv1.NodeTypePod {
				c.pods = append(c.pods, fixture.Pod(c.wf, node, argo.PodName(fixture.Lean(c.wf), fixture.LeanNode(node)), fixture.Container("main", fixture.PauseBefore)))
			}
		}
		return c
	}
	earlierRun := func(p *corev1.Pod) { p.OwnerReferences[0].UID = "11111111-2222-3333-4444-555555555555" }
	tests := map[string]struct {
		cluster     cluster
		step        request.Step
		targets     int
		gets, lists int
		forbidGet   bool
	}{
		"one pod: one get by its name, no list": {
			cluster: helloWorld(), step: request.Step{Workflow: "hello-world", Template: "pause"},
			targets: 1, gets: 1,
		},
		"two pods: a get each, at once, no list": {
			cluster: loop(), step: request.Step{Workflow: "loop", Template: "item"},
			targets: 2, gets: 2,
		},
		"without pod-name-format both names are read": {
			cluster: helloWorld().with(podNameFormat("")), step: request.Step{Workflow: "hello-world", Template: "pause"},
			targets: 1, gets: 2,
		},
		"many pods: one list, no get": {
			cluster: bigLoop(5), step: request.Step{Workflow: "loop", Template: "item"},
			targets: 7, lists: 1,
		},
		"pod under another name: the list decides": {
			cluster: helloWorld().with(onPod(helloPod, func(p *corev1.Pod) { p.Name = "renamed" })),
			step:    request.Step{Workflow: "hello-world", Template: "pause"},
			targets: 1, gets: 1, lists: 1,
		},
		"an earlier run's pod by that name: the lists decide": {
			cluster: helloWorld().with(onPod(helloPod, earlierRun)), step: request.Step{Workflow: "hello-world", Template: "pause"},
			gets: 1, lists: 2,
		},
		"a reader who may list pods but not get them: the lists decide": {
			cluster: helloWorld(), step: request.Step{Workflow: "hello-world", Template: "pause"},
			forbidGet: true, targets: 1, gets: 1, lists: 1,
		},
		"a completed pod by that name: the lists decide": {
			cluster: helloWorld().with(onPod(helloPod, func(p *corev1.Pod) { p.Labels[argo.LabelCompleted] = "true" })),
			step:    request.Step{Workflow: "hello-world", Template: "pause"},
			gets:    1, lists: 2,
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			f, wfc, kube := newFinder(tc.cluster, nil)
			if tc.forbidGet {
				kube.PrependReactor("get", "pods", func(k8stesting.Action) (bool, runtime.Object, error) {
					return true, nil, apierrors.NewForbidden(schema.GroupResource{Resource: "pods"}, "x", errors.New("no get on pods"))
				})
			}
			res, err := f.Find(t.Context(), ns, tc.step)
			if tc.targets > 0 && err != nil {
				t.Fatal(err)
			}
			if len(res.Targets) != tc.targets {
				t.Fatalf("targets = %v, want %d", res.Targets, tc.targets)
			}
			checkActions(t, wfc, kube, tc.step.Workflow, tc.gets, tc.lists)
		})
	}
}

func TestFindReadsAStaleCacheAgain(t *testing.T) {
	// The API server's cache still shows the pod before it ran; the consistent list shows it running. The
	// pod has another name than Argo's, so that the lists decide.
	c := helloWorld().with(onPod(helloPod, func(p *corev1.Pod) { p.Name = "renamed" }))
	f, wfc, kube := newFinder(c, nil)
	kube.PrependReactor("list", "pods", func(a k8stesting.Action) (bool, runtime.Object, error) {
		if a.(k8stesting.ListActionImpl).ListOptions.ResourceVersion != "0" {
			return false, nil, nil
		}
		stale := c.pods[0].DeepCopy()
		stale.Status = corev1.PodStatus{Phase: corev1.PodPending}
		return true, &corev1.PodList{Items: []corev1.Pod{*stale}}, nil
	})
	res, err := f.Find(t.Context(), ns, request.Step{Workflow: "hello-world", Template: "pause"})
	if err != nil {
		t.Fatal(err)
	}
	checkTargets(t, c, res.Targets, []target{{Node: helloNode, Pod: "renamed", Container: "main", Stage: v1alpha1.StageBefore}})
	if len(res.Skipped) != 0 {
		t.Errorf("skipped %v: the stale view must not be reported", res.Skipped)
	}
	checkActions(t, wfc, kube, "hello-world", 1, 2)
}

func TestFindAPIErrors(t *testing.T) {
	forbidden := func(resource string) error {
		return apierrors.NewForbidden(schema.GroupResource{Resource: resource}, "x", errors.New("no RBAC"))
	}
	tests := map[string]struct {
		verb, resource string
		err            error
		expErr         []string
		expNoList      bool
		// renamed gives the pod another name than Argo's, so that the list runs.
		renamed bool
	}{
		"get workflow fails": {
			verb: "get", resource: "workflows", err: errors.New("connection refused"),
			expErr: []string{"get workflow argo/hello-world", "connection refused"}, expNoList: true,
		},
		"get workflow is throttled": {
			verb: "get", resource: "workflows", err: apierrors.NewTooManyRequests("slow down", 1),
			expErr: []string{"get workflow argo/hello-world"}, expNoList: true,
		},
		"get workflow is forbidden: RBAC hint": {
			verb: "get", resource: "workflows", err: forbidden("workflows"),
			expErr: []string{"forbidden", "RBAC", "Role"}, expNoList: true,
		},
		"get pod fails": {
			verb: "get", resource: "pods", err: apierrors.NewInternalError(errors.New("etcd down")),
			expErr: []string{"get pod argo/" + helloPod + " of workflow hello-world", "etcd down"}, expNoList: true,
		},

		"list pods fails": {
			verb: "list", resource: "pods", err: apierrors.NewInternalError(errors.New("etcd down")),
			expErr: []string{"list pods of workflow argo/hello-world", "etcd down"}, renamed: true,
		},
		"list pods is forbidden: RBAC hint": {
			verb: "list", resource: "pods", err: forbidden("pods"),
			expErr: []string{"list pods", "RBAC"}, renamed: true,
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			c := helloWorld()
			if tc.renamed {
				c = c.with(onPod(helloPod, func(p *corev1.Pod) { p.Name = "renamed" }))
			}
			f, wfc, kube := newFinder(c, nil)
			react := func(k8stesting.Action) (bool, runtime.Object, error) { return true, nil, tc.err }
			wfc.PrependReactor(tc.verb, tc.resource, react)
			kube.PrependReactor(tc.verb, tc.resource, react)
			res, err := f.Find(t.Context(), ns, request.Step{Workflow: "hello-world", Template: "pause"})
			fixture.CheckFault(t, err, fault.Transient, tc.expErr)
			if !errors.Is(err, tc.err) {
				t.Errorf("error %v does not wrap %v", err, tc.err)
			}
			if len(res.Targets) != 0 {
				t.Errorf("targets = %v, want none", res.Targets)
			}
			gets := 1
			if tc.verb == "get" && tc.resource == "workflows" {
				gets = 0
			}
			checkActions(t, wfc, kube, "hello-world", gets, lists(1, !tc.expNoList))
		})
	}
}

// Pods anyone may create claim a node by its annotation and the workflow's labels; past a few claimants
// the LIST refuses the node, naming the bound, instead of holding them all. Pods of the workflow that
// claim no picked node are not kept either (the step's own pod is still found among them).
func TestPodListBounds(t *testing.T) {
	step := request.Step{Workflow: "hello-world", Template: "pause"}
	t.Run("a node claimed by more pods than the bound is refused", func(t *testing.T) {
		c := helloWorld()
		node := c.wf.Status.Nodes[helloNode]
		c.pods = nil // none by the name Argo gives it: the LIST decides
		for i := range 9 {
			c.pods = append(c.pods, fixture.Pod(c.wf, node, fmt.Sprintf("claimant-%d", i), fixture.Container("main", fixture.PauseBefore)))
		}
		f, _, _ := newFinder(c, nil)
		_, err := f.Find(t.Context(), ns, step)
		fixture.CheckFault(t, err, fault.Precondition, []string{"node " + helloNode + " of workflow argo/hello-world is claimed by more than 8 pods"})
	})
	t.Run("other pods of the workflow do not count", func(t *testing.T) {
		c := helloWorld()
		node := c.wf.Status.Nodes[helloNode]
		for i := range 20 {
			other := fixture.PodNode("hello-world", fmt.Sprintf("hello-world[1].other(%d)", i), "other", "other")
			c.wf.Status.Nodes[other.ID] = other
			c.pods = append(c.pods, fixture.Pod(c.wf, other, fmt.Sprintf("other-%d", i), fixture.Container("main", fixture.PauseBefore)))
		}
		c.pods[0] = fixture.Pod(c.wf, node, "renamed", fixture.Container("main", fixture.PauseBefore)) // found by its annotation only
		f, _, _ := newFinder(c, nil)
		res, err := f.Find(t.Context(), ns, step)
		if err != nil {
			t.Fatal(err)
		}
		if len(res.Targets) != 1 || res.Targets[0].Pod != "renamed" {
			t.Fatalf("targets %v, want pod renamed", res.Targets)
		}
	})
}
