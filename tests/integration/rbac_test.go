package integration

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	wfv1 "github.com/argoproj/argo-workflows/v3/pkg/apis/workflow/v1alpha1"
	wfclient "github.com/argoproj/argo-workflows/v3/pkg/client/clientset/versioned"
	argoutil "github.com/argoproj/argo-workflows/v3/workflow/util"
	authorizationv1 "k8s.io/api/authorization/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/argocontroller/resume-trigger/internal/fixture"
	"github.com/argocontroller/resume-trigger/tests/internal/rig"
)

const serviceAccount = "resume-trigger"

// applyNamespaceInstall applies manifests/namespace-install's ServiceAccount, ClusterRole and RoleBinding
// for namespace ns (rig.ApplyNamespaceInstall) and returns them as Kind/name.
func applyNamespaceInstall(t *testing.T, r *rig.Rig, ns string) []string {
	t.Helper()
	objs, err := r.ApplyNamespaceInstall(rig.Context(t, 20*time.Second), ns)
	if err != nil {
		t.Fatal(err)
	}
	var applied []string
	for _, u := range objs {
		applied = append(applied, u.GetKind()+"/"+u.GetName())
	}
	return applied
}

// The server runs as its ServiceAccount with exactly the shipped namespace-install RBAC: the release
// works end to end, and the identity can do nothing beyond what the release needs.
func TestShippedRBACIsEnoughAndNoMore(t *testing.T) {
	e := newEnv(t)
	other := newEnv(t)
	applied := applyNamespaceInstall(t, e.r, e.ns)
	t.Logf("applied from manifests/namespace-install: %s", strings.Join(applied, ", "))
	for _, want := range []string{"ClusterRole/resume-trigger", "ServiceAccount/" + serviceAccount, "RoleBinding/resume-trigger"} {
		if !strings.Contains(strings.Join(applied, " "), want) {
			t.Fatalf("manifests/namespace-install has no %s (applied %v)", want, applied)
		}
	}
	saConfig := e.r.ServiceAccountConfig(e.ns, serviceAccount)

	t.Run("release works", func(t *testing.T) {
		e := &env{t: t, r: e.r, ns: e.ns, wfc: e.wfc}
		e.pausedHelloWorld()
		e.srv = startServer(t, saConfig, []string{e.ns})
		u := e.createResume("as-serviceaccount", map[string]any{"Workflow-ID": fixture.HelloWorkflow, "TemplateName": "pause"})

		expectOK(t, e.srv.fireResume(t, u), 1)
		e.expectCalls(rig.Call{Pod: fixture.HelloPodV2, Container: "main", Argv: touchMainAfter, Outcome: "exit 0"})
		res, _ := e.resume("as-serviceaccount")
		expectSucceeded(t, res, helloReleased)
		e.expectEvent("as-serviceaccount", corev1.EventTypeNormal, "Released")
		if strings.Contains(e.srv.logs.String(), "forbidden") {
			t.Errorf("the server was refused something:\n%s", e.srv.logs)
		}
		e.waitPodSucceeded(fixture.HelloPodV2)

		// Two webhook releases on one Workflow are one Event with a count: the second is the recorder's
		// patch of a series, which needs patch on events.k8s.io.
		const fan = "fan-out"
		var nodes []wfv1.NodeStatus
		for _, item := range []string{"(0:a)", "(1:b)"} {
			nodes = append(nodes, fixture.PodNode(fan, fan+"[0].fan"+item, "fan"+item, "fan"))
		}
		wf := e.createWorkflow(fixture.Workflow(e.ns, fan, nodes...))
		for _, n := range nodes {
			pod := argoutil.GeneratePodName(fan, n.Name, "fan", n.ID, argoutil.PodNameV2)
			e.runPod(wf, n.ID, pod, mainContainer(fixture.PauseAfter))
			expectOK(t, e.srv.fireDirect(t, map[string]string{"namespace": e.ns, "workflow": fan, "nodeID": n.ID}), 1)
		}
		if err := rig.Eventually(rig.Context(t, 20*time.Second), func() error {
			list, err := e.r.Client().EventsV1().Events(e.ns).List(context.Background(), metav1.ListOptions{})
			if err != nil {
				return err
			}
			for _, ev := range list.Items {
				if ev.Regarding.Kind == "Workflow" && ev.Regarding.Name == fan && ev.Reason == "DebugPauseReleased" && ev.Series != nil && ev.Series.Count >= 2 {
					return nil
				}
			}
			return fmt.Errorf("no series of DebugPauseReleased on Workflow %s among %d Events", fan, len(list.Items))
		}); err != nil {
			t.Fatal(err)
		}
	})

	t.Run("nothing more", func(t *testing.T) {
		otherWf := other.createWorkflow(fixture.HelloWorld(other.ns))
		other.runPod(otherWf, fixture.HelloNodeID, fixture.HelloPodV2, mainContainer(fixture.PauseAfter))
		sa, err := kubernetes.NewForConfig(saConfig)
		if err != nil {
			t.Fatal(err)
		}
		ctx := rig.Context(t, 30*time.Second)

		type access struct {
			ns, group, resource, sub, verb string
		}
		allowed := []access{
			{e.ns, "", "pods", "", "get"}, {e.ns, "", "pods", "", "list"},
			{e.ns, "", "pods", "exec", "create"}, {e.ns, "", "pods", "exec", "get"},
			{e.ns, "argoproj.io", "workflows", "", "get"},
			{e.ns, "argocontroller.io", "resumes", "", "get"}, {e.ns, "argocontroller.io", "resumes", "", "list"},
			{e.ns, "argocontroller.io", "resumes", "", "delete"},
			{e.ns, "argocontroller.io", "resumes", "status", "update"},
			{e.ns, "events.k8s.io", "events", "", "create"}, {e.ns, "events.k8s.io", "events", "", "patch"},
			{e.ns, "coordination.k8s.io", "leases", "", "get"}, {e.ns, "coordination.k8s.io", "leases", "", "create"},
			{e.ns, "coordination.k8s.io", "leases", "", "update"},
		}
		denied := []access{
			{e.ns, "", "secrets", "", "get"}, {e.ns, "", "secrets", "", "list"}, {e.ns, "", "secrets", "", "watch"},
			{e.ns, "", "pods", "", "create"}, {e.ns, "", "pods", "", "delete"}, {e.ns, "", "pods", "", "update"}, {e.ns, "", "pods", "", "patch"},
			{e.ns, "", "pods", "log", "get"}, {e.ns, "", "pods", "ephemeralcontainers", "update"}, {e.ns, "", "pods", "ephemeralcontainers", "patch"},
			{e.ns, "", "pods", "attach", "create"}, {e.ns, "", "pods", "portforward", "create"},
			{e.ns, "argoproj.io", "workflows", "", "update"}, {e.ns, "argoproj.io", "workflows", "", "patch"}, {e.ns, "argoproj.io", "workflows", "", "delete"}, {e.ns, "argoproj.io", "workflows", "", "create"},
			{e.ns, "argocontroller.io", "resumes", "", "create"}, {e.ns, "argocontroller.io", "resumes", "", "update"}, {e.ns, "argocontroller.io", "resumes", "", "patch"},
			{e.ns, "argocontroller.io", "resumes", "", "watch"}, {e.ns, "argocontroller.io", "resumes", "status", "patch"},
			{e.ns, "argoproj.io", "workflows", "", "list"}, {e.ns, "coordination.k8s.io", "leases", "", "delete"},
			{other.ns, "coordination.k8s.io", "leases", "", "update"}, {other.ns, "argocontroller.io", "resumes", "", "list"},
			{e.ns, "", "configmaps", "", "get"}, {e.ns, "", "serviceaccounts", "token", "create"},
			{e.ns, "rbac.authorization.k8s.io", "rolebindings", "", "create"},
			{other.ns, "", "pods", "", "get"}, {other.ns, "", "pods", "", "list"},
			{other.ns, "", "pods", "exec", "create"}, {other.ns, "", "pods", "exec", "get"},
			{other.ns, "argoproj.io", "workflows", "", "get"}, {other.ns, "argocontroller.io", "resumes", "status", "update"},
			{other.ns, "events.k8s.io", "events", "", "create"}, {other.ns, "events.k8s.io", "events", "", "patch"},
			// Events go through events.k8s.io only: nothing is granted on the core group's.
			{e.ns, "", "events", "", "create"}, {e.ns, "", "events", "", "patch"},
			{"", "", "namespaces", "", "list"}, {"", "", "nodes", "", "get"},
		}
		check := func(a access, want bool) {
			review, err := sa.AuthorizationV1().SelfSubjectAccessReviews().Create(ctx, &authorizationv1.SelfSubjectAccessReview{
				Spec: authorizationv1.SelfSubjectAccessReviewSpec{ResourceAttributes: &authorizationv1.ResourceAttributes{
					Namespace: a.ns, Group: a.group, Resource: a.resource, Subresource: a.sub, Verb: a.verb,
				}},
			}, metav1.CreateOptions{})
			if err != nil {
				t.Fatalf("SelfSubjectAccessReview %+v: %v", a, err)
			}
			if review.Status.Allowed != want {
				t.Errorf("%s may %s %s/%s (%s) in namespace %q: %v, want %v (%s)", serviceAccount, a.verb, a.resource, a.sub, a.group, a.ns, review.Status.Allowed, want, review.Status.Reason)
			}
		}
		for _, a := range allowed {
			check(a, true)
		}
		for _, a := range denied {
			check(a, false)
		}

		// And the real calls are refused by the API server.
		forbidden := func(what string, err error) {
			t.Helper()
			if !apierrors.IsForbidden(err) {
				t.Errorf("%s as %s: err %v, want Forbidden", what, serviceAccount, err)
			}
		}
		_, err = sa.CoreV1().Secrets(e.ns).List(ctx, metav1.ListOptions{})
		forbidden("list secrets", err)
		_, err = sa.CoreV1().Secrets(e.ns).Get(ctx, "any", metav1.GetOptions{})
		forbidden("get a secret", err)
		_, err = sa.CoreV1().Pods(e.ns).Create(ctx, &corev1.Pod{
			ObjectMeta: metav1.ObjectMeta{Name: "intruder"},
			Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "c", Image: "busybox"}}},
		}, metav1.CreateOptions{})
		forbidden("create a pod", err)
		err = sa.CoreV1().Pods(e.ns).Delete(ctx, fixture.HelloPodV2, metav1.DeleteOptions{})
		forbidden("delete a pod", err)
		_, err = sa.CoreV1().Pods(other.ns).List(ctx, metav1.ListOptions{})
		forbidden("list pods in another namespace", err)

		saWf, err := wfclient.NewForConfig(saConfig)
		if err != nil {
			t.Fatal(err)
		}
		mine, err := saWf.ArgoprojV1alpha1().Workflows(e.ns).Get(ctx, fixture.HelloWorkflow, metav1.GetOptions{})
		if err != nil {
			t.Fatalf("get own workflow as %s: %v", serviceAccount, err)
		}
		mine.Labels["tampered"] = "true"
		_, err = saWf.ArgoprojV1alpha1().Workflows(e.ns).Update(ctx, mine, metav1.UpdateOptions{})
		forbidden("update a workflow", err)
		_, err = saWf.ArgoprojV1alpha1().Workflows(other.ns).Get(ctx, fixture.HelloWorkflow, metav1.GetOptions{})
		forbidden("get a workflow in another namespace", err)

		err = rig.Exec(ctx, saConfig, other.ns, fixture.HelloPodV2, "main", touchMainAfter...)
		// The exec upgrade's refusal is not an API status error, only its text says forbidden.
		if err == nil || !strings.Contains(err.Error(), "forbidden") || !strings.Contains(err.Error(), "pods/exec") {
			t.Errorf("exec into %s/%s as %s: %v, want forbidden on pods/exec", other.ns, fixture.HelloPodV2, serviceAccount, err)
		}
		other.expectNoCalls()
	})
}
