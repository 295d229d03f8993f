package integration

import (
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/argocontroller/resume-trigger/api/v1alpha1"
	"github.com/argocontroller/resume-trigger/internal/fixture"
	"github.com/argocontroller/resume-trigger/tests/internal/rig"
)

var helloReleased = v1alpha1.ReleasedTarget{Node: fixture.HelloNodeID, Pod: fixture.HelloPodV2, Container: "main", Stage: v1alpha1.StageAfter}

// The Sensor redelivers an event (atLeastOnce, or a restart mid-call): the second Execute finds the final
// status and changes nothing.
func TestSameExecuteTwice(t *testing.T) {
	e := setup(t)
	e.pausedHelloWorld()
	u := e.createResume("twice", map[string]any{"Workflow-ID": fixture.HelloWorkflow, "TemplateName": "pause"})
	params, payload := resumeEvent(u)

	first := e.srv.mustFire(t, params, payload)
	expectOK(t, first, 1)
	res, rv := e.resume("twice")
	expectSucceeded(t, res, helloReleased)

	second := e.srv.mustFire(t, params, payload)
	if second.Err != nil || !second.Result.AlreadyFinal || second.Result.Phase != v1alpha1.PhaseSucceeded || len(second.Result.Released) != 0 {
		t.Fatalf("second Execute: err %v, result %+v; want the final Succeeded status, nothing released again", second.Err, second.Result)
	}
	expectReleased(t, second.Result.AlreadyReleased, helloReleased)
	if second.Result.Message != first.Result.Message || !second.Policy.Success {
		t.Errorf("second answer %q (policy %+v), first %q", second.Result.Message, second.Policy, first.Result.Message)
	}
	again, rv2 := e.resume("twice")
	if rv2 != rv {
		t.Errorf("the Resume was written again (resourceVersion %s -> %s): %+v", rv, rv2, again.Status)
	}
	e.expectCalls(rig.Call{Pod: fixture.HelloPodV2, Container: "main", Argv: touchMainAfter, Outcome: "exit 0"})
}

// Deliveries of the same event at once (two Sensor replicas during a leader change; a hundred, to press
// the serialisation): exactly one exec reaches the pod, and every answer says Succeeded.
func TestConcurrentExecutes(t *testing.T) {
	for _, n := range []int{2, 100} {
		t.Run(fmt.Sprintf("%d deliveries", n), func(t *testing.T) {
			e := setup(t)
			e.pausedHelloWorld()
			u := e.createResume("concurrent", map[string]any{"Workflow-ID": fixture.HelloWorkflow, "TemplateName": "pause"})
			params, payload := resumeEvent(u)

			ctx := rig.Context(t, time.Minute)
			var wg sync.WaitGroup
			results := make([]firing, n)
			errs := make([]error, n)
			for i := range results {
				wg.Add(1)
				go func() {
					defer wg.Done()
					results[i], errs[i] = e.srv.fire(ctx, params, payload)
				}()
			}
			wg.Wait()
			released := 0
			for i, f := range results {
				if errs[i] != nil {
					t.Fatalf("delivery %d: %v", i, errs[i])
				}
				if f.Err != nil || f.Result.Phase != v1alpha1.PhaseSucceeded || !f.Policy.Success {
					t.Fatalf("delivery %d: err %v, result %+v", i, f.Err, f.Result)
				}
				released += len(f.Result.Released)
			}
			if released != 1 {
				t.Errorf("the deliveries released %d containers together, want 1", released)
			}
			e.expectCalls(rig.Call{Pod: fixture.HelloPodV2, Container: "main", Argv: touchMainAfter, Outcome: "exit 0"})
			res, _ := e.resume("concurrent")
			expectSucceeded(t, res, helloReleased)
		})
	}
}
