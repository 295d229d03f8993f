package lookup_test

import (
	"slices"
	"testing"
	"time"

	k8stesting "k8s.io/client-go/testing"

	"github.com/argocontroller/resume-trigger/api/v1alpha1"
	"github.com/argocontroller/resume-trigger/internal/fault"
	"github.com/argocontroller/resume-trigger/internal/fixture"
	"github.com/argocontroller/resume-trigger/internal/lookup"
	"github.com/argocontroller/resume-trigger/internal/request"
)

func TestPrefetch(t *testing.T) {
	step := request.Step{Workflow: "hello-world", Template: "pause"}
	t.Run("the prefetched read is the lookup's", func(t *testing.T) {
		c := helloWorld()
		f, wfc, kube := newFinder(c, nil)
		res, err := f.Prefetch(t.Context(), ns, "hello-world").Find(t.Context(), ns, step)
		if err != nil {
			t.Fatal(err)
		}
		checkTargets(t, c, res.Targets, []target{{Node: helloNode, Pod: helloPod, Container: "main", Stage: v1alpha1.StageBefore}})
		checkActions(t, wfc, kube, "hello-world", 1, 0)
	})
	t.Run("a step of another workflow reads its own", func(t *testing.T) {
		c := helloWorld()
		f, wfc, _ := newFinder(c, nil)
		res, err := f.Prefetch(t.Context(), ns, "other").Find(t.Context(), ns, step)
		if err != nil {
			t.Fatal(err)
		}
		checkTargets(t, c, res.Targets, []target{{Node: helloNode, Pod: helloPod, Container: "main", Stage: v1alpha1.StageBefore}})
		// The unused prefetch is not waited for; it ends on its own.
		var got []string
		for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(time.Millisecond) {
			got = got[:0]
			for _, a := range wfc.Actions() {
				got = append(got, a.GetVerb()+" "+a.(k8stesting.GetAction).GetName())
			}
			if len(got) >= 2 || time.Now().After(deadline) {
				break
			}
		}
		slices.Sort(got)
		if !slices.Equal(got, []string{"get hello-world", "get other"}) {
			t.Errorf("workflow actions = %v, want the prefetch of other and the step's own get", got)
		}
	})
	t.Run("a step in another namespace reads its own", func(t *testing.T) {
		f, _, _ := newFinder(helloWorld(), nil)
		_, err := f.Prefetch(t.Context(), "elsewhere", "hello-world").Find(t.Context(), ns, step)
		if err != nil {
			t.Fatalf("the prefetch of namespace elsewhere was used for %s: %v", ns, err)
		}
	})
	t.Run("a prefetched workflow that does not exist is NotFound", func(t *testing.T) {
		f, _, _ := newFinder(helloWorld(), nil)
		_, err := f.Prefetch(t.Context(), ns, "nope").Find(t.Context(), ns, request.Step{Workflow: "nope", Template: "pause"})
		fixture.CheckFault(t, err, fault.NotFound, []string{"workflow nope not found in namespace argo"})
		if !lookup.IsNoWorkflow(err) {
			t.Errorf("error %v is not a NoWorkflowError", err)
		}
	})
}
