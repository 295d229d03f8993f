package plugin

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/cli-runtime/pkg/genericiooptions"
	k8sfake "k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"

	"github.com/argocontroller/resume-trigger/internal/argo"
	"github.com/argocontroller/resume-trigger/internal/fixture"
	"github.com/argocontroller/resume-trigger/internal/request"
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
	if g := request.GenerateName(strings.Repeat("a", 70)); len(g) != 59 || !strings.HasSuffix(g, "-") {
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
