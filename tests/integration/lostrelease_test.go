package integration

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"

	"github.com/argocontroller/resume-trigger/api/v1alpha1"
	"github.com/argocontroller/resume-trigger/internal/fixture"
	"github.com/argocontroller/resume-trigger/tests/internal/rig"
)

// A release that happened is never recorded as a failure. Here the emulated emissary ends the released
// container at once, as Argo's does, so a look that lost the release's outcome finds it terminated.

// refuseLabel marks the Resumes whose status the test's admission policy refuses to record a release in.
const (
	refuseLabel   = "test.resume-trigger.io/refuse-release-record"
	refuseMessage = "test: the API server refuses to record this release"
)

// refuseReleaseRecords makes the API server refuse, for Resumes in e.ns labelled refuseLabel, every status
// write that lists a released container (a ValidatingAdmissionPolicy, the API server's own refusal). It
// returns once the policy is enforced.
func refuseReleaseRecords(t *testing.T, e *env) {
	t.Helper()
	ctx := rig.Context(t, 30*time.Second)
	policy := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "admissionregistration.k8s.io/v1",
		"kind":       "ValidatingAdmissionPolicy",
		"metadata":   map[string]any{"name": "refuse-release-record-" + e.ns},
		"spec": map[string]any{
			"failurePolicy": "Fail",
			"matchConstraints": map[string]any{"resourceRules": []any{map[string]any{
				"apiGroups": []any{v1alpha1.GroupVersion.Group}, "apiVersions": []any{"*"},
				"operations": []any{"UPDATE"}, "resources": []any{"resumes/status"},
			}}},
			"validations": []any{map[string]any{
				"expression": "!has(object.status) || !has(object.status.released) || size(object.status.released) == 0",
				"message":    refuseMessage,
			}},
		},
	}}
	binding := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "admissionregistration.k8s.io/v1",
		"kind":       "ValidatingAdmissionPolicyBinding",
		"metadata":   map[string]any{"name": "refuse-release-record-" + e.ns},
		"spec": map[string]any{
			"policyName":        "refuse-release-record-" + e.ns,
			"validationActions": []any{"Deny"},
			"matchResources": map[string]any{
				"namespaceSelector": map[string]any{"matchLabels": map[string]any{"kubernetes.io/metadata.name": e.ns}},
				"objectSelector":    map[string]any{"matchLabels": map[string]any{refuseLabel: "true"}},
			},
		},
	}}
	for _, o := range []struct {
		u   *unstructured.Unstructured
		gvr schema.GroupVersionResource
	}{{policy, vapGVR}, {binding, vapBindingGVR}} {
		if _, err := e.r.Dynamic().Resource(o.gvr).Create(ctx, o.u, metav1.CreateOptions{}); err != nil {
			t.Fatalf("create %s: %v", o.u.GetKind(), err)
		}
		gvr, name := o.gvr, o.u.GetName()
		t.Cleanup(func() {
			_ = e.r.Dynamic().Resource(gvr).Delete(rig.Context(t, 10*time.Second), name, metav1.DeleteOptions{})
		})
	}

	// The API server enforces a policy a moment after it is created: probe with a Resume of our own.
	probe := e.createResume("probe", map[string]any{"Workflow-ID": "no-such-workflow", "TemplateName": "x"})
	e.label(probe.GetName(), true)
	eventually(t, 30*time.Second, "the policy enforced", func() error {
		u, err := e.r.Dynamic().Resource(v1alpha1.Resource).Namespace(e.ns).Get(ctx, "probe", metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		_ = unstructured.SetNestedSlice(u.Object, []any{map[string]any{
			"node": "n", "pod": "p", "container": "main", "stage": "after", "time": "2026-01-01T00:00:00Z",
		}}, "status", "released")
		_, err = e.r.Dynamic().Resource(v1alpha1.Resource).Namespace(e.ns).UpdateStatus(ctx, u, metav1.UpdateOptions{})
		if err != nil && strings.Contains(err.Error(), refuseMessage) {
			return nil
		}
		return fmt.Errorf("last write: %v", err)
	})
}

// label sets or removes refuseLabel on a Resume (its metadata: the spec cannot change).
func (e *env) label(name string, on bool) {
	e.t.Helper()
	patch := `{"metadata":{"labels":{"` + refuseLabel + `":null}}}`
	if on {
		patch = `{"metadata":{"labels":{"` + refuseLabel + `":"true"}}}`
	}
	if _, err := e.r.Dynamic().Resource(v1alpha1.Resource).Namespace(e.ns).Patch(rig.Context(e.t, 10*time.Second), name, types.MergePatchType, []byte(patch), metav1.PatchOptions{}); err != nil {
		e.t.Fatalf("label resume %s: %v", name, err)
	}
}

// The status write after the touch fails (the API server refuses it): the release lives on in
// status.releasing, written before the exec, and the next look records it although the container has
// ended since. Without status.releasing that look recorded Failed/NotReleasable, released: [].
func TestStatusWriteFailingAfterTheRelease(t *testing.T) {
	e := setup(t)
	refuseReleaseRecords(t, e)
	wf := e.createWorkflow(fixture.HelloWorld(e.ns))
	e.runPod(wf, fixture.HelloNodeID, fixture.HelloPodV2, mainContainer(fixture.PauseAfter))
	u := e.createResume("release-hello", map[string]any{"Workflow-ID": fixture.HelloWorkflow, "TemplateName": "pause"})
	e.label(u.GetName(), true)

	f := e.srv.fireResume(t, u)
	expectCode(t, f, codes.Unavailable, refuseMessage)
	e.expectCalls(rig.Call{Pod: fixture.HelloPodV2, Container: "main", Argv: touchMainAfter, Outcome: "exit 0"})
	e.waitContainerTerminated(fixture.HelloPodV2, "main")
	res, _ := e.resume(u.GetName())
	if res.Status.Phase.Final() || len(res.Status.Released) != 0 || len(res.Status.Releasing) != 1 || res.Status.Releasing[0].Pod != fixture.HelloPodV2 {
		t.Fatalf("after the refused write: phase %q released %+v releasing %+v, want not final, %s announced as releasing", res.Status.Phase, res.Status.Released, res.Status.Releasing, fixture.HelloPodV2)
	}

	// The API server takes writes again; the Sensor's retry looks again.
	e.label(u.GetName(), false)
	expectOK(t, e.srv.fireResume(t, u), 1)
	res, _ = e.resume(u.GetName())
	expectSucceeded(t, res, v1alpha1.ReleasedTarget{Node: fixture.HelloNodeID, Pod: fixture.HelloPodV2, Container: "main", Stage: v1alpha1.StageAfter})
	if c := res.Status.Released[0].ExitCode; c == nil || *c != 0 {
		t.Errorf("released exit code %v, want the container's 0", c)
	}
	if len(res.Status.Releasing) != 0 || res.Status.ReleasedCount != 1 {
		t.Errorf("releasing %+v, releasedCount %d: want none left and 1", res.Status.Releasing, res.Status.ReleasedCount)
	}
	if calls := e.calls(); len(calls) != 1 {
		t.Errorf("%d execs, want the one release: %s", len(calls), formatCalls(calls))
	}
}

// The exec reports a transport error after the touch ran (the node's exec session broke), and the released
// container has ended by the time the server reads the pod: that is the release, with the container's exit
// code, not "terminated while releasing it" (Failed/NotReleasable before).
func TestExecErrorAfterTheTouch(t *testing.T) {
	e := setup(t)
	wf := e.createWorkflow(fixture.HelloWorld(e.ns))
	e.runPod(wf, fixture.HelloNodeID, fixture.HelloPodV2, mainContainer(fixture.PauseAfter))
	e.r.Kubelet().SetBehaviour(e.ns, fixture.HelloPodV2, "main", rig.FailAfterTouch)
	u := e.createResume("release-hello", map[string]any{"Workflow-ID": fixture.HelloWorkflow, "TemplateName": "pause"})

	f := e.srv.fireResume(t, u)
	expectOK(t, f, 1)
	e.expectCalls(rig.Call{Pod: fixture.HelloPodV2, Container: "main", Argv: touchMainAfter, Outcome: "error: exec session broke after the command started"})
	res, _ := e.resume(u.GetName())
	expectSucceeded(t, res, v1alpha1.ReleasedTarget{Node: fixture.HelloNodeID, Pod: fixture.HelloPodV2, Container: "main", Stage: v1alpha1.StageAfter})
	if c := res.Status.Released[0].ExitCode; c == nil || *c != 0 {
		t.Errorf("released exit code %v, want the container's 0", c)
	}
	if len(res.Status.Releasing) != 0 {
		t.Errorf("releasing %+v left", res.Status.Releasing)
	}
}
