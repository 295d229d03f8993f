package integration

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	wfv1 "github.com/argoproj/argo-workflows/v3/pkg/apis/workflow/v1alpha1"
	"github.com/prometheus/client_golang/prometheus"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/cli-runtime/pkg/genericiooptions"
	sigsyaml "sigs.k8s.io/yaml"

	"github.com/argocontroller/resume-trigger/api/v1alpha1"
	"github.com/argocontroller/resume-trigger/internal/argo"
	"github.com/argocontroller/resume-trigger/internal/fixture"
	"github.com/argocontroller/resume-trigger/internal/plugin"
	"github.com/argocontroller/resume-trigger/internal/report"
	"github.com/argocontroller/resume-trigger/tests/internal/rig"
)

// kubectlUser is who runs kubectl-resume in these tests: not an admin, only the rights the README asks a
// user of the plugin to have in the namespace.
const kubectlUser = "alice"

// kubectl is kubectl-resume as a user runs it, in-process, with a kubeconfig file of their own.
type kubectl struct {
	t          *testing.T
	kubeconfig string
	ns         string
}

// kubectlFor grants kubectlUser the plugin's rights in e's namespace and writes their kubeconfig.
func kubectlFor(e *env) *kubectl {
	e.t.Helper()
	ctx := rig.Context(e.t, 10*time.Second)
	role := &rbacv1.Role{
		ObjectMeta: metav1.ObjectMeta{Name: "resume-user", Namespace: e.ns},
		Rules: []rbacv1.PolicyRule{
			{APIGroups: []string{v1alpha1.GroupVersion.Group}, Resources: []string{"resumes"}, Verbs: []string{"create", "get", "list"}},
			{APIGroups: []string{"argoproj.io"}, Resources: []string{"workflows"}, Verbs: []string{"get", "list"}},
			{APIGroups: []string{""}, Resources: []string{"pods"}, Verbs: []string{"list"}},
		},
	}
	if _, err := e.r.Client().RbacV1().Roles(e.ns).Create(ctx, role, metav1.CreateOptions{}); err != nil {
		e.t.Fatalf("create role: %v", err)
	}
	binding := &rbacv1.RoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: "resume-user", Namespace: e.ns},
		RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "Role", Name: role.Name},
		Subjects:   []rbacv1.Subject{{APIGroup: rbacv1.GroupName, Kind: rbacv1.UserKind, Name: kubectlUser}},
	}
	if _, err := e.r.Client().RbacV1().RoleBindings(e.ns).Create(ctx, binding, metav1.CreateOptions{}); err != nil {
		e.t.Fatalf("create rolebinding: %v", err)
	}
	path := filepath.Join(e.t.TempDir(), "kubeconfig")
	if err := rig.WriteKubeconfig(e.r.ConfigAs(kubectlUser), path); err != nil {
		e.t.Fatal(err)
	}
	return &kubectl{t: e.t, kubeconfig: path, ns: e.ns}
}

// run runs `kubectl resume args…` in the namespace and returns its output and the error that makes its
// exit non-zero.
func (k *kubectl) run(args ...string) (string, error) {
	k.t.Helper()
	var out, errOut bytes.Buffer
	all := append([]string{"--kubeconfig", k.kubeconfig, "-n", k.ns}, args...)
	err := plugin.Execute(rig.Context(k.t, 2*time.Minute), all, genericiooptions.IOStreams{In: strings.NewReader(""), Out: &out, ErrOut: &errOut})
	k.t.Logf("kubectl resume %s\n%s%s(error: %v)", strings.Join(args, " "), out.String(), errOut.String(), err)
	return out.String(), err
}

// sensorFor delivers the ADD event of every Resume that kubectl-resume creates in e's namespace (named by
// generateName) to the server, once, as the shipped EventSource and Sensor do; it stops with the test.
func sensorFor(e *env) {
	e.t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Add(1)
	e.t.Cleanup(func() { cancel(); wg.Wait() })
	resumes := e.r.Dynamic().Resource(v1alpha1.Resource).Namespace(e.ns)
	go func() {
		defer wg.Done()
		fired := map[types.UID]bool{}
		w, err := resumes.Watch(ctx, metav1.ListOptions{})
		if err != nil {
			e.t.Errorf("watch resumes: %v", err)
			return
		}
		defer w.Stop()
		for ev := range w.ResultChan() {
			u, ok := ev.Object.(*unstructured.Unstructured)
			if !ok || ev.Type != watch.Added || fired[u.GetUID()] || u.GetGenerateName() == "" {
				continue
			}
			fired[u.GetUID()] = true
			params, payload := resumeEvent(u)
			if _, err := e.srv.fire(ctx, params, payload); err != nil && ctx.Err() == nil {
				e.t.Errorf("sensor: %v", err)
			}
		}
	}()
}

// A paused step: `kubectl resume … --wait` creates the Resume, the server releases the step, and the
// plugin prints what was released and exits 0. A step that is not paused: it exits non-zero with the
// server's reason.
func TestKubectlResumeWait(t *testing.T) {
	t.Parallel()
	e := setup(t, withRevisits())
	sensorFor(e)
	k := kubectlFor(e)
	wf := e.createWorkflow(fixture.HelloWorld(e.ns))
	e.runPod(wf, fixture.HelloNodeID, fixture.HelloPodV2, mainContainer(fixture.PauseAfter))

	out, err := k.run(fixture.HelloWorkflow, "--template", "pause", "--wait", "--timeout", "1m")
	if err != nil {
		t.Fatalf("kubectl resume --wait: %v", err)
	}
	want := fmt.Sprintf("released pod %s container main stage after\n", fixture.HelloPodV2)
	if !strings.Contains(out, want) || !strings.Contains(out, "Succeeded (Released)") {
		t.Fatalf("output:\n%s\nwant %q and Succeeded (Released)", out, want)
	}
	e.expectCalls(rig.Call{Pod: fixture.HelloPodV2, Container: "main", Argv: touchMainAfter, Outcome: "exit 0"})
	e.waitPodSucceeded(fixture.HelloPodV2)

	// The Resume carries the user's spec, and --wait's timeout as its deadline.
	list, err := e.r.Dynamic().Resource(v1alpha1.Resource).Namespace(e.ns).List(rig.Context(t, 10*time.Second), metav1.ListOptions{})
	if err != nil || len(list.Items) != 1 {
		t.Fatalf("resumes: %v, %d, want 1", err, len(list.Items))
	}
	res, _ := e.resume(list.Items[0].GetName())
	if res.Spec.WorkflowID != fixture.HelloWorkflow || res.Spec.TemplateName != "pause" || res.Spec.ActiveDeadlineSeconds == nil || *res.Spec.ActiveDeadlineSeconds != 60 || !strings.HasPrefix(res.Name, fixture.HelloWorkflow+"-") {
		t.Errorf("resume %s spec %+v", res.Name, res.Spec)
	}
	expectSucceeded(t, res, helloReleased)

	// A step whose container does not pause: the Resume fails, and so does the command, saying why.
	plain := fixture.PodNode("not-paused", "not-paused[0].plain", "plain", "plain")
	wf2 := e.createWorkflow(fixture.Workflow(e.ns, "not-paused", plain))
	node := wf2.Status.Nodes[plain.ID]
	e.runPod(wf2, node.ID, argo.PodName(fixture.Lean(wf2), fixture.LeanNode(node)), mainContainer())
	before := len(e.calls())
	out, err = k.run("not-paused", "--template", "plain", "--wait", "--timeout", "1m")
	if err == nil || !strings.Contains(err.Error(), "failed (NotReleasable)") || !strings.Contains(err.Error(), "container main is not debug-paused") {
		t.Fatalf("kubectl resume --wait on a step that is not paused: %v (output %q), want a failure saying container main is not debug-paused", err, out)
	}
	if n := len(e.calls()); n != before {
		t.Errorf("%d execs for a step that is not paused", n-before)
	}

	// The same command as JSON: the Resume that ended.
	out, err = k.run("not-paused", "--template", "plain", "--wait", "-o", "json")
	var obj v1alpha1.Resume
	if err == nil || json.Unmarshal([]byte(out), &obj) != nil || obj.Status.Phase != v1alpha1.PhaseFailed {
		t.Errorf("-o json: %v, output %q, want the Failed Resume and an error", err, out)
	}

	// Requests the plugin refuses before creating anything.
	for _, args := range [][]string{
		{fixture.HelloWorkflow},
		{fixture.HelloWorkflow, "--template", "pause", "--stage", "during"},
		{fixture.HelloWorkflow, "--template", "pause", "--container", "wait"},
		{fixture.HelloWorkflow, "--template", "pause", "-o", "xml"},
	} {
		if _, err := k.run(args...); err == nil {
			t.Errorf("kubectl resume %v succeeded, want an error", args)
		}
	}
}

// mixedScene is a namespace with steps in every state list and why tell apart, in workflow "mix" and an
// earlier run's pod of workflow "rerun".
type mixedScene struct {
	wf   *wfv1.Workflow
	pods map[string]string // display name -> pod name
}

const mix = "mix"

func setupMixed(t *testing.T, e *env, k *kubectl) mixedScene {
	t.Helper()
	type step struct {
		display, template string
		env               []corev1.EnvVar
		phase             wfv1.NodePhase
		opts              []rig.PodOption
	}
	ended := func(p *corev1.Pod) {
		now := metav1.Now()
		p.Status.Phase = corev1.PodSucceeded
		for i := range p.Status.ContainerStatuses {
			cs := &p.Status.ContainerStatuses[i]
			cs.State = corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{Reason: "Completed", StartedAt: now, FinishedAt: now}}
			cs.Ready = false
		}
	}
	steps := []step{
		{display: "paused", template: "sleep", env: []corev1.EnvVar{fixture.PauseAfter}},
		{display: "plain", template: "sleep"},
		{display: "pending", template: "sleep", env: []corev1.EnvVar{fixture.PauseBefore}, opts: []rig.PodOption{rig.Pending()}},
		{display: "both", template: "both", env: []corev1.EnvVar{fixture.PauseBefore, fixture.PauseAfter}},
		{display: "halfway", template: "both", env: []corev1.EnvVar{fixture.PauseBefore, fixture.PauseAfter}},
		{display: "released", template: "sleep", env: []corev1.EnvVar{fixture.PauseAfter}},
		{display: "finished", template: "sleep", env: []corev1.EnvVar{fixture.PauseAfter}, phase: wfv1.NodeSucceeded, opts: []rig.PodOption{ended}},
	}
	var nodes []wfv1.NodeStatus
	for _, s := range steps {
		n := fixture.PodNode(mix, mix+"[0]."+s.display, s.display, s.template)
		if s.phase != "" {
			n.Phase = s.phase
		}
		nodes = append(nodes, n)
	}
	wf := e.createWorkflow(fixture.Workflow(e.ns, mix, nodes...))
	sc := mixedScene{wf: wf, pods: map[string]string{}}
	for i, s := range steps {
		node := wf.Status.Nodes[nodes[i].ID]
		name := argo.PodName(fixture.Lean(wf), fixture.LeanNode(node))
		sc.pods[s.display] = name
		e.runPod(wf, node.ID, name, mainContainer(s.env...), s.opts...)
	}

	// A paused-looking pod with the workflow label that no Workflow controls.
	stray := fixture.Pod(wf, nodes[0], "mix-stray", mainContainer(fixture.PauseAfter)...)
	stray.UID, stray.OwnerReferences = "", nil
	stray.Annotations[argo.AnnotationNodeID] = fixture.NodeID(mix, "mix[9].stray")
	e.runPodObject(stray)

	// Workflow "rerun" was deleted and submitted again: its node's pod of the earlier run is still there.
	rerunNode := fixture.PodNode("rerun", "rerun[0].step", "step", "step")
	rerun := e.createWorkflow(fixture.Workflow(e.ns, "rerun", rerunNode))
	earlier := rerun.DeepCopy()
	earlier.UID = "11111111-2222-3333-4444-555555555555"
	old := fixture.Pod(earlier, rerunNode, argo.PodName(fixture.Lean(rerun), fixture.LeanNode(rerunNode)), mainContainer(fixture.PauseAfter)...)
	old.UID = ""
	e.runPodObject(old)
	sc.pods["rerun"] = old.Name

	// Released through the plugin: "released" whole (its pod then ends), "halfway" before its command
	// only (it stays paused after it).
	if _, err := k.run(mix, "--node", "released", "--wait"); err != nil {
		t.Fatalf("release step released: %v", err)
	}
	e.waitPodSucceeded(sc.pods["released"])
	if _, err := k.run(mix, "--node", mix+"[0].halfway", "--stage", "before", "--wait"); err != nil {
		t.Fatalf("release step halfway before: %v", err)
	}
	e.waitEmissary(sc.pods["halfway"], rig.EmissaryStillPaused)

	// A Resume nobody has handled yet (no Sensor delivers it) names "both" before its command.
	e.createResume("both-before", map[string]any{"Workflow-ID": mix, "nodeName": "both", "stage": "before"})
	return sc
}

// waitEmissary waits for the emissary emulation's decision on a marker in pod.
func (e *env) waitEmissary(pod, outcome string) {
	e.t.Helper()
	eventually(e.t, 15*time.Second, "emissary of pod "+pod+": "+outcome, func() error {
		evs := e.r.Kubelet().EmissaryEvents(e.ns)
		if !slices.ContainsFunc(evs, func(ev rig.EmissaryEvent) bool { return ev.Pod == pod && ev.Outcome == outcome }) {
			return fmt.Errorf("events %+v", evs)
		}
		return nil
	})
}

// requests are the API requests kubectlUser sent in e's namespace so far, as "verb resource".
func (k *kubectl) requests(e *env) []string {
	k.t.Helper()
	events, err := e.r.AuditEvents()
	if err != nil {
		k.t.Fatal(err)
	}
	var out []string
	for _, ev := range events {
		if ev.Identity() == kubectlUser && ev.ObjectRef != nil && ev.ObjectRef.Namespace == e.ns {
			out = append(out, ev.Verb+" "+ev.Resource())
		}
	}
	return out
}

// pausedRows renders list's items of workflow wf, sorted, for comparison.
func pausedRows(t *testing.T, l plugin.PausedList, wf string) []string {
	t.Helper()
	var rows []string
	for _, p := range l.Items {
		if p.Workflow != wf {
			continue
		}
		rows = append(rows, fmt.Sprintf("%s %s %s %s %s %s %s %s resume=%s", p.Namespace, p.Workflow, p.Node, p.NodeName, p.Template, p.Pod, p.Container, p.Stage, p.Resume))
		if p.Since.IsZero() || time.Since(p.Since.Time) > 5*time.Minute || p.NodeID != fixture.NodeID(wf, p.NodeName) {
			t.Errorf("row %+v: since or node id wrong", p)
		}
	}
	slices.Sort(rows)
	return rows
}

// `list` shows exactly the paused containers of a namespace that mixes paused, unpaused, pending,
// finished and released steps, a pod no Workflow controls and a pod of an earlier run; `why` explains each
// of them as the server's lookup sees it.
func TestKubectlResumeListAndWhy(t *testing.T) {
	t.Parallel()
	e := setup(t, withRevisits())
	sensorFor(e)
	k := kubectlFor(e)
	sc := setupMixed(t, e, k)

	before := k.requests(e)
	out, err := k.run("list", "-o", "json")
	if err != nil {
		t.Fatalf("list: %v", err)
	}
	// One LIST of pods (label-selected), of Resumes and of Workflows for the namespace; no exec, no log,
	// nothing per workflow.
	if got := slices.Sorted(slices.Values(k.requests(e)[len(before):])); !slices.Equal(got, []string{"list pods", "list resumes", "list workflows"}) {
		t.Errorf("list sent %v, want one list each of pods, resumes and workflows", got)
	}
	var got plugin.PausedList
	if err := json.Unmarshal([]byte(out), &got); err != nil {
		t.Fatalf("list -o json: %v", err)
	}
	rows := pausedRows(t, got, mix)
	want := []string{
		fmt.Sprintf("%s mix both mix[0].both both %s main before,after resume=both-before", e.ns, sc.pods["both"]),
		fmt.Sprintf("%s mix halfway mix[0].halfway both %s main after resume=", e.ns, sc.pods["halfway"]),
		fmt.Sprintf("%s mix paused mix[0].paused sleep %s main after resume=", e.ns, sc.pods["paused"]),
	}
	if !slices.Equal(rows, want) {
		t.Fatalf("list:\n  %s\nwant:\n  %s", strings.Join(rows, "\n  "), strings.Join(want, "\n  "))
	}

	// The server's gauge (--paused-metrics) on the same objects counts what list shows, and also the earlier
	// run's pod, which it cannot tell apart without a workflows list right the server does not have (said
	// in the gauge's doc and the README).
	reg := prometheus.NewRegistry()
	reg.MustRegister(report.NewPaused(report.PausedConfig{Pods: e.r.Client(), Namespaces: []string{e.ns}}))
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	gauge := -1.0
	for _, f := range families {
		for _, m := range f.GetMetric() {
			if f.GetName() == "resume_trigger_paused_containers" && len(m.GetLabel()) == 1 && m.GetLabel()[0].GetValue() == e.ns {
				gauge = m.GetGauge().GetValue()
			}
		}
	}
	if want := float64(len(got.Items) + 1); gauge != want {
		t.Errorf("resume_trigger_paused_containers{namespace=%q} = %v, want %v (list's %d and the earlier run's pod)", e.ns, gauge, want, len(got.Items))
	}

	// -A as an admin: the same rows for this namespace among every other test's.
	admin := filepath.Join(t.TempDir(), "admin-kubeconfig")
	if err := rig.WriteKubeconfig(e.r.AdminConfig(), admin); err != nil {
		t.Fatal(err)
	}
	var outA bytes.Buffer
	if err := plugin.Execute(rig.Context(t, time.Minute), []string{"--kubeconfig", admin, "list", "-A", "-o", "yaml"}, genericiooptions.IOStreams{In: strings.NewReader(""), Out: &outA, ErrOut: &outA}); err != nil {
		t.Fatalf("list -A: %v\n%s", err, outA.String())
	}
	var all plugin.PausedList
	if err := sigsyaml.Unmarshal(outA.Bytes(), &all); err != nil {
		t.Fatalf("list -A -o yaml: %v", err)
	}
	var mine plugin.PausedList
	for _, p := range all.Items {
		if p.Namespace == e.ns {
			mine.Items = append(mine.Items, p)
		}
	}
	if rowsA := pausedRows(t, mine, mix); !slices.Equal(rowsA, want) {
		t.Errorf("list -A, this namespace:\n  %s\nwant:\n  %s", strings.Join(rowsA, "\n  "), strings.Join(want, "\n  "))
	}

	table, err := k.run("list")
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(table), "\n")
	if len(lines) != 4 || strings.Join(strings.Fields(lines[0]), " ") != "NAMESPACE WORKFLOW NODE TEMPLATE POD CONTAINER STAGE PAUSED SINCE RESUME" {
		t.Fatalf("list table:\n%s", table)
	}
	for _, l := range lines[1:] {
		f := strings.Fields(l)
		if len(f) != 9 || f[0] != e.ns || f[1] != mix || (f[2] == "both") != (f[8] == "both-before") {
			t.Errorf("list table row %q", l)
		}
	}

	// why, for every pod node of mix: one GET of the Workflow, a LIST of its pods (from the watch cache,
	// again consistently when something may still come).
	before = k.requests(e)
	out, err = k.run("why", mix, "-o", "json")
	if err != nil {
		t.Fatalf("why: %v", err)
	}
	if got := k.requests(e)[len(before):]; !slices.Equal(got, []string{"get workflows", "list pods", "list pods"}) {
		t.Errorf("why sent %v, want the lookup's get of the workflow and its pod lists", got)
	}
	var ex plugin.Explanation
	if err := json.Unmarshal([]byte(out), &ex); err != nil {
		t.Fatalf("why -o json: %v", err)
	}
	byPod := map[string][]plugin.Candidate{}
	for _, c := range ex.Candidates {
		byPod[c.Pod] = append(byPod[c.Pod], c)
	}
	expectWhy := func(display, verdict, why string) {
		t.Helper()
		cs := byPod[sc.pods[display]]
		if len(cs) != 1 || cs[0].Verdict != verdict || !strings.Contains(cs[0].Why, why) {
			t.Errorf("why for step %s (pod %s): %+v, want %s: %q", display, sc.pods[display], cs, verdict, why)
		}
	}
	expectWhy("paused", plugin.VerdictReleasable, "container main is paused after its command")
	expectWhy("plain", plugin.VerdictNo, "container main is not debug-paused")
	expectWhy("pending", plugin.VerdictWaiting, "is Pending, not running yet")
	expectWhy("both", plugin.VerdictNarrow, "pauses both before and after its command: set stage")
	expectWhy("released", plugin.VerdictNo, "has ended (Succeeded): nothing is paused")
	expectWhy("finished", plugin.VerdictNo, "has finished (Succeeded): nothing is paused")
	if len(ex.Candidates) != 7 {
		t.Errorf("why: %d candidates, want 7 (one per pod node): %+v", len(ex.Candidates), ex.Candidates)
	}
	table, err = k.run("why", mix)
	if lines := strings.Split(strings.TrimSpace(table), "\n"); err != nil || len(lines) != 8 || strings.Join(strings.Fields(lines[0]), " ") != "NODE POD CONTAINER STAGE VERDICT WHY" {
		t.Errorf("why table: %v\n%s", err, table)
	}

	// Narrowed: halfway, after its command; both with a stage.
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"why", mix, "--node", "halfway", "--stage", "after"}, "container main is paused after its command: a Resume releases it now"},
		{[]string{"why", mix, "--template", "both", "--stage", "before"}, "releasable"},
		{[]string{"why", "rerun", "--template", "step"}, "belongs to an earlier run of workflow rerun"},
		{[]string{"why", mix, "--template", "nosuch"}, "has no node matching template nosuch (templates with pods: both, sleep)"},
	} {
		out, err := k.run(c.args...)
		if err != nil || !strings.Contains(out, c.want) {
			t.Errorf("kubectl resume %v: %v, output:\n%s\nwant %q", c.args, err, out, c.want)
		}
	}
	if _, err := k.run("why", "nosuch", "--template", "x"); err == nil || !strings.Contains(err.Error(), "workflow nosuch not found") {
		t.Errorf("why for a missing workflow: %v, want a non-zero exit saying it is not found", err)
	}
}
