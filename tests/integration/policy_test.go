package integration

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"

	"github.com/argocontroller/resume-trigger/internal/fixture"
	"github.com/argocontroller/resume-trigger/internal/release"
	"github.com/argocontroller/resume-trigger/tests/internal/rig"
)

const execPolicyDir = "manifests/exec-policy"

var (
	vapGVR        = schema.GroupVersionResource{Group: "admissionregistration.k8s.io", Version: "v1", Resource: "validatingadmissionpolicies"}
	vapBindingGVR = schema.GroupVersionResource{Group: "admissionregistration.k8s.io", Version: "v1", Resource: "validatingadmissionpolicybindings"}
)

const policyDenial = "resume-trigger may only exec"

// applyExecPolicy applies manifests/exec-policy, its binding narrowed to namespace ns so that the tests
// running beside this one in the same API server are not under it (the shipped binding has no selector:
// it covers every namespace). It returns once the API server enforces it.
func applyExecPolicy(t *testing.T, e *env, probe func() error) {
	t.Helper()
	root, err := rig.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	objs, err := rig.Render(root, execPolicyDir)
	if err != nil {
		t.Fatal(err)
	}
	ctx := rig.Context(t, 30*time.Second)
	for _, u := range objs {
		gvr := vapGVR
		switch u.GetKind() {
		case "ValidatingAdmissionPolicy":
		case "ValidatingAdmissionPolicyBinding":
			gvr = vapBindingGVR
			if err := unstructured.SetNestedField(u.Object, map[string]any{
				"namespaceSelector": map[string]any{"matchLabels": map[string]any{"kubernetes.io/metadata.name": e.ns}},
			}, "spec", "matchResources"); err != nil {
				t.Fatal(err)
			}
		default:
			t.Fatalf("%s renders a %s, which this test does not know", execPolicyDir, u.GetKind())
		}
		// Cluster-scoped: one name per test run.
		u.SetName(u.GetName() + "-" + e.ns)
		if u.GetKind() == "ValidatingAdmissionPolicyBinding" {
			if err := unstructured.SetNestedField(u.Object, "resume-trigger-exec-"+e.ns, "spec", "policyName"); err != nil {
				t.Fatal(err)
			}
		}
		if _, err := e.r.Dynamic().Resource(gvr).Create(ctx, u, metav1.CreateOptions{}); err != nil {
			t.Fatalf("create %s %s: %v", u.GetKind(), u.GetName(), err)
		}
		name := u.GetName()
		t.Cleanup(func() {
			_ = e.r.Dynamic().Resource(gvr).Delete(rig.Context(t, 10*time.Second), name, metav1.DeleteOptions{})
		})
	}
	// The API server compiles and starts enforcing a policy a moment after it is created.
	eventually(t, 30*time.Second, "the exec policy enforced", func() error {
		if err := probe(); err == nil || !strings.Contains(err.Error(), policyDenial) {
			return fmt.Errorf("last probe: %v", err)
		}
		return nil
	})
}

// With manifests/exec-policy, the API server itself lets resume-trigger's identity exec only the marker's
// touch, in a user container, with no stdin or TTY: a shell or cat are refused before they reach the
// kubelet, other users' execs are untouched, and the server still releases steps.
func TestExecPolicyPinsTheArgv(t *testing.T) {
	e := newEnv(t)
	applyNamespaceInstall(t, e.r, e.ns)
	e.pausedHelloWorld()
	saConfig := e.r.ServiceAccountConfig(e.ns, serviceAccount)
	asServer := func(container string, argv ...string) error {
		return rig.Exec(rig.Context(t, 20*time.Second), saConfig, e.ns, fixture.HelloPodV2, container, argv...)
	}
	applyExecPolicy(t, e, func() error { return asServer("main", "cat", "/etc/hostname") })
	before := len(e.calls())

	refused := map[string][]string{
		"a shell":                      {"sh", "-c", "id"},
		"cat":                          {"cat", "/var/run/secrets/kubernetes.io/serviceaccount/token"},
		"touch elsewhere":              {"touch", "/etc/passwd"},
		"touch through ..":             {"touch", "/var/run/argo/ctr/main/../../../x/after"},
		"touch of another stage":       {"touch", "/var/run/argo/ctr/main/during"},
		"touch with a second file":     {"touch", "/var/run/argo/ctr/main/after", "/tmp/x"},
		"the marker, then a shell":     {"touch", "/var/run/argo/ctr/main/after;sh"},
		"a marker of an odd container": {"touch", "/var/run/argo/ctr/Main/after"},
	}
	for name, argv := range refused {
		err := asServer("main", argv...)
		t.Logf("%s: %v", name, err)
		if err == nil || !strings.Contains(err.Error(), policyDenial) {
			t.Errorf("%s (%q) as resume-trigger: %v, want the policy's refusal", name, argv, err)
		}
	}
	if err := asServer("wait", touchMainAfter...); err == nil || !strings.Contains(err.Error(), "never execs into Argo's own containers") {
		t.Errorf("the marker's touch in container wait: %v, want the policy's refusal", err)
	}
	if calls := e.calls()[before:]; len(calls) != 0 {
		t.Fatalf("refused execs reached the kubelet:\n%s", formatCalls(calls))
	}

	// Another user's exec is not the policy's business: it reaches the kubelet.
	other := rig.Exec(rig.Context(t, 20*time.Second), e.r.AdminConfig(), e.ns, fixture.HelloPodV2, "main", "cat", "/etc/hostname")
	var exit *release.ExitError
	if other != nil && !errors.As(other, &exit) && strings.Contains(other.Error(), policyDenial) {
		t.Errorf("the admin's exec was refused by the policy: %v", other)
	}
	after := e.calls()[before:]
	if !slices.ContainsFunc(after, func(c rig.Call) bool { return c.Argv[0] == "cat" }) {
		t.Errorf("the admin's exec did not reach the kubelet:\n%s", formatCalls(after))
	}

	// The server, under the policy, releases the step.
	e.srv = startServer(t, saConfig, []string{e.ns})
	u := e.createResume("under-policy", map[string]any{"Workflow-ID": fixture.HelloWorkflow, "TemplateName": "pause"})
	expectOK(t, e.srv.fireResume(t, u), 1)
	res, _ := e.resume("under-policy")
	expectSucceeded(t, res, helloReleased)
	last := e.calls()[len(e.calls())-1]
	if last.Pod != fixture.HelloPodV2 || last.Container != "main" || !slices.Equal(last.Argv, touchMainAfter) || last.Outcome != "exit 0" {
		t.Errorf("the server's release: %+v, want touch of main's marker, exit 0", last)
	}
}
