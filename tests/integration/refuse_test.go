package integration

import (
	"strings"
	"testing"
	"time"

	wfv1 "github.com/argoproj/argo-workflows/v3/pkg/apis/workflow/v1alpha1"
	"google.golang.org/grpc/codes"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/argocontroller/resume-trigger/api/v1alpha1"
	"github.com/argocontroller/resume-trigger/internal/fixture"
	"github.com/argocontroller/resume-trigger/internal/resume"
	"github.com/argocontroller/resume-trigger/tests/internal/rig"
)

// pausedHelloWorld sets up the original example, paused and releasable, so that a refusal is visibly a
// refusal and not a missing target.
func (e *env) pausedHelloWorld() {
	e.t.Helper()
	wf := e.createWorkflow(fixture.HelloWorld(e.ns))
	e.runPod(wf, fixture.HelloNodeID, fixture.HelloPodV2, mainContainer(fixture.PauseAfter))
}

// A Resume for a workflow that does not exist waits for it (a user may create the Resume first), without
// any exec, and ends at its deadline with the reason it waited for.
func TestRefusesUnknownWorkflow(t *testing.T) {
	e := setup(t)
	e.pausedHelloWorld()
	u := e.createResume("unknown", map[string]any{"Workflow-ID": "no-such-workflow", "TemplateName": "pause", "activeDeadlineSeconds": int64(2)})

	f := e.srv.fireResume(t, u)
	expectCode(t, f, codes.Unavailable, "workflow no-such-workflow not found in namespace "+e.ns)
	res, _ := e.resume("unknown")
	if res.Status.Phase != v1alpha1.PhasePending || res.Status.Reason != resume.ReasonWaiting || !strings.Contains(res.Status.Message, "waiting for it to be created") {
		t.Fatalf("status %s/%s %q, want Pending/Waiting for the workflow", res.Status.Phase, res.Status.Reason, res.Status.Message)
	}
	e.waitPast(res.Status.Deadline)
	f = e.srv.fireResume(t, u)
	expectCode(t, f, codes.FailedPrecondition, "deadline exceeded")
	res, _ = e.resume("unknown")
	expectFailed(t, res, resume.ReasonDeadlineExceeded, "no-such-workflow not found")
	e.expectEvent("unknown", corev1.EventTypeWarning, resume.ReasonDeadlineExceeded)
	e.expectNoCalls()
}

// The template exists in the workflow but runs no pod (a suspend template).
func TestRefusesTemplateWithoutPod(t *testing.T) {
	e := setup(t)
	approve := fixture.Node(fixture.HelloWorkflow, "hello-world[1].approve", "approve", wfv1.NodeTypeSuspend, "approve")
	wf := e.createWorkflow(fixture.HelloWorld(e.ns, approve))
	e.runPod(wf, fixture.HelloNodeID, fixture.HelloPodV2, mainContainer(fixture.PauseAfter))
	u := e.createResume("suspend", map[string]any{"Workflow-ID": fixture.HelloWorkflow, "TemplateName": "approve"})

	f := e.srv.fireResume(t, u)
	expectCode(t, f, codes.NotFound, "selects no node that runs a pod")
	e.expectNoCalls()
	res, _ := e.resume("suspend")
	expectFailed(t, res, resume.ReasonNotFound, "selects no node that runs a pod")
}

func TestRefusesStepNotPaused(t *testing.T) {
	e := setup(t)
	wf := e.createWorkflow(fixture.HelloWorld(e.ns))
	e.runPod(wf, fixture.HelloNodeID, fixture.HelloPodV2, mainContainer())
	u := e.createResume("not-paused", map[string]any{"Workflow-ID": fixture.HelloWorkflow, "TemplateName": "pause"})

	f := e.srv.fireResume(t, u)
	expectCode(t, f, codes.FailedPrecondition, "is not debug-paused")
	e.expectNoCalls()
	res, _ := e.resume("not-paused")
	expectFailed(t, res, resume.ReasonNotReleasable, "is not debug-paused")
	e.expectEvent("not-paused", corev1.EventTypeWarning, resume.ReasonNotReleasable)
}

// Names that would change the argv or the exec's target if they were pasted anywhere: refused before the
// cluster is asked, with a paused step right there to be released by mistake.
func TestRefusesInjectedNames(t *testing.T) {
	e := setup(t)
	e.pausedHelloWorld()
	valid := map[string]string{"namespace": e.ns, "workflow": fixture.HelloWorkflow, "template": "pause"}
	for name, tc := range map[string]struct{ key, value, message string }{
		"shell in template":           {"template", "pause; touch /tmp/pwned", "not a valid template name"},
		"command substitution":        {"workflow", "hello-world$(reboot)", "not a valid Workflow name"},
		"path in container":           {"container", "main/../../wait", "not a valid container name"},
		"Argo's wait container":       {"container", "wait", "is Argo's own"},
		"stage that is a path":        {"stage", "after/../../../etc/passwd", "is neither"},
		"namespace traversal":         {"namespace", "../kube-system", "not a valid namespace name"},
		"newline in node name":        {"nodeName", "hello-world[0].pause\ntouch /x", "control characters"},
		"node id with a slash":        {"nodeID", "hello-world-1/../2", "not a valid node id"},
		"argv smuggled in a template": {"template", "pause -- /etc/shadow", "not a valid template name"},
	} {
		t.Run(name, func(t *testing.T) {
			params := map[string]string{}
			for k, v := range valid {
				params[k] = v
			}
			params[tc.key] = tc.value
			expectCode(t, e.srv.fireDirect(t, params), codes.InvalidArgument, tc.message)
		})
	}
	e.expectNoCalls()

	// The same names in a Resume never reach the server: the CRD's validation refuses the object.
	for name, spec := range map[string]map[string]any{
		"shell-template":  {"Workflow-ID": fixture.HelloWorkflow, "TemplateName": "pause; touch /tmp/pwned"},
		"bad-workflow":    {"Workflow-ID": "hello-world$(reboot)", "TemplateName": "pause"},
		"path-container":  {"Workflow-ID": fixture.HelloWorkflow, "TemplateName": "pause", "container": "main/../../wait"},
		"stage-path":      {"Workflow-ID": fixture.HelloWorkflow, "TemplateName": "pause", "stage": "after/../x"},
		"no-step-named":   {"Workflow-ID": fixture.HelloWorkflow},
		"slash-in-nodeid": {"Workflow-ID": fixture.HelloWorkflow, "nodeID": "a/b"},
	} {
		_, err := e.tryCreateResume(name, spec)
		if !apierrors.IsInvalid(err) {
			t.Errorf("create resume %s with spec %v: err %v, want Invalid from the CRD's validation", name, spec, err)
		}
		if _, gerr := e.r.Dynamic().Resource(v1alpha1.Resource).Namespace(e.ns).Get(rig.Context(t, 10*time.Second), name, metav1.GetOptions{}); !apierrors.IsNotFound(gerr) {
			t.Errorf("resume %s exists after a refused create: %v", name, gerr)
		}
	}
	e.expectNoCalls()
}

// A direct (webhook) request for a namespace the server is not installed for, where a paused step waits.
func TestRefusesNamespaceNotAllowed(t *testing.T) {
	e := setup(t)
	other := newEnv(t)
	other.pausedHelloWorld()

	f := e.srv.fireDirect(t, map[string]string{"namespace": other.ns, "workflow": fixture.HelloWorkflow, "template": "pause"})
	expectCode(t, f, codes.PermissionDenied, "namespace "+other.ns+" is not served")
	if !strings.Contains(f.Err.Error(), e.ns) {
		t.Errorf("the refusal does not say which namespaces are served: %v", f.Err)
	}
	other.expectNoCalls()
	e.expectNoCalls()
}

// A Resume's workflow is looked up in the Resume's namespace only, even when the server serves the
// namespace where a workflow of that name is paused.
func TestResumeNeverReachesAnotherNamespace(t *testing.T) {
	e := newEnv(t)
	other := newEnv(t)
	other.pausedHelloWorld()
	e.srv = startServer(t, e.r.AdminConfig(), []string{e.ns, other.ns})
	u := e.createResume("elsewhere", map[string]any{"Workflow-ID": fixture.HelloWorkflow, "TemplateName": "pause"})

	f := e.srv.fireResume(t, u)
	expectCode(t, f, codes.Unavailable, "workflow hello-world not found in namespace "+e.ns)
	res, _ := e.resume("elsewhere")
	if res.Status.Phase != v1alpha1.PhasePending || res.Status.Workflow != nil {
		t.Fatalf("status %s bound to %+v, want Pending and bound to nothing", res.Status.Phase, res.Status.Workflow)
	}
	other.expectNoCalls()
	e.expectNoCalls()
}
