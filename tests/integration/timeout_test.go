package integration

import (
	"errors"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/argocontroller/resume-trigger/api/v1alpha1"
	"github.com/argocontroller/resume-trigger/internal/fixture"
	"github.com/argocontroller/resume-trigger/internal/resume"
	"github.com/argocontroller/resume-trigger/tests/internal/rig"
)

// An exec that never ends (a wedged runtime) ends at --exec-timeout; the Resume stays Pending for the
// Sensor's retry instead of failing for good.
func TestHungExecEndsAtExecTimeout(t *testing.T) {
	const execTimeout = 2 * time.Second
	e := setup(t, withExecTimeout(execTimeout))
	e.pausedHelloWorld()
	e.r.Kubelet().SetBehaviour(e.ns, fixture.HelloPodV2, "", rig.Hang)
	u := e.createResume("hung", map[string]any{"Workflow-ID": fixture.HelloWorkflow, "TemplateName": "pause"})

	f := e.srv.fireResume(t, u)
	t.Logf("Execute with a hung exec returned after %v (exec timeout %v): %v", f.Took.Round(time.Millisecond), execTimeout, f.Err)
	expectCode(t, f, codes.Unavailable, "did not finish within 2s")
	// The upper bound leaves room for a loaded 2-core CI machine (the Resume read, the lookup and the status
	// write around the exec); a server that ignored --exec-timeout would hang until the request timeout.
	if f.Took < execTimeout || f.Took > execTimeout+8*time.Second {
		t.Errorf("Execute returned after %v, want just after the %v exec timeout", f.Took, execTimeout)
	}

	res, _ := e.resume("hung")
	if res.Status.Phase != v1alpha1.PhasePending || len(res.Status.Released) != 0 {
		t.Fatalf("resume phase %q released %+v (message %q), want Pending with nothing released", res.Status.Phase, res.Status.Released, res.Status.Message)
	}
	if c := meta.FindStatusCondition(res.Status.Conditions, v1alpha1.ConditionReleased); c == nil || c.Status != metav1.ConditionUnknown || c.Reason != resume.ReasonWaiting {
		t.Errorf("Released condition %+v, want Unknown/%s", c, resume.ReasonWaiting)
	}
	// The kubelet's side of the exec ends too: nothing is left blocked.
	if err := rig.Eventually(rig.Context(t, 10*time.Second), func() error {
		calls := e.calls()
		if len(calls) != 1 || !strings.HasPrefix(calls[0].Outcome, "hung until") {
			return errors.New("kubelet execs: " + formatCalls(calls))
		}
		return nil
	}); err != nil {
		t.Fatalf("want one exec that ended when the server gave up: %v", err)
	}
}
