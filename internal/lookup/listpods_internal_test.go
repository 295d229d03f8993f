package lookup

import (
	"fmt"
	"testing"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/runtime"
	k8sfake "k8s.io/client-go/kubernetes/fake"

	"github.com/argocontroller/resume-trigger/internal/fixture"
)

// The pod LIST of a lookup holds only the pods that may be a picked node's: a loop's other live pods are
// dropped page by page.
func TestListPodsKeepsOnlyThePickedNodesPods(t *testing.T) {
	node := fixture.PodNode("loop", "loop[0].item(0:a)", "item(0:a)", "item")
	wf := fixture.Workflow("argo", "loop", node)
	objs := []runtime.Object{fixture.Pod(wf, node, "by-annotation", fixture.Container("main"))}
	for i := range 2*listPage + 3 {
		other := fixture.PodNode("loop", fmt.Sprintf("loop[0].item(%d:x)", i+1), "item", "item")
		objs = append(objs, fixture.Pod(wf, other, fmt.Sprintf("other-%d", i), fixture.Container("main")))
	}
	f := &Finder{Pods: k8sfake.NewClientset(objs...)}
	lean := fixture.Lean(wf)
	pods, err := f.listPods(t.Context(), "argo", lean, []pickedNode{{node: lean.Status.Nodes[node.ID]}}, "")
	if err != nil {
		t.Fatal(err)
	}
	if len(pods) != 1 || pods[0].Name != "by-annotation" {
		t.Fatalf("kept %d pods (%s), want only by-annotation", len(pods), names(pods))
	}
}

func names(pods []corev1.Pod) []string {
	out := make([]string, len(pods))
	for i, p := range pods {
		out[i] = p.Name
	}
	return out
}
