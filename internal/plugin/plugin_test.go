package plugin

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/cli-runtime/pkg/genericiooptions"
	k8sfake "k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"

	"github.com/argocontroller/resume-trigger/api/v1alpha1"
	"github.com/argocontroller/resume-trigger/internal/argo"
	"github.com/argocontroller/resume-trigger/internal/fixture"
)

func run(args ...string) (string, error) {
	var out bytes.Buffer
	err := Execute(context.Background(), args, genericiooptions.IOStreams{In: strings.NewReader(""), Out: &out, ErrOut: &out})
	return out.String(), err
}

func TestRefusedBeforeAnyRequest(t *testing.T) {
	// No kubeconfig exists at this path: each of these must fail on its arguments first.
	kc := []string{"--kubeconfig", t.TempDir() + "/none"}
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"wf"}, "name the step"},
		{[]string{"wf", "--template", "t", "--stage", "during"}, `stage "during" is neither`},
		{[]string{"wf", "--template", "t", "--container", "wait"}, "Argo's own"},
		{[]string{"wf", "--template", "t", "--node", "n"}, "none of the others can be"},
		{[]string{"Not_A_Name", "--template", "t"}, "not a valid Workflow name"},
		{[]string{"wf", "--template", "t", "-o", "xml"}, "want table, json or yaml"},
		{[]string{"wf", "--template", "t", "--wait", "--timeout", "0s"}, "--timeout must be positive"},
		{[]string{"list", "extra"}, "unknown command"},
		{[]string{}, "accepts 1 arg"},
	} {
		_, err := run(append(kc, tc.args...)...)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%v: %v, want an error with %q", tc.args, err, tc.want)
		}
	}
}

func TestCompletion(t *testing.T) {
	for _, shell := range []string{"bash", "zsh", "fish", "powershell"} {
		out, err := run("completion", shell)
		if err != nil || !strings.Contains(out, "kubectl") {
			t.Errorf("completion %s: %v, %d bytes", shell, err, len(out))
		}
	}
	out, err := run("__complete", "wf", "--stage", "")
	if err != nil || !strings.Contains(out, "before\nafter\n") {
		t.Errorf("completion of --stage: %v, %q", err, out)
	}
}

func TestStepNode(t *testing.T) {
	for node, wantID := range map[string]bool{"hello-world-4183098892": true, "hello-world[0].pause": false, "pause": false, "other-123": false} {
		s := (&resumeOptions{node: node}).step("hello-world")
		if (s.NodeID != "") != wantID || (s.NodeID == "" && s.NodeName != node) {
			t.Errorf("--node %s: %+v, node id %v", node, s, wantID)
		}
	}
	if g := generateName(strings.Repeat("a", 70)); len(g) != 59 || !strings.HasSuffix(g, "-") {
		t.Errorf("generateName of a long name: %q", g)
	}
}

// ListPaused sends one label-selected LIST of pods for the namespace, and keeps the paused containers of
// pods a Workflow controls.
func TestListPausedPods(t *testing.T) {
	wf := fixture.Workflow("argo", "hello-world", fixture.PodNode("hello-world", "hello-world[0].pause", "pause", "pause"))
	node := wf.Status.Nodes["hello-world-4183098892"]
	paused := fixture.Pod(wf, node, "hello-world-pause-4183098892", fixture.Container("main", fixture.PauseAfter))
	stray := fixture.Pod(wf, node, "stray", fixture.Container("main", fixture.PauseAfter))
	stray.OwnerReferences = nil
	kube := k8sfake.NewClientset(paused, stray)
	items, err := ListPaused(t.Context(), kube, nil, nil, "argo")
	if err != nil {
		t.Fatal(err)
	}
	if len(items) != 1 || items[0].Pod != paused.Name || items[0].Node != "pause" || items[0].Template != "pause" || items[0].Stage != "after" {
		t.Fatalf("items %+v", items)
	}
	var lists []string
	for _, a := range kube.Actions() {
		if l, ok := a.(k8stesting.ListAction); ok {
			lists = append(lists, a.GetNamespace()+" "+a.GetResource().Resource+" "+l.GetListRestrictions().Labels.String())
		}
	}
	if want := "argo pods " + argo.LabelCompleted + "!=true," + argo.LabelWorkflow; len(lists) != 1 || lists[0] != want {
		t.Errorf("requests %v, want one %q", lists, want)
	}

	var out bytes.Buffer
	items[0].Since = metav1.NewTime(time.Now().Add(-90 * time.Minute))
	items[0].Resume = "r1"
	if err := printPaused(&out, items, time.Now()); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	if len(lines) != 2 || strings.Join(strings.Fields(lines[1]), " ") != "argo hello-world pause pause hello-world-pause-4183098892 main after 90m r1" {
		t.Errorf("table:\n%s", out.String())
	}
}

func TestActingOnAndReleased(t *testing.T) {
	p := Paused{Namespace: "argo", Workflow: "wf", Node: "pause", NodeName: "wf[0].pause", NodeID: "wf-1", Template: "pause", Pod: "wf-pause-1", Container: "main", Stage: "before,after"}
	r := func(name string, spec v1alpha1.ResumeSpec, phase v1alpha1.Phase, uid string) v1alpha1.Resume {
		res := v1alpha1.Resume{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "argo"}, Spec: spec, Status: v1alpha1.ResumeStatus{Phase: phase}}
		if uid != "" {
			res.Status.Workflow = &v1alpha1.BoundWorkflow{Name: "wf", UID: uid}
		}
		return res
	}
	resumes := []v1alpha1.Resume{
		r("by-template", v1alpha1.ResumeSpec{WorkflowID: "wf", TemplateName: "pause"}, "", ""),
		r("by-display-name", v1alpha1.ResumeSpec{WorkflowID: "wf", NodeName: "pause", Stage: v1alpha1.StageAfter}, v1alpha1.PhasePending, "run"),
		r("done", v1alpha1.ResumeSpec{WorkflowID: "wf", TemplateName: "pause"}, v1alpha1.PhaseSucceeded, "run"),
		r("other-run", v1alpha1.ResumeSpec{WorkflowID: "wf", TemplateName: "pause"}, v1alpha1.PhasePending, "earlier"),
		r("other-template", v1alpha1.ResumeSpec{WorkflowID: "wf", TemplateName: "x"}, "", ""),
		r("other-container", v1alpha1.ResumeSpec{WorkflowID: "wf", NodeID: "wf-1", Container: "side"}, "", ""),
	}
	if got := actingOn(resumes, p, "run"); got != "by-template,by-display-name" {
		t.Errorf("acting on it: %q", got)
	}
	done := r("released", v1alpha1.ResumeSpec{WorkflowID: "wf", TemplateName: "pause"}, v1alpha1.PhaseSucceeded, "run")
	done.Status.Released = []v1alpha1.ReleasedTarget{{Pod: "wf-pause-1", Container: "main", Stage: v1alpha1.StageBefore}}
	pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "wf-pause-1", Namespace: "argo"}}
	if !released([]v1alpha1.Resume{done}, pod, "run", "main", v1alpha1.StageBefore) || released([]v1alpha1.Resume{done}, pod, "run", "main", v1alpha1.StageAfter) || released([]v1alpha1.Resume{done}, pod, "another-run", "main", v1alpha1.StageBefore) {
		t.Error("released: wrong stage, run or container")
	}
}
