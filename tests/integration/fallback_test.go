package integration

import (
	"context"
	"errors"
	"io"
	"strings"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	corev1 "k8s.io/api/core/v1"
	utilexec "k8s.io/utils/exec"

	"github.com/argocontroller/resume-trigger/api/v1alpha1"
	"github.com/argocontroller/resume-trigger/internal/fixture"
	"github.com/argocontroller/resume-trigger/internal/resume"
	"github.com/argocontroller/resume-trigger/tests/internal/rig"
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
			wf := e.createWorkflow(fixture.HelloWorld(e.ns))
			e.runPod(wf, fixture.HelloNodeID, fixture.HelloPodV2, []corev1.Container{fixture.Container("main", fixture.PauseAfter), fixture.Container("tools")})
			e.r.Kubelet().SetBehaviour(e.ns, fixture.HelloPodV2, "main", tc.behaviour)
			u := e.createResume("fallback", map[string]any{"Workflow-ID": fixture.HelloWorkflow, "TemplateName": "pause"})

			expectOK(t, e.srv.fireResume(t, u), 1)
			e.expectCalls(
				rig.Call{Pod: fixture.HelloPodV2, Container: "main", Argv: touchMainAfter, Outcome: tc.outcome},
				rig.Call{Pod: fixture.HelloPodV2, Container: "tools", Argv: touchMainAfter, Outcome: "exit 0"},
			)
			res, _ := e.resume("fallback")
			expectSucceeded(t, res, v1alpha1.ReleasedTarget{Node: fixture.HelloNodeID, Pod: fixture.HelloPodV2, Container: "main", Stage: v1alpha1.StageAfter, Via: "tools"})
			e.waitContainerTerminated(fixture.HelloPodV2, "main")
		})
	}
}

// No user container has touch and the ephemeral fallback is off: a final, clear failure; Argo's wait
// container (distroless) is never tried.
func TestFailsWhenNoContainerHasTouch(t *testing.T) {
	for name, tc := range missingTouch {
		t.Run(name, func(t *testing.T) {
			e := setup(t)
			wf := e.createWorkflow(fixture.HelloWorld(e.ns))
			e.runPod(wf, fixture.HelloNodeID, fixture.HelloPodV2, []corev1.Container{fixture.Container("main", fixture.PauseAfter), fixture.Container("tools")})
			e.r.Kubelet().SetBehaviour(e.ns, fixture.HelloPodV2, "", tc.behaviour)
			u := e.createResume("no-touch", map[string]any{"Workflow-ID": fixture.HelloWorkflow, "TemplateName": "pause"})

			f := e.srv.fireResume(t, u)
			expectCode(t, f, codes.FailedPrecondition, "no container of pod "+fixture.HelloPodV2+" can create /var/run/argo/ctr/main/after")
			e.expectCalls(
				rig.Call{Pod: fixture.HelloPodV2, Container: "main", Argv: touchMainAfter, Outcome: tc.outcome},
				rig.Call{Pod: fixture.HelloPodV2, Container: "tools", Argv: touchMainAfter, Outcome: tc.outcome},
			)
			res, _ := e.resume("no-touch")
			expectFailed(t, res, resume.ReasonNotReleasable, "--ephemeral-image")
			e.expectEvent("no-touch", corev1.EventTypeWarning, resume.ReasonNotReleasable)
		})
	}
}

// A container whose failing touch floods its output (a wrapper script printing a huge usage text): the
// server keeps only the start of it, so the Resume's status and the gRPC error stay small.
func TestFloodingOutputIsCapped(t *testing.T) {
	e := setup(t)
	wf := e.createWorkflow(fixture.HelloWorld(e.ns))
	e.runPod(wf, fixture.HelloNodeID, fixture.HelloPodV2, []corev1.Container{fixture.Container("main", fixture.PauseAfter), fixture.Container("tools")})
	const flood = 256 << 10
	e.r.Kubelet().SetBehaviour(e.ns, fixture.HelloPodV2, "", rig.Func("flood", func(_ context.Context, _ rig.Call, stdout, stderr io.Writer) error {
		chunk := []byte(strings.Repeat("x", 1024) + "\n")
		for written := 0; written < flood; written += 2 * len(chunk) {
			_, _ = stdout.Write(chunk)
			_, _ = stderr.Write(chunk)
		}
		return utilexec.CodeExitError{Err: errors.New("exit status 127"), Code: 127}
	}))
	u := e.createResume("flood", map[string]any{"Workflow-ID": fixture.HelloWorkflow, "TemplateName": "pause"})

	f := e.srv.fireResume(t, u)
	expectCode(t, f, codes.FailedPrecondition, "no container of pod "+fixture.HelloPodV2)
	const limit = 16 << 10 // two containers' output of at most 4 KiB each, and the explanation
	if n := len(status.Convert(f.Err).Message()); n > limit {
		t.Errorf("the gRPC error is %d bytes for %d bytes of output per container, want at most %d", n, flood, limit)
	}
	res, _ := e.resume("flood")
	expectFailed(t, res, resume.ReasonNotReleasable, "no container of pod "+fixture.HelloPodV2)
	if n := len(res.Status.Message); n > limit {
		t.Errorf("the Resume's status message is %d bytes for %d bytes of output per container, want at most %d", n, flood, limit)
	}
}
