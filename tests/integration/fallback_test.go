package integration

import (
	"testing"

	"google.golang.org/grpc/codes"
	corev1 "k8s.io/api/core/v1"

	"github.com/argocontroller/resume-trigger/api/v1alpha1"
	"github.com/argocontroller/resume-trigger/fixture"
	"github.com/argocontroller/resume-trigger/resume"
	"github.com/argocontroller/resume-trigger/tests/rig"
)

// missingTouch are the two ways a runtime reports an image without touch.
var missingTouch = map[string]struct {
	behaviour rig.Behaviour
	outcome   string
}{
	"exit 127":      {rig.NoTouch, "exit 127"},
	"runtime error": {rig.NoTouchRuntimeError, "error: "},
}

// The step's image has no touch (distroless): the marker is created from another user container of the pod,
// which mounts the same /var/run/argo.
func TestFallsBackToSiblingContainer(t *testing.T) {
	for name, tc := range missingTouch {
		t.Run(name, func(t *testing.T) {
			e := setup(t)
			wf := e.createWorkflow(helloWorldWorkflow(e.ns))
			e.runPod(wf, helloNodeID, helloPodV2, []corev1.Container{fixture.Container("main", fixture.PauseAfter), fixture.Container("tools")})
			e.r.Kubelet().SetBehaviour(e.ns, helloPodV2, "main", tc.behaviour)
			u := e.createResume("fallback", map[string]any{"Workflow-ID": helloWorld, "TemplateName": "pause"})

			expectOK(t, e.srv.fireResume(t, u), 1)
			e.expectCalls(
				rig.Call{Pod: helloPodV2, Container: "main", Argv: touchMainAfter, Outcome: tc.outcome},
				rig.Call{Pod: helloPodV2, Container: "tools", Argv: touchMainAfter, Outcome: "exit 0"},
			)
			res, _ := e.resume("fallback")
			expectSucceeded(t, res, v1alpha1.ReleasedTarget{Node: helloNodeID, Pod: helloPodV2, Container: "main", Stage: v1alpha1.StageAfter, Via: "tools"})
			e.waitContainerTerminated(helloPodV2, "main")
		})
	}
}

// No user container has touch and the ephemeral fallback is off: a final, clear failure; Argo's wait
// container (distroless) is never tried.
func TestFailsWhenNoContainerHasTouch(t *testing.T) {
	for name, tc := range missingTouch {
		t.Run(name, func(t *testing.T) {
			e := setup(t)
			wf := e.createWorkflow(helloWorldWorkflow(e.ns))
			e.runPod(wf, helloNodeID, helloPodV2, []corev1.Container{fixture.Container("main", fixture.PauseAfter), fixture.Container("tools")})
			e.r.Kubelet().SetBehaviour(e.ns, helloPodV2, "", tc.behaviour)
			u := e.createResume("no-touch", map[string]any{"Workflow-ID": helloWorld, "TemplateName": "pause"})

			f := e.srv.fireResume(t, u)
			expectCode(t, f, codes.FailedPrecondition, "no container of pod "+helloPodV2+" can create /var/run/argo/ctr/main/after")
			e.expectCalls(
				rig.Call{Pod: helloPodV2, Container: "main", Argv: touchMainAfter, Outcome: tc.outcome},
				rig.Call{Pod: helloPodV2, Container: "tools", Argv: touchMainAfter, Outcome: tc.outcome},
			)
			res, _ := e.resume("no-touch")
			expectFailed(t, res, resume.ReasonNotReleasable, "--ephemeral-image")
			e.expectEvent("no-touch", corev1.EventTypeWarning, resume.ReasonNotReleasable)
		})
	}
}
